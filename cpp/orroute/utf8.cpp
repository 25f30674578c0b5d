#include "orroute/utf8.h"

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace orroute {
namespace {

// Length of the well-formed sequence at s[i] (1-4), or 0 if it is ill-formed; then `bad` is the
// length of its maximal ill-formed subpart (>= 1), which one U+FFFD replaces.
size_t sequence_at(std::string_view s, size_t i, size_t& bad) noexcept {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte (Unicode Table 3-7)
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    bad = 1;
    return 0;
  }
  size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    const unsigned char x = b(k);
    if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) break;
  }
  if (k == need) return need;
  bad = k;
  return 0;
}

// Index of the first byte at or after `i` that is not ASCII (s.size() if none): 32 bytes a step
// where SSE2 is (a byte's top bit is its lane's sign: one OR and one movemask a step), then 8.
size_t skip_ascii(std::string_view s, size_t i) noexcept {
#if defined(__SSE2__)
  while (i + 32 <= s.size()) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i + 16));
    if (_mm_movemask_epi8(_mm_or_si128(a, b)) != 0) {
      const auto in_a = static_cast<unsigned>(_mm_movemask_epi8(a));
      return i + (in_a != 0 ? __builtin_ctz(in_a) : 16 + __builtin_ctz(static_cast<unsigned>(_mm_movemask_epi8(b))));
    }
    i += 32;
  }
#endif
  while (i + 8 <= s.size()) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ull) break;
    i += 8;
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

// Index of the first ill-formed byte (s.size() if none).
size_t first_bad(std::string_view s) noexcept {
  size_t i = 0, bad = 0;
  while ((i = skip_ascii(s, i)) < s.size()) {
    const size_t n = sequence_at(s, i, bad);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

}  // namespace

bool utf8_valid(std::string_view s) noexcept { return first_bad(s) == s.size(); }

bool repair_utf8(std::string& s) {
  size_t i = first_bad(s);
  if (i == s.size()) return false;
  std::string out;
  out.reserve(s.size() + 16);
  out.append(s, 0, i);
  while (i < s.size()) {
    size_t bad = 0;
    const size_t n = sequence_at(s, i, bad);
    if (n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += bad;
    }
  }
  s = std::move(out);
  return true;
}

std::string utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // s[cut] continues a char
  return std::string(s.substr(0, cut));
}

std::string client_text(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  return utf8_prefix(s, max_bytes) + "\u2026 (" + std::to_string(s.size()) + " bytes)";
}

}  // namespace orroute
