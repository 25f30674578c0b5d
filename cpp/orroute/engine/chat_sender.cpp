#include "orroute/engine/chat_sender.h"

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/chat_sink.h"

namespace orroute {

std::function<void()> ChatSender::send(const std::string& model, int,
                                       std::function<void(AttemptResult)> done) {
  HttpRequest req;
  req.method = "POST";
  req.url = client_->url_for("/chat/completions");
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Accept", stream_ ? "text/event-stream" : "application/json");
  if (auto key = client_->keys().next()) req.headers.add("Authorization", "Bearer " + *key);
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
  auto sink = std::make_shared<ChatSink>(shared_from_this(), model, std::move(done));
  Transport& transport = client_->transport();
  TransferId id = 0;
  {
    // resume() reads the id under this lock, so it never misses a transfer that just started.
    std::lock_guard lock(send_mu_);
    id = transport.submit(std::move(req), std::move(sink));
    transfer_ = id;
    model_ = model;
    ++sent_;
  }
  auto client = client_;  // keeps the transport alive for the cancel function
  return [client, id] { client->transport().cancel(id); };
}

}  // namespace orroute
