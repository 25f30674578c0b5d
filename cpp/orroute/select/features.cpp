#include "orroute/select/features.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "orroute/error.h"

namespace orroute {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

// Seeds keep the three n-gram families apart in the hash space.
constexpr uint64_t kSeedWord = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kSeedBigram = 0xc2b2ae3d27d4eb4full;
constexpr uint64_t kSeedChar = 0x165667b19e3779f9ull;

uint64_t fnv_start(uint64_t seed) { return kFnvOffset ^ seed; }

uint64_t fnv_add(uint64_t h, unsigned char c) { return (h ^ c) * kFnvPrime; }

uint64_t fnv(std::string_view s, uint64_t seed) {
  uint64_t h = fnv_start(seed);
  for (const char c : s) h = fnv_add(h, static_cast<unsigned char>(c));
  return h;
}

// FNV's low bits are weak for short inputs; a final avalanche spreads them before the modulo.
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_punct(unsigned char c) { return c > 32 && c < 127 && !is_alnum(c); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_word_byte(unsigned char c) { return is_alnum(c) || c == '_' || c >= 0x80; }

char lower(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

// Lower-cased words and single punctuation symbols, in order.
std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string cur;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_word_byte(c)) {
      cur.push_back(lower(c));
      continue;
    }
    if (!cur.empty()) tokens.push_back(std::move(cur)), cur.clear();
    if (is_punct(c)) tokens.emplace_back(1, ch);
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

template <size_t N>
bool in(std::string_view w, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), w) != set.end();
}

constexpr std::array<std::string_view, 34> kCodeWords = {
    "def",     "return",  "function", "class",  "import",  "include",    "printf",
    "print",   "void",    "const",    "var",    "let",     "lambda",     "python",
    "java",    "javascript", "sql",   "select", "array",   "algorithm",  "code",
    "program", "implement", "compile", "assert", "struct", "int",        "bool",
    "elif",    "foreach", "regex",    "api",    "json",    "typescript"};
constexpr std::array<std::string_view, 28> kMathWords = {
    "solve",    "equation",   "integral", "derivative", "calculate", "compute",  "probability",
    "sum",      "product",    "sqrt",     "theorem",    "matrix",    "polynomial", "fraction",
    "percent",  "average",    "ratio",    "equals",     "prime",     "integer",  "remainder",
    "divisible", "logarithm", "frac",     "geometry",   "triangle",  "area",     "algebra"};
constexpr std::array<std::string_view, 20> kStepWords = {
    "step",    "steps",   "explain",  "why",     "how",     "then",     "first",
    "finally", "compare", "analyze",  "analyse", "evaluate", "justify", "derive",
    "prove",   "reason",  "describe", "discuss", "plan",    "design"};

size_t count_sub(std::string_view text, std::string_view pat) {
  size_t n = 0;
  for (size_t pos = text.find(pat); pos != std::string_view::npos; pos = text.find(pat, pos + 1)) {
    ++n;
  }
  return n;
}

// "A)", "B.", "(c)", "D:" at the start of a line (after spaces).
bool is_choice_line(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string_view::npos) return false;
  if (line[i] == '(') ++i;
  if (i + 1 >= line.size()) return false;
  const char c = line[i];
  const bool letter = (c >= 'A' && c <= 'H') || (c >= 'a' && c <= 'h');
  const char d = line[i + 1];
  return letter && (d == ')' || d == '.' || d == ':');
}

bool is_list_line(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string_view::npos || i + 1 >= line.size()) return false;
  if ((line[i] == '-' || line[i] == '*') && line[i + 1] == ' ') return true;
  size_t j = i;
  while (j < line.size() && is_digit(static_cast<unsigned char>(line[j]))) ++j;
  return j > i && j < line.size() && (line[j] == '.' || line[j] == ')');
}

double clamp01(double x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }

// Sorted indices -> (index, 1 + log count), then L2-normalised.
std::vector<SparseFeature> counts_to_features(std::vector<uint32_t>& idx) {
  std::sort(idx.begin(), idx.end());
  std::vector<SparseFeature> out;
  double norm2 = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && idx[j] == idx[i]) ++j;
    const double v = 1.0 + std::log(static_cast<double>(j - i));
    out.push_back({idx[i], static_cast<float>(v)});
    norm2 += v * v;
    i = j;
  }
  if (norm2 > 0) {
    const double inv = 1.0 / std::sqrt(norm2);
    for (auto& f : out) f.value = static_cast<float>(f.value * inv);
  }
  return out;
}

}  // namespace

PromptStats prompt_stats(std::string_view prompt) {
  PromptStats s;
  s.chars = static_cast<int32_t>(prompt.size());
  size_t line_start = 0;
  for (size_t i = 0; i <= prompt.size(); ++i) {
    if (i == prompt.size() || prompt[i] == '\n') {
      const std::string_view line = prompt.substr(line_start, i - line_start);
      if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
        ++s.lines;
        if (is_choice_line(line)) ++s.choice_options;
        if (is_list_line(line)) ++s.list_items;
      }
      line_start = i + 1;
      if (i == prompt.size()) break;
    }
    const auto c = static_cast<unsigned char>(prompt[i]);
    if (is_digit(c)) ++s.digits;
    if (c >= 'A' && c <= 'Z') ++s.uppercase;
    if (is_punct(c)) ++s.punctuation;
    if (c == '?') ++s.questions;
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == prompt.size() || is_space(static_cast<unsigned char>(prompt[i + 1])))) {
      ++s.sentences;
    }
    if (c == '{' || c == '}' || c == ';') ++s.code_cues;
    if (c == '=' || c == '+' || c == '^' || c == '\\' || c == '$') ++s.math_cues;
  }
  s.code_fences = static_cast<int32_t>(count_sub(prompt, "```"));
  for (const std::string_view pat : {"==", "=>", "->", "()", "//", "!=", "+=", "::"}) {
    s.code_cues += static_cast<int32_t>(count_sub(prompt, pat));
  }
  s.multistep_cues += static_cast<int32_t>(count_sub(prompt, "step by step"));

  size_t word_chars = 0;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    ++s.words;
    word_chars += cur.size();
    if (in(cur, kCodeWords)) ++s.code_cues;
    if (in(cur, kMathWords)) ++s.math_cues;
    if (in(cur, kStepWords)) ++s.multistep_cues;
    cur.clear();
  };
  for (const char ch : prompt) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_word_byte(c)) {
      cur.push_back(lower(c));
    } else {
      flush();
    }
  }
  flush();
  s.avg_word_length = s.words > 0 ? static_cast<double>(word_chars) / s.words : 0.0;

  const double length = clamp01(std::log1p(s.words) / std::log(500.0));
  const double code = clamp01((s.code_cues + 4.0 * s.code_fences) / 8.0);
  const double math = clamp01(s.math_cues / 6.0);
  const double steps = clamp01(s.multistep_cues / 3.0);
  s.complexity = 0.25 * length + 0.25 * code + 0.25 * math + 0.25 * steps;
  return s;
}

void FeatureConfig::validate() const {
  if (hash_bits < 10 || hash_bits > 24) throw InvalidArgument("hash_bits must be in [10, 24]");
  if (char_ngram_min > char_ngram_max) {
    throw InvalidArgument("char_ngram_min must not exceed char_ngram_max");
  }
  if (char_ngram_max > 16) throw InvalidArgument("char_ngram_max must be at most 16");
}

PromptFeaturizer::PromptFeaturizer(FeatureConfig config) : config_(config) { config_.validate(); }

const std::vector<std::string>& PromptFeaturizer::structure_names() {
  static const std::vector<std::string> names = {
      "log_chars",      "log_words",    "log_lines",    "log_sentences", "questions",
      "digit_ratio",    "upper_ratio",  "punct_ratio",  "avg_word_len",  "code_fences",
      "code_cues",      "math_cues",    "multistep_cues", "list_items",  "choice_options",
      "complexity",     "has_code",     "has_math",     "has_multistep", "multiple_choice",
      "len_short",      "len_medium",   "len_long",     "len_very_long"};
  return names;
}

std::vector<SparseFeature> PromptFeaturizer::features(std::string_view prompt) const {
  const uint32_t hashed_dim = dim() - kStructureFeatures;
  auto slot = [&](uint64_t h) {
    // Multiply-shift instead of a 64-bit modulo: uniform and several times faster.
    return kStructureFeatures + static_cast<uint32_t>(((mix(h) >> 32) * hashed_dim) >> 32);
  };

  std::vector<uint32_t> word_idx;
  if (config_.word_unigrams || config_.word_bigrams) {
    const std::vector<std::string> tokens = tokenize(prompt);
    word_idx.reserve(tokens.size() * 2);
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (config_.word_unigrams) word_idx.push_back(slot(fnv(tokens[i], kSeedWord)));
      if (config_.word_bigrams && i > 0) {
        uint64_t h = fnv(tokens[i - 1], kSeedBigram);
        h = fnv_add(h, ' ');
        for (const char c : tokens[i]) h = fnv_add(h, static_cast<unsigned char>(c));
        word_idx.push_back(slot(h));
      }
    }
  }

  std::vector<uint32_t> char_idx;
  if (config_.char_ngram_min > 0) {
    // Normalised tail of the prompt: lower case, whitespace runs collapsed to one space. The tail
    // holds the actual question when a prompt starts with few-shot examples.
    const std::string_view tail =
        prompt.size() > config_.char_window ? prompt.substr(prompt.size() - config_.char_window)
                                            : prompt;
    std::string norm;
    norm.reserve(tail.size());
    for (const char ch : tail) {
      const auto c = static_cast<unsigned char>(ch);
      if (is_space(c)) {
        if (!norm.empty() && norm.back() != ' ') norm.push_back(' ');
      } else {
        norm.push_back(lower(c));
      }
    }
    const size_t lo = config_.char_ngram_min;
    const size_t hi = config_.char_ngram_max;
    char_idx.reserve(norm.size() * (hi - lo + 1));
    for (size_t i = 0; i < norm.size(); ++i) {
      uint64_t h = fnv_start(kSeedChar);
      for (size_t n = 1; n <= hi && i + n <= norm.size(); ++n) {
        h = fnv_add(h, static_cast<unsigned char>(norm[i + n - 1]));
        if (n >= lo) char_idx.push_back(slot(h ^ n));
      }
    }
  }

  std::vector<SparseFeature> words = counts_to_features(word_idx);
  std::vector<SparseFeature> chars = counts_to_features(char_idx);

  std::vector<SparseFeature> out;
  out.reserve(kStructureFeatures + words.size() + chars.size());
  if (config_.structure) {
    const PromptStats s = prompt_stats(prompt);
    const double n = std::max(1, s.chars);
    const std::array<double, kStructureFeatures> v = {
        std::log1p(s.chars) / 10.0,
        std::log1p(s.words) / 8.0,
        std::log1p(s.lines) / 5.0,
        std::log1p(s.sentences) / 5.0,
        std::min(s.questions, 5) / 5.0,
        clamp01(5.0 * s.digits / n),
        clamp01(5.0 * s.uppercase / n),
        clamp01(5.0 * s.punctuation / n),
        clamp01(s.avg_word_length / 10.0),
        std::min(s.code_fences, 4) / 4.0,
        std::log1p(s.code_cues) / 4.0,
        std::log1p(s.math_cues) / 4.0,
        std::log1p(s.multistep_cues) / 3.0,
        std::log1p(s.list_items) / 3.0,
        std::min(s.choice_options, 6) / 6.0,
        s.complexity,
        (s.code_fences > 0 || s.code_cues >= 3) ? 1.0 : 0.0,
        s.math_cues >= 3 ? 1.0 : 0.0,
        s.multistep_cues >= 2 ? 1.0 : 0.0,
        s.choice_options >= 2 ? 1.0 : 0.0,
        s.chars < 200 ? 1.0 : 0.0,
        (s.chars >= 200 && s.chars < 1000) ? 1.0 : 0.0,
        (s.chars >= 1000 && s.chars < 4000) ? 1.0 : 0.0,
        s.chars >= 4000 ? 1.0 : 0.0,
    };
    for (uint32_t i = 0; i < kStructureFeatures; ++i) {
      if (v[i] != 0.0) out.push_back({i, static_cast<float>(std::min(v[i], 2.0))});
    }
  }
  // Merge the two sorted n-gram lists, summing on collisions.
  size_t a = 0;
  size_t b = 0;
  while (a < words.size() || b < chars.size()) {
    if (b == chars.size() || (a < words.size() && words[a].index < chars[b].index)) {
      out.push_back(words[a++]);
    } else if (a == words.size() || chars[b].index < words[a].index) {
      out.push_back(chars[b++]);
    } else {
      out.push_back({words[a].index, words[a].value + chars[b].value});
      ++a, ++b;
    }
  }
  return out;
}

}  // namespace orroute
