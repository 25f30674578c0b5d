// Anthropic Messages API request (what a client built on Anthropic's SDK sends to the gateway's
// POST /v1/messages) -> chat-completions request, so the router can send it to any provider. The
// reverse of anthropic_request.h, with the same field correspondences read the other way. Pure
// function: no I/O, no state.
#pragma once

#include <string>
#include <string_view>

namespace orroute {

// Translates a Messages request body (JSON text) into a chat-completions body:
//  - `system` (a string or text blocks) -> one system message (text parts keep cache_control);
//  - user turns: text and image blocks (base64 sources -> data: URLs, url sources -> URLs) -> a
//    user message; tool_result blocks -> tool messages (placed before the turn's other content,
//    as chat completions want them right after the assistant's tool_calls);
//  - assistant turns: text blocks -> content, tool_use blocks -> tool_calls (input serialized as
//    the arguments); thinking blocks are dropped (they are only meaningful to Anthropic);
//  - tools {name, description, input_schema} -> function tools; tool_choice auto/any/none/tool ->
//    auto/required/none/{function}; disable_parallel_tool_use -> parallel_tool_calls: false;
//  - max_tokens, stop_sequences -> stop, temperature, top_p, top_k, stream, metadata.user_id ->
//    user; thinking.budget_tokens -> reasoning.max_tokens.
// The model is kept as sent (the gateway resolves it). Throws InvalidArgument naming the field
// for what chat completions cannot express or what Anthropic itself would refuse (not JSON, not
// an object, no model, no or empty messages, no max_tokens, an unknown role or block type, server
// tools, a document block). Thread-safe.
std::string chat_request_from_anthropic(std::string_view messages_json);

}  // namespace orroute
