#include "orroute/tokenizer/pretokenizer.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "orroute/tokenizer/unicode_tables.h"

namespace orroute {
namespace {

using unicode::CharClass;
using U8 = unsigned char;

// Classes of the ASCII range, looked up without the two-stage table.
const std::array<CharClass, 128> kAscii = [] {
  std::array<CharClass, 128> t{};
  for (uint32_t c = 0; c < 128; ++c) t[c] = unicode::char_class(c);
  return t;
}();

struct Ch {
  CharClass cls;
  uint32_t len;
  uint32_t cp;
};

inline Ch at(const U8* p, const U8* end) noexcept {
  if (*p < 0x80) return {kAscii[*p], 1, *p};
  const unicode::Char c = unicode::decode_utf8(p, end);
  return {unicode::char_class(c), c.len, c.cp};
}

constexpr uint32_t bit(CharClass c) { return 1u << c; }
constexpr uint32_t kLetterMask = bit(unicode::kUpper) | bit(unicode::kLower) |
                                 bit(unicode::kTitle) | bit(unicode::kModifier) |
                                 bit(unicode::kOtherLetter);
// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] of o200k.
constexpr uint32_t kUpperishMask = bit(unicode::kUpper) | bit(unicode::kTitle) |
                                   bit(unicode::kModifier) | bit(unicode::kOtherLetter) |
                                   bit(unicode::kMark);
constexpr uint32_t kLowerishMask = bit(unicode::kLower) | bit(unicode::kModifier) |
                                   bit(unicode::kOtherLetter) | bit(unicode::kMark);
// [^\s\p{L}\p{N}]
constexpr uint32_t kPunctMask = bit(unicode::kOther) | bit(unicode::kMark);

inline bool in(uint32_t mask, CharClass c) { return (mask >> c) & 1u; }
inline bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// End of the run of characters whose class is in `mask`, starting at `p`.
inline const U8* run(const U8* p, const U8* end, uint32_t mask) noexcept {
  while (p < end) {
    if (*p < 0x80) {
      if (!in(mask, kAscii[*p])) break;
      ++p;
      continue;
    }
    const Ch c = at(p, end);
    if (!in(mask, c.cls)) break;
    p += c.len;
  }
  return p;
}

// Length of the contraction '(?i:s|t|re|ve|m|ll|d) at `p` (which holds '\''), or 0. The regex
// crate's case folding makes 's' also match U+017F LATIN SMALL LETTER LONG S.
inline size_t contraction(const U8* p, const U8* end) noexcept {
  if (end - p < 2) return 0;
  switch (p[1] | 0x20) {
    case 's':
    case 't':
    case 'm':
    case 'd':
      return 2;
    case 'l':
      return end - p >= 3 && (p[2] | 0x20) == 'l' ? 3 : 0;
    case 'v':
    case 'r':
      return end - p >= 3 && (p[2] | 0x20) == 'e' ? 3 : 0;
    default:
      break;
  }
  if (p[1] == 0xC5 && end - p >= 3 && p[2] == 0xBF) return 3;
  return 0;
}

// ` ?[^\s\p{L}\p{N}]+` followed by a run of the trailing characters; nullptr if no match.
inline const U8* punct(const U8* p, const U8* end, Ch c0, bool slash_too) noexcept {
  const U8* q = p;
  if (c0.cp == ' ') {
    if (p + 1 >= end) return nullptr;
    const Ch c1 = at(p + 1, end);
    if (!in(kPunctMask, c1.cls)) return nullptr;
    q = p + 1;
  } else if (!in(kPunctMask, c0.cls)) {
    return nullptr;
  }
  q = run(q, end, kPunctMask);
  while (q < end && (*q == '\r' || *q == '\n' || (slash_too && *q == '/'))) ++q;
  return q;
}

// Whitespace alternatives; `p` starts a whitespace character.
inline const U8* whitespace(const U8* p, const U8* end, Ch c0, bool o200k) noexcept {
  const U8* q = p;
  const U8* last_nl = nullptr;
  const U8* last_start = p;
  while (q < end) {
    const Ch c = at(q, end);
    if (c.cls != unicode::kSpace) break;
    if (is_newline(c.cp)) last_nl = q;
    last_start = q;
    q += c.len;
  }
  if (o200k) {
    if (last_nl) return last_nl + 1;      // \s*[\r\n]+
    if (q == end) return end;             // \s+(?!\S) at the end
    if (last_start != p) return last_start;  // \s+(?!\S): all but the last
    return q;                             // \s+
  }
  if (q == end) return end;             // \s++$
  if (last_nl) return last_nl + 1;      // \s*[\r\n]
  if (last_start != p) return last_start;  // \s+(?!\S)
  return p + c0.len;                    // \s
}

// End of the run of ASCII bytes b with lo <= (b | fold) <= hi starting at `p` (fold 0x20 makes
// [a-z] match both cases), eight bytes at a time: words are the commonest pieces and their letters
// were scanned one table lookup per byte. SWAR: with x7 = the bytes' low 7 bits, x7 + (0x80 - lo)
// sets a byte's top bit iff x7 >= lo, x7 + (0x7F - hi) iff x7 > hi; neither sum carries into the
// next byte. Bytes >= 0x80 (non-ASCII) are excluded by their own top bit.
inline const U8* ascii_range_run(const U8* p, const U8* end, U8 lo, U8 hi, U8 fold) noexcept {
  constexpr uint64_t k01 = 0x0101010101010101ull, k7F = k01 * 0x7F, k80 = k01 * 0x80;
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);  // little-endian: the first byte is the lowest
    const uint64_t x7 = (x | (k01 * fold)) & k7F;
    const uint64_t ok = (x7 + k01 * (0x80 - lo)) & ~(x7 + k01 * (0x7F - hi)) & ~x & k80;
    if (ok != k80) return p + (__builtin_ctzll(~ok & k80) >> 3);
    p += 8;
  }
  while (p < end && *p < 0x80 && (*p | fold) >= lo && (*p | fold) <= hi) ++p;
  return p;
}

inline bool ascii_letter(U8 b) noexcept {
  return b < 0x80 && (kAscii[b] == unicode::kUpper || kAscii[b] == unicode::kLower);
}

// Start of the letters of an ASCII word piece at `p`: `p` if it is a letter, `p + 1` if `p` is an
// ASCII character the patterns accept before a word ([^\r\n\p{L}\p{N}]) followed by one; else
// nullptr. `quote_prefix`: whether `'` may be that character (cl100k tries contractions first).
inline const U8* ascii_word_start(const U8* p, const U8* end, bool quote_prefix) noexcept {
  if (ascii_letter(*p)) return p;
  if (*p >= 0x80 || kAscii[*p] == unicode::kNumber || *p == '\r' || *p == '\n') return nullptr;
  if (!quote_prefix && *p == '\'') return nullptr;
  return p + 1 < end && ascii_letter(p[1]) ? p + 1 : nullptr;
}

// Fast path for the commonest piece, an ASCII word with an optional ASCII prefix character; the
// general scanner below decides everything else (and finishes a word that goes on past ASCII).
inline const U8* ascii_word_cl100k(const U8* p, const U8* end) noexcept {
  const U8* q = ascii_word_start(p, end, false);
  if (!q) return nullptr;
  q = ascii_range_run(q + 1, end, 'a', 'z', 0x20);  // [A-Za-z]
  return q < end && *q >= 0x80 ? run(q, end, kLetterMask) : q;
}

// Fast path for ` ?[^\s\p{L}\p{N}]+` followed by trailing newlines (and `/` for o200k) in ASCII,
// when no earlier alternative can match: the character after a punctuation start is not a letter
// (else it prefixes a word) and nothing non-ASCII is involved (it could be a letter, a mark or
// more punctuation); a quote start is left to the general scanner (cl100k's contractions).
inline const U8* ascii_punct(const U8* p, const U8* end, bool slash_too) noexcept {
  const U8* q = *p == ' ' ? p + 1 : p;
  if (q >= end || *q >= 0x80 || kAscii[*q] != unicode::kOther || *q == '\'') return nullptr;
  if (q == p && p + 1 < end && (p[1] >= 0x80 || ascii_letter(p[1]))) return nullptr;
  for (++q; q < end && *q < 0x80 && kAscii[*q] == unicode::kOther;) ++q;
  if (q < end && *q >= 0x80) return nullptr;
  while (q < end && (*q == '\r' || *q == '\n' || (slash_too && *q == '/'))) ++q;
  return q;
}

const U8* next_cl100k(const U8* p, const U8* end) noexcept {
  if (const U8* q = ascii_word_cl100k(p, end)) return q;
  if (const U8* q = ascii_punct(p, end, false)) return q;
  const Ch c0 = at(p, end);
  if (c0.cp == '\'') {
    if (const size_t k = contraction(p, end)) return p + k;
  }
  if (in(kLetterMask, c0.cls)) return run(p + c0.len, end, kLetterMask);
  if (c0.cls == unicode::kNumber) {
    const U8* q = p + c0.len;
    for (int i = 0; i < 2 && q < end; ++i) {
      const Ch c = at(q, end);
      if (c.cls != unicode::kNumber) break;
      q += c.len;
    }
    return q;
  }
  if (!is_newline(c0.cp) && p + c0.len < end) {  // [^\r\n\p{L}\p{N}]?+\p{L}++
    const Ch c1 = at(p + c0.len, end);
    if (in(kLetterMask, c1.cls)) return run(p + c0.len + c1.len, end, kLetterMask);
  }
  if (const U8* q = punct(p, end, c0, false)) return q;
  return whitespace(p, end, c0, false);
}

// Optional trailing contraction of o200k's word alternatives.
inline const U8* with_contraction(const U8* e, const U8* end) noexcept {
  if (e < end && *e == '\'') return e + contraction(e, end);
  return e;
}

// o200k's words in ASCII: an upper-case run, then a lower-case run ([U]*[W]+, or [U]+[W]* when no
// lower-case letter follows), then an optional contraction. A non-ASCII byte right after leaves
// the piece to the general scanner (it may be a letter or mark that continues the word).
inline const U8* ascii_word_o200k(const U8* p, const U8* end) noexcept {
  const U8* q = ascii_word_start(p, end, true);
  if (!q) return nullptr;
  q = ascii_range_run(q, end, 'A', 'Z', 0);
  q = ascii_range_run(q, end, 'a', 'z', 0);
  if (q < end && *q >= 0x80) return nullptr;
  return with_contraction(q, end);
}

const U8* next_o200k(const U8* p, const U8* end) noexcept {
  if (const U8* q = ascii_word_o200k(p, end)) return q;
  if (const U8* q = ascii_punct(p, end, true)) return q;
  const Ch c0 = at(p, end);
  const bool prefix = !is_newline(c0.cp) && !in(kLetterMask, c0.cls) &&
                      c0.cls != unicode::kNumber;
  if (prefix || in(kUpperishMask | kLowerishMask, c0.cls)) {
    // Candidate starts of the letter part, in backtracking order: after the optional prefix
    // character, then at p (only differs when the prefix character is itself a mark).
    const U8* starts[2];
    int n = 0;
    if (prefix) starts[n++] = p + c0.len;
    if (!prefix || c0.cls == unicode::kMark) starts[n++] = p;
    const U8* upper_end[2];
    for (int i = 0; i < n; ++i) {
      // [U]*[W]+ : greedy U run, then W+ at its end, else backtrack to the last W inside it.
      const U8* q = starts[i];
      const U8* last_w_end = nullptr;
      while (q < end) {
        const Ch c = at(q, end);
        if (!in(kUpperishMask, c.cls)) break;
        q += c.len;
        if (in(kLowerishMask, c.cls)) last_w_end = q;
      }
      upper_end[i] = q;
      if (q < end && at(q, end).cls == unicode::kLower) {
        return with_contraction(run(q, end, kLowerishMask), end);
      }
      if (last_w_end) return with_contraction(last_w_end, end);
    }
    for (int i = 0; i < n; ++i) {  // [U]+[W]*
      if (upper_end[i] > starts[i]) return with_contraction(run(upper_end[i], end, kLowerishMask), end);
    }
  }
  if (c0.cls == unicode::kNumber) {
    const U8* q = p + c0.len;
    for (int i = 0; i < 2 && q < end; ++i) {
      const Ch c = at(q, end);
      if (c.cls != unicode::kNumber) break;
      q += c.len;
    }
    return q;
  }
  if (const U8* q = punct(p, end, c0, true)) return q;
  return whitespace(p, end, c0, true);
}

// GPT-2's pattern: case-sensitive contractions, then one optional space before a run of letters,
// of digits (unbounded) or of other symbols; white space as cl100k without the newline rule.
const U8* next_r50k(const U8* p, const U8* end) noexcept {
  const Ch c0 = at(p, end);
  if (c0.cp == '\'' && end - p >= 2) {
    switch (p[1]) {
      case 's':
      case 'd':
      case 'm':
      case 't':
        return p + 2;
      case 'l':
        if (end - p >= 3 && p[2] == 'l') return p + 3;
        break;
      case 'v':
      case 'r':
        if (end - p >= 3 && p[2] == 'e') return p + 3;
        break;
      default:
        break;
    }
  }
  const U8* q = p;  // start of the run after ` ?`
  Ch c = c0;
  if (c0.cp == ' ' && p + 1 < end) {
    q = p + 1;
    c = at(q, end);
  }
  if (in(kLetterMask, c.cls)) return run(q + c.len, end, kLetterMask);
  if (c.cls == unicode::kNumber) return run(q + c.len, end, bit(unicode::kNumber));
  if (in(kPunctMask, c.cls)) return run(q + c.len, end, kPunctMask);
  // White space: \s++$ | \s+(?!\S) | \s
  const U8* last_start = p;
  q = p;
  while (q < end) {
    const Ch w = at(q, end);
    if (w.cls != unicode::kSpace) break;
    last_start = q;
    q += w.len;
  }
  if (q == end) return end;
  if (last_start != p) return last_start;
  return p + c0.len;
}

constexpr std::string_view kCl100kRegex =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
constexpr std::string_view kO200kRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kR50kRegex =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
// The GPT-2 release's form, which tiktoken documents as equivalent to kR50kRegex.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}]+| ?[\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

std::string_view pattern_regex(SplitPattern pattern) noexcept {
  switch (pattern) {
    case SplitPattern::kCl100k:
      return kCl100kRegex;
    case SplitPattern::kO200k:
      return kO200kRegex;
    case SplitPattern::kR50k:
      return kR50kRegex;
  }
  return {};
}

std::optional<SplitPattern> pattern_from_regex(std::string_view regex) noexcept {
  if (regex == kCl100kRegex) return SplitPattern::kCl100k;
  if (regex == kO200kRegex) return SplitPattern::kO200k;
  if (regex == kR50kRegex || regex == kGpt2Regex) return SplitPattern::kR50k;
  return std::nullopt;
}

namespace {
template <const U8* (*Next)(const U8*, const U8*)>
size_t ends_of(std::string_view text, size_t pos, size_t* ends, size_t max) noexcept {
  const auto* begin = reinterpret_cast<const U8*>(text.data());
  const U8* end = begin + text.size();
  const U8* p = begin + pos;
  size_t m = 0;
  do {
    p = Next(p, end);
    ends[m++] = static_cast<size_t>(p - begin);
  } while (m < max && p < end);
  return m;
}
}  // namespace

size_t next_piece_ends(SplitPattern pattern, std::string_view text, size_t pos, size_t* ends,
                       size_t max) noexcept {
  switch (pattern) {
    case SplitPattern::kCl100k:
      return ends_of<next_cl100k>(text, pos, ends, max);
    case SplitPattern::kO200k:
      return ends_of<next_o200k>(text, pos, ends, max);
    case SplitPattern::kR50k:
      return ends_of<next_r50k>(text, pos, ends, max);
  }
  return 0;
}

size_t next_piece_end(SplitPattern pattern, std::string_view text, size_t pos) noexcept {
  const auto* begin = reinterpret_cast<const U8*>(text.data());
  const U8* end = begin + text.size();
  const U8* q = pattern == SplitPattern::kCl100k ? next_cl100k(begin + pos, end)
                 : pattern == SplitPattern::kO200k ? next_o200k(begin + pos, end)
                                                   : next_r50k(begin + pos, end);
  return static_cast<size_t>(q - begin);
}

}  // namespace orroute
