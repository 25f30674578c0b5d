// OpenRouter's wire protocol over the transport: request validation, error bodies, retry policy,
// usage, and assembling a streamed completion from its chunks. Pure functions and values: no I/O.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/net/http.h"

namespace orroute {

// An expected failure of an API call, as a value. The bindings turn it into the Python class that
// `status_error_class(status)` names (or APIConnectionError / APITimeoutError / StreamError).
struct ApiError {
  enum class Kind { kStatus, kConnection, kTimeout, kStream, kCancelled };
  Kind kind = Kind::kStatus;
  int status = 0;                     // HTTP status (0 if none); for kStream, error.code if numeric
  std::string message;                // never contains an API key
  std::string code_json;              // OpenRouter's error.code as JSON text ("429", "\"server_error\"")
  std::string metadata_json;          // error.metadata as JSON text ("" if absent)
  std::string body;                   // the raw error body or event (may be "")
  std::string generation_id;          // "" if unknown
  std::string provider;               // the upstream that failed (metadata.provider_name), "" if unnamed
  std::optional<double> retry_after;  // seconds, from Retry-After / X-RateLimit-Reset
};

// Builds the error of a non-2xx response from its status, headers and body (JSON or not). Never
// throws. `now_ms` is the wall clock in Unix milliseconds (for X-RateLimit-Reset).
ApiError error_from_response(int status, const Headers& headers, std::string_view body, int64_t now_ms);

// Builds the error of a stream event carrying a top-level "error" object. Never throws.
ApiError error_from_stream_event(const rapidjson::Value& event);

// The longest wait a server's hint is taken for: the hour the engine holds a rate-limited model at
// most (kMaxRateLimitHold, route/retry_policy.h). A hint years away (1e300 seconds, a date in 2099)
// is an hour: it reaches callers (RateLimitError.retry_after) and the gateway's clients (its
// Retry-After header), who would otherwise be told to wait for decades, in a 301-digit header.
inline constexpr double kMaxRetryAfterSeconds = 3600.0;

// The wait the server asked for, in seconds, within [0, kMaxRetryAfterSeconds]: Retry-After
// (seconds or HTTP date), else X-RateLimit-Reset (Unix seconds or milliseconds). nullopt if neither
// is usable.
std::optional<double> retry_after_seconds(const Headers& headers, int64_t now_ms);

// True for statuses worth retrying: 408, 409, 429 and 5xx. Never 400, 401, 402, 403, 404.
bool is_retryable_status(int status);

// Exponential backoff with full jitter. Immutable, thread-safe.
struct RetryPolicy {
  int max_retries = 2;
  double base_seconds = 0.5;
  double max_seconds = 8.0;
  double max_retry_after_seconds = 60.0;  // a longer Retry-After is not waited for: the error is raised

  // Wait before retry number `retry` (0-based): uniform(0, min(max, base * 2^retry)) drawn from
  // `uniform01` in [0,1), or the server's `retry_after` when given. nullopt if `retry_after` exceeds
  // max_retry_after_seconds (do not retry).
  std::optional<std::chrono::milliseconds> delay(int retry, std::optional<double> retry_after,
                                                 double uniform01) const;
};

// Token usage and cost of one completion (OpenRouter's `usage` object), as the upstream reported
// it. The upstream is not trusted: a field that is not a non-negative integral number (a string,
// a fraction, a negative, 1e300) reads as 0 and is named in `token_problem`; a `cost` that is not a
// finite decimal leaves `cost` empty and says why in `cost_problem`. Missing fields are 0.
struct Usage {
  bool present = false;            // a `usage` object was there
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
  int64_t cached_tokens = 0;       // prompt_tokens_details.cached_tokens
  int64_t cache_write_tokens = 0;  // prompt_tokens_details.cache_write_tokens
  int64_t reasoning_tokens = 0;    // completion_tokens_details.reasoning_tokens
  int64_t audio_tokens = 0;        // prompt_tokens_details.audio_tokens (input audio)
  int64_t audio_output_tokens = 0; // completion_tokens_details.audio_tokens
  int64_t image_output_tokens = 0; // completion_tokens_details.image_tokens
  std::optional<Money> cost;       // usage.cost in USD when it is a finite decimal (may be < 0)
  bool cost_reported = false;      // a non-null `cost` member was there (valid or not)
  std::string cost_problem;        // why a reported cost was unusable ("" = fine or absent)
  std::string token_problem;       // first unusable token field ("" = all fine)
};

// Reads a `usage` object. Never throws, whatever the JSON holds.
Usage parse_usage(const rapidjson::Value& usage) noexcept;

// Largest max_tokens / max_completion_tokens a request may carry (int32's maximum).
constexpr int64_t kMaxOutputTokens = 2'147'483'647;

// What a chat request may be: one rule set for the client, the engine and the gateway (which
// adds a cap on `n` and needs `model` itself, not only a `models` list).
struct ChatRequestRules {
  bool require_model = false;  // `model` must be there (else `model` or `models`)
  int64_t max_n = 0;           // largest `n` (0 = any positive whole number)
  // No `model`: the router picks one (checked as if one were named; a `model` given is still checked).
  bool model_chosen = false;
};

// The first rule a chat request breaks: the field that breaks it ("messages[2].role", "body")
// and a message naming it.
struct ChatRequestProblem {
  std::string field;
  std::string message;
};

// Checks a chat completion request body before anything is reserved or sent; nullopt when it is
// well-formed. Every field the engine or the gateway reads must have the type OpenAI's API gives
// it: the body an object; `model` a non-empty string (or `models`, at most 3 strings); `messages`
// a non-empty array of objects with a known `role`, `content` a string or an array of part
// objects (required for user and system), `tool_calls` an array of objects; `stream` a bool;
// `max_tokens`, `max_completion_tokens` whole numbers in [1, kMaxOutputTokens]; `n` a positive
// whole number (at most `rules.max_n`); `temperature` in [0, 2], `top_p` in [0, 1]; `tools` an
// array of tool objects (a function tool names its function; its parameters an object);
// `tool_choice` a string or an object; `response_format`, `stream_options`, `provider`,
// `reasoning`, `usage` objects; `stop` a string or an array of strings; no object, at any depth,
// names a key twice (parsers disagree on which one counts). Never throws.
std::optional<ChatRequestProblem> check_chat_request(const rapidjson::Value& body,
                                                     const ChatRequestRules& rules = {});

// The first object in `value` (depth first) that names a key twice, as a problem naming its path
// and the key; nullopt when every key is given once. check_chat_request refuses such a body.
std::optional<ChatRequestProblem> check_unique_keys(const rapidjson::Value& value);

// check_chat_request, throwing InvalidArgument with the problem's message.
void validate_chat_request(const rapidjson::Value& body, const ChatRequestRules& rules = {});

// Throws InvalidArgument naming `what` when `value` holds CR, LF, NUL or another control
// character: sent as a header value, it would end the line and inject a header of its own.
void check_header_value(std::string_view what, std::string_view value);

// Assembles a streamed chat completion from its chunks: text, reasoning, tool-call deltas (joined
// by index), finish reasons, the final usage, and a mid-stream error. Not thread-safe.
class StreamAccumulator {
 public:
  // Folds in one parsed chunk. Returns false if the chunk carries a mid-stream error (then error()
  // is set); the chunk's content is folded in first. Never throws.
  bool add(const rapidjson::Value& chunk);
  // Writes into each tool-call delta of `chunk` whose "index" is not the one add() files it under
  // (tool_call_slot: none, not an integer, negative, past the calls so far) that one, so that a
  // consumer keeping calls apart by index (the openai SDK's stream helpers, a gateway's client)
  // sees them as add() does, numbered densely from 0. Call it before add(chunk), and
  // before anything else reads the chunk's tool calls by index (StreamScrubber). True if `chunk`
  // changed (relayed text must then be written anew from it). Never throws but bad_alloc.
  bool number_tool_calls(rapidjson::Document& chunk) const;

  // Text received so far in choice `index` (the partial text after an error).
  std::string text(size_t index = 0) const;
  const std::optional<ApiError>& error() const { return error_; }
  // Grows with each piece of the answer folded in (text, reasoning, tool calls, a finish reason);
  // an event that leaves it unchanged carried nothing (`{}`, an empty delta, a repeated usage).
  uint64_t progress() const { return progress_; }
  bool has_usage() const { return has_usage_; }
  // The last `usage` object seen, as JSON text ("null" if none yet).
  std::string usage_json() const;
  const std::string& id() const { return id_; }
  int64_t created() const { return created_; }
  // The "model" the chunks named ("" if none).
  const std::string& model() const { return model_; }
  // The "provider" (upstream display name, e.g. "OpenAI") the chunks named ("" if none).
  const std::string& provider() const { return provider_; }
  // Ends the completion early: every choice's finish reason becomes `finish_reason` (a stream
  // cut at its reservation is "length").
  void cut(std::string_view finish_reason);
  // The whole completion so far in the shape of a non-streamed response (object "chat.completion").
  std::string completion_json() const;

 private:
  struct ToolCall {
    std::string id, type, name, arguments;
  };
  struct Choice {
    std::string role, content, reasoning, refusal, finish_reason, native_finish_reason;
    bool has_content = false, has_reasoning = false, has_refusal = false;
    std::vector<ToolCall> tool_calls;
    size_t last_tool = 0;  // the tool call the last delta went to (a delta without index goes on with it)
    rapidjson::Document reasoning_details{rapidjson::kArrayType};
  };
  // Where a choice's tool calls stand: how many there are, the one the last delta went to, its id.
  struct ToolCursor {
    size_t count = 0;
    size_t last = 0;
    std::string_view last_id;
  };
  static ToolCursor cursor_of(const Choice& ch);
  // `at` once a delta `tc` went to `slot` of choice `ch` (null: a choice add() has not met yet),
  // as add() leaves the choice: number_tool_calls follows add() through one chunk's deltas.
  static ToolCursor moved(ToolCursor at, size_t slot, const rapidjson::Value& tc, const Choice* ch);
  // The tool call a delta `tc` adds to, its tool calls standing `at`: its "index" when that names
  // a call so far or the next one (at most 1023); without one (Gemini's OpenAI-compatible stream
  // sends each call whole, no index) or with any other, a call of its own when it names a new id
  // (the last one, 1023, once there are 1024), else the call the last delta went to.
  static size_t tool_call_slot(const ToolCursor& at, const rapidjson::Value& tc);
  Choice& choice(size_t index);

  std::string id_, model_, provider_, system_fingerprint_;
  int64_t created_ = 0;
  std::vector<Choice> choices_;
  rapidjson::Document usage_;
  bool has_usage_ = false;
  uint64_t progress_ = 0;
  // reasoning_details entries past this many bytes (over all choices) are not kept (completion_json
  // lacks them; the chunks carrying them were relayed as they came).
  static constexpr size_t kMaxReasoningDetailBytes = 16u << 20;
  size_t details_bytes_ = 0;
  std::optional<ApiError> error_;
};

// A key shown in messages and reprs: "sk-or-v1-abc…wxyz"-style prefix and last 4, or "***".
std::string mask_key(std::string_view key);

// JSON text of a value (compact).
std::string to_json(const rapidjson::Value& value);

}  // namespace orroute
