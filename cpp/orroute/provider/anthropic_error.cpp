#include "orroute/provider/anthropic_error.h"

#include <string>

#include "orroute/provider/json_read.h"

namespace orroute {

namespace {

constexpr size_t kMaxMessage = 2000;  // an upstream message longer than this is cut

std::string bounded(std::string_view s) {
  return s.size() <= kMaxMessage ? std::string(s) : utf8_prefix(s, kMaxMessage) + "…";
}

// Fills message/code/status from Anthropic's {"type":"error","error":{type,message}} object.
void fill(ApiError& err, const rapidjson::Value& doc) {
  const rapidjson::Value* error = json_member(doc, "error");
  if (error == nullptr || !error->IsObject()) return;
  if (const auto type = json_string(*error, "type")) {
    const std::string t = bounded(*type);
    err.code_json = to_json(rapidjson::Value(rapidjson::StringRef(t.data(), t.size())));  // escaped
    if (err.status == 0) err.status = anthropic_status_for_error_type(*type);
  }
  if (const auto msg = json_string(*error, "message")) err.message = bounded(*msg);
}

}  // namespace

int anthropic_status_for_error_type(std::string_view type) {
  if (type == "invalid_request_error") return 400;
  if (type == "authentication_error") return 401;
  if (type == "billing_error") return 402;
  if (type == "permission_error") return 403;
  if (type == "not_found_error") return 404;
  if (type == "request_too_large") return 413;
  if (type == "rate_limit_error") return 429;
  if (type == "timeout_error") return 504;
  if (type == "overloaded_error") return 529;
  return 500;  // api_error and anything new
}

ApiError anthropic_error_from_response(int status, const Headers& headers, std::string_view body, int64_t now_ms) {
  ApiError err;
  err.kind = ApiError::Kind::kStatus;
  err.status = status;
  err.body = bounded(body);
  err.retry_after = retry_after_seconds(headers, now_ms);
  if (const auto rid = headers.get("request-id")) err.generation_id = bounded(*rid);
  rapidjson::Document doc;
  if (parse_json(body, doc)) fill(err, doc);
  if (err.code_json.empty()) err.code_json = std::to_string(status);
  if (err.message.empty()) err.message = "Anthropic returned HTTP " + std::to_string(status);
  return err;
}

ApiError anthropic_error_from_event(const rapidjson::Value& event) {
  ApiError err;
  err.kind = ApiError::Kind::kStream;
  fill(err, event);
  if (err.status == 0) err.status = 500;
  if (err.code_json.empty()) err.code_json = "\"api_error\"";
  if (err.message.empty()) err.message = "Anthropic sent a stream error without a message";
  return err;
}

}  // namespace orroute
