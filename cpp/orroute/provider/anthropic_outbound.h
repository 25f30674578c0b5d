// Chat-completions replies -> Anthropic Messages API replies, for the gateway's POST /v1/messages
// (a client built on Anthropic's SDK, whatever provider answered). The reverse of
// anthropic_reply.h and anthropic_stream.h, with the same correspondences read the other way:
// finish_reason stop/length/tool_calls/content_filter -> stop_reason end_turn/max_tokens/tool_use/
// refusal; usage prompt_tokens (which includes cache reads and writes) -> input_tokens without
// them, cache_read_input_tokens, cache_creation_input_tokens.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "orroute/net/protocol.h"

namespace orroute {

// Anthropic's stop_reason for a chat finish_reason (null/unknown -> end_turn).
const char* anthropic_stop_reason(std::string_view finish_reason);

// Anthropic's error type for an HTTP status (the reverse of anthropic_status_for_error_type):
// 400 invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
// 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 504 timeout_error, 529 and 503
// overloaded_error, anything else api_error.
const char* anthropic_error_type(int status);

// {"type":"error","error":{"type":...,"message":...}} for `status`.
std::string anthropic_error_body(int status, std::string_view message);

// A chat.completion body -> a Messages `message` object: content text -> a text block, tool_calls
// -> tool_use blocks (arguments parsed; they must be a JSON object), reasoning dropped. Throws
// ParseError if the body is not a chat completion with a choice and a usage object, or a tool
// call's arguments are not a JSON object (the gateway answers 502: a reply it cannot express).
std::string anthropic_message_from_chat(std::string_view completion_json);

// Chat chunks -> Anthropic stream events (`event: <type>\ndata: <json>\n\n` texts), one chunk at a
// time: message_start before the first content; text -> a text block's text_delta; each tool call
// -> a tool_use block and its arguments as input_json_delta; at the end every open block is
// stopped, then message_delta (stop_reason, usage) and message_stop. Not thread-safe; memory is
// bounded (ids, counters, at most kMaxBlocks tool calls; never the text).
class AnthropicEventWriter {
 public:
  static constexpr size_t kMaxBlocks = 4096;

  // `model` names the message until a chunk names the model that answered.
  explicit AnthropicEventWriter(std::string model) : model_(std::move(model)) {}

  // The events for one chunk's JSON text (maybe none). A chunk that is not an object is ignored;
  // one with a top-level `error` becomes an error event, after which nothing more is written.
  std::string chunk(std::string_view chunk_json);
  // The closing events (message_start first if no chunk came). Empty after an error or a finish.
  std::string finish();
  // An error event (the stream broke); nothing more is written after it.
  std::string fail(int status, std::string_view message);

 private:
  void start(std::string& out);
  void stop_text(std::string& out);

  std::string model_, id_;
  bool started_ = false, done_ = false;
  int64_t next_block_ = 0, text_block_ = -1;
  std::map<int64_t, int64_t> tool_blocks_;  // chat tool_calls index -> content block index
  std::string stop_reason_ = "end_turn";
  Usage usage_;
};

}  // namespace orroute
