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

// Calls f(token) for each word (run of word bytes) and single punctuation symbol of `text`, in
// order. Tokens are views into `text` (not lower-cased: hash them with lower()).
template <typename F>
void for_each_token(std::string_view text, F&& f) {
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_word_byte(c)) {
      if (start == std::string_view::npos) start = i;
      continue;
    }
    if (start != std::string_view::npos) f(text.substr(start, i - start)), start = std::string_view::npos;
    if (is_punct(c)) f(text.substr(i, 1));
  }
  if (start != std::string_view::npos) f(text.substr(start));
}

uint64_t fnv_lower(uint64_t h, std::string_view s) {
  for (const char c : s) h = fnv_add(h, static_cast<unsigned char>(lower(static_cast<unsigned char>(c))));
  return h;
}

// The last `window` bytes of `text` (all of it if window is 0 or larger), starting after a
// non-word byte so that no word is cut in half.
std::string_view word_tail(std::string_view text, uint32_t window) {
  if (window == 0 || text.size() <= window) return text;
  size_t start = text.size() - window;
  while (start < text.size() && is_word_byte(static_cast<unsigned char>(text[start])) &&
         is_word_byte(static_cast<unsigned char>(text[start - 1]))) {
    ++start;
  }
  return text.substr(start);
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

constexpr size_t kMaxKeyword = 16;  // longer words are no keyword
constexpr uint8_t kCueCode = 1, kCueMath = 2, kCueStep = 4;

// Which cue families `w` (lower case) belongs to: a bitmask of kCue*; 0 for most words.
uint8_t keyword_cues(std::string_view w) {
  static const auto* table = [] {
    auto* t = new std::vector<std::pair<std::string_view, uint8_t>>();
    auto add = [&](std::string_view k, uint8_t f) {
      for (auto& e : *t) {
        if (e.first == k) return void(e.second |= f);
      }
      t->emplace_back(k, f);
    };
    for (const auto k : kCodeWords) add(k, kCueCode);
    for (const auto k : kMathWords) add(k, kCueMath);
    for (const auto k : kStepWords) add(k, kCueStep);
    std::sort(t->begin(), t->end());
    return t;
  }();
  // Cheap pre-filter: which (first letter, length) pairs occur among the keywords at all.
  static const auto* seen = [] {
    auto* f = new std::array<uint16_t, 26>{};  // bit L set: a keyword of length L starts here
    for (const auto& e : *table) (*f)[static_cast<size_t>(e.first[0] - 'a')] |= uint16_t(1u << e.first.size());
    return f;
  }();
  if (w.size() < 2 || w.size() > 15 || w[0] < 'a' || w[0] > 'z') return 0;
  if (((*seen)[static_cast<size_t>(w[0] - 'a')] >> w.size() & 1u) == 0) return 0;
  const auto it = std::lower_bound(table->begin(), table->end(), w,
                                   [](const auto& e, std::string_view k) { return e.first < k; });
  return it != table->end() && it->first == w ? it->second : 0;
}

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
  out.reserve(idx.size());
  double norm2 = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && idx[j] == idx[i]) ++j;
    const double v = j - i == 1 ? 1.0 : 1.0 + std::log(static_cast<double>(j - i));
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

  // Keyword cues: one hash lookup per word of keyword length (lower-cased into a small buffer).
  size_t word_chars = 0;
  char buf[kMaxKeyword];
  size_t len = 0;
  bool long_word = false;
  auto flush = [&] {
    if (len == 0 && !long_word) return;
    ++s.words;
    if (long_word) {
      long_word = false;
      return;
    }
    word_chars += len;
    if (const uint8_t cues = keyword_cues(std::string_view(buf, len))) {
      s.code_cues += (cues & kCueCode) != 0;
      s.math_cues += (cues & kCueMath) != 0;
      s.multistep_cues += (cues & kCueStep) != 0;
    }
    len = 0;
  };
  size_t long_len = 0;
  for (const char ch : prompt) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_word_byte(c)) {
      if (long_word) {
        ++long_len;
      } else if (len < kMaxKeyword) {
        buf[len++] = lower(c);
      } else {
        long_word = true;
        long_len = len + 1;
        len = 0;
      }
    } else {
      if (long_word) word_chars += long_len;
      flush();
    }
  }
  if (long_word) word_chars += long_len;
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
    const std::string_view text = word_tail(prompt, config_.word_window);
    word_idx.reserve(text.size() / 2 + 8);
    std::string_view prev;
    for_each_token(text, [&](std::string_view tok) {
      if (config_.word_unigrams) word_idx.push_back(slot(fnv_lower(fnv_start(kSeedWord), tok)));
      if (config_.word_bigrams && !prev.empty()) {
        uint64_t h = fnv_lower(fnv_start(kSeedBigram), prev);
        h = fnv_add(h, ' ');
        word_idx.push_back(slot(fnv_lower(h, tok)));
      }
      prev = tok;
    });
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
