#include "orroute/json.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace orroute {

namespace {

// One pass over `text`, sixteen bytes a step where SSE2 is: its opening brackets ('[' or '{', in
// strings too: the two bytes that OR 0x20 turns into '{'), each byte lane counting its matches (a
// match compares to -1) summed every 32 steps (a lane holds 255), and whether it holds a control
// byte 0x1A-0x1F, which RapidJSON 1.1's SSE2 string scan lets through unescaped (it tests for
// control bytes with max(byte, 0x19) == 0x19). Adding 0x66 takes 0x1A-0x1F to 0x80-0x85, the six
// lowest signed bytes: one add and one signed compare a step.
struct TextBytes {
  size_t opens = 0;
  bool late_controls = false;
};

TextBytes scan_text(std::string_view text) noexcept {
  TextBytes out;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i lower = _mm_set1_epi8(0x20);
  const __m128i brace = _mm_set1_epi8('{');
  const __m128i shift = _mm_set1_epi8(0x66);
  const __m128i above = _mm_set1_epi8(static_cast<char>(0x86));
  const __m128i zero = _mm_setzero_si128();
  __m128i controls = zero;
  constexpr size_t kStepsPerSum = 32;
  while (i + 16 <= text.size()) {
    __m128i lanes = zero;
    for (size_t step = 0; step < kStepsPerSum && i + 16 <= text.size(); ++step, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
      lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_or_si128(v, lower), brace));
      controls = _mm_or_si128(controls, _mm_cmplt_epi8(_mm_add_epi8(v, shift), above));
    }
    const __m128i sums = _mm_sad_epu8(lanes, zero);  // two 64-bit sums of eight lanes each
    out.opens += static_cast<size_t>(_mm_cvtsi128_si64(sums)) +
                 static_cast<size_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)));
  }
  out.late_controls = _mm_movemask_epi8(controls) != 0;
#endif
  for (; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    out.opens += (byte | 0x20) == '{';
    out.late_controls |= byte >= 0x1A && byte <= 0x1F;
  }
  return out;
}

// The exact scan json_depth_ok falls back to when the text has more opening brackets than the
// limit: strings skipped by their real end, brackets counted as they nest.
bool depth_within(std::string_view text, int max_depth) noexcept {
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

// A text cannot nest deeper than it has opening brackets (`opens`, from scan_text): a reply or a
// usual request has a few dozen, and counting them is a fraction of the exact scan, which skips
// strings one by one.
bool depth_ok(std::string_view text, int max_depth, size_t opens) noexcept {
  return (max_depth >= 0 && opens <= static_cast<size_t>(max_depth)) || depth_within(text, max_depth);
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
  return depth_ok(text, max_depth, scan_text(text).opens);
}

namespace json_detail {

JsonParse precheck(std::string_view text, size_t max_bytes, int max_depth, bool& unsafe_bytes) noexcept {
  unsafe_bytes = false;
  if (text.size() > max_bytes) return JsonParse::kTooLarge;
  const TextBytes bytes = scan_text(text);
  // A NUL: RapidJSON's readers take it as the end of the text (`{}` NUL `junk` parses). (An empty
  // view may have no buffer at all, and memchr's is declared never null.)
  unsafe_bytes = bytes.late_controls ||
                 (!text.empty() && std::memchr(text.data(), '\0', text.size()) != nullptr);
  return depth_ok(text, max_depth, bytes.opens) ? JsonParse::kOk : JsonParse::kTooDeep;
}

}  // namespace json_detail

}  // namespace orroute
