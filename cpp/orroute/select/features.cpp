#include "orroute/select/features.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "orroute/ascii.h"
#include "orroute/error.h"
#include "orroute/no_destructor.h"

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

using ascii::is_alnum;
using ascii::is_digit;
using ascii::is_space;
using ascii::lower;

constexpr bool is_punct(unsigned char c) { return c > 32 && c < 127 && !is_alnum(c); }
bool is_word_byte(unsigned char c) { return is_alnum(c) || c == '_' || c >= 0x80; }

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

// The keywords packed as 16 zero-padded bytes (every keyword has at most 15), in an open-addressed
// table: a word is looked up with two 8-byte compares instead of a binary search of strings.
struct PackedWord {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const PackedWord&) const = default;
};

PackedWord pack(std::string_view w) {
  char bytes[16] = {};
  std::memcpy(bytes, w.data(), w.size());
  PackedWord p;
  std::memcpy(&p.lo, bytes, 8);
  std::memcpy(&p.hi, bytes + 8, 8);
  return p;
}

size_t slot_of(const PackedWord& p, size_t mask) {
  return static_cast<size_t>(mix(p.lo ^ (p.hi * kFnvPrime))) & mask;
}

// Which cue families `w` (lower case) belongs to: a bitmask of kCue*; 0 for most words.
uint8_t keyword_cues(std::string_view w) {
  struct Slot {
    PackedWord word;
    uint8_t cues = 0;  // 0: empty
  };
  static constexpr size_t kSlots = 256;  // a power of two, over twice the keywords
  static const auto* table = [] {
    auto* t = new std::array<Slot, kSlots>{};
    auto add = [&](std::string_view k, uint8_t f) {
      const PackedWord p = pack(k);
      for (size_t i = slot_of(p, kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
        Slot& slot = (*t)[i];
        if (slot.cues == 0 || slot.word == p) {
          slot.word = p;
          slot.cues |= f;
          return;
        }
      }
    };
    for (const auto k : kCodeWords) add(k, kCueCode);
    for (const auto k : kMathWords) add(k, kCueMath);
    for (const auto k : kStepWords) add(k, kCueStep);
    return t;
  }();
  // Cheap pre-filter: which (first letter, length) pairs occur among the keywords at all.
  static const auto* seen = [] {
    auto* f = new std::array<uint16_t, 26>{};  // bit L set: a keyword of length L starts here
    auto mark = [&](std::string_view k) { (*f)[static_cast<size_t>(k[0] - 'a')] |= uint16_t(1u << k.size()); };
    for (const auto k : kCodeWords) mark(k);
    for (const auto k : kMathWords) mark(k);
    for (const auto k : kStepWords) mark(k);
    return f;
  }();
  if (w.size() < 2 || w.size() > 15 || w[0] < 'a' || w[0] > 'z') return 0;
  if (((*seen)[static_cast<size_t>(w[0] - 'a')] >> w.size() & 1u) == 0) return 0;
  const PackedWord p = pack(w);
  for (size_t i = slot_of(p, kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
    const Slot& slot = (*table)[i];
    if (slot.cues == 0) return 0;
    if (slot.word == p) return slot.cues;
  }
}

// What prompt_stats counts of one byte, as bits (0 for most bytes of text).
enum ByteClass : uint16_t {
  kNewline = 1u << 0,
  kDigit = 1u << 1,
  kUpper = 1u << 2,
  kPunct = 1u << 3,
  kSentenceEnd = 1u << 4,  // '.', '!', '?'
  kCodeByte = 1u << 5,     // '{', '}', ';'
  kMathByte = 1u << 6,     // '=', '+', '^', '\\', '$'
  kCueStart = 1u << 7,     // may start "```", "step by step" or a symbol code cue
};

constexpr std::array<uint16_t, 256> byte_classes() {
  std::array<uint16_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const auto c = static_cast<unsigned char>(b);
    uint16_t k = 0;
    if (c == '\n') k |= kNewline;
    if (is_digit(c)) k |= kDigit;
    if (c >= 'A' && c <= 'Z') k |= kUpper;
    if (is_punct(c)) k |= kPunct;
    if (c == '.' || c == '!' || c == '?') k |= kSentenceEnd;
    if (c == '{' || c == '}' || c == ';') k |= kCodeByte;
    if (c == '=' || c == '+' || c == '^' || c == '\\' || c == '$') k |= kMathByte;
    for (const char first : {'`', 's', '=', '-', '(', '/', '!', '+', ':'}) {
      if (c == static_cast<unsigned char>(first)) k |= kCueStart;
    }
    t[static_cast<size_t>(b)] = k;
  }
  return t;
}

constexpr std::array<uint16_t, 256> kByteClass = byte_classes();

bool starts_at(std::string_view text, size_t i, std::string_view pat) {
  return text.size() - i >= pat.size() && text.compare(i, pat.size(), pat) == 0;
}

// The code cues spelled with symbols ("==", "->", ...) that start at `i` (0 or 1: no two of them
// share a first and second byte). Every occurrence counts, overlapping ones too ("===" is two).
int32_t symbol_code_cue_at(std::string_view text, size_t i) {
  if (i + 1 >= text.size()) return 0;
  const char c = text[i];
  const char d = text[i + 1];
  switch (c) {
    case '=': return d == '=' || d == '>';
    case '-': return d == '>';
    case '(': return d == ')';
    case '/': return d == '/';
    case '!': return d == '=';
    case '+': return d == '=';
    case ':': return d == ':';
    default: return 0;
  }
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
  const auto end_line = [&](size_t end) {
    const std::string_view line = prompt.substr(line_start, end - line_start);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      ++s.lines;
      if (is_choice_line(line)) ++s.choice_options;
      if (is_list_line(line)) ++s.list_items;
    }
    line_start = end + 1;
  };
  for (size_t i = 0; i < prompt.size(); ++i) {
    const auto c = static_cast<unsigned char>(prompt[i]);
    const uint16_t k = kByteClass[c];
    if (k == 0) continue;  // most bytes: lower-case letters, spaces, UTF-8
    if (k & kNewline) end_line(i);
    s.digits += (k & kDigit) != 0;
    s.uppercase += (k & kUpper) != 0;
    s.punctuation += (k & kPunct) != 0;
    s.questions += c == '?';
    if ((k & kSentenceEnd) && (i + 1 == prompt.size() || is_space(static_cast<unsigned char>(prompt[i + 1])))) {
      ++s.sentences;
    }
    s.code_cues += (k & kCodeByte) != 0;
    s.math_cues += (k & kMathByte) != 0;
    if (k & kCueStart) {  // the multi-byte cues, in this same pass (not one scan per cue)
      s.code_cues += symbol_code_cue_at(prompt, i);
      if (c == '`' && starts_at(prompt, i, "```")) ++s.code_fences;
      if (c == 's' && starts_at(prompt, i, "step by step")) ++s.multistep_cues;
    }
  }
  end_line(prompt.size());

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
  static const NoDestructor<std::vector<std::string>> names(std::vector<std::string>{
      "log_chars",      "log_words",    "log_lines",    "log_sentences", "questions",
      "digit_ratio",    "upper_ratio",  "punct_ratio",  "avg_word_len",  "code_fences",
      "code_cues",      "math_cues",    "multistep_cues", "list_items",  "choice_options",
      "complexity",     "has_code",     "has_math",     "has_multistep", "multiple_choice",
      "len_short",      "len_medium",   "len_long",     "len_very_long"});
  return *names;
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
