#include "orroute/provider/wire_adapter.h"

#include <rapidjson/document.h>

#include "orroute/error.h"
#include "orroute/provider/anthropic_error.h"
#include "orroute/provider/anthropic_reply.h"
#include "orroute/provider/anthropic_request.h"
#include "orroute/provider/anthropic_stream.h"
#include "orroute/provider/json_read.h"

namespace orroute {

namespace {

// OpenAI-compatible kinds: the body keeps every field but `model`/`stream`; streams ask for usage;
// OpenRouter-only fields go only to OpenRouter.
class ChatCompletionsAdapter final : public WireAdapter {
 public:
  explicit ChatCompletionsAdapter(ProviderConfig config) : config_(std::move(config)) {}

  Request request(std::string_view chat_json, std::string_view model, bool stream) const override {
    if (model.empty()) throw InvalidArgument("a provider call needs a model name");
    rapidjson::Document doc;
    if (!parse_json(chat_json, doc) || !doc.IsObject()) {
      throw InvalidArgument("the request body must be a JSON object (nested at most " +
                            std::to_string(kMaxJsonDepth) + " levels)");
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
      for (const char* f : {"models", "provider", "route", "transforms", "plugins", "usage"}) doc.RemoveMember(f);
    }
    return {chat_path(config_, model), to_json(doc)};
  }

  std::unique_ptr<StreamTranslator> stream_translator(int64_t) const override {
    class PassThrough final : public StreamTranslator {
     public:
      bool translate(std::string_view data, std::vector<std::string>& out) override {
        out.emplace_back(data);
        return true;
      }
      std::optional<ApiError> error() const override { return std::nullopt; }
      bool complete() const override { return true; }
    };
    return std::make_unique<PassThrough>();
  }

  WireReply reply(std::string_view body, int64_t) const override {
    WireReply r;
    rapidjson::Document doc;
    if (!parse_json(body, doc) || !doc.IsObject()) {
      ApiError e;
      e.status = 502;
      e.code_json = "502";
      e.message = "malformed reply from provider \"" + config_.name + "\": not a JSON object";
      r.error = std::move(e);
      return r;
    }
    if (const rapidjson::Value* e = json_member(doc, "error"); e && e->IsObject()) {
      ApiError err = error_from_stream_event(doc);  // a 200 that carries an error (OpenRouter does)
      err.kind = ApiError::Kind::kStatus;
      if (err.status < 400) err.status = 502;
      r.error = std::move(err);
      return r;
    }
    if (const rapidjson::Value* u = json_member(doc, "usage"); u && u->IsObject()) {
      try {
        r.usage = parse_usage(*u);
      } catch (const Error&) {  // a cost that is not a number: no usable usage
      }
    }
    r.completion_json = std::string(body);
    return r;
  }

  ApiError error(int status, const Headers& headers, std::string_view body, int64_t now_ms) const override {
    return error_from_response(status, headers, body, now_ms);
  }

 private:
  ProviderConfig config_;
};

class AnthropicTranslator final : public StreamTranslator {
 public:
  explicit AnthropicTranslator(int64_t created) : tr_(created) {}
  bool translate(std::string_view data, std::vector<std::string>& out) override { return tr_.translate(data, out); }
  std::optional<ApiError> error() const override {
    if (tr_.error()) return tr_.error();
    if (tr_.finished()) return std::nullopt;
    ApiError e;
    e.kind = ApiError::Kind::kStream;
    e.status = 502;
    e.code_json = "502";
    e.message = "the Anthropic stream ended before message_stop (truncated reply)";
    return e;
  }
  bool complete() const override { return tr_.finished(); }
  bool ended() const override { return tr_.finished(); }

 private:
  AnthropicStreamTranslator tr_;
};

class AnthropicAdapter final : public WireAdapter {
 public:
  explicit AnthropicAdapter(ProviderConfig config) : config_(std::move(config)) {}

  Request request(std::string_view chat_json, std::string_view model, bool stream) const override {
    if (model.empty()) throw InvalidArgument("a provider call needs a model name");
    const std::string body =
        anthropic_request_from_chat(chat_json, {std::string(model), config_.default_max_tokens});
    rapidjson::Document doc;  // `stream` is the caller's decision, not the request's flag
    if (!parse_json(body, doc) || !doc.IsObject()) throw Error("internal: the translated body is not JSON");
    doc.RemoveMember("stream");
    if (stream) doc.AddMember("stream", true, doc.GetAllocator());
    return {chat_path(config_, model), to_json(doc)};
  }

  std::unique_ptr<StreamTranslator> stream_translator(int64_t created) const override {
    return std::make_unique<AnthropicTranslator>(created);
  }

  WireReply reply(std::string_view body, int64_t created) const override {
    AnthropicReply a = chat_completion_from_anthropic(body, created);
    WireReply r;
    if (a.error) {
      r.error = std::move(a.error);
    } else {
      r.completion_json = std::move(a.completion_json);
      r.usage = a.usage;
    }
    return r;
  }

  ApiError error(int status, const Headers& headers, std::string_view body, int64_t now_ms) const override {
    return anthropic_error_from_response(status, headers, body, now_ms);
  }

 private:
  ProviderConfig config_;
};

}  // namespace

std::shared_ptr<const WireAdapter> WireAdapter::for_provider(const ProviderConfig& config) {
  validate(config);
  ProviderConfig c = config;
  c.api_keys.clear();  // an adapter never needs the keys
  if (wire_format(c.kind) == WireFormat::kAnthropicMessages) return std::make_shared<AnthropicAdapter>(std::move(c));
  return std::make_shared<ChatCompletionsAdapter>(std::move(c));
}

}  // namespace orroute
