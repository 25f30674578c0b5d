// The cheap answer's own signals (length, hedging, refusals, repetition, numbers, final-answer
// format), agreement among k samples (self-consistency), and the dense feature vector the
// escalation model reads: prompt statistics + answer signals + arithmetic re-check + the caller's
// extra values (verifier outcomes, router probabilities). Pure functions; never throw except
// std::bad_alloc; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

struct AnswerSignals {
  int32_t chars = 0;
  int32_t words = 0;
  int32_t lines = 0;           // non-empty lines
  int32_t numbers = 0;         // digit runs
  int32_t hedges = 0;          // "I think", "not sure", "approximately", "assume", "might" ...
  int32_t refusals = 0;        // "I cannot", "I'm sorry", "as an AI" ...
  int32_t code_fences = 0;     // "```" occurrences
  double repeated_lines = 0;   // share of non-empty lines that repeat an earlier line
  bool ends_cleanly = false;   // ends with . ! ? ``` ) ] } " or a digit (not cut off mid-word)
};

AnswerSignals answer_signals(std::string_view answer);

// Self-consistency over k samples' answer keys (empty keys = no answer, never agree).
struct Agreement {
  std::string key;      // the most frequent non-empty key (first seen on ties); empty if none
  int32_t count = 0;    // how many samples gave it
  int32_t answered = 0; // samples with a non-empty key
  double share = 0.0;   // count / number of samples (0 when there are none)
};
Agreement agreement(const std::vector<std::string>& keys);

// Dense features for the escalation model, in the order of escalation_feature_names() followed by
// `extra` (the caller's values, e.g. verifier outcomes as +1/-1/0 and router probabilities;
// non-finite extras become 0).
std::vector<double> escalation_features(std::string_view prompt, std::string_view answer,
                                        const std::vector<double>& extra = {});
const std::vector<std::string>& escalation_feature_names();

}  // namespace orroute
