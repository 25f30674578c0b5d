#include "orroute/engine/attempt_body.h"

#include <rapidjson/document.h>

#include <array>
#include <charconv>
#include <string_view>

#include "orroute/engine/chat_text.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

// `request_json` (parsed: `d`) with the members chat_attempt_body(Document&) would add appended
// as its own writer writes them, in its order; nullopt when it would set a member in place instead
// (model, stream, a null max_tokens), when the request is empty, or when the text holds a NUL (a
// parse ends there: the bytes after it were never read).
std::optional<std::string> appended_attempt_body(std::string_view request_json, const rapidjson::Value& d,
                                                 const std::string& model, bool stream,
                                                 const std::vector<std::string>& server_models,
                                                 std::optional<int64_t> reserved_max_tokens) {
  if (!d.IsObject() || d.MemberCount() == 0) return std::nullopt;
  // The members read here, in one pass (the first of each name, as FindMember finds it).
  static constexpr std::array<std::string_view, 7> kRead = {
      "model", "stream", "max_tokens", "max_completion_tokens", "stream_options", "usage", "models"};
  const auto [model_m, stream_m, max_tokens, max_completion, stream_options, usage, models] = members_named(d, kRead);
  if (model_m != nullptr || stream_m != nullptr) return std::nullopt;
  const bool reserve = reserved_max_tokens && (max_tokens == nullptr || max_tokens->IsNull()) &&
                       (max_completion == nullptr || max_completion->IsNull());
  if (reserve && max_tokens != nullptr) return std::nullopt;  // set in place
  const size_t close = request_json.find_last_not_of(" \t\n\r");
  if (close == std::string_view::npos || request_json[close] != '}' ||
      request_json.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  // As chat_attempt_body(Document&) adds them (model names by strlen: Value(const char*)), and as
  // its writer writes them: written here, not through a writer (~2k instructions a call).
  std::string out;
  size_t extra = 112 + 2 * model.size();
  for (const auto& m : server_models) extra += 2 * m.size() + 3;
  out.reserve(close + extra);
  out.append(request_json.substr(0, close));
  out.append(",\"model\":");
  append_json_string(out, model.c_str());
  out.append(stream ? ",\"stream\":true" : ",\"stream\":false");
  if (stream && stream_options == nullptr) out.append(",\"stream_options\":{\"include_usage\":true}");
  if (usage == nullptr) out.append(",\"usage\":{\"include\":true}");
  if (reserve) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *reserved_max_tokens);
    out.append(",\"max_tokens\":").append(digits, end);
  }
  if (!server_models.empty() && models == nullptr) {
    out.append(",\"models\":[");
    append_json_string(out, model.c_str());
    int listed = 1;
    for (const auto& m : server_models) {
      if (m != model && listed < 3) {
        out.push_back(',');
        append_json_string(out, m.c_str());
        ++listed;
      }
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}

}  // namespace

std::string chat_attempt_body(std::string_view request_json, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens) {
  LocalJson<> json;  // no heap for a usual request
  rapidjson::Document& d = json.doc();
  if (const JsonParse st = parse_json_text(request_json, d); st != JsonParse::kOk || !d.IsObject()) {
    throw InvalidArgument(std::string("chat request must be a JSON object") +
                          (st == JsonParse::kOk ? "" : std::string(" (") + json_parse_reason(st) + ")"));
  }
  return chat_attempt_body(request_json, d, model, stream, server_models, reserved_max_tokens);
}

std::string chat_attempt_body(std::string_view request_json, rapidjson::Document& parsed,
                              const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens) {
  if (auto body = appended_attempt_body(request_json, parsed, model, stream, server_models, reserved_max_tokens)) {
    return std::move(*body);
  }
  return chat_attempt_body(parsed, model, stream, server_models, reserved_max_tokens);
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
