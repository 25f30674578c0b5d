#include "orroute/cache/replay.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>

#include "orroute/json.h"
#include "orroute/no_destructor.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using rapidjson::Value;

// Where to cut `text` at or before `want` bytes without splitting a UTF-8 sequence (at least one
// whole character).
size_t cut_at(std::string_view text, size_t want) {
  if (want >= text.size()) return text.size();
  size_t i = want;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
  if (i == 0) {  // one character longer than `want`: take it whole
    i = 1;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

class ChunkMaker {
 public:
  explicit ChunkMaker(const rapidjson::Document& completion) : c_(completion) {}

  // One chunk: the completion's envelope with `choice` (an object moved in) or no choices.
  std::string make(Value* choice, const Value* usage) {
    rapidjson::Document d;
    auto& a = d.GetAllocator();
    d.SetObject();
    for (const char* key : {"id", "created", "model", "provider", "system_fingerprint"}) {
      const auto it = c_.FindMember(key);
      if (it != c_.MemberEnd()) d.AddMember(Value(key, a), Value(it->value, a), a);
    }
    d.AddMember("object", "chat.completion.chunk", a);
    Value choices(rapidjson::kArrayType);
    if (choice) choices.PushBack(*choice, a);
    d.AddMember("choices", choices, a);
    if (usage) d.AddMember("usage", Value(*usage, a), a);
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    d.Accept(w);
    return {buf.GetString(), buf.GetSize()};
  }

 private:
  const rapidjson::Document& c_;
};

}  // namespace

std::vector<std::string> replay_chunks(std::string_view completion_json, size_t piece_bytes) {
  std::vector<std::string> out;
  rapidjson::Document c;
  if (parse_json_text(completion_json, c) != JsonParse::kOk || !c.IsObject()) return out;
  const auto choices = c.FindMember("choices");
  if (choices == c.MemberEnd() || !choices->value.IsArray()) return out;
  piece_bytes = std::max<size_t>(piece_bytes, 1);
  ChunkMaker maker(c);
  rapidjson::Document scratch;
  auto& a = scratch.GetAllocator();
  const auto usage_it = c.FindMember("usage");
  const Value* usage = usage_it != c.MemberEnd() && usage_it->value.IsObject() ? &usage_it->value : nullptr;
  const auto& list = choices->value.GetArray();
  for (rapidjson::SizeType ci = 0; ci < list.Size(); ++ci) {
    const Value& choice = list[ci];
    if (!choice.IsObject()) continue;
    const auto idx_it = choice.FindMember("index");
    const int64_t index = idx_it != choice.MemberEnd() && idx_it->value.IsInt64() ? idx_it->value.GetInt64() : ci;
    const auto msg_it = choice.FindMember("message");
    const Value* msg = msg_it != choice.MemberEnd() && msg_it->value.IsObject() ? &msg_it->value : nullptr;
    auto delta_chunk = [&](Value delta, const Value* finish, bool last) {
      Value ch(rapidjson::kObjectType);
      ch.AddMember("index", Value(index), a);
      ch.AddMember("delta", delta, a);
      ch.AddMember("finish_reason", finish ? Value(*finish, a) : Value(), a);
      out.push_back(maker.make(&ch, last ? usage : nullptr));
    };
    std::string_view content;
    if (msg) {
      const auto it = msg->FindMember("content");
      if (it != msg->MemberEnd() && it->value.IsString()) {
        content = {it->value.GetString(), it->value.GetStringLength()};
      }
    }
    // First: the role (and every message field but content and tool calls, e.g. reasoning).
    Value first(rapidjson::kObjectType);
    first.AddMember("role", "assistant", a);
    if (msg) {
      for (const auto& m : msg->GetObject()) {
        const std::string_view name(m.name.GetString(), m.name.GetStringLength());
        if (name == "role" || name == "content" || name == "tool_calls" || m.value.IsNull()) continue;
        first.AddMember(Value(m.name, a), Value(m.value, a), a);
      }
    }
    // RapidJSON refuses a null pointer even for an empty string (a message without content).
    const char* text = content.empty() ? "" : content.data();
    const size_t head = cut_at(content, piece_bytes);
    first.AddMember("content", Value(text, static_cast<rapidjson::SizeType>(head), a), a);
    delta_chunk(std::move(first), nullptr, false);
    for (size_t at = head; at < content.size();) {
      const size_t n = cut_at(content.substr(at), piece_bytes);
      Value d(rapidjson::kObjectType);
      d.AddMember("content", Value(text + at, static_cast<rapidjson::SizeType>(n), a), a);
      delta_chunk(std::move(d), nullptr, false);
      at += n;
    }
    if (msg) {
      const auto tc = msg->FindMember("tool_calls");
      if (tc != msg->MemberEnd() && tc->value.IsArray() && !tc->value.Empty()) {
        Value calls(rapidjson::kArrayType);
        rapidjson::SizeType i = 0;
        for (const auto& call : tc->value.GetArray()) {
          Value x(call, a);
          if (x.IsObject() && !x.HasMember("index")) x.AddMember("index", Value(i), a);
          calls.PushBack(x, a);
          ++i;
        }
        Value d(rapidjson::kObjectType);
        d.AddMember("tool_calls", calls, a);
        delta_chunk(std::move(d), nullptr, false);
      }
    }
    const auto fin = choice.FindMember("finish_reason");
    static const NoDestructor<Value> kStop("stop");
    const Value* finish = fin != choice.MemberEnd() && fin->value.IsString() ? &fin->value : kStop.get();
    delta_chunk(Value(rapidjson::kObjectType), finish, ci + 1 == list.Size());
  }
  if (out.empty()) out.push_back(maker.make(nullptr, usage));
  return out;
}

std::string cache_hit_completion(const CachedReply& hit) {
  rapidjson::Document d;
  if (parse_json_text(hit.completion_json, d) != JsonParse::kOk || !d.IsObject()) {
    return hit.completion_json;  // stored by this engine, so never; kept as is if it happens
  }
  auto& a = d.GetAllocator();
  auto usage = d.FindMember("usage");
  if (usage == d.MemberEnd() || !usage->value.IsObject()) {
    d.RemoveMember("usage");
    rapidjson::Value u(rapidjson::kObjectType);
    u.AddMember("prompt_tokens", hit.prompt_tokens, a);
    u.AddMember("completion_tokens", hit.completion_tokens, a);
    u.AddMember("total_tokens", hit.prompt_tokens + hit.completion_tokens, a);
    d.AddMember("usage", u, a);
    usage = d.FindMember("usage");
  }
  usage->value.RemoveMember("cost");
  usage->value.AddMember("cost", 0, a);
  d.RemoveMember("orroute_cache");
  rapidjson::Value mark(rapidjson::kObjectType);
  mark.AddMember("hit", true, a);
  mark.AddMember("saved", rapidjson::Value(hit.cost.to_string().c_str(), a), a);
  d.AddMember("orroute_cache", mark, a);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  d.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace orroute
