// Anthropic Messages API reply (non-streamed) -> chat completion, and Anthropic's usage object ->
// OpenAI/OpenRouter usage. Pure functions; never throw.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "orroute/net/protocol.h"
#include "orroute/json_writer.h"

namespace orroute {

// Largest token count accepted from an upstream; a larger one marks the usage as malformed.
inline constexpr int64_t kMaxUpstreamTokens = 1'000'000'000'000;

// Anthropic's usage {input_tokens, output_tokens, cache_creation_input_tokens,
// cache_read_input_tokens} in the chat shape: prompt_tokens = input + cache writes + cache reads
// (Anthropic's input_tokens excludes both), cached_tokens = reads, cache_write_tokens = writes,
// completion_tokens = output. nullopt if a present field is not a count in [0, kMaxUpstreamTokens]
// or input/output tokens are missing.
std::optional<Usage> usage_from_anthropic(const rapidjson::Value& usage);

// Writes `u` as an OpenAI usage object (prompt/completion/total tokens and prompt_tokens_details).
void write_chat_usage(JsonWriter& w, const Usage& u);

// Maps Anthropic's stop_reason to a chat finish_reason: end_turn/stop_sequence/pause_turn -> stop,
// max_tokens -> length, tool_use -> tool_calls, refusal -> content_filter; others -> stop.
const char* finish_reason_from_anthropic(std::string_view stop_reason);

// A translated non-streamed reply: either `completion_json` (a chat.completion object) with its
// usage, or `error` (the body was not a well-formed Anthropic message; status 502).
struct AnthropicReply {
  std::string completion_json;
  Usage usage;
  std::optional<ApiError> error;
};

// Translates a 2xx body of POST /v1/messages: text blocks are joined into message.content,
// thinking blocks into message.reasoning, tool_use blocks become tool_calls (input serialized as
// the arguments string). `created` is the Unix time to stamp. Never throws.
AnthropicReply chat_completion_from_anthropic(std::string_view body, int64_t created);

}  // namespace orroute
