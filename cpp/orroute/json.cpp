#include "orroute/json.h"

#include <cstring>

namespace orroute {

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
