#include "orroute/engine/chat_text.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <exception>
#include <string_view>

#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/json_writer.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// Text of the last user message (string content or text parts).
std::string last_user_text(const rapidjson::Value& messages) {
  static constexpr std::array<std::string_view, 2> kRead = {"role", "content"};
  for (auto it = messages.End(); it != messages.Begin();) {
    --it;
    // A message's role and content in one pass (the first of each, as a lookup by name finds it).
    const auto [role, content] = members_named(*it, kRead);
    if (role == nullptr || !role->IsString()) continue;
    if (std::string_view(role->GetString()) != "user") continue;  // to its first NUL
    if (content == nullptr) return {};
    const auto& c = *content;
    if (c.IsString()) return c.GetString();
    std::string out;
    if (c.IsArray()) {
      for (const auto& part : c.GetArray()) {
        if (!part.IsObject()) continue;
        if (const auto text = part.FindMember("text"); text != part.MemberEnd() && text->value.IsString()) {
          out += text->value.GetString();
          out += '\n';
        }
      }
    }
    return out;
  }
  return {};
}

namespace {

// Calls `f` with the value of every member of `obj` named `name`: a reply that names a key twice
// is counted with each (readers differ in which one they keep: Python's json.loads and
// reply_summary the last, a lookup by name the first), so a short first and a long last cannot
// pass the long one off as the short one's count. Only a hostile reply repeats a key; counting
// more than it sent fails closed.
template <typename F>
void each_member(const rapidjson::Value& obj, std::string_view name, F&& f) {
  for (const auto& m : obj.GetObject()) {
    if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name) f(m.value);
  }
}

void append_string(const rapidjson::Value& v, std::string& out) {
  if (v.IsString()) out.append(v.GetString(), v.GetStringLength());
}

// The text of `msg`'s reasoning_details entries ("text", or a summary's "summary"; encrypted data
// is not text). OpenRouter repeats its `reasoning` string there: counted only when that is absent,
// so an upstream sending reasoning as details alone is metered, and one sending both is not twice.
void append_reasoning_details(const rapidjson::Value& msg, std::string& out) {
  if (auto r = msg.FindMember("reasoning"); r != msg.MemberEnd() && r->value.IsString()) return;
  each_member(msg, "reasoning_details", [&](const rapidjson::Value& details) {
    if (!details.IsArray()) return;
    for (const auto& d : details.GetArray()) {
      if (!d.IsObject()) continue;
      for (const char* f : {"text", "summary"}) each_member(d, f, [&](const rapidjson::Value& t) { append_string(t, out); });
    }
  });
}

// Appends the generated text of a message or delta (content, reasoning, refusal, tool calls,
// reasoning details) to `out`: what the answer's tokens are metered and counted from when the
// usage cannot be believed.
void append_generated_text(const rapidjson::Value& msg, std::string& out) {
  if (!msg.IsObject()) return;
  append_reasoning_details(msg, out);
  for (const char* f : {"content", "reasoning", "refusal"}) {
    each_member(msg, f, [&](const rapidjson::Value& v) {
      if (v.IsString()) {
        append_string(v, out);
      } else if (v.IsArray()) {
        for (const auto& part : v.GetArray()) {
          if (part.IsObject()) each_member(part, "text", [&](const rapidjson::Value& t) { append_string(t, out); });
        }
      }
    });
  }
  each_member(msg, "tool_calls", [&](const rapidjson::Value& calls) {
    if (!calls.IsArray()) return;
    for (const auto& c : calls.GetArray()) {
      if (!c.IsObject()) continue;
      each_member(c, "function", [&](const rapidjson::Value& fn) {
        if (!fn.IsObject()) return;
        for (const char* f : {"name", "arguments"}) each_member(fn, f, [&](const rapidjson::Value& t) { append_string(t, out); });
      });
    }
  });
}

}  // namespace

namespace {

// The value of the LAST member named `name` (nullptr if none): Python's json.loads, which gives
// the caller its `response`, keeps the last of duplicate keys, and the summary must agree.
const rapidjson::Value* last_member(const rapidjson::Value& obj, std::string_view name) {
  const rapidjson::Value* found = nullptr;
  for (const auto& m : obj.GetObject()) {
    if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name) found = &m.value;
  }
  return found;
}

}  // namespace

ReplySummary reply_summary(const rapidjson::Value& doc) {
  if (!doc.IsObject()) return {};
  return reply_summary(last_member(doc, "id"), last_member(doc, "choices"));
}

ReplySummary reply_summary(const rapidjson::Value* id, const rapidjson::Value* choices) {
  ReplySummary out;
  if (id && id->IsString()) out.id.assign(id->GetString(), id->GetStringLength());
  if (!choices || !choices->IsArray() || choices->Empty()) return out;
  const rapidjson::Value& first = (*choices)[0];
  if (!first.IsObject()) return out;
  const auto* msg = last_member(first, "message");
  if (!msg || !msg->IsObject()) return out;
  const auto* content = last_member(*msg, "content");
  if (!content) return out;
  if (content->IsString()) {
    out.content.assign(content->GetString(), content->GetStringLength());
  } else if (content->IsArray()) {
    for (const auto& part : content->GetArray()) {
      if (!part.IsObject()) continue;
      const auto* t = last_member(part, "text");
      if (t && t->IsString()) {
        out.content.append(t->GetString(), t->GetStringLength());
        ++out.parts;
      }
    }
  }
  return out;
}

ReplySummary reply_summary(const std::string& completion_json) {
  LocalJson<> reply_json;  // no heap for a usual reply
  rapidjson::Document& doc = reply_json.doc();
  if (completion_json.empty() || parse_json_text(completion_json, doc) != JsonParse::kOk) return {};
  return reply_summary(doc);
}

// The generated text of every choice of a completion (`key` "message") or chunk ("delta").
std::string generated_text(const rapidjson::Value& doc, const char* key) {
  std::string out;
  if (!doc.IsObject()) return out;
  each_member(doc, "choices", [&](const rapidjson::Value& choices) {  // every one (each_member)
    if (!choices.IsArray()) return;
    for (const auto& c : choices.GetArray()) {
      if (c.IsObject()) each_member(c, key, [&](const rapidjson::Value& m) { append_generated_text(m, out); });
    }
  });
  return out;
}

int64_t text_tokens(const std::string& model, const std::string& text) {
  if (text.empty()) return 0;
  try {
    return count_text_tokens(model, text).tokens;
  } catch (const std::exception&) {
    return static_cast<int64_t>(text.size());  // at most one token per byte
  }
}

}  // namespace orroute
