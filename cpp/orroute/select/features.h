// Prompt features: a fixed-size sparse vector (hashed word unigrams/bigrams and character n-grams
// plus a block of dense structure features) and the plain structure statistics behind it
// (PromptStats: length, code/math/multi-step cues), which the router's complexity analyzer can use
// on their own. Everything is a pure function of the prompt bytes: deterministic across runs,
// platforms and processes (FNV-1a hashing, no random seeds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

// Counts and cues read from a prompt. Cheap (one pass over the bytes plus one over the words).
struct PromptStats {
  int32_t chars = 0;           // bytes
  int32_t words = 0;           // alphanumeric runs (non-ASCII bytes count as letters)
  int32_t lines = 0;           // non-empty lines
  int32_t sentences = 0;       // '.', '!', '?' followed by space/end
  int32_t questions = 0;       // '?' characters
  int32_t digits = 0;          // ASCII digits
  int32_t uppercase = 0;       // ASCII upper-case letters
  int32_t punctuation = 0;     // ASCII punctuation
  int32_t code_fences = 0;     // "```" occurrences
  int32_t code_cues = 0;       // code keywords and code-like symbols (def, return, {, ;, ==, ...)
  int32_t math_cues = 0;       // math words and operators (solve, integral, =, ^, \frac, $, ...)
  int32_t multistep_cues = 0;  // "step by step", "explain", "why", "then", "prove", ...
  int32_t list_items = 0;      // lines starting with "-", "*", "1." ...
  int32_t choice_options = 0;  // lines starting with "A)", "B.", "(c)" ...
  double avg_word_length = 0.0;
  // Heuristic difficulty in [0, 1] from the cues above (length, code, math, multi-step). Not
  // learned; a fallback for the complexity analyzer when no trained router is available.
  double complexity = 0.0;
};

// Reads the statistics of `prompt`. Never throws; thread-safe.
PromptStats prompt_stats(std::string_view prompt);

// One non-zero entry of a sparse feature vector.
struct SparseFeature {
  uint32_t index;
  float value;
};

// How prompts map to the sparse space. Part of a saved router's file.
struct FeatureConfig {
  uint32_t hash_bits = 18;    // dimension = 2^hash_bits (10..24)
  bool word_unigrams = true;  // lower-cased alphanumeric words and single symbols
  bool word_bigrams = true;
  uint32_t char_ngram_min = 3;  // 0 disables character n-grams
  uint32_t char_ngram_max = 5;
  uint32_t char_window = 1024;  // character n-grams read only the last `char_window` bytes
  // Word unigrams/bigrams read only the last `word_window` bytes (cut at a word boundary); 0 = the
  // whole prompt. Bounds the featurizer's work on long few-shot prompts, whose question is at the
  // end. The structure block always reads the whole prompt.
  uint32_t word_window = 0;
  bool structure = true;        // the dense structure block (kStructureFeatures entries)

  // Throws InvalidArgument if a field is out of range.
  void validate() const;
};

// Maps prompts to sparse vectors of dimension 2^hash_bits. Indices [0, kStructureFeatures) hold the
// structure block (scaled to about [0, 1]); n-gram hashes fill the rest. Word features and
// character n-grams are each L2-normalised (sublinear counts), so every prompt has a similar norm
// whatever its length. Immutable; safe to share across threads.
class PromptFeaturizer {
 public:
  static constexpr uint32_t kStructureFeatures = 24;

  // Throws InvalidArgument if `config` is invalid.
  explicit PromptFeaturizer(FeatureConfig config = {});

  const FeatureConfig& config() const noexcept { return config_; }
  uint32_t dim() const noexcept { return 1u << config_.hash_bits; }

  // Sorted by index, indices unique, values finite. Never throws except std::bad_alloc.
  std::vector<SparseFeature> features(std::string_view prompt) const;

  // Names of the structure block entries (index i -> name), for inspection and docs.
  static const std::vector<std::string>& structure_names();

 private:
  FeatureConfig config_;
};

}  // namespace orroute
