#include "orroute/json.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace orroute {

namespace {

// Whether `text` holds more than `limit` opening brackets ('[' or '{', in strings too): '[' and
// '{' are the two bytes that OR 0x20 turns into '{'. Where SSE2 is, sixteen bytes a step, each
// byte lane counting its matches (a match compares to -1), summed every 32 steps (a lane holds 255).
bool more_opens_than(std::string_view text, size_t limit) noexcept {
  size_t opens = 0;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i lower = _mm_set1_epi8(0x20);
  const __m128i brace = _mm_set1_epi8('{');
  const __m128i zero = _mm_setzero_si128();
  constexpr size_t kStepsPerSum = 32;
  while (i + 16 <= text.size()) {
    __m128i lanes = zero;
    for (size_t step = 0; step < kStepsPerSum && i + 16 <= text.size(); ++step, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
      lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_or_si128(v, lower), brace));
    }
    const __m128i sums = _mm_sad_epu8(lanes, zero);  // two 64-bit sums of eight lanes each
    opens += static_cast<size_t>(_mm_cvtsi128_si64(sums)) +
             static_cast<size_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)));
    if (opens > limit) return true;
  }
#endif
  for (; i < text.size(); ++i) opens += (text[i] | 0x20) == '{';
  return opens > limit;
}

}  // namespace

const char* json_parse_reason(JsonParse status) noexcept {
  switch (status) {
    case JsonParse::kOk: return "ok";
    case JsonParse::kTooLarge: return "too large";
    case JsonParse::kTooDeep: return "nested too deeply";
    case JsonParse::kInvalid: return "not valid JSON";
  }
  return "not valid JSON";
}

bool json_depth_ok(std::string_view text, int max_depth) noexcept {
  // A text cannot nest deeper than it has opening brackets: a reply or a usual request has a few
  // dozen, and counting them is a fraction of the scan below, which skips strings one by one.
  if (max_depth >= 0 && !more_opens_than(text, static_cast<size_t>(max_depth))) return true;
  int depth = 0;
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      // Skip the string with memchr (most of a document's bytes are string text): a quote ends it
      // unless an odd run of backslashes precedes it. The run cannot reach before the opening
      // quote, so counting back stays inside the string.
      for (;;) {
        const void* q = std::memchr(p, '"', static_cast<size_t>(end - p));
        if (q == nullptr) return true;  // unterminated: not ours to judge (the parser rejects it)
        const char* quote = static_cast<const char*>(q);
        const char* b = quote;
        while (b > p && b[-1] == '\\') --b;
        p = quote + 1;
        if ((quote - b) % 2 == 0) break;
      }
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace orroute
