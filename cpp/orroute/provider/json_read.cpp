#include "orroute/provider/json_read.h"

#include <cmath>

namespace orroute {

bool parse_json(std::string_view text, rapidjson::Document& doc) {
  // Invalid UTF-8 is refused here, so no translated text can carry it to Python (where decoding
  // would raise).
  return parse_json_text<rapidjson::kParseValidateEncodingFlag>(text, doc) == JsonParse::kOk;
}

const rapidjson::Value* json_member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  const auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string_view> json_string(const rapidjson::Value& obj, const char* name) {
  const auto* v = json_member(obj, name);
  if (v == nullptr || !v->IsString()) return std::nullopt;
  return std::string_view(v->GetString(), v->GetStringLength());
}

std::optional<int64_t> json_count(const rapidjson::Value& obj, const char* name) {
  const auto* v = json_member(obj, name);
  if (v == nullptr) return std::nullopt;
  if (v->IsInt64()) {
    const int64_t n = v->GetInt64();
    return n >= 0 ? std::optional<int64_t>(n) : std::nullopt;
  }
  if (v->IsDouble()) {
    const double d = v->GetDouble();
    // 9.2e18 is below INT64_MAX; anything above is not a token count we can hold.
    if (std::isfinite(d) && d >= 0 && d < 9.2e18 && d == std::floor(d)) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

}  // namespace orroute
