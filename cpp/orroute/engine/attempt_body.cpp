#include "orroute/engine/attempt_body.h"

#include <rapidjson/document.h>

#include "orroute/engine/chat_text.h"
#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {

std::string chat_attempt_body(std::string_view request_json, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens) {
  LocalJson<> json;  // no heap for a usual request
  rapidjson::Document& d = json.doc();
  if (const JsonParse st = parse_json_text(request_json, d); st != JsonParse::kOk || !d.IsObject()) {
    throw InvalidArgument(std::string("chat request must be a JSON object") +
                          (st == JsonParse::kOk ? "" : std::string(" (") + json_parse_reason(st) + ")"));
  }
  return chat_attempt_body(d, model, stream, server_models, reserved_max_tokens);
}

std::vector<std::string> server_fallbacks(const std::vector<std::string>& candidates, int n) {
  std::vector<std::string> out;
  for (size_t i = 1; i < candidates.size() && static_cast<int>(out.size()) < n; ++i) {
    out.push_back(candidates[i]);
  }
  return out;
}

std::string chat_attempt_body(rapidjson::Document& d, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens) {
  if (!d.IsObject()) throw InvalidArgument("chat request must be a JSON object");
  auto& a = d.GetAllocator();
  // Replace in place: every other member keeps its value and its place.
  if (auto it = d.FindMember("model"); it != d.MemberEnd()) {
    it->value.SetString(model.c_str(), static_cast<rapidjson::SizeType>(model.size()), a);
  } else {
    d.AddMember("model", rapidjson::Value(model.c_str(), a), a);
  }
  if (auto it = d.FindMember("stream"); it != d.MemberEnd()) {
    it->value.SetBool(stream);
  } else {
    d.AddMember("stream", stream, a);
  }
  if (stream && !d.HasMember("stream_options")) {
    rapidjson::Value so(rapidjson::kObjectType);
    so.AddMember("include_usage", true, a);
    d.AddMember("stream_options", so, a);
  }
  if (!d.HasMember("usage")) {  // OpenRouter reports usage.cost when asked
    rapidjson::Value u(rapidjson::kObjectType);
    u.AddMember("include", true, a);
    d.AddMember("usage", u, a);
  }
  auto unset = [&](const char* f) {
    auto it = d.FindMember(f);
    return it == d.MemberEnd() || it->value.IsNull();
  };
  if (reserved_max_tokens && unset("max_tokens") && unset("max_completion_tokens")) {
    if (auto it = d.FindMember("max_tokens"); it != d.MemberEnd()) {
      it->value.SetInt64(*reserved_max_tokens);
    } else {
      d.AddMember("max_tokens", rapidjson::Value(*reserved_max_tokens), a);
    }
  }
  if (!server_models.empty() && !d.HasMember("models")) {
    rapidjson::Value ms(rapidjson::kArrayType);
    ms.PushBack(rapidjson::Value(model.c_str(), a), a);
    for (const auto& m : server_models) {
      if (m != model && ms.Size() < 3) ms.PushBack(rapidjson::Value(m.c_str(), a), a);
    }
    d.AddMember("models", ms, a);
  }
  return json_text(d);
}

}  // namespace orroute
