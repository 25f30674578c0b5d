// Chat-completions request -> Anthropic Messages API request (POST /v1/messages). Pure function:
// no I/O, no state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace orroute {

struct AnthropicRequestOptions {
  std::string model;                // the provider's model name ("claude-sonnet-4-5"); required
  int64_t default_max_tokens = 0;   // used when the request has no max_tokens (0: then it is an error)
};

// Translates a chat-completions request body (JSON text, OpenAI shape) into an Anthropic Messages
// body:
//  - system/developer messages -> `system` text blocks (cache_control kept);
//  - user/assistant turns -> messages with text and image blocks (data: URLs become base64
//    sources, http(s) URLs url sources); consecutive turns of one role are merged, as Anthropic
//    requires alternation;
//  - assistant tool_calls -> tool_use blocks (arguments parsed to an object); tool messages ->
//    tool_result blocks in a user turn;
//  - tools -> {name, description, input_schema}; tool_choice auto/required/none/{function} ->
//    auto/any/none/tool; parallel_tool_calls=false -> disable_parallel_tool_use;
//  - max_completion_tokens or max_tokens (else options.default_max_tokens) -> max_tokens;
//    stop -> stop_sequences; temperature, top_p, top_k, stream kept; user -> metadata.user_id.
// Other sampling fields Anthropic does not have are dropped.
// Throws InvalidArgument naming the field for input that cannot be expressed (not JSON, nesting
// deeper than kMaxJsonDepth, no messages, an unknown content part, tool arguments that are not a
// JSON object, a structured response_format, no max_tokens and no default). Thread-safe.
std::string anthropic_request_from_chat(std::string_view chat_json, const AnthropicRequestOptions& options);

}  // namespace orroute
