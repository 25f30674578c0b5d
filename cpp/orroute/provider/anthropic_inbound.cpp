#include "orroute/provider/anthropic_inbound.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include "orroute/error.h"
#include "orroute/provider/json_read.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

Value str(std::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }

std::string at(const std::string& where, rapidjson::SizeType i) { return where + "[" + std::to_string(i) + "]"; }

std::string_view need_string(const Value& obj, const char* name, const std::string& where) {
  const auto s = json_string(obj, name);
  if (!s) throw InvalidArgument(where + "." + name + " must be a string");
  return *s;
}

Value text_part(std::string_view text, const Value* cache_control, Alloc& a) {
  Value p(rapidjson::kObjectType);
  p.AddMember("type", "text", a);
  p.AddMember("text", str(text, a), a);
  if (cache_control != nullptr && cache_control->IsObject()) p.AddMember("cache_control", Value(*cache_control, a), a);
  return p;
}

// An Anthropic image block -> an OpenAI image_url part.
Value image_part(const Value& block, const std::string& where, Alloc& a) {
  const Value* source = json_member(block, "source");
  if (source == nullptr || !source->IsObject()) throw InvalidArgument(where + ".source must be an object");
  const std::string_view type = need_string(*source, "type", where + ".source");
  std::string url;
  if (type == "base64") {
    url = "data:" + std::string(need_string(*source, "media_type", where + ".source")) + ";base64," +
          std::string(need_string(*source, "data", where + ".source"));
  } else if (type == "url") {
    url = need_string(*source, "url", where + ".source");
  } else {
    throw InvalidArgument(where + ".source.type must be \"base64\" or \"url\"");
  }
  Value image(rapidjson::kObjectType);
  image.AddMember("url", str(url, a), a);
  Value p(rapidjson::kObjectType);
  p.AddMember("type", "image_url", a);
  p.AddMember("image_url", image, a);
  if (const Value* cc = json_member(block, "cache_control"); cc && cc->IsObject()) {
    p.AddMember("cache_control", Value(*cc, a), a);
  }
  return p;
}

// A tool_result block's content (a string or text blocks) as a tool message's content string.
std::string tool_result_text(const Value& block, const std::string& where) {
  const Value* content = json_member(block, "content");
  if (content == nullptr || content->IsNull()) return "";
  if (content->IsString()) return std::string(content->GetString(), content->GetStringLength());
  if (!content->IsArray()) throw InvalidArgument(where + ".content must be a string or a list of blocks");
  std::string text;
  rapidjson::SizeType i = 0;
  for (const Value& b : content->GetArray()) {
    const std::string bw = at(where + ".content", i++);
    if (json_string(b, "type") != "text") {
      throw InvalidArgument(bw + ": only text blocks can be relayed in a tool_result");
    }
    if (!text.empty()) text += "\n";
    text += need_string(b, "text", bw);
  }
  return text;
}

// The `content` of one turn as a list of blocks (a string is one text block).
struct Turn {
  Value parts{rapidjson::kArrayType};       // text / image_url parts
  Value tool_calls{rapidjson::kArrayType};  // assistant tool_use blocks
  Value tools_out{rapidjson::kArrayType};   // user tool_result blocks -> tool messages
};

void read_turn(const Value& msg, bool assistant, const std::string& where, Turn& t, Alloc& a) {
  const Value* content = json_member(msg, "content");
  if (content == nullptr) throw InvalidArgument(where + ".content is required");
  if (content->IsString()) {
    t.parts.PushBack(text_part(std::string_view(content->GetString(), content->GetStringLength()), nullptr, a), a);
    return;
  }
  if (!content->IsArray()) throw InvalidArgument(where + ".content must be a string or a list of blocks");
  rapidjson::SizeType i = 0;
  for (const Value& block : content->GetArray()) {
    const std::string bw = at(where + ".content", i++);
    if (!block.IsObject()) throw InvalidArgument(bw + " must be an object");
    const std::string_view type = need_string(block, "type", bw);
    if (type == "text") {
      t.parts.PushBack(text_part(need_string(block, "text", bw), json_member(block, "cache_control"), a), a);
    } else if (type == "image" && !assistant) {
      t.parts.PushBack(image_part(block, bw, a), a);
    } else if (type == "tool_use" && assistant) {
      const Value* input = json_member(block, "input");
      if (input == nullptr || !input->IsObject()) throw InvalidArgument(bw + ".input must be an object");
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      input->Accept(w);
      Value fn(rapidjson::kObjectType);
      fn.AddMember("name", str(need_string(block, "name", bw), a), a);
      fn.AddMember("arguments", str(std::string_view(buf.GetString(), buf.GetSize()), a), a);
      Value call(rapidjson::kObjectType);
      call.AddMember("id", str(need_string(block, "id", bw), a), a);
      call.AddMember("type", "function", a);
      call.AddMember("function", fn, a);
      t.tool_calls.PushBack(call, a);
    } else if (type == "tool_result" && !assistant) {
      std::string text = tool_result_text(block, bw);
      if (const Value* e = json_member(block, "is_error"); e && e->IsBool() && e->GetBool()) {
        text = "Error: " + text;  // chat completions have no error flag on a tool message
      }
      Value m(rapidjson::kObjectType);
      m.AddMember("role", "tool", a);
      m.AddMember("tool_call_id", str(need_string(block, "tool_use_id", bw), a), a);
      m.AddMember("content", str(text, a), a);
      t.tools_out.PushBack(m, a);
    } else if ((type == "thinking" || type == "redacted_thinking") && assistant) {
      // Anthropic's signed reasoning: meaningless to other providers, dropped.
    } else {
      throw InvalidArgument(bw + ": block type \"" + std::string(type) + "\" is not supported in a " +
                            (assistant ? "assistant" : "user") + " turn");
    }
  }
}

// All-text parts collapse to a plain string (what every chat provider accepts); parts with images
// or cache_control stay a list.
Value chat_content(Value& parts, Alloc& a) {
  bool plain = true;
  for (const Value& p : parts.GetArray()) {
    if (json_string(p, "type") != "text" || json_member(p, "cache_control") != nullptr) plain = false;
  }
  if (!plain) return Value(parts, a);
  std::string text;
  for (const Value& p : parts.GetArray()) text += json_string(p, "text").value_or("");
  return str(text, a);
}

void add_system(const Value& system, Value& messages, Alloc& a) {
  Value m(rapidjson::kObjectType);
  m.AddMember("role", "system", a);
  if (system.IsString()) {
    m.AddMember("content", Value(system, a), a);
  } else if (system.IsArray()) {
    Value parts(rapidjson::kArrayType);
    rapidjson::SizeType i = 0;
    for (const Value& b : system.GetArray()) {
      const std::string bw = at("system", i++);
      if (json_string(b, "type") != "text") throw InvalidArgument(bw + ": system blocks must be text");
      parts.PushBack(text_part(need_string(b, "text", bw), json_member(b, "cache_control"), a), a);
    }
    m.AddMember("content", chat_content(parts, a), a);
  } else {
    throw InvalidArgument("system must be a string or a list of text blocks");
  }
  messages.PushBack(m, a);
}

Value convert_tools(const Value& tools, Alloc& a) {
  if (!tools.IsArray()) throw InvalidArgument("tools must be a list");
  Value out(rapidjson::kArrayType);
  rapidjson::SizeType i = 0;
  for (const Value& t : tools.GetArray()) {
    const std::string tw = at("tools", i++);
    if (!t.IsObject()) throw InvalidArgument(tw + " must be an object");
    if (const auto type = json_string(t, "type"); type && *type != "custom") {
      throw InvalidArgument(tw + ": server tool \"" + std::string(*type) + "\" runs only at Anthropic");
    }
    const Value* schema = json_member(t, "input_schema");
    if (schema == nullptr || !schema->IsObject()) throw InvalidArgument(tw + ".input_schema must be an object");
    Value fn(rapidjson::kObjectType);
    fn.AddMember("name", str(need_string(t, "name", tw), a), a);
    if (const auto d = json_string(t, "description")) fn.AddMember("description", str(*d, a), a);
    fn.AddMember("parameters", Value(*schema, a), a);
    Value tool(rapidjson::kObjectType);
    tool.AddMember("type", "function", a);
    tool.AddMember("function", fn, a);
    out.PushBack(tool, a);
  }
  return out;
}

// tool_choice -> chat tool_choice; sets `parallel` false when parallel tool use is disabled.
Value convert_tool_choice(const Value& choice, bool& no_parallel, Alloc& a) {
  if (!choice.IsObject()) throw InvalidArgument("tool_choice must be an object");
  if (const Value* d = json_member(choice, "disable_parallel_tool_use"); d && d->IsBool()) no_parallel = d->GetBool();
  const std::string_view type = need_string(choice, "type", "tool_choice");
  if (type == "auto") return Value("auto");
  if (type == "any") return Value("required");
  if (type == "none") return Value("none");
  if (type == "tool") {
    Value fn(rapidjson::kObjectType);
    fn.AddMember("name", str(need_string(choice, "name", "tool_choice"), a), a);
    Value c(rapidjson::kObjectType);
    c.AddMember("type", "function", a);
    c.AddMember("function", fn, a);
    return c;
  }
  throw InvalidArgument("tool_choice.type must be auto, any, none or tool");
}

}  // namespace

std::string chat_request_from_anthropic(std::string_view messages_json) {
  rapidjson::Document in;
  if (!parse_json(messages_json, in)) throw InvalidArgument("body: not valid JSON (or nested too deeply)");
  if (!in.IsObject()) throw InvalidArgument("body: must be a JSON object");
  rapidjson::Document out(rapidjson::kObjectType);
  Alloc& a = out.GetAllocator();

  out.AddMember("model", str(need_string(in, "model", "body"), a), a);
  Value messages(rapidjson::kArrayType);
  if (const Value* system = json_member(in, "system"); system && !system->IsNull()) add_system(*system, messages, a);
  const Value* msgs = json_member(in, "messages");
  if (msgs == nullptr || !msgs->IsArray() || msgs->Empty()) throw InvalidArgument("messages must be a non-empty list");
  rapidjson::SizeType i = 0;
  for (const Value& msg : msgs->GetArray()) {
    const std::string mw = at("messages", i++);
    if (!msg.IsObject()) throw InvalidArgument(mw + " must be an object");
    const std::string_view role = need_string(msg, "role", mw);
    if (role != "user" && role != "assistant") throw InvalidArgument(mw + ".role must be \"user\" or \"assistant\"");
    const bool assistant = role == "assistant";
    Turn t;
    read_turn(msg, assistant, mw, t, a);
    for (Value& tool_msg : t.tools_out.GetArray()) messages.PushBack(tool_msg, a);
    if (t.parts.Empty() && t.tool_calls.Empty()) continue;  // a turn of tool results only
    Value m(rapidjson::kObjectType);
    m.AddMember("role", str(role, a), a);
    if (t.parts.Empty()) {
      m.AddMember("content", Value(rapidjson::kNullType), a);
    } else {
      m.AddMember("content", chat_content(t.parts, a), a);
    }
    if (!t.tool_calls.Empty()) m.AddMember("tool_calls", t.tool_calls, a);
    messages.PushBack(m, a);
  }
  out.AddMember("messages", messages, a);

  const auto max_tokens = json_count(in, "max_tokens");
  if (!max_tokens || *max_tokens < 1) throw InvalidArgument("max_tokens must be a positive integer");
  out.AddMember("max_tokens", Value(*max_tokens), a);
  for (const char* name : {"temperature", "top_p", "top_k"}) {
    if (const Value* v = json_member(in, name); v && !v->IsNull()) {
      if (!v->IsNumber()) throw InvalidArgument(std::string(name) + " must be a number");
      out.AddMember(rapidjson::StringRef(name), Value(*v, a), a);
    }
  }
  if (const Value* stop = json_member(in, "stop_sequences"); stop && !stop->IsNull()) {
    if (!stop->IsArray()) throw InvalidArgument("stop_sequences must be a list of strings");
    for (const Value& s : stop->GetArray()) {
      if (!s.IsString()) throw InvalidArgument("stop_sequences must be a list of strings");
    }
    if (!stop->Empty()) out.AddMember("stop", Value(*stop, a), a);
  }
  if (const Value* s = json_member(in, "stream"); s && !s->IsNull()) {
    if (!s->IsBool()) throw InvalidArgument("stream must be a boolean");
    out.AddMember("stream", s->GetBool(), a);
  }
  if (const Value* md = json_member(in, "metadata"); md && md->IsObject()) {
    if (const auto user = json_string(*md, "user_id")) out.AddMember("user", str(*user, a), a);
  }
  bool no_parallel = false;
  if (const Value* tools = json_member(in, "tools"); tools && !tools->IsNull()) {
    Value converted = convert_tools(*tools, a);
    if (!converted.Empty()) out.AddMember("tools", converted, a);
  }
  if (const Value* choice = json_member(in, "tool_choice"); choice && !choice->IsNull()) {
    out.AddMember("tool_choice", convert_tool_choice(*choice, no_parallel, a), a);
  }
  if (no_parallel) out.AddMember("parallel_tool_calls", false, a);
  if (const Value* thinking = json_member(in, "thinking"); thinking && thinking->IsObject()) {
    if (json_string(*thinking, "type") == "enabled") {
      const auto budget = json_count(*thinking, "budget_tokens");
      if (!budget) throw InvalidArgument("thinking.budget_tokens must be a non-negative integer");
      Value reasoning(rapidjson::kObjectType);
      reasoning.AddMember("max_tokens", Value(*budget), a);
      out.AddMember("reasoning", reasoning, a);
    }
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  out.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace orroute
