// Arithmetic re-check of worked solutions ("16 - 3 = 13", GSM8K's "<<9*2=18>>") and the final
// answer's format ("#### 18", "The answer is 18", "\boxed{18}"). Every calculation written as
// `expression = result` whose left side has at least one operator between numbers is re-evaluated
// (+ - * / x × ÷, parentheses, "$", thousands commas, postfix %) and compared with the stated result
// (allowing the rounding the stated result's decimals imply). Anything else (units between the
// numbers, algebra, prose) is skipped, never guessed: the check has no false alarms by design,
// only misses. Pure functions of the text; never throw; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "orroute/verify/verdict.h"

namespace orroute {

struct FinalAnswer {
  bool found = false;   // a number was found
  bool marked = false;  // after an explicit marker (####, "answer is", "answer:", \boxed{)
  double value = 0.0;
  std::string text;     // canonical form: "18", "-2.5" (no $, no thousands commas)
};

struct CalculationCheck {
  int32_t checked = 0;      // calculations re-evaluated
  int32_t wrong = 0;        // of which the stated result is wrong
  std::string first_wrong;  // the first wrong one, clipped ("9 * 2 = 19")
  FinalAnswer final_answer;
  // Whether the final answer is the stated result of the last checked calculation / of any one.
  // A final answer that no calculation produced is a strong sign of a wrong solution.
  bool final_is_last_result = false;
  bool final_in_results = false;
};

// The final numeric answer of a solution: after the last marker if any, else the last number.
FinalAnswer final_answer(std::string_view text);

// Re-evaluates the calculations of `solution` (see the file comment) and reads its final answer.
CalculationCheck check_calculations(std::string_view solution);

// fail: a wrong calculation, or (when `require_final`) no final number; pass: at least one
// calculation checked and none wrong; abstain otherwise. score = share of correct calculations
// (0 on fail).
Verdict arithmetic_verdict(const CalculationCheck& check, bool require_final = true);

}  // namespace orroute
