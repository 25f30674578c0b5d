#include "orroute/engine/chat_sender.h"

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/chat_sink.h"

namespace orroute {

std::function<void()> ChatSender::send(const std::string& model, int,
                                       std::function<void(AttemptResult)> done) {
  uint64_t attempt = 0;
  {
    std::lock_guard lock(send_mu_);
    cancelled_ = false;
    attempt = ++attempt_;
  }
  start(model, std::move(done));
  auto self = shared_from_this();  // keeps the transport alive for the cancel function
  return [self, attempt] { self->cancel(attempt); };
}

void ChatSender::cancel(uint64_t attempt) {
  TransferId id = 0;
  {
    std::lock_guard lock(send_mu_);
    if (attempt != attempt_) return;  // an earlier attempt, already over: not this one's transfer
    cancelled_ = true;
    id = transfer_;
  }
  if (id != 0) client_->transport().cancel(id);
}

void ChatSender::start(const std::string& model, std::function<void(AttemptResult)> done) {
  HttpRequest req;
  req.method = "POST";
  req.url = client_->url_for("/chat/completions");
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Accept", stream_ ? "text/event-stream" : "application/json");
  // The key ring rotates; a key the server rejects (401/402) is set aside by the sink, which then
  // restarts the attempt with the next key (the client's rule: see ApiClient).
  std::string key = client_->keys().next().value_or("");
  if (!key.empty()) req.headers.add("Authorization", "Bearer " + key);
  const ClientConfig& cfg = client_->config();
  if (!cfg.app_name.empty()) {
    req.headers.add("X-Title", cfg.app_name);
    req.headers.add("X-OpenRouter-Title", cfg.app_name);
  }
  if (!cfg.app_url.empty()) req.headers.add("HTTP-Referer", cfg.app_url);
  if (!cfg.user_agent.empty()) req.headers.add("User-Agent", cfg.user_agent);
  req.body = chat_attempt_body(body_json_, model, stream_, server_models_,
                               meter_limit_ > 0 ? std::optional<int64_t>(meter_limit_) : std::nullopt);
  req.timeouts = stream_ ? cfg.stream_timeouts : cfg.timeouts;
  auto sink = std::make_shared<ChatSink>(shared_from_this(), model, std::move(key), std::move(done));
  Transport& transport = client_->transport();
  bool cancelled = false;
  TransferId id = 0;
  {
    // resume() and cancel() read the id under this lock, so they never miss a transfer that just
    // started.
    std::lock_guard lock(send_mu_);
    id = transport.submit(std::move(req), std::move(sink));
    transfer_ = id;
    model_ = model;
    ++sent_;
    cancelled = cancelled_;
  }
  if (cancelled) transport.cancel(id);
}

}  // namespace orroute
