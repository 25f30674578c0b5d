#include "orroute/provider/anthropic_outbound.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>

#include "orroute/error.h"
#include "orroute/provider/json_read.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using rapidjson::Value;
using Writer = JsonWriter;

void write_str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

// Anthropic's usage object from chat usage: its input_tokens excludes cache reads and writes.
void write_usage(Writer& w, const Usage& u) {
  const int64_t reads = std::max<int64_t>(0, u.cached_tokens);
  const int64_t writes = std::max<int64_t>(0, u.cache_write_tokens);
  w.StartObject();
  w.Key("input_tokens");
  w.Int64(std::max<int64_t>(0, u.prompt_tokens - reads - writes));
  w.Key("output_tokens");
  w.Int64(std::max<int64_t>(0, u.completion_tokens));
  w.Key("cache_creation_input_tokens");
  w.Int64(writes);
  w.Key("cache_read_input_tokens");
  w.Int64(reads);
  w.EndObject();
}

std::string message_id(std::string_view chat_id) {
  if (chat_id.empty()) return "msg_orroute";
  return chat_id.rfind("msg_", 0) == 0 ? std::string(chat_id) : "msg_" + std::string(chat_id);
}

void event(std::string& out, const char* type, const rapidjson::StringBuffer& data) {
  out += "event: ";
  out += type;
  out += "\ndata: ";
  out.append(data.GetString(), data.GetSize());
  out += "\n\n";
}

const Value* first_choice(const Value& doc) {
  const Value* choices = json_member(doc, "choices");
  if (choices == nullptr || !choices->IsArray() || choices->Empty() || !(*choices)[0].IsObject()) return nullptr;
  return &(*choices)[0];
}

}  // namespace

const char* anthropic_stop_reason(std::string_view finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return "end_turn";
}

const char* anthropic_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 503:
    case 529: return "overloaded_error";
    default: return "api_error";
  }
}

std::string anthropic_error_body(int status, std::string_view message) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("error");
  w.Key("error");
  w.StartObject();
  w.Key("type");
  w.String(anthropic_error_type(status));
  w.Key("message");
  write_str(w, message);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string anthropic_message_from_chat(std::string_view completion_json) {
  rapidjson::Document doc;
  if (!parse_json(completion_json, doc) || !doc.IsObject()) throw ParseError("chat completion: not a JSON object");
  const Value* choice = first_choice(doc);
  if (choice == nullptr) throw ParseError("chat completion: no choice");
  const Value* usage = json_member(doc, "usage");
  if (usage == nullptr || !usage->IsObject()) throw ParseError("chat completion: no usage");
  const Usage u = parse_usage(*usage);
  if (!u.token_problem.empty()) throw ParseError("chat completion: usage." + u.token_problem);
  const Value* message = json_member(*choice, "message");
  if (message == nullptr || !message->IsObject()) throw ParseError("chat completion: choices[0].message missing");
  if (json_string(*choice, "finish_reason").value_or("") == "error") {
    // OpenRouter's failure after output began: the text so far is not a finished turn
    const Value* error = json_member(*choice, "error");
    const auto said = error ? json_string(*error, "message") : std::nullopt;
    throw ParseError("the upstream failed mid-answer: " + std::string(said.value_or("no reason given")));
  }

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("id");
  write_str(w, message_id(json_string(doc, "id").value_or("")));
  w.Key("type");
  w.String("message");
  w.Key("role");
  w.String("assistant");
  w.Key("model");
  write_str(w, json_string(doc, "model").value_or(""));
  w.Key("content");
  w.StartArray();
  if (const auto text = json_string(*message, "content"); text && !text->empty()) {
    w.StartObject();
    w.Key("type");
    w.String("text");
    w.Key("text");
    write_str(w, *text);
    w.EndObject();
  }
  if (const Value* calls = json_member(*message, "tool_calls"); calls && calls->IsArray()) {
    rapidjson::SizeType i = 0;
    for (const Value& call : calls->GetArray()) {
      const std::string where = "chat completion: tool_calls[" + std::to_string(i++) + "]";
      const Value* fn = json_member(call, "function");
      const auto id = json_string(call, "id");
      const auto name = fn ? json_string(*fn, "name") : std::nullopt;
      if (!id || !name) throw ParseError(where + " has no id or function.name");
      const auto args = json_string(*fn, "arguments");
      rapidjson::Document input;
      if (args && !args->empty()) {
        if (!parse_json(*args, input) || !input.IsObject()) {
          throw ParseError(where + ": the model's arguments are not a JSON object");
        }
      } else {
        input.SetObject();
      }
      w.StartObject();
      w.Key("type");
      w.String("tool_use");
      w.Key("id");
      write_str(w, *id);
      w.Key("name");
      write_str(w, *name);
      w.Key("input");
      input.Accept(w);
      w.EndObject();
    }
  }
  w.EndArray();
  w.Key("stop_reason");
  w.String(anthropic_stop_reason(json_string(*choice, "finish_reason").value_or("")));
  w.Key("stop_sequence");
  w.Null();
  w.Key("usage");
  write_usage(w, u);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void AnthropicEventWriter::start(std::string& out) {
  if (started_) return;
  started_ = true;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("message_start");
  w.Key("message");
  w.StartObject();
  w.Key("id");
  write_str(w, message_id(id_));
  w.Key("type");
  w.String("message");
  w.Key("role");
  w.String("assistant");
  w.Key("model");
  write_str(w, model_);
  w.Key("content");
  w.StartArray();
  w.EndArray();
  w.Key("stop_reason");
  w.Null();
  w.Key("stop_sequence");
  w.Null();
  w.Key("usage");  // known only at the end: message_delta carries it
  write_usage(w, Usage{});
  w.EndObject();
  w.EndObject();
  event(out, "message_start", buf);
}

void AnthropicEventWriter::stop_text(std::string& out) {
  if (text_block_ < 0) return;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("content_block_stop");
  w.Key("index");
  w.Int64(text_block_);
  w.EndObject();
  event(out, "content_block_stop", buf);
  text_block_ = -1;
}

std::string AnthropicEventWriter::chunk(std::string_view chunk_json) {
  std::string out;
  if (done_) return out;
  rapidjson::Document doc;
  if (!parse_json(chunk_json, doc) || !doc.IsObject()) return out;
  if (const Value* err = json_member(doc, "error"); err && err->IsObject()) {
    const auto code = json_count(*err, "code");
    return fail(code && *code >= 400 && *code < 600 ? static_cast<int>(*code) : 500,
                json_string(*err, "message").value_or("the upstream stream failed"));
  }
  if (!started_) {
    if (const auto id = json_string(doc, "id")) id_ = utf8_prefix(*id, 200);
    if (const auto model = json_string(doc, "model"); model && !model->empty()) model_ = utf8_prefix(*model, 200);
  }
  if (const Value* usage = json_member(doc, "usage"); usage && usage->IsObject()) {
    const Usage u = parse_usage(*usage);
    if (u.token_problem.empty()) usage_ = u;
  }
  const Value* choice = first_choice(doc);
  if (choice == nullptr) return out;
  if (const auto reason = json_string(*choice, "finish_reason")) stop_reason_ = anthropic_stop_reason(*reason);
  const Value* delta = json_member(*choice, "delta");
  if (delta == nullptr || !delta->IsObject()) return out;

  if (const auto text = json_string(*delta, "content"); text && !text->empty()) {
    start(out);
    if (text_block_ < 0) {
      text_block_ = next_block_++;
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("type");
      w.String("content_block_start");
      w.Key("index");
      w.Int64(text_block_);
      w.Key("content_block");
      w.StartObject();
      w.Key("type");
      w.String("text");
      w.Key("text");
      w.String("");
      w.EndObject();
      w.EndObject();
      event(out, "content_block_start", buf);
    }
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("type");
    w.String("content_block_delta");
    w.Key("index");
    w.Int64(text_block_);
    w.Key("delta");
    w.StartObject();
    w.Key("type");
    w.String("text_delta");
    w.Key("text");
    write_str(w, *text);
    w.EndObject();
    w.EndObject();
    event(out, "content_block_delta", buf);
  }

  const Value* calls = json_member(*delta, "tool_calls");
  if (calls == nullptr || !calls->IsArray()) return out;
  for (const Value& call : calls->GetArray()) {
    const int64_t k = json_count(call, "index").value_or(0);
    const Value* fn = json_member(call, "function");
    auto it = tool_blocks_.find(k);
    if (it == tool_blocks_.end()) {
      if (tool_blocks_.size() >= kMaxBlocks) return out + fail(502, "too many tool calls in one reply");
      start(out);
      stop_text(out);
      it = tool_blocks_.emplace(k, next_block_++).first;
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("type");
      w.String("content_block_start");
      w.Key("index");
      w.Int64(it->second);
      w.Key("content_block");
      w.StartObject();
      w.Key("type");
      w.String("tool_use");
      w.Key("id");
      const auto id = json_string(call, "id");
      write_str(w, id ? std::string(*id) : "toolu_" + std::to_string(k));
      w.Key("name");
      write_str(w, fn ? json_string(*fn, "name").value_or("") : "");
      w.Key("input");
      w.StartObject();
      w.EndObject();
      w.EndObject();
      w.EndObject();
      event(out, "content_block_start", buf);
    }
    const auto args = fn ? json_string(*fn, "arguments") : std::nullopt;
    if (!args || args->empty()) continue;
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("type");
    w.String("content_block_delta");
    w.Key("index");
    w.Int64(it->second);
    w.Key("delta");
    w.StartObject();
    w.Key("type");
    w.String("input_json_delta");
    w.Key("partial_json");
    write_str(w, *args);
    w.EndObject();
    w.EndObject();
    event(out, "content_block_delta", buf);
  }
  return out;
}

std::string AnthropicEventWriter::finish() {
  std::string out;
  if (done_) return out;
  done_ = true;
  start(out);
  stop_text(out);
  for (const auto& [k, block] : tool_blocks_) {
    (void)k;
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("type");
    w.String("content_block_stop");
    w.Key("index");
    w.Int64(block);
    w.EndObject();
    event(out, "content_block_stop", buf);
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("message_delta");
  w.Key("delta");
  w.StartObject();
  w.Key("stop_reason");
  write_str(w, stop_reason_);
  w.Key("stop_sequence");
  w.Null();
  w.EndObject();
  w.Key("usage");
  write_usage(w, usage_);
  w.EndObject();
  event(out, "message_delta", buf);
  rapidjson::StringBuffer stop;
  Writer ws(stop);
  ws.StartObject();
  ws.Key("type");
  ws.String("message_stop");
  ws.EndObject();
  event(out, "message_stop", stop);
  return out;
}

std::string AnthropicEventWriter::fail(int status, std::string_view message) {
  std::string out;
  if (done_) return out;
  done_ = true;
  const std::string body = anthropic_error_body(status, utf8_prefix(message, 2000));
  out += "event: error\ndata: " + body + "\n\n";
  return out;
}

}  // namespace orroute
