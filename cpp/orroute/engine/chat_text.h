// Text of chat requests and replies, for counting: JSON re-serialized, the last user message, the
// generated text of a completion or chunk, and its tokens.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>

#include "orroute/route/attempt_loop.h"

namespace orroute {

// `v` as compact JSON text.
std::string json_text(const rapidjson::Value& v);

// Text of the last user message (string content or text parts).
std::string last_user_text(const rapidjson::Value& messages);

// The generated text of every choice of a completion (`key` "message") or chunk ("delta").
std::string generated_text(const rapidjson::Value& doc, const char* key);

// The id and the first choice's message text of a chat completion (ReplySummary); from JSON text,
// empty when the text is not a JSON object.
ReplySummary reply_summary(const rapidjson::Value& doc);
// The same from a reply's top-level "id" and "choices" values (the last member of each name; null
// when it has none), for a caller that walked the reply's members already.
ReplySummary reply_summary(const rapidjson::Value* id, const rapidjson::Value* choices);
ReplySummary reply_summary(const std::string& completion_json);

// Tokens of `text` for `model` (at most one per byte when the model has no tokenizer).
int64_t text_tokens(const std::string& model, const std::string& text);

}  // namespace orroute
