#include "orroute/engine/chat_sender.h"

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/chat_sink.h"
#include "orroute/error.h"

namespace orroute {

// Every attempt allocates its sink with make_shared (16 bytes of counts before it): within glibc's
// per-thread cache (requests up to 1032 bytes) that is a few dozen instructions; above it, malloc's
// large-chunk path sorts its bins (the sink at 1040 bytes, session 26: ~820 instructions and ~50
// first-level cache misses a call in its allocation, against ~220 and ~4 at 720).
static_assert(sizeof(ChatSink) + 16 <= 1032, "ChatSink left glibc's per-thread cache (see above)");

std::function<void()> ChatSender::send(const std::string& model, int,
                                       AttemptDone done) {
  uint64_t attempt = 0;
  {
    std::lock_guard lock(send_mu_);
    cancelled_ = false;
    attempt = ++attempt_;
  }
  start(model, std::move(done));
  auto self = shared_from_this();  // keeps the transports alive for the cancel function
  return [self, attempt] { self->cancel(attempt); };
}

void ChatSender::cancel(uint64_t attempt) {
  TransferId id = 0;
  std::shared_ptr<ApiClient> client;
  {
    std::lock_guard lock(send_mu_);
    if (attempt != attempt_) return;  // an earlier attempt, already over: not this one's transfer
    cancelled_ = true;
    id = transfer_;
    client = transfer_client_;
  }
  if (id != 0 && client) client->transport().cancel(id);
}

void ChatSender::start(const std::string& model, AttemptDone done) {
  if (routes_ != nullptr) {
    const ProviderRoute* route = routes_->route(model);
    if (route == nullptr) {
      AttemptResult r;
      r.http_status = 400;
      r.error_message = "no provider for candidate " + model;
      done(std::move(r));
      return;
    }
    if (route->provider != nullptr) return send_to(*route, model, std::move(done));
  }
  HttpRequest req;
  req.method = "POST";
  req.url = client_->chat_completions_url();
  req.headers.fields.reserve(3);
  req.headers.add("Content-Type", "application/json");
  // A stream asks for SSE; a plain call sends no Accept line (any type: the client's rule, which
  // spares libcurl's printf of every header byte).
  if (stream_) req.headers.add("Accept", "text/event-stream");
  // The key ring rotates; a key the server rejects (401/402) is set aside by the sink, which then
  // restarts the attempt with the next key (the client's rule: see ApiClient).
  std::string key = client_->keys().next().value_or("");
  if (!key.empty()) req.headers.add("Authorization", "Bearer " + key);
  const ClientConfig& cfg = client_->config();
  req.shared = client_->shared_headers();  // the client's own lines, formatted once
  req.shared_at = req.headers.fields.size();
  const std::optional<int64_t> reserved =
      meter_limit_ > 0 ? std::optional<int64_t>(meter_limit_) : std::nullopt;
  if (prepared_ && prepared_->made_for(model, stream_, server_models_, reserved)) {
    req.body = std::move(prepared_->body);
  } else {
    req.body = chat_attempt_body(body_json_, model, stream_, server_models_, reserved);
  }
  prepared_.reset();  // the first attempt's only: a retry, a fallback or a next key build their own
  req.timeouts = stream_ ? cfg.stream_timeouts : cfg.timeouts;
  req.keep_ok_headers = false;  // the sink reads an error reply's header fields only
  auto sink = std::make_shared<ChatSink>(shared_from_this(), model, std::move(key), std::move(done));
  submit(client_, std::move(req), std::move(sink), model);
}

void ChatSender::send_to(const ProviderRoute& route, const std::string& candidate,
                         AttemptDone done) {
  const std::string native = routes_->native(candidate);
  const std::string model = ProviderRoutes::split(candidate).first;
  WireAdapter::Request wire;
  try {
    // The same body as at the own endpoint (the reserved max_tokens, usage in streams), in the
    // provider's wire format and under its name for the model; no OpenRouter `models` list.
    const std::string chat = chat_attempt_body(body_json_, native, stream_, {},
                                               meter_limit_ > 0 ? std::optional<int64_t>(meter_limit_) : std::nullopt);
    wire = route.adapter->request(chat, native, stream_);
  } catch (const InvalidArgument& e) {  // this provider cannot express the request: the next may
    AttemptResult r;
    r.http_status = 400;
    r.provider = route.name;
    r.error_message = std::string(route.name) + " cannot take this request: " + e.what();
    ApiError err;
    err.status = 400;
    err.message = r.error_message;
    set_error(std::move(err));
    done(std::move(r));
    return;
  }
  const ClientConfig& cfg = route.client->config();
  HttpRequest req;
  req.method = "POST";
  req.url = route.client->url_for(wire.path);
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Accept", stream_ ? "text/event-stream" : "application/json");
  // The provider's own key ring: a key it rejects (401/402) is set aside by the sink, which then
  // restarts this candidate with that provider's next key.
  std::string key = route.client->keys().next().value_or("");
  if (!key.empty()) req.headers.add(cfg.auth_header, cfg.auth_prefix + key);
  for (const auto& [name, value] : cfg.headers.fields) req.headers.add(name, value);
  if (!cfg.user_agent.empty()) req.headers.add("User-Agent", cfg.user_agent);
  req.body = std::move(wire.body);
  req.timeouts = stream_ ? cfg.stream_timeouts : cfg.timeouts;
  req.keep_ok_headers = false;  // the sink reads an error reply's header fields only
  // Metering counts the answer with the model's tokenizer (the router's id names the family).
  auto sink = std::make_shared<ChatSink>(shared_from_this(), model, std::move(key), std::move(done));
  sink->use_wire(route.adapter, route.name, route.client, candidate);
  submit(route.client, std::move(req), std::move(sink), candidate);
}

void ChatSender::submit(std::shared_ptr<ApiClient> client, HttpRequest req, std::shared_ptr<Sink> sink,
                        const std::string& model) {
  Transport& transport = client->transport();
  bool cancelled = false;
  TransferId id = 0;
  {
    // resume() and cancel() read the id under this lock, so they never miss a transfer that just
    // started.
    std::lock_guard lock(send_mu_);
    id = transport.submit(std::move(req), std::move(sink));
    transfer_ = id;
    transfer_client_ = client;
    model_ = model;
    ++sent_;
    cancelled = cancelled_;
  }
  if (cancelled) transport.cancel(id);
}

}  // namespace orroute
