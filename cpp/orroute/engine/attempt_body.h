#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

// The body sent to `model` for one attempt: the caller's request with every field kept as sent
// (OpenRouter's extras: provider, transforms, models, reasoning, response_format, tools, plugins,
// unknown fields...), except "model" (set to `model`) and "stream" (set to `stream`). Adds only
// what settling needs when the caller did not say: stream_options.include_usage for a stream,
// usage.include (OpenRouter's usage.cost); and OpenRouter's `models` list (`model` first, then
// `server_models`, at most 3) when the request has none and `server_models` is not empty; and
// `max_tokens` = `reserved_max_tokens` when given and the request bounds neither max_tokens nor
// max_completion_tokens (the request carries what was reserved for).
// Throws InvalidArgument if `request_json` is not a JSON object. Pure.
std::string chat_attempt_body(std::string_view request_json, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens = std::nullopt);
// The same, of a request already parsed (a JSON object), which it changes in place.
std::string chat_attempt_body(rapidjson::Document& request, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens = std::nullopt);
// The same, of `request_json` already parsed into `parsed` (a JSON object, unchanged since): when
// the request holds none of the members the body sets in place (model, stream, a null max_tokens
// to be reserved) and no NUL byte, the added members are appended to the text as sent, not the
// whole document written again (the common case: ~4k instructions a call fewer); else as the
// overload above, which changes `parsed`.
std::string chat_attempt_body(std::string_view request_json, rapidjson::Document& parsed,
                              const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens = std::nullopt);

// OpenRouter's server-side fallbacks of a run: the candidates after the first, at most `n`.
std::vector<std::string> server_fallbacks(const std::vector<std::string>& candidates, int n);

// A first attempt's body made ahead (by plan(), from the request it parsed anyway) and what it
// was made for: sent as is when the first attempt asks for exactly that, so a call's request is
// parsed once, not once more for its first attempt.
struct PreparedAttempt {
  std::string model;
  bool stream = false;
  std::vector<std::string> server_models;
  std::optional<int64_t> reserved_max_tokens;
  std::string body;

  bool made_for(const std::string& m, bool s, const std::vector<std::string>& servers,
                std::optional<int64_t> reserved) const {
    return m == model && s == stream && servers == server_models && reserved == reserved_max_tokens;
  }
};

}  // namespace orroute
