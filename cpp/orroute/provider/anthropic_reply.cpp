#include "orroute/provider/anthropic_reply.h"

#include <vector>

#include "orroute/provider/json_read.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using Writer = JsonWriter;

void write_str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

ApiError malformed(std::string what, std::string_view body) {
  ApiError err;
  err.kind = ApiError::Kind::kStatus;
  err.status = 502;
  err.code_json = "502";
  err.message = "malformed Anthropic reply: " + std::move(what);
  err.body = utf8_prefix(body, 2000);
  return err;
}

}  // namespace

std::optional<Usage> usage_from_anthropic(const rapidjson::Value& usage) {
  if (!usage.IsObject()) return std::nullopt;
  auto count = [&](const char* name, bool required) -> std::optional<int64_t> {
    const rapidjson::Value* v = json_member(usage, name);
    if (v == nullptr || v->IsNull()) return required ? std::nullopt : std::optional<int64_t>(0);
    const auto n = json_count(usage, name);
    if (!n || *n > kMaxUpstreamTokens) return std::nullopt;
    return n;
  };
  const auto input = count("input_tokens", true);
  const auto output = count("output_tokens", true);
  const auto writes = count("cache_creation_input_tokens", false);
  const auto reads = count("cache_read_input_tokens", false);
  if (!input || !output || !writes || !reads) return std::nullopt;
  Usage u;
  u.prompt_tokens = *input + *writes + *reads;
  u.completion_tokens = *output;
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.cached_tokens = *reads;
  u.cache_write_tokens = *writes;
  return u;
}

void write_chat_usage(Writer& w, const Usage& u) {
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(u.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(u.completion_tokens);
  w.Key("total_tokens");
  w.Int64(u.total_tokens);
  w.Key("prompt_tokens_details");
  w.StartObject();
  w.Key("cached_tokens");
  w.Int64(u.cached_tokens);
  w.Key("cache_write_tokens");
  w.Int64(u.cache_write_tokens);
  w.EndObject();
  w.EndObject();
}

const char* finish_reason_from_anthropic(std::string_view stop_reason) {
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";
}

AnthropicReply chat_completion_from_anthropic(std::string_view body, int64_t created) {
  AnthropicReply reply;
  rapidjson::Document doc;
  if (!parse_json(body, doc) || !doc.IsObject()) {
    reply.error = malformed("not a JSON object", body);
    return reply;
  }
  const rapidjson::Value* content = json_member(doc, "content");
  if (content == nullptr || !content->IsArray()) {
    reply.error = malformed("no content list", body);
    return reply;
  }
  const rapidjson::Value* usage = json_member(doc, "usage");
  const auto u = usage ? usage_from_anthropic(*usage) : std::nullopt;
  if (!u) {
    reply.error = malformed("no valid usage (a reply that cannot be priced is refused)", body);
    return reply;
  }
  reply.usage = *u;
  std::string text, reasoning;
  bool has_text = false, has_reasoning = false;
  struct ToolUse {
    std::string_view id, name;
    const rapidjson::Value* input;
  };
  std::vector<ToolUse> tools;
  for (const rapidjson::Value& block : content->GetArray()) {
    const auto type = json_string(block, "type");
    if (type == "text") {
      const auto t = json_string(block, "text");
      if (!t) {
        reply.error = malformed("a text block without text", body);
        return reply;
      }
      text.append(*t);
      has_text = true;
    } else if (type == "thinking") {
      if (const auto t = json_string(block, "thinking")) {
        reasoning.append(*t);
        has_reasoning = true;
      }
    } else if (type == "tool_use") {
      const auto id = json_string(block, "id");
      const auto name = json_string(block, "name");
      const rapidjson::Value* input = json_member(block, "input");
      if (!id || !name || input == nullptr || !input->IsObject()) {
        reply.error = malformed("a tool_use block without id, name or object input", body);
        return reply;
      }
      tools.push_back({*id, *name, input});
    }  // other block types (redacted_thinking, server tool results) have no chat equivalent
  }
  const auto stop_reason = json_string(doc, "stop_reason");

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("id");
  write_str(w, json_string(doc, "id").value_or(""));
  w.Key("object");
  w.String("chat.completion");
  w.Key("created");
  w.Int64(created);
  w.Key("model");
  write_str(w, json_string(doc, "model").value_or(""));
  w.Key("choices");
  w.StartArray();
  w.StartObject();
  w.Key("index");
  w.Int(0);
  w.Key("message");
  w.StartObject();
  w.Key("role");
  w.String("assistant");
  w.Key("content");
  if (has_text) {
    write_str(w, text);
  } else {
    w.Null();
  }
  if (has_reasoning) {
    w.Key("reasoning");
    write_str(w, reasoning);
  }
  if (!tools.empty()) {
    w.Key("tool_calls");
    w.StartArray();
    for (const ToolUse& t : tools) {
      w.StartObject();
      w.Key("id");
      write_str(w, t.id);
      w.Key("type");
      w.String("function");
      w.Key("function");
      w.StartObject();
      w.Key("name");
      write_str(w, t.name);
      w.Key("arguments");
      write_str(w, to_json(*t.input));
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.Key("finish_reason");
  if (stop_reason) {
    w.String(finish_reason_from_anthropic(*stop_reason));
  } else {
    w.Null();
  }
  w.Key("native_finish_reason");
  if (stop_reason) {
    write_str(w, *stop_reason);
  } else {
    w.Null();
  }
  w.EndObject();
  w.EndArray();
  w.Key("usage");
  write_chat_usage(w, reply.usage);
  w.EndObject();
  reply.completion_json.assign(buf.GetString(), buf.GetSize());
  return reply;
}

}  // namespace orroute
