#include "orroute/json.h"

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
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace orroute
