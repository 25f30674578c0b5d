#include "orroute/tokenizer/pretokenizer.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "orroute/tokenizer/unicode_tables.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// ---- the block scanner ------------------------------------------------------------------------
//
// Most pieces are ASCII. The scanner classifies a 64-byte window of text once into one bitmap per
// ASCII class (bit j = byte j of the window; SSE2 compares and movemasks, 16 bytes at a time), as
// fastokens' scan_simd.rs does. A window of ASCII has all its piece starts derived at once
// (window_starts, below: 95% of the bench corpus's pieces). In other windows each piece's end is
// found from the bitmaps with a few bit operations and one count of trailing zeros per run
// (block_o200k / block_cl100k). Both decide only what the bitmaps decide exactly: a piece whose
// end depends on a non-ASCII byte (a letter, mark, digit or white space the tables must
// classify) or on bytes past the window goes to the general scanner above, which remains the
// reference for every piece (the tests compare the two on every window offset).

using Window = ByteWindow;

// Class bits of the ASCII bytes, from the generated tables (kAscii).
enum : uint8_t { kBitUpper = 1, kBitLower = 2, kBitDigit = 4, kBitSpace = 8, kBitOther = 16 };
const std::array<uint8_t, 128> kAsciiBits = [] {
  std::array<uint8_t, 128> t{};
  for (size_t c = 0; c < 128; ++c) {
    switch (kAscii[c]) {
      case unicode::kUpper: t[c] = kBitUpper; break;
      case unicode::kLower: t[c] = kBitLower; break;
      case unicode::kNumber: t[c] = kBitDigit; break;
      case unicode::kSpace: t[c] = kBitSpace; break;
      default: t[c] = kBitOther; break;
    }
  }
  return t;
}();

// The bitmaps of 64 readable bytes at `p`, one table lookup per byte.
void classify_scalar(const U8* p, Window& w) noexcept {
  for (unsigned j = 0; j < 64; ++j) {
    const uint64_t b = uint64_t{1} << j;
    const U8 c = p[j];
    if (c >= 0x80) {
      w.nonascii |= b;
      continue;
    }
    const uint8_t bits = kAsciiBits[c];
    if (bits & kBitUpper) w.upper |= b;
    if (bits & kBitLower) w.lower |= b;
    if (bits & kBitDigit) w.digit |= b;
    if (bits & kBitSpace) w.space |= b;
    if (bits & kBitOther) w.other |= b;
    if (c == '\r' || c == '\n') w.newline |= b;
    if (c == ' ') w.blank |= b;
    if (c == '/') w.slash |= b;
    if (c == '\'') w.quote |= b;
  }
}

#if defined(__SSE2__)
// The same with SSE2 (baseline on x86-64), for the first `blocks` 16-byte blocks (the others'
// bitmaps stay 0). Signed compares: bytes >= 0x80 are negative and fall outside every ASCII range.
// The ranges are the tables' (the tests compare both classifiers on every byte value at every
// position).
void classify_sse2(const U8* p, unsigned blocks, Window& w) noexcept {
  auto in = [](__m128i x, char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(x, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  auto bits = [](__m128i m, unsigned k) {
    return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(m))) << (16 * k);
  };
  for (unsigned k = 0; k < blocks; ++k) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i upper = in(x, 'A', 'Z');
    const __m128i lower = in(x, 'a', 'z');
    const __m128i digit = in(x, '0', '9');
    const __m128i blank = _mm_cmpeq_epi8(x, _mm_set1_epi8(' '));
    const __m128i space = _mm_or_si128(in(x, '\t', '\r'), blank);
    const __m128i newline = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\n')),
                                         _mm_cmpeq_epi8(x, _mm_set1_epi8('\r')));
    const __m128i known = _mm_or_si128(_mm_or_si128(upper, lower), _mm_or_si128(digit, space));
    w.upper |= bits(upper, k);
    w.lower |= bits(lower, k);
    w.digit |= bits(digit, k);
    w.space |= bits(space, k);
    w.newline |= bits(newline, k);
    w.blank |= bits(blank, k);
    w.slash |= bits(_mm_cmpeq_epi8(x, _mm_set1_epi8('/')), k);
    w.quote |= bits(_mm_cmpeq_epi8(x, _mm_set1_epi8('\'')), k);
    w.nonascii |= bits(x, k);
    w.other |= ~bits(_mm_or_si128(known, x), k) & (uint64_t{0xFFFF} << (16 * k));
  }
}
#endif

// The window of text at `p` (< end), into `w` (in place: a short text's call is mostly this).
void classify(const U8* p, const U8* end, ByteClassifier classifier, Window& w) noexcept {
  w = Window{};
  w.base = p;
  const size_t left = static_cast<size_t>(end - p);
  w.lim = left < 64 ? static_cast<unsigned>(left) : 64u;
  w.at_end = left <= 64;
  U8 tail[64];
  const U8* bytes = p;
  if (left < 64) {  // never read past the text: classify a zero-padded copy, then mask
    std::memset(tail, 0, sizeof tail);
    std::memcpy(tail, p, left);
    bytes = tail;
  }
#if defined(__SSE2__)
  if (classifier == ByteClassifier::kBest) {
    // Only the blocks that hold text: a short text (every chat message's role, most messages)
    // classifies one or two blocks instead of four.
    classify_sse2(bytes, (w.lim + 15) / 16, w);
  } else {
    classify_scalar(bytes, w);
  }
#else
  (void)classifier;
  classify_scalar(bytes, w);
#endif
  // The zero padding past the text is in one class only (a control character: other).
  if (w.lim < 64) w.other &= (uint64_t{1} << w.lim) - 1;
}

inline bool has(uint64_t mask, unsigned j) noexcept { return j < 64 && ((mask >> j) & 1u); }

// End of the run of bytes in `mask` starting at byte j of the window (64: the run fills it).
inline unsigned run_end(uint64_t mask, unsigned j) noexcept {
  if (j >= 64) return 64;
  const uint64_t rest = ~(mask >> j);
  return rest ? j + static_cast<unsigned>(__builtin_ctzll(rest)) : 64u;
}

// A piece ending where a run stopped at byte k of the window is decided by the bitmaps unless
// the byte at k is non-ASCII (it may continue the run) or k is where the window cut the text.
inline bool settled(const Window& w, unsigned k) noexcept {
  return k < w.lim ? !has(w.nonascii, k) : w.at_end;
}

// Start of the letters of an ASCII word at byte j (as ascii_word_start): j if it is a letter,
// j + 1 if j is a character the patterns accept before a word followed by a letter. kNoWord if
// no word starts at j; kUndecided if that depends on bytes the bitmaps do not decide.
constexpr unsigned kNoWord = 65, kUndecided = 66;
inline unsigned word_letters(const Window& w, unsigned j) noexcept {
  const uint64_t letter = w.upper | w.lower;
  if (has(letter, j)) return j;
  if (has(w.nonascii, j)) return kUndecided;  // may be a letter, or a prefix of one
  if (has(w.digit | w.newline, j)) return kNoWord;  // [^\r\n\p{L}\p{N}] excludes these
  if (!settled(w, j + 1)) return kUndecided;  // the next byte may be a non-ASCII letter
  return has(letter, j + 1) ? j + 1 : kNoWord;
}

// End of the digits piece \p{N}{1,3} at byte j, or nullptr if undecided.
inline const U8* digits(const Window& w, unsigned j) noexcept {
  const unsigned d = run_end(w.digit, j);
  if (d - j >= 3) return w.base + j + 3;
  return settled(w, d) ? w.base + d : nullptr;
}

// Whether ` ?[^\s\p{L}\p{N}]+` matches at byte j (where no word starts).
inline bool is_punctuation(const Window& w, unsigned j) noexcept {
  return has(w.other, j) || (has(w.blank, j) && has(w.other, j + 1));
}

// End of ` ?[^\s\p{L}\p{N}]+` plus the trailing run of `trail` at byte j (is_punctuation), or
// nullptr if undecided.
inline const U8* punctuation(const Window& w, unsigned j, uint64_t trail) noexcept {
  const unsigned s = has(w.other, j) ? j : j + 1;
  const unsigned r = run_end(w.other, s);
  if (!settled(w, r)) return nullptr;  // a non-ASCII symbol or mark would continue the run
  const unsigned t = run_end(trail, r);
  return t < w.lim || w.at_end ? w.base + t : nullptr;
}

// The white-space alternatives at byte j (a white-space byte) for o200k (\s*[\r\n]+ | \s+(?!\S)
// | \s+) or cl100k (\s++$ | \s*[\r\n] | \s+(?!\S) | \s); nullptr if undecided.
inline const U8* white_space(const Window& w, unsigned j, bool o200k) noexcept {
  const unsigned e = run_end(w.space, j);
  if (!settled(w, e)) return nullptr;  // a non-ASCII white space would continue the run
  const bool text_end = e == w.lim;      // settled, so the text ends here
  const uint64_t run = (e < 64 ? (uint64_t{1} << e) - 1 : ~uint64_t{0}) & ~((uint64_t{1} << j) - 1);
  const uint64_t newlines = w.newline & run;
  const unsigned after_last_newline = newlines ? 64u - static_cast<unsigned>(__builtin_clzll(newlines)) : 0u;
  if (o200k) {
    if (newlines) return w.base + after_last_newline;
    if (text_end || e - j == 1) return w.base + e;
    return w.base + e - 1;  // all but the last (every ASCII white space is one byte)
  }
  if (text_end) return w.base + e;
  if (newlines) return w.base + after_last_newline;
  return w.base + (e - j >= 2 ? e - 1 : j + 1);
}

// The o200k piece at byte j of the window, or nullptr if the bitmaps do not decide it.
inline const U8* block_o200k(const Window& w, unsigned j, const U8* end) noexcept {
  const unsigned q = word_letters(w, j);
  if (q == kUndecided) return nullptr;
  if (q != kNoWord) {  // [U]*[W]+ or [U]+[W]*: an upper-case run, then a lower-case run
    const unsigned e = run_end(w.lower, run_end(w.upper, q));
    return settled(w, e) ? with_contraction(w.base + e, end) : nullptr;
  }
  if (has(w.digit, j)) return digits(w, j);
  if (is_punctuation(w, j)) return punctuation(w, j, w.newline | w.slash);
  return white_space(w, j, true);
}

// The cl100k piece at byte j of the window, or nullptr if the bitmaps do not decide it.
inline const U8* block_cl100k(const Window& w, unsigned j, const U8* end) noexcept {
  const U8* p = w.base + j;
  if (*p == '\'') {
    if (const size_t k = contraction(p, end)) return p + k;
  }
  const unsigned q = word_letters(w, j);
  if (q == kUndecided) return nullptr;
  if (q != kNoWord) {  // \p{L}++ after the optional prefix character
    const unsigned e = run_end(w.upper | w.lower, q);
    return settled(w, e) ? w.base + e : nullptr;
  }
  if (has(w.digit, j)) return digits(w, j);
  if (is_punctuation(w, j)) return punctuation(w, j, w.newline);
  return white_space(w, j, false);
}

// ---- piece starts of a whole window at once ---------------------------------------------------
//
// In a window of ASCII text the patterns' rules are relations between neighbouring bytes'
// classes, so the window's piece starts are derived with whole-register operations on the
// bitmaps (bit i of `x << 1` is byte i - 1's bit) and then read off with one count of trailing
// zeros per piece, without a branch per piece on what kind of piece it is. The scanner opens a
// window only at a piece start and the regexes look only forward from a piece's start, so byte
// 0 is a start and nothing before the window matters. Per byte i (X: a character allowed before
// a word, i.e. ASCII other than letters, digits and newlines):
// - a letter after a non-letter starts a word (o200k also an upper-case letter after a
//   lower-case one: [U]*[W]+ ends there); that is a piece start unless byte i - 1 is an X that
//   is one (it is then the word's prefix);
// - punctuation starts a piece unless byte i - 1 is punctuation (the same run) or a space (the
//   optional space of ` ?[^\s\p{L}\p{N}]+`); the last byte of a white-space run before
//   non-space always starts one (see below), so a space or tab before a word is always its prefix;
// - a digit starts a piece at the start of its run and every third digit after;
// - newlines right after punctuation are its ([\r\n]* / [\r\n/]*); a white-space run starts a
//   piece, and one of two or more bytes splits after its last newline (\s*[\r\n]+ / \s*[\r\n])
//   and before its last byte (\s+(?!\S)), unless the text ends with it (cl100k: \s++$ takes it
//   whole; o200k: the rest after the last newline is one piece);
// - contractions: o200k appends '(?i:s|t|re|ve|m|ll|d) to a word (whose letters are not
//   themselves a contraction's), cl100k makes one a piece wherever an apostrophe starts a piece;
//   the bytes inside are not starts, the byte after is.
// Multi-byte white-space runs, digit runs over three and contractions are resolved one at a time
// (they are few). Starts are taken only up to the start of the run the window's end cuts (its
// end is unknown). o200k windows with a newline followed by '/' are left to the per-piece path
// (its punctuation's [\r\n/]* makes chains the rules above do not follow).
// Returns the piece ends decided in the window: bits (0, 63], or 0 if none is.
template <bool O200k>
uint64_t window_starts(const Window& w, const U8* end) noexcept {
  const bool text_end = w.at_end && w.lim < 64;  // the text ends at bit lim of the window
  const uint64_t valid = w.lim < 64 ? (uint64_t{1} << w.lim) - 1 : ~uint64_t{0};
  const uint64_t letter = w.upper | w.lower;
  const uint64_t tab = w.space & ~w.newline & ~w.blank;  // \t \v \f
  if (O200k && (w.slash & (w.newline << 1)) != 0) return 0;
  unsigned cut = w.lim;  // starts are taken in (0, cut]
  if (!text_end) {  // the run at the window's end: its kind's bytes up to bit 63
    uint64_t kind = w.other;
    for (const uint64_t k : {letter, w.digit, w.space}) {
      if (k >> 63) kind = k;
    }
    const uint64_t before = ~kind & ~(uint64_t{1} << 63);
    if (before == 0) return 0;
    cut = 64 - static_cast<unsigned>(__builtin_clzll(before));
  }
  const uint64_t punct_start = w.other & ~(w.other << 1) & ~(w.blank << 1);
  // Contractions, in order (an o200k word's letters must not be a contraction's).
  uint64_t inside = 0, after = 0;
  for (uint64_t c = w.quote & (O200k ? letter << 1 : punct_start); c != 0; c &= c - 1) {
    const auto i = static_cast<unsigned>(__builtin_ctzll(c));
    if (O200k && ((inside >> (i - 1)) & 1)) continue;
    if (!text_end && i + 3 >= 64) {  // its end may lie past the window
      cut = std::min(cut, i - 1);
      break;
    }
    const size_t len = contraction(w.base + i, end);
    if (len == 0) continue;
    inside |= ((uint64_t{1} << len) - 1) << i;
    after |= uint64_t{1} << (i + len);
  }
  if (!O200k) inside &= ~w.quote;  // cl100k's contraction is a piece of its own
  uint64_t word = letter & ~(letter << 1);
  if (O200k) word |= w.upper & (w.lower << 1);
  word &= ~((w.blank | tab | punct_start) << 1);
  uint64_t starts = word | punct_start | (w.digit & ~(w.digit << 1)) | after;
  // Digit runs of four or more: a piece every three digits.
  for (uint64_t r = w.digit & ~(w.digit << 1) & (w.digit >> 1) & (w.digit >> 2) & (w.digit >> 3);
       r != 0; r &= r - 1) {
    const auto i = static_cast<unsigned>(__builtin_ctzll(r));
    for (unsigned k = i + 3, e = run_end(w.digit, i); k < e; k += 3) starts |= uint64_t{1} << k;
  }
  // White space: every run starts a piece unless it begins with newlines punctuation takes.
  const uint64_t space_first = w.space & ~(w.space << 1);
  const uint64_t taken = w.newline & (w.other << 1);
  starts |= space_first & ~taken;
  for (uint64_t r = space_first & (w.space >> 1); r != 0; r &= r - 1) {  // runs of 2+ bytes
    const auto i = static_cast<unsigned>(__builtin_ctzll(r));
    if (i >= cut) break;
    const unsigned e = run_end(w.space, i);
    const unsigned s = (taken >> i) & 1 ? run_end(w.newline, i) : i;
    if (s == e) continue;
    starts |= uint64_t{1} << s;  // s < e <= 64
    const bool ends_text = text_end && e == w.lim;
    if (!O200k && ends_text) continue;  // \s++$
    unsigned rest = s;  // start of the run's part after its last newline
    const uint64_t below_e = e < 64 ? (uint64_t{1} << e) - 1 : ~uint64_t{0};
    const uint64_t newlines = w.newline & below_e & ~((uint64_t{1} << s) - 1);
    if (newlines != 0) {
      rest = 64 - static_cast<unsigned>(__builtin_clzll(newlines));
      if (rest < 64) starts |= uint64_t{1} << rest;  // rest == e is a start anyway
    }
    if (!ends_text && e - rest >= 2) starts |= uint64_t{1} << (e - 1);
  }
  starts = (starts & ~inside & valid) | (text_end ? uint64_t{1} << w.lim : 0);
  const uint64_t upto_cut = cut >= 63 ? ~uint64_t{0} : (uint64_t{2} << cut) - 1;
  return starts & upto_cut & ~uint64_t{1};
}

// A window is re-classified at the next piece's start once that start is this far into it, so a
// piece of up to 64 - kRefill bytes is always inside the window (longer ones, 1-2% of pieces,
// go to the general scanner when the window cuts them).
constexpr unsigned kRefill = 48;

template <bool O200k>
size_t block_ends(std::string_view text, size_t pos, size_t* ends, size_t max,
                  ByteClassifier classifier, Window& w, uint64_t& pending) noexcept {
  const auto* begin = reinterpret_cast<const U8*>(text.data());
  const U8* end = begin + text.size();
  const U8* p = begin + pos;
  size_t m = 0;
  do {
    if (pending != 0) {  // the ends window_starts decided
      p = w.base + __builtin_ctzll(pending);
      pending &= pending - 1;
      ends[m++] = static_cast<size_t>(p - begin);
      if (pending == 0) w.base = nullptr;  // open the next window at this start
      continue;
    }
    if (w.base == nullptr || static_cast<size_t>(p - w.base) >= kRefill) {
      classify(p, end, classifier, w);
      if (w.nonascii == 0 && (pending = window_starts<O200k>(w, end)) != 0) continue;
    }
    const auto j = static_cast<unsigned>(p - w.base);
    const U8* q = O200k ? block_o200k(w, j, end) : block_cl100k(w, j, end);
    if (q == nullptr) q = O200k ? next_o200k(p, end) : next_cl100k(p, end);
    p = q;
    ends[m++] = static_cast<size_t>(p - begin);
  } while (m < max && p < end);
  return m;
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

ByteWindow classify_window(std::string_view text, size_t pos, ByteClassifier classifier) noexcept {
  const auto* begin = reinterpret_cast<const U8*>(text.data());
  ByteWindow w;
  classify(begin + pos, begin + text.size(), classifier, w);
  return w;
}

PieceScanner::PieceScanner(SplitPattern pattern, std::string_view text, size_t pos,
                           ByteClassifier classifier) noexcept
    : pattern_(pattern), text_(text), pos_(pos), classifier_(classifier) {}

size_t PieceScanner::next(size_t* ends, size_t max) noexcept {
  if (pos_ >= text_.size()) return 0;
  size_t m = 0;
  switch (pattern_) {
    case SplitPattern::kCl100k:
      m = block_ends<false>(text_, pos_, ends, max, classifier_, window_, pending_);
      break;
    case SplitPattern::kO200k:
      m = block_ends<true>(text_, pos_, ends, max, classifier_, window_, pending_);
      break;
    case SplitPattern::kR50k:
      m = ends_of<next_r50k>(text_, pos_, ends, max);
      break;
  }
  pos_ = ends[m - 1];
  return m;
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
