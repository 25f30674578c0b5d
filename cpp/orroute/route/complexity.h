// Task complexity: features of the prompt and conversation (length, code, math, multi-step cues,
// question type, tools requested, conversation depth) give a score in [0, 1], a guessed task type
// and the reasons; thresholds map the score to a tier (routing analysis: 0.3 / 0.7 / 0.9).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

// Model tier a task needs. economy < simple_below <= standard < complex_from <= premium <
// frontier_from <= frontier.
enum class ComplexityTier : uint8_t { kEconomy, kStandard, kPremium, kFrontier };
const char* to_string(ComplexityTier t) noexcept;  // "economy", "standard", "premium", "frontier"

// The least effective quality (the selector's [0, 1] scale for the task type) a candidate needs
// for a task of this tier: economy none (0), standard 0.65, premium 0.80, frontier 0.90. The
// engine gives it to the selector as a soft floor under every strategy (docs/router.md).
double quality_floor(ComplexityTier t) noexcept;

struct ComplexityInput {
  std::string_view prompt;          // the latest user message (the text to judge)
  int32_t prior_turns = 0;          // messages before it in the conversation
  int64_t prompt_tokens = -1;       // whole prompt in tokens if counted; -1 = estimate from bytes
  int32_t tools = 0;                // tools offered to the model
  int64_t max_output_tokens = 0;    // requested output bound (0 = unknown)
  std::string_view declared_type;   // the caller's task type ("general" or empty = guess)
};

struct ComplexityThresholds {
  double simple_below = 0.3;   // below: economy
  double complex_from = 0.7;   // from here: premium
  double frontier_from = 0.9;  // from here: frontier
};

// The features behind a score, each in [0, 1].
struct ComplexityFeatures {
  double length = 0, code = 0, math = 0, multi_step = 0, question = 0, tools = 0, depth = 0,
         output = 0;
};

struct Complexity {
  double score = 0;                  // [0, 1]
  ComplexityTier tier = ComplexityTier::kEconomy;
  std::string task_type;             // coding, math, reasoning, creative, summarization,
                                     // extraction, translation, chat, general
  ComplexityFeatures features;       // what the score was made of (complexity_reasons reads them)
};

// Why `c` scored as it did, as text: "task type: <type>" first, then each weighted feature that
// added at least 0.04 ("code 0.85 (+0.21)"), "simple lookup question", "several strong cues
// combined". Made from the figures when read: a plan keeps them, and most calls never read the
// text (formatting it cost every plan ~2k instructions). Never throws except std::bad_alloc.
std::vector<std::string> complexity_reasons(const Complexity& c);

// "complexity 0.42 -> standard": the score (its first four characters as printf's "%f" writes
// them) and the tier; the line a plan's reasons and the selector's difficulty floor give.
std::string complexity_line(const Complexity& c);

// Immutable after construction; thread-safe.
class ComplexityAnalyzer {
 public:
  // Throws InvalidArgument unless 0 <= simple_below <= complex_from <= frontier_from <= 1.
  explicit ComplexityAnalyzer(ComplexityThresholds thresholds = {});

  // Scores one task. Pure; never throws except std::bad_alloc.
  Complexity analyze(const ComplexityInput& input) const;
  ComplexityTier tier_for(double score) const noexcept;
  const ComplexityThresholds& thresholds() const noexcept { return thresholds_; }

 private:
  ComplexityThresholds thresholds_;
};

}  // namespace orroute
