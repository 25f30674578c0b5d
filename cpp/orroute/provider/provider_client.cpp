#include "orroute/provider/provider_client.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>

#include "orroute/error.h"
#include "orroute/provider/anthropic_error.h"
#include "orroute/provider/anthropic_reply.h"
#include "orroute/provider/anthropic_request.h"
#include "orroute/provider/json_read.h"

namespace orroute {

namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A failed Anthropic call's error re-read with Anthropic's error shape (the client parsed it with
// OpenRouter's); the retry hint the client read from the headers is kept. Keys are scrubbed.
ApiError anthropic_call_error(const ApiError& err, const ApiClient& client) {
  if (err.kind != ApiError::Kind::kStatus || err.body.empty()) return err;
  ApiError out = anthropic_error_from_response(err.status, {}, err.body, unix_millis());
  out.retry_after = err.retry_after;
  if (!err.generation_id.empty()) out.generation_id = err.generation_id;
  out.message = client.scrub(out.message);
  out.body = client.scrub(out.body);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ProviderStream

ProviderStream::ProviderStream(std::shared_ptr<Call> call, WireFormat format, int64_t created,
                               std::shared_ptr<ApiClient> client)
    : call_(std::move(call)), client_(std::move(client)), format_(format), translator_(created) {}

std::optional<Usage> ProviderStream::anthropic_usage() const { return translator_.usage(); }

Call::Next ProviderStream::next(std::string& chunk, bool block, int64_t timeout_ms) {
  for (;;) {
    if (!pending_.empty()) {
      chunk = std::move(pending_.front());
      pending_.pop_front();
      return Call::Next::kItem;
    }
    if (failed_) return Call::Next::kError;
    const Call::Next n = call_->next(data_, block, timeout_ms);
    if (n == Call::Next::kPending) return n;
    if (n == Call::Next::kError) {
      error_ = format_ == WireFormat::kAnthropicMessages ? anthropic_call_error(call_->error(), *client_)
                                                         : call_->error();
      failed_ = true;
      return n;
    }
    if (format_ == WireFormat::kChatCompletions) {
      if (n == Call::Next::kItem) chunk = client_->scrub(std::move(data_));  // an echoed key never passes
      return n;
    }
    if (n == Call::Next::kEnd) {
      if (translator_.finished()) return n;
      error_ = ApiError{};
      error_.kind = ApiError::Kind::kStream;
      error_.status = 502;
      error_.code_json = "502";
      error_.message = "the Anthropic stream ended before message_stop (truncated reply)";
      failed_ = true;
      return Call::Next::kError;
    }
    std::vector<std::string> out;
    const bool go_on = translator_.translate(data_, out);
    for (auto& c : out) pending_.push_back(client_->scrub(std::move(c)));
    if (!go_on) {
      error_ = *translator_.error();
      error_.message = client_->scrub(error_.message);
      failed_ = true;
      call_->cancel();  // nothing more is read from this response
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ProviderClient

std::shared_ptr<ProviderClient> ProviderClient::create(ProviderConfig config) {
  return std::shared_ptr<ProviderClient>(new ProviderClient(std::move(config)));
}

ProviderClient::ProviderClient(ProviderConfig config)
    : config_(std::move(config)), api_(ApiClient::create(client_config(config_))) {
  config_.api_keys.clear();  // the ApiClient's KeyRing holds them; no second copy
}

std::string ProviderClient::wire_body(std::string_view chat_json, std::string_view model, bool stream) const {
  if (model.empty()) throw InvalidArgument("a provider call needs a model name");
  if (wire_format(config_.kind) == WireFormat::kAnthropicMessages) {
    rapidjson::Document probe;  // `stream` decides; the request's own flag is replaced
    std::string body = anthropic_request_from_chat(chat_json, {std::string(model), config_.default_max_tokens});
    if (!parse_json(body, probe) || !probe.IsObject()) throw InvalidArgument("internal: translated body is not JSON");
    probe.RemoveMember("stream");
    if (stream) probe.AddMember("stream", true, probe.GetAllocator());
    return to_json(probe);
  }
  rapidjson::Document doc;
  if (!parse_json(chat_json, doc) || !doc.IsObject()) {
    throw InvalidArgument("the request body must be a JSON object (nested at most " + std::to_string(kMaxJsonDepth) +
                          " levels)");
  }
  auto& a = doc.GetAllocator();
  doc.RemoveMember("model");
  doc.AddMember("model", rapidjson::Value(model.data(), static_cast<rapidjson::SizeType>(model.size()), a), a);
  doc.RemoveMember("stream");
  if (stream) {
    doc.AddMember("stream", true, a);
    if (config_.kind != ProviderKind::kOpenRouter) {  // OpenRouter always sends usage
      doc.RemoveMember("stream_options");
      rapidjson::Value opts(rapidjson::kObjectType);
      opts.AddMember("include_usage", true, a);
      doc.AddMember("stream_options", opts, a);
    }
  }
  if (config_.kind != ProviderKind::kOpenRouter) {
    // OpenRouter-only fields other servers reject or misread.
    for (const char* f : {"models", "provider", "route", "transforms", "plugins", "usage"}) doc.RemoveMember(f);
  }
  return to_json(doc);
}

ApiError ProviderClient::provider_error(const ApiError& err) const {
  return config_.kind == ProviderKind::kAnthropic ? anthropic_call_error(err, *api_) : err;
}

ProviderResult ProviderClient::complete(std::string_view chat_json, std::string_view model) {
  CallSpec spec;
  spec.method = "POST";
  spec.path = chat_path(config_, model);
  spec.body = wire_body(chat_json, model, false);
  auto call = api_->start(std::move(spec));
  call->wait();
  ProviderResult r;
  r.attempts = call->attempts();
  if (call->state() != Call::State::kDone) {
    r.error = provider_error(call->error());
    return r;
  }
  const std::string& body = call->response().body;
  if (wire_format(config_.kind) == WireFormat::kAnthropicMessages) {
    AnthropicReply reply = chat_completion_from_anthropic(body, unix_seconds());
    if (reply.error) {
      r.error = *reply.error;
      r.error.body = api_->scrub(r.error.body);
      return r;
    }
    r.ok = true;
    r.completion_json = api_->scrub(std::move(reply.completion_json));
    r.usage = reply.usage;
    r.has_usage = true;
    return r;
  }
  rapidjson::Document doc;
  if (!parse_json(body, doc) || !doc.IsObject()) {
    r.error.kind = ApiError::Kind::kStatus;
    r.error.status = 502;
    r.error.code_json = "502";
    r.error.message = "malformed reply from provider \"" + config_.name + "\": not a JSON object";
    return r;
  }
  if (const rapidjson::Value* u = json_member(doc, "usage"); u && u->IsObject()) {
    try {
      r.usage = parse_usage(*u);
      r.has_usage = true;
    } catch (const Error&) {  // a cost field that is not a number: usage unusable
      r.has_usage = false;
    }
  }
  r.ok = true;
  r.completion_json = api_->scrub(body);
  return r;
}

std::unique_ptr<ProviderStream> ProviderClient::stream(std::string_view chat_json, std::string_view model) {
  CallSpec spec;
  spec.method = "POST";
  spec.path = chat_path(config_, model);
  spec.body = wire_body(chat_json, model, true);
  spec.stream = true;
  auto call = api_->start(std::move(spec));
  return std::unique_ptr<ProviderStream>(
      new ProviderStream(std::move(call), wire_format(config_.kind), unix_seconds(), api_));
}

}  // namespace orroute
