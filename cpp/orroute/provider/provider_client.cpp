#include "orroute/provider/provider_client.h"

#include <chrono>

#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {

namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A failed call's error re-read with the provider's error shape (the ApiClient parsed the body with
// OpenRouter's); the retry hint it read from the response headers is kept. Keys are scrubbed.
ApiError provider_error(const ApiError& err, const WireAdapter& adapter, const ApiClient& client) {
  if (err.kind != ApiError::Kind::kStatus || err.body.empty()) return err;
  ApiError out = adapter.error(err.status, {}, err.body, unix_millis());
  out.retry_after = err.retry_after;
  if (!err.generation_id.empty()) out.generation_id = err.generation_id;
  out.message = client.scrub(out.message);
  out.body = client.scrub(out.body);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ProviderStream

ProviderStream::ProviderStream(std::shared_ptr<Call> call, std::shared_ptr<const WireAdapter> adapter,
                               std::unique_ptr<StreamTranslator> translator, std::shared_ptr<ApiClient> client)
    : call_(std::move(call)), adapter_(std::move(adapter)), translator_(std::move(translator)),
      client_(std::move(client)) {}

void ProviderStream::take(std::string chunk) {
  if (client_->mentions_key(chunk)) chunk = client_->scrub(std::move(chunk));  // a key whole in one chunk
  rapidjson::Document doc;
  if (parse_json_text(chunk, doc) != JsonParse::kOk || !doc.IsObject()) {  // not chat-shaped: as it is
    pending_.push_back(std::move(chunk));
    return;
  }
  if (id_.empty() && doc.HasMember("id") && doc["id"].IsString()) id_ = doc["id"].GetString();
  if (model_.empty() && doc.HasMember("model") && doc["model"].IsString()) model_ = doc["model"].GetString();
  if (created_ == 0 && doc.HasMember("created") && doc["created"].IsInt64()) created_ = doc["created"].GetInt64();
  if (scrubber_.scrub(doc, *client_)) chunk = to_json(doc);  // a key split over two chunks
  pending_.push_back(std::move(chunk));
}

void ProviderStream::fail(ApiError error) {
  error_ = client_->scrub(std::move(error));
  failed_ = true;
  scrubber_.discard();  // the error may carry the rest of a key whose start is held
}

Call::Next ProviderStream::next(std::string& chunk, bool block, int64_t timeout_ms) {
  for (;;) {
    if (!pending_.empty()) {
      chunk = std::move(pending_.front());
      pending_.pop_front();
      return Call::Next::kItem;
    }
    if (failed_) return Call::Next::kError;
    if (ended_) return Call::Next::kEnd;
    const Call::Next n = call_->next(data_, block, timeout_ms);
    if (n == Call::Next::kPending) return n;
    if (n == Call::Next::kError) {
      fail(provider_error(call_->error(), *adapter_, *client_));
      return n;
    }
    if (n == Call::Next::kEnd) {
      if (!translator_->complete()) {
        fail(translator_->error().value_or(ApiError{}));
        return Call::Next::kError;
      }
      return end(chunk);
    }
    if (translator_->ended()) {  // an event after the end event: ignored, as after [DONE]
      call_->cancel();
      return end(chunk);
    }
    std::vector<std::string> out;
    const bool go_on = translator_->translate(data_, out);
    for (auto& c : out) take(std::move(c));
    if (!go_on) {
      fail(translator_->error().value_or(ApiError{}));
      call_->cancel();  // nothing more is read from this response
    }
  }
}

Call::Next ProviderStream::end(std::string& chunk) {
  ended_ = true;
  rapidjson::Document held;
  if (!scrubber_.flush(held, StreamScrubber::ChunkHead{id_, created_, model_})) return Call::Next::kEnd;
  chunk = to_json(held);
  return Call::Next::kItem;  // kEnd comes with the next call
}

// ---------------------------------------------------------------------------------------------
// ProviderClient

std::shared_ptr<ProviderClient> ProviderClient::create(ProviderConfig config) {
  return std::shared_ptr<ProviderClient>(new ProviderClient(std::move(config)));
}

ProviderClient::ProviderClient(ProviderConfig config)
    : config_(std::move(config)),
      adapter_(WireAdapter::for_provider(config_)),
      api_(ApiClient::create(client_config(config_))) {
  config_.api_keys.clear();  // the ApiClient's KeyRing holds them; no second copy
}

std::string ProviderClient::wire_body(std::string_view chat_json, std::string_view model, bool stream) const {
  return adapter_->request(chat_json, model, stream).body;
}

ProviderResult ProviderClient::complete(std::string_view chat_json, std::string_view model) {
  WireAdapter::Request wire = adapter_->request(chat_json, model, false);
  CallSpec spec;
  spec.method = "POST";
  spec.path = std::move(wire.path);
  spec.body = std::move(wire.body);
  auto call = api_->start(std::move(spec));
  call->wait();
  ProviderResult r;
  r.attempts = call->attempts();
  if (call->state() != Call::State::kDone) {
    r.error = provider_error(call->error(), *adapter_, *api_);
    return r;
  }
  WireReply reply = adapter_->reply(call->response().body, unix_seconds());
  if (reply.error) {
    r.error = std::move(*reply.error);
    r.error.body = api_->scrub(std::move(r.error.body));
    return r;
  }
  r.ok = true;
  r.completion_json = api_->scrub(std::move(reply.completion_json));
  r.has_usage = reply.usage.has_value();
  if (reply.usage) r.usage = *reply.usage;
  return r;
}

std::unique_ptr<ProviderStream> ProviderClient::stream(std::string_view chat_json, std::string_view model) {
  WireAdapter::Request wire = adapter_->request(chat_json, model, true);
  CallSpec spec;
  spec.method = "POST";
  spec.path = std::move(wire.path);
  spec.body = std::move(wire.body);
  spec.stream = true;
  auto call = api_->start(std::move(spec));
  return std::unique_ptr<ProviderStream>(
      new ProviderStream(std::move(call), adapter_, adapter_->stream_translator(unix_seconds()), api_));
}

}  // namespace orroute
