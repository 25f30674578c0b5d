#include "orroute/cache/cache_key.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "orroute/cache/sha256.h"
#include "orroute/json.h"
#include "orroute/json_writer.h"
#include "orroute/net/protocol.h"

namespace orroute {

namespace {

using Writer = JsonWriter;

// Fields that never change the answer (see the header).
constexpr std::array<std::string_view, 11> kIgnored = {
    "stream", "stream_options", "user", "metadata", "session_id", "prompt_cache_key",
    "usage", "trace", "debug", "store", "service_tier"};

bool ignored(std::string_view name) {
  return std::find(kIgnored.begin(), kIgnored.end(), name) != kIgnored.end();
}

std::string_view name_of(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

void write(const rapidjson::Value& v, Writer& w);

void write_number(const rapidjson::Value& v, Writer& w) {
  if (v.IsInt64()) {
    w.Int64(v.GetInt64());
  } else if (v.IsUint64()) {
    w.Uint64(v.GetUint64());
  } else {
    const double d = v.GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
      w.Int64(static_cast<int64_t>(d));  // 1.0 and 1 are the same parameter
    } else {
      w.Double(d);
    }
  }
}

// Members sorted by name (bytes); equal names keep their order (RapidJSON keeps duplicates).
std::vector<const rapidjson::Value::Member*> sorted_members(const rapidjson::Value& obj) {
  std::vector<const rapidjson::Value::Member*> members;
  members.reserve(obj.MemberCount());
  for (const auto& m : obj.GetObject()) members.push_back(&m);
  std::stable_sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
    return name_of(a->name) < name_of(b->name);
  });
  return members;
}

void write_object(const rapidjson::Value& obj, Writer& w) {
  w.StartObject();
  for (const auto* m : sorted_members(obj)) {
    w.Key(m->name.GetString(), m->name.GetStringLength());
    write(m->value, w);
  }
  w.EndObject();
}

void write(const rapidjson::Value& v, Writer& w) {
  switch (v.GetType()) {
    case rapidjson::kNullType: w.Null(); break;
    case rapidjson::kFalseType: w.Bool(false); break;
    case rapidjson::kTrueType: w.Bool(true); break;
    case rapidjson::kNumberType: write_number(v, w); break;
    case rapidjson::kStringType: w.String(v.GetString(), v.GetStringLength()); break;
    case rapidjson::kArrayType:
      w.StartArray();
      for (const auto& x : v.GetArray()) write(x, w);
      w.EndArray();
      break;
    case rapidjson::kObjectType: write_object(v, w); break;
  }
}

// [{"type": "text", "text": "..."}] (nothing else) is the same content as "...".
const rapidjson::Value* single_text_part(const rapidjson::Value& content) {
  if (!content.IsArray() || content.Size() != 1) return nullptr;
  const auto& part = content[0];
  if (!part.IsObject() || part.MemberCount() != 2) return nullptr;
  const auto type = part.FindMember("type");
  const auto text = part.FindMember("text");
  if (type == part.MemberEnd() || text == part.MemberEnd() || !type->value.IsString() ||
      name_of(type->value) != "text" || !text->value.IsString()) {
    return nullptr;
  }
  return &text->value;
}

void write_messages(const rapidjson::Value& messages, Writer& w) {
  if (!messages.IsArray()) {  // (canonical_of refuses a second `messages`; never read as an array unchecked)
    write(messages, w);
    return;
  }
  w.StartArray();
  for (const auto& msg : messages.GetArray()) {
    if (!msg.IsObject()) {
      write(msg, w);
      continue;
    }
    w.StartObject();
    for (const auto* m : sorted_members(msg)) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      const rapidjson::Value* text =
          name_of(m->name) == "content" ? single_text_part(m->value) : nullptr;
      write(text ? *text : m->value, w);
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

namespace {

// The canonical text of a parsed request (see canonical_request).
std::optional<std::string> canonical_of(const rapidjson::Document& doc, JsonParse status,
                                        std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<std::string> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (status != JsonParse::kOk) return fail(json_parse_reason(status));
  if (!doc.IsObject()) return fail("the request is not a JSON object");
  // A key given twice means one thing here (the first) and another upstream (the last).
  if (check_unique_keys(doc)) return fail("the request names a key twice in one object");
  const auto messages = doc.FindMember("messages");
  if (messages == doc.MemberEnd() || !messages->value.IsArray() || messages->value.Empty()) {
    return fail("the request has no messages");
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  for (const auto* m : sorted_members(doc)) {
    const std::string_view name = name_of(m->name);
    if (ignored(name) || m->value.IsNull()) continue;
    w.Key(m->name.GetString(), m->name.GetStringLength());
    if (name == "messages") {
      write_messages(m->value, w);
    } else {
      write(m->value, w);
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// "" when the request's temperature allows caching, else why not.
const char* sampling_refusal(const rapidjson::Document& doc) {
  const auto t = doc.FindMember("temperature");
  if (t == doc.MemberEnd() || t->value.IsNull()) return "";
  if (!t->value.IsNumber()) return "temperature is not a number";
  if (t->value.GetDouble() > 0) {
    return "temperature > 0 (sampling); allow it with the cache's allow_sampling";
  }
  return "";
}

}  // namespace

std::optional<std::string> canonical_request(std::string_view request_json, std::string* why) {
  rapidjson::Document doc;
  const JsonParse status = parse_json_text(request_json, doc);
  return canonical_of(doc, status, why);
}

CacheKey cache_key(std::string_view request_json, std::string_view scope,
                   const CachePolicy& policy) {
  CacheKey out;
  rapidjson::Document doc;
  const JsonParse status = parse_json_text(request_json, doc);
  const std::optional<std::string> canonical = canonical_of(doc, status, &out.reason);
  if (!canonical) return out;
  if (!policy.allow_sampling) {
    out.reason = sampling_refusal(doc);
    if (!out.reason.empty()) return out;
  }
  std::string material;
  material.reserve(scope.size() + canonical->size() + 32);
  material.append("orroute-cache-v1\n");
  material.append(std::to_string(scope.size())).append(":").append(scope).append("\n");
  material.append(*canonical);
  out.cacheable = true;
  out.key = sha256_hex(material);
  return out;
}

}  // namespace orroute
