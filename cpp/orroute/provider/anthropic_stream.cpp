#include "orroute/provider/anthropic_stream.h"

#include <rapidjson/stringbuffer.h>

#include "orroute/provider/anthropic_error.h"
#include "orroute/provider/anthropic_reply.h"
#include "orroute/provider/json_read.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using Writer = JsonWriter;

void write_str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

std::string take(rapidjson::StringBuffer& buf) { return std::string(buf.GetString(), buf.GetSize()); }

}  // namespace

bool AnthropicStreamTranslator::fail(std::string why) {
  ApiError err;
  err.kind = ApiError::Kind::kStream;
  err.status = 502;
  err.code_json = "502";
  err.message = "malformed Anthropic stream: " + std::move(why);
  error_ = std::move(err);
  return false;
}

bool AnthropicStreamTranslator::merge_usage(const rapidjson::Value& usage) {
  if (!usage.IsObject()) return false;
  struct Field {
    const char* name;
    int64_t* into;
  };
  for (const Field f : {Field{"input_tokens", &input_}, Field{"output_tokens", &output_},
                        Field{"cache_creation_input_tokens", &cache_writes_},
                        Field{"cache_read_input_tokens", &cache_reads_}}) {
    const rapidjson::Value* v = json_member(usage, f.name);
    if (v == nullptr || v->IsNull()) continue;
    const auto n = json_count(usage, f.name);
    if (!n || *n > kMaxUpstreamTokens) return false;
    *f.into = *n;  // Anthropic's counts are cumulative: the latest is the total
  }
  has_usage_ = true;
  return true;
}

std::optional<Usage> AnthropicStreamTranslator::usage() const {
  if (!has_usage_) return std::nullopt;
  Usage u;
  u.prompt_tokens = input_ + cache_writes_ + cache_reads_;
  u.completion_tokens = output_;
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.cached_tokens = cache_reads_;
  u.cache_write_tokens = cache_writes_;
  return u;
}

void AnthropicStreamTranslator::begin_chunk(Writer& w) const {
  w.StartObject();
  w.Key("id");
  write_str(w, id_);
  w.Key("object");
  w.String("chat.completion.chunk");
  w.Key("created");
  w.Int64(created_);
  w.Key("model");
  write_str(w, model_);
}

bool AnthropicStreamTranslator::translate(std::string_view data, std::vector<std::string>& out) {
  if (error_) return false;
  rapidjson::Document ev;
  if (!parse_json(data, ev) || !ev.IsObject()) return fail("an event that is not a JSON object");
  const auto type = json_string(ev, "type");
  if (!type) return fail("an event without a type");

  // A chunk with one choice whose delta the caller writes.
  auto delta_chunk = [&](auto&& write_delta, const char* finish_reason) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    begin_chunk(w);
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(0);
    w.Key("delta");
    w.StartObject();
    write_delta(w);
    w.EndObject();
    w.Key("finish_reason");
    if (finish_reason != nullptr) {
      w.String(finish_reason);
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    out.push_back(take(buf));
  };

  if (*type == "ping" || *type == "content_block_stop") return true;
  if (*type == "error") {
    error_ = anthropic_error_from_event(ev);
    rapidjson::StringBuffer buf;
    Writer w(buf);
    begin_chunk(w);
    w.Key("error");
    w.StartObject();
    w.Key("code");
    w.Int(error_->status);
    w.Key("message");
    write_str(w, error_->message);
    w.Key("metadata");
    w.StartObject();
    w.Key("error_type");
    w.RawValue(error_->code_json.data(), error_->code_json.size(), rapidjson::kStringType);
    w.EndObject();
    w.EndObject();
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(0);
    w.Key("delta");
    w.StartObject();
    w.Key("content");
    w.String("");
    w.EndObject();
    w.Key("finish_reason");
    w.String("error");
    w.EndObject();
    w.EndArray();
    w.EndObject();
    out.push_back(take(buf));
    return false;
  }
  if (*type == "message_start") {
    const rapidjson::Value* msg = json_member(ev, "message");
    if (msg == nullptr || !msg->IsObject()) return fail("message_start without a message");
    if (started_) return fail("a second message_start");
    started_ = true;
    id_ = utf8_prefix(json_string(*msg, "id").value_or(""), 256);
    model_ = utf8_prefix(json_string(*msg, "model").value_or(""), 256);
    if (const rapidjson::Value* u = json_member(*msg, "usage"); u && !u->IsNull() && !merge_usage(*u)) {
      return fail("message_start with an invalid usage");
    }
    delta_chunk(
        [](Writer& w) {
          w.Key("role");
          w.String("assistant");
          w.Key("content");
          w.String("");
        },
        nullptr);
    return true;
  }
  if (!started_) return fail("\"" + utf8_prefix(*type, 64) + "\" before message_start");
  if (finished_) return fail("an event after message_stop");
  if (*type == "content_block_start") {
    const auto index = json_count(ev, "index");
    const rapidjson::Value* block = json_member(ev, "content_block");
    if (!index || block == nullptr || !block->IsObject()) return fail("content_block_start without index or block");
    if (++blocks_seen_ > static_cast<int64_t>(kMaxBlocks)) return fail("too many content blocks");
    const auto btype = json_string(*block, "type");
    if (btype == "tool_use") {
      const auto id = json_string(*block, "id");
      const auto name = json_string(*block, "name");
      if (!id || !name) return fail("a tool_use block without id or name");
      if (tool_index_.count(*index) != 0) return fail("a content block index started twice");
      const int64_t tool = static_cast<int64_t>(tool_index_.size());
      tool_index_[*index] = tool;
      delta_chunk(
          [&](Writer& w) {
            w.Key("tool_calls");
            w.StartArray();
            w.StartObject();
            w.Key("index");
            w.Int64(tool);
            w.Key("id");
            write_str(w, *id);
            w.Key("type");
            w.String("function");
            w.Key("function");
            w.StartObject();
            w.Key("name");
            write_str(w, *name);
            w.Key("arguments");
            w.String("");
            w.EndObject();
            w.EndObject();
            w.EndArray();
          },
          nullptr);
    } else if (btype == "text") {
      if (const auto text = json_string(*block, "text"); text && !text->empty()) {
        delta_chunk(
            [&](Writer& w) {
              w.Key("content");
              write_str(w, *text);
            },
            nullptr);
      }
    }
    return true;
  }
  if (*type == "content_block_delta") {
    const auto index = json_count(ev, "index");
    const rapidjson::Value* delta = json_member(ev, "delta");
    if (!index || delta == nullptr || !delta->IsObject()) return fail("content_block_delta without index or delta");
    const auto dtype = json_string(*delta, "type");
    if (dtype == "text_delta" || dtype == "thinking_delta") {
      const bool text = dtype == "text_delta";
      const auto piece = json_string(*delta, text ? "text" : "thinking");
      if (!piece) return fail("a text or thinking delta without its string");
      delta_chunk(
          [&](Writer& w) {
            w.Key(text ? "content" : "reasoning");
            write_str(w, *piece);
          },
          nullptr);
    } else if (dtype == "input_json_delta") {
      const auto it = tool_index_.find(*index);
      const auto partial = json_string(*delta, "partial_json");
      if (it == tool_index_.end()) return fail("input_json_delta for a block that is not a tool_use");
      if (!partial) return fail("input_json_delta without partial_json");
      const int64_t tool = it->second;
      delta_chunk(
          [&](Writer& w) {
            w.Key("tool_calls");
            w.StartArray();
            w.StartObject();
            w.Key("index");
            w.Int64(tool);
            w.Key("function");
            w.StartObject();
            w.Key("arguments");
            write_str(w, *partial);
            w.EndObject();
            w.EndObject();
            w.EndArray();
          },
          nullptr);
    }  // signature_delta, citations_delta: nothing in the chat shape
    return true;
  }
  if (*type == "message_delta") {
    const rapidjson::Value* delta = json_member(ev, "delta");
    if (const rapidjson::Value* u = json_member(ev, "usage"); u && !u->IsNull() && !merge_usage(*u)) {
      return fail("message_delta with an invalid usage");
    }
    const auto stop_reason = delta ? json_string(*delta, "stop_reason") : std::nullopt;
    if (stop_reason) {
      delta_chunk([](Writer&) {}, finish_reason_from_anthropic(*stop_reason));
    }
    if (const auto u = usage()) {
      rapidjson::StringBuffer buf;
      Writer w(buf);
      begin_chunk(w);
      w.Key("choices");
      w.StartArray();
      w.EndArray();
      w.Key("usage");
      write_chat_usage(w, *u);
      w.EndObject();
      out.push_back(take(buf));
    }
    return true;
  }
  if (*type == "message_stop") {
    finished_ = true;
    return true;
  }
  return true;  // an event type added after this was written
}

}  // namespace orroute
