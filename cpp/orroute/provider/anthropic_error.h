// Anthropic's error shapes -> ApiError values. Anthropic answers errors as
// {"type":"error","error":{"type":"overloaded_error","message":"..."}} with an HTTP status (529 for
// overloaded) and, for 429/529, a `retry-after` header; the same object arrives as an `error` event
// in the middle of a stream. Pure functions; never throw.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string_view>

#include "orroute/net/http.h"
#include "orroute/net/protocol.h"

namespace orroute {

// The HTTP status Anthropic documents for an error type ("rate_limit_error" -> 429,
// "overloaded_error" -> 529, "api_error" -> 500, ...); 500 for a type it does not document.
int anthropic_status_for_error_type(std::string_view type);

// The error of a non-2xx response: message from error.message, code_json the error type as a JSON
// string, retry_after from `retry-after`, generation_id from `request-id`. A body that is not
// Anthropic's shape still gives a message naming the status.
ApiError anthropic_error_from_response(int status, const Headers& headers, std::string_view body, int64_t now_ms);

// The error carried by a stream `error` event (kind kStream, status from the error type).
ApiError anthropic_error_from_event(const rapidjson::Value& event);

}  // namespace orroute
