#include "orroute/provider/anthropic_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <vector>

#include "orroute/error.h"
#include "orroute/provider/json_read.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

Value str(std::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }

Value text_block(std::string_view text, const Value* cache_control, Alloc& a) {
  Value b(rapidjson::kObjectType);
  b.AddMember("type", "text", a);
  b.AddMember("text", str(text, a), a);
  if (cache_control != nullptr && cache_control->IsObject()) b.AddMember("cache_control", Value(*cache_control, a), a);
  return b;
}

// An OpenAI image_url part -> an Anthropic image block.
Value image_block(const Value& part, const std::string& where, Alloc& a) {
  const Value* image = json_member(part, "image_url");
  std::optional<std::string_view> url = image ? json_string(*image, "url") : std::nullopt;
  if (!url && image && image->IsString()) url = std::string_view(image->GetString(), image->GetStringLength());
  if (!url) throw InvalidArgument(where + ".image_url.url must be a string");
  Value source(rapidjson::kObjectType);
  if (url->rfind("data:", 0) == 0) {
    const size_t marker = url->find(";base64,");
    if (marker == std::string_view::npos) {
      throw InvalidArgument(where + ": a data: URL must be base64 (data:<type>;base64,...)");
    }
    source.AddMember("type", "base64", a);
    source.AddMember("media_type", str(url->substr(5, marker - 5), a), a);
    source.AddMember("data", str(url->substr(marker + 8), a), a);
  } else if (url->rfind("http://", 0) == 0 || url->rfind("https://", 0) == 0) {
    source.AddMember("type", "url", a);
    source.AddMember("url", str(*url, a), a);
  } else {
    throw InvalidArgument(where + ".image_url.url must be a data: or http(s) URL");
  }
  Value b(rapidjson::kObjectType);
  b.AddMember("type", "image", a);
  b.AddMember("source", source, a);
  if (const Value* cc = json_member(part, "cache_control"); cc && cc->IsObject()) {
    b.AddMember("cache_control", Value(*cc, a), a);
  }
  return b;
}

// Appends the blocks of a message's `content` (string, null or array of parts) to `blocks`.
void add_content(const Value* content, Value& blocks, const std::string& where, bool allow_images, Alloc& a) {
  if (content == nullptr || content->IsNull()) return;
  if (content->IsString()) {
    if (content->GetStringLength() > 0) blocks.PushBack(text_block(content->GetString(), nullptr, a), a);
    return;
  }
  if (!content->IsArray()) throw InvalidArgument(where + ".content must be a string or a list of parts");
  rapidjson::SizeType i = 0;
  for (const Value& part : content->GetArray()) {
    const std::string pw = where + ".content[" + std::to_string(i++) + "]";
    const auto type = json_string(part, "type");
    if (type == "text") {
      const auto text = json_string(part, "text");
      if (!text) throw InvalidArgument(pw + ".text must be a string");
      if (!text->empty()) blocks.PushBack(text_block(*text, json_member(part, "cache_control"), a), a);
    } else if (type == "image_url" && allow_images) {
      blocks.PushBack(image_block(part, pw, a), a);
    } else {
      throw InvalidArgument(pw + ": content part type \"" + std::string(type.value_or("?")) +
                            "\" is not supported by the Anthropic provider");
    }
  }
}

// assistant.tool_calls -> tool_use blocks.
void add_tool_uses(const Value& tool_calls, Value& blocks, const std::string& where, Alloc& a) {
  if (!tool_calls.IsArray()) throw InvalidArgument(where + ".tool_calls must be a list");
  rapidjson::SizeType i = 0;
  for (const Value& call : tool_calls.GetArray()) {
    const std::string cw = where + ".tool_calls[" + std::to_string(i++) + "]";
    const Value* fn = json_member(call, "function");
    const auto id = json_string(call, "id");
    const auto name = fn ? json_string(*fn, "name") : std::nullopt;
    if (!id || !name) throw InvalidArgument(cw + " needs a string id and function.name");
    const auto args = json_string(*fn, "arguments");
    rapidjson::Document input(&a);
    if (args && !args->empty()) {
      if (!parse_json(*args, input) || !input.IsObject()) {
        throw InvalidArgument(cw + ".function.arguments must be a JSON object");
      }
    } else {
      input.SetObject();
    }
    Value b(rapidjson::kObjectType);
    b.AddMember("type", "tool_use", a);
    b.AddMember("id", str(*id, a), a);
    b.AddMember("name", str(*name, a), a);
    b.AddMember("input", Value(input, a), a);
    blocks.PushBack(b, a);
  }
}

// tool message -> tool_result block.
Value tool_result(const Value& msg, const std::string& where, Alloc& a) {
  const auto id = json_string(msg, "tool_call_id");
  if (!id) throw InvalidArgument(where + ".tool_call_id must be a string");
  Value b(rapidjson::kObjectType);
  b.AddMember("type", "tool_result", a);
  b.AddMember("tool_use_id", str(*id, a), a);
  const Value* content = json_member(msg, "content");
  if (content != nullptr && content->IsString()) {
    b.AddMember("content", str(std::string_view(content->GetString(), content->GetStringLength()), a), a);
  } else {
    Value parts(rapidjson::kArrayType);
    add_content(content, parts, where, /*allow_images=*/true, a);
    b.AddMember("content", parts, a);
  }
  return b;
}

Value tool_choice(const Value& choice, bool parallel_disabled, Alloc& a) {
  Value out(rapidjson::kObjectType);
  if (choice.IsString()) {
    const std::string_view c(choice.GetString(), choice.GetStringLength());
    if (c == "auto") {
      out.AddMember("type", "auto", a);
    } else if (c == "required") {
      out.AddMember("type", "any", a);
    } else if (c == "none") {
      out.AddMember("type", "none", a);
    } else {
      throw InvalidArgument("tool_choice must be \"auto\", \"required\", \"none\" or a function, got \"" +
                            std::string(c) + "\"");
    }
  } else {
    const Value* fn = json_member(choice, "function");
    const auto name = fn ? json_string(*fn, "name") : std::nullopt;
    if (!name) throw InvalidArgument("tool_choice.function.name must be a string");
    out.AddMember("type", "tool", a);
    out.AddMember("name", str(*name, a), a);
  }
  if (parallel_disabled && std::string_view(out["type"].GetString()) != "none") {
    out.AddMember("disable_parallel_tool_use", true, a);
  }
  return out;
}

}  // namespace

std::string anthropic_request_from_chat(std::string_view chat_json, const AnthropicRequestOptions& options) {
  if (options.model.empty()) throw InvalidArgument("the Anthropic request needs a model name");
  rapidjson::Document in;
  if (!parse_json(chat_json, in) || !in.IsObject()) {
    throw InvalidArgument("the request body must be a JSON object (nested at most " + std::to_string(kMaxJsonDepth) +
                          " levels)");
  }
  const Value* messages = json_member(in, "messages");
  if (messages == nullptr || !messages->IsArray() || messages->Empty()) {
    throw InvalidArgument("`messages` is required and must be a non-empty list");
  }
  rapidjson::Document out(rapidjson::kObjectType);
  Alloc& a = out.GetAllocator();
  out.AddMember("model", str(options.model, a), a);

  int64_t max_tokens = options.default_max_tokens;
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {  // the newer name wins
    if (const Value* v = json_member(in, field); v && !v->IsNull()) {
      const auto n = json_count(in, field);
      if (!n || *n == 0) throw InvalidArgument(std::string("`") + field + "` must be a positive integer");
      max_tokens = *n;
    }
  }
  if (max_tokens <= 0) throw InvalidArgument("the Anthropic Messages API requires `max_tokens`");
  out.AddMember("max_tokens", max_tokens, a);

  Value system(rapidjson::kArrayType);
  struct Turn {
    std::string role;
    Value blocks;
  };
  std::vector<Turn> turns;
  auto turn_for = [&](const std::string& role) -> Value& {
    if (turns.empty() || turns.back().role != role) turns.push_back({role, Value(rapidjson::kArrayType)});
    return turns.back().blocks;
  };
  rapidjson::SizeType i = 0;
  for (const Value& msg : messages->GetArray()) {
    const std::string where = "messages[" + std::to_string(i++) + "]";
    const auto role = json_string(msg, "role");
    if (!role) throw InvalidArgument(where + ".role must be a string");
    if (role == "system" || role == "developer") {
      add_content(json_member(msg, "content"), system, where, /*allow_images=*/false, a);
    } else if (role == "user") {
      add_content(json_member(msg, "content"), turn_for("user"), where, true, a);
    } else if (role == "assistant") {
      Value& blocks = turn_for("assistant");
      add_content(json_member(msg, "content"), blocks, where, false, a);
      if (const Value* calls = json_member(msg, "tool_calls"); calls && !calls->IsNull()) {
        add_tool_uses(*calls, blocks, where, a);
      }
    } else if (role == "tool") {
      turn_for("user").PushBack(tool_result(msg, where, a), a);
    } else {
      throw InvalidArgument(where + ".role \"" + std::string(*role) + "\" is not supported by the Anthropic provider");
    }
  }
  if (!system.Empty()) out.AddMember("system", system, a);
  Value msgs(rapidjson::kArrayType);
  for (Turn& t : turns) {
    if (t.blocks.Empty()) continue;
    Value m(rapidjson::kObjectType);
    m.AddMember("role", str(t.role, a), a);
    m.AddMember("content", t.blocks, a);
    msgs.PushBack(m, a);
  }
  if (msgs.Empty()) throw InvalidArgument("`messages` has no user or assistant content for the Anthropic provider");
  out.AddMember("messages", msgs, a);

  if (const Value* stop = json_member(in, "stop"); stop && !stop->IsNull()) {
    Value seqs(rapidjson::kArrayType);
    if (stop->IsString()) {
      seqs.PushBack(Value(*stop, a), a);
    } else if (stop->IsArray()) {
      for (const Value& s : stop->GetArray()) {
        if (!s.IsString()) throw InvalidArgument("`stop` must be a string or a list of strings");
        seqs.PushBack(Value(s, a), a);
      }
    } else {
      throw InvalidArgument("`stop` must be a string or a list of strings");
    }
    out.AddMember("stop_sequences", seqs, a);
  }
  for (const char* field : {"temperature", "top_p", "top_k"}) {
    if (const Value* v = json_member(in, field); v && !v->IsNull()) {
      if (!v->IsNumber()) throw InvalidArgument(std::string("`") + field + "` must be a number");
      out.AddMember(rapidjson::StringRef(field), Value(*v, a), a);
    }
  }
  if (const Value* v = json_member(in, "stream"); v && v->IsBool()) out.AddMember("stream", v->GetBool(), a);
  if (const auto user = json_string(in, "user")) {
    Value md(rapidjson::kObjectType);
    md.AddMember("user_id", str(*user, a), a);
    out.AddMember("metadata", md, a);
  }
  if (const Value* rf = json_member(in, "response_format"); rf && !rf->IsNull() && json_string(*rf, "type") != "text") {
    throw InvalidArgument("response_format other than text is not supported by the Anthropic provider");
  }

  const Value* tools = json_member(in, "tools");
  if (tools != nullptr && !tools->IsNull()) {
    if (!tools->IsArray()) throw InvalidArgument("`tools` must be a list");
    Value list(rapidjson::kArrayType);
    rapidjson::SizeType t = 0;
    for (const Value& tool : tools->GetArray()) {
      const std::string where = "tools[" + std::to_string(t++) + "]";
      const Value* fn = json_member(tool, "function");
      const auto name = fn ? json_string(*fn, "name") : std::nullopt;
      if (!name) throw InvalidArgument(where + ".function.name must be a string");
      Value out_tool(rapidjson::kObjectType);
      out_tool.AddMember("name", str(*name, a), a);
      if (const auto desc = json_string(*fn, "description")) out_tool.AddMember("description", str(*desc, a), a);
      const Value* params = json_member(*fn, "parameters");
      if (params != nullptr && params->IsObject()) {
        out_tool.AddMember("input_schema", Value(*params, a), a);
      } else {
        Value schema(rapidjson::kObjectType);
        schema.AddMember("type", "object", a);
        out_tool.AddMember("input_schema", schema, a);
      }
      if (const Value* cc = json_member(tool, "cache_control"); cc && cc->IsObject()) {
        out_tool.AddMember("cache_control", Value(*cc, a), a);
      }
      list.PushBack(out_tool, a);
    }
    if (!list.Empty()) out.AddMember("tools", list, a);
  }
  const Value* parallel = json_member(in, "parallel_tool_calls");
  const bool parallel_disabled = parallel != nullptr && parallel->IsFalse();
  if (const Value* choice = json_member(in, "tool_choice"); choice && !choice->IsNull()) {
    out.AddMember("tool_choice", tool_choice(*choice, parallel_disabled, a), a);
  } else if (parallel_disabled && out.HasMember("tools")) {
    Value c(rapidjson::kObjectType);
    c.AddMember("type", "auto", a);
    c.AddMember("disable_parallel_tool_use", true, a);
    out.AddMember("tool_choice", c, a);
  }

  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  out.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace orroute
