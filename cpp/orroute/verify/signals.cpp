#include "orroute/verify/signals.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "orroute/no_destructor.h"
#include "orroute/select/features.h"
#include "orroute/verify/arithmetic.h"

namespace orroute {

namespace {

constexpr std::string_view kHedges[] = {
    "i think",  "not sure", "approximately", "assume", "might",      "perhaps",  "probably",
    "unclear",  "i believe", "it seems",     "roughly", "estimate",  "however,", "wait",
    "let me re", "mistake",  "correction",   "actually"};
constexpr std::string_view kRefusals[] = {"i cannot", "i can't", "i'm sorry", "i am sorry",
                                          "as an ai", "unable to", "not possible to determine",
                                          "cannot be determined", "not enough information"};

int32_t count_phrases(std::string_view lower, const std::string_view* begin,
                      const std::string_view* end) {
  int32_t n = 0;
  for (auto p = begin; p != end; ++p) {
    for (size_t at = lower.find(*p); at != std::string_view::npos; at = lower.find(*p, at + 1)) ++n;
  }
  return n;
}

double log1p_count(double x) { return std::log1p(std::max(0.0, x)); }

// The values of the numbers written in `text` ("1,200", "3.5"; signs ignored), at most `limit`.
std::vector<double> number_values(std::string_view text, size_t limit = 4096) {
  std::vector<double> out;
  for (size_t i = 0; i < text.size() && out.size() < limit;) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    std::string digits;
    size_t e = i;
    while (e < text.size() && digits.size() < 40) {
      const char c = text[e];
      const bool next_digit = e + 1 < text.size() && text[e + 1] >= '0' && text[e + 1] <= '9';
      if (c >= '0' && c <= '9') {
        digits += c;
      } else if (c == '.' && next_digit && digits.find('.') == std::string::npos) {
        digits += c;
      } else if (c != ',' || !next_digit) {
        break;
      }
      ++e;
    }
    out.push_back(std::strtod(digits.c_str(), nullptr));
    i = e + (e == i);
  }
  return out;
}

}  // namespace

AnswerSignals answer_signals(std::string_view answer) {
  AnswerSignals s;
  s.chars = static_cast<int32_t>(std::min<size_t>(answer.size(), INT32_MAX));
  std::string lower(answer);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool in_word = false;
  bool in_number = false;
  for (const char c : lower) {
    const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (alnum && !in_word) ++s.words;
    in_word = alnum;
    const bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) ++s.numbers;
    in_number = digit || (in_number && (c == '.' || c == ','));
  }
  std::unordered_set<std::string_view> seen;
  int32_t repeated = 0;
  for (size_t b = 0; b <= lower.size();) {
    size_t e = lower.find('\n', b);
    if (e == std::string::npos) e = lower.size();
    std::string_view line(lower.data() + b, e - b);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    if (!line.empty()) {
      ++s.lines;
      if (!seen.insert(line).second) ++repeated;
    }
    b = e + 1;
  }
  s.repeated_lines = s.lines ? static_cast<double>(repeated) / s.lines : 0.0;
  s.hedges = count_phrases(lower, std::begin(kHedges), std::end(kHedges));
  s.refusals = count_phrases(lower, std::begin(kRefusals), std::end(kRefusals));
  for (size_t at = lower.find("```"); at != std::string::npos; at = lower.find("```", at + 3)) {
    ++s.code_fences;
  }
  size_t end = lower.find_last_not_of(" \t\r\n");
  if (end != std::string::npos) {
    const char c = lower[end];
    s.ends_cleanly = std::string_view(".!?`)]}\"*$%").find(c) != std::string_view::npos ||
                     (c >= '0' && c <= '9');
  }
  return s;
}

Agreement agreement(const std::vector<std::string>& keys) {
  Agreement a;
  std::unordered_map<std::string_view, int32_t> counts;
  for (const auto& k : keys) {
    if (k.empty()) continue;
    ++a.answered;
    const int32_t c = ++counts[k];
    if (c > a.count) {
      a.count = c;
      a.key = k;
    }
  }
  a.share = keys.empty() ? 0.0 : static_cast<double>(a.count) / static_cast<double>(keys.size());
  return a;
}

const std::vector<std::string>& escalation_feature_names() {
  static const NoDestructor<std::vector<std::string>> names(std::vector<std::string>{
      "bias",
      "prompt_log_chars", "prompt_log_words", "prompt_log_numbers", "prompt_math_cues",
      "prompt_multistep_cues", "prompt_complexity", "prompt_questions",
      "answer_log_chars", "answer_log_lines", "answer_log_numbers", "answer_hedges",
      "answer_refusal", "answer_code_fences", "answer_repeated_lines", "answer_ends_cleanly",
      "answer_to_prompt_length", "calc_log_checked", "calc_wrong_any", "calc_log_wrong",
      "final_found", "final_marked", "final_integral", "final_negative", "final_log_magnitude",
      "final_in_prompt", "answer_numbers_per_line", "final_is_last_result", "final_in_results",
      "prompt_numbers_used", "log_prompt_numbers_unused"});
  return *names;
}

std::vector<double> escalation_features(std::string_view prompt, std::string_view answer,
                                        const std::vector<double>& extra) {
  const PromptStats p = prompt_stats(prompt);
  const AnswerSignals a = answer_signals(answer);
  const CalculationCheck calc = check_calculations(answer);
  const FinalAnswer& fin = calc.final_answer;
  int32_t prompt_numbers = 0;
  bool final_in_prompt = false;
  for (size_t i = 0; i < prompt.size();) {
    if (prompt[i] < '0' || prompt[i] > '9') {
      ++i;
      continue;
    }
    size_t e = i;
    while (e < prompt.size() && ((prompt[e] >= '0' && prompt[e] <= '9') || prompt[e] == '.' ||
                                 prompt[e] == ',')) {
      ++e;
    }
    ++prompt_numbers;
    if (fin.found) {
      std::string digits;
      for (size_t k = i; k < e; ++k) {
        if (prompt[k] != ',') digits += prompt[k];
      }
      while (!digits.empty() && digits.back() == '.') digits.pop_back();
      final_in_prompt = final_in_prompt || digits == fin.text;
    }
    i = e;
  }
  // A worked solution normally uses every quantity the problem gives: the share of the prompt's
  // distinct numbers that appear in the answer, and how many do not.
  std::vector<double> given = number_values(prompt);
  std::sort(given.begin(), given.end());
  given.erase(std::unique(given.begin(), given.end()), given.end());
  std::vector<double> written = number_values(answer);
  std::sort(written.begin(), written.end());
  size_t used = 0;
  for (const double g : given) used += std::binary_search(written.begin(), written.end(), g);
  const double used_share = given.empty() ? 1.0 : static_cast<double>(used) / given.size();
  std::vector<double> x = {
      1.0,
      log1p_count(p.chars), log1p_count(p.words), log1p_count(prompt_numbers),
      log1p_count(p.math_cues), log1p_count(p.multistep_cues), p.complexity,
      log1p_count(p.questions),
      log1p_count(a.chars), log1p_count(a.lines), log1p_count(a.numbers), log1p_count(a.hedges),
      a.refusals > 0 ? 1.0 : 0.0, log1p_count(a.code_fences), a.repeated_lines,
      a.ends_cleanly ? 1.0 : 0.0,
      std::log((a.chars + 1.0) / (p.chars + 1.0)), log1p_count(calc.checked),
      calc.wrong > 0 ? 1.0 : 0.0, log1p_count(calc.wrong),
      fin.found ? 1.0 : 0.0, fin.marked ? 1.0 : 0.0,
      fin.found && std::floor(fin.value) == fin.value ? 1.0 : 0.0,
      fin.found && fin.value < 0 ? 1.0 : 0.0,
      fin.found ? std::log10(1.0 + std::min(std::abs(fin.value), 1e12)) : 0.0,
      final_in_prompt ? 1.0 : 0.0,
      a.lines ? std::min(10.0, static_cast<double>(a.numbers) / a.lines) : 0.0,
      calc.final_is_last_result ? 1.0 : 0.0, calc.final_in_results ? 1.0 : 0.0,
      used_share, log1p_count(static_cast<double>(given.size() - used))};
  for (const double e : extra) x.push_back(std::isfinite(e) ? e : 0.0);
  return x;
}

}  // namespace orroute
