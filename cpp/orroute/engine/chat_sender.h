#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/engine.h"
#include "orroute/engine/provider_routes.h"
#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/route/clock.h"

namespace orroute {

// Sends chat attempts over the transport and reads the response (plain JSON or SSE).
class ChatSender final : public AttemptSender, public std::enable_shared_from_this<ChatSender> {
 public:
  // `meter_limit` > 0: the reservation's output tokens; answers are counted as they arrive and a
  // stream is cut once it passes them; it is also sent as max_tokens when the body has none.
  ChatSender(std::shared_ptr<ApiClient> client, const Clock* clock, std::string body_json,
             bool stream, std::vector<std::string> server_models, ChunkCallback on_chunk,
             int64_t meter_limit)
      : client_(std::move(client)), clock_(clock), body_json_(std::move(body_json)),
        stream_(stream), server_models_(std::move(server_models)), on_chunk_(std::move(on_chunk)),
        meter_limit_(meter_limit) {}
  int64_t meter_limit() const { return meter_limit_; }
  // The output tokens the reservation covers across the whole answer (max_tokens for each of `n`
  // completions, plus a prediction's and a reasoning budget's tokens): a metered stream is cut once
  // past them. meter_limit() until set.
  void set_output_limit(int64_t tokens) { output_limit_ = tokens; }
  int64_t output_limit() const { return output_limit_ > 0 ? output_limit_ : meter_limit_; }
  // Several providers: candidates "<model>@<provider>" go to that provider, through its client and
  // wire adapter. `routes` must outlive the sender.
  void set_routes(const ProviderRoutes* routes) { routes_ = routes; }
  // The first attempt's body, made ahead by plan() (set before the run starts): the first
  // attempt sends it when made for that attempt's model and options; no later one does.
  void set_prepared(PreparedAttempt prepared) { prepared_ = std::move(prepared); }

  std::function<void()> send(const std::string& model, int,
                             AttemptDone done) override;

  // Starts (or, after a key was set aside, restarts) the attempt on `model` with the key ring's
  // next key. A cancel() before or during it aborts the transfer.
  void start(const std::string& model, AttemptDone done);
  // Aborts attempt number `attempt`'s latest transfer (a restart with another key included); a
  // no-op once a later attempt was sent.
  void cancel(uint64_t attempt);

  std::optional<ApiError> last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  void set_error(std::optional<ApiError> e) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(e);
  }
  const Clock* clock() const { return clock_; }
  bool stream() const { return stream_; }
  // Hands a chunk to the consumer; a kPause holds the transfer (counted: see resume()).
  ChunkAction emit(const std::string& chunk) {
    if (!on_chunk_) return ChunkAction::kContinue;
    const ChunkAction a = on_chunk_(chunk);
    if (a == ChunkAction::kPause) holds_.fetch_add(1);
    return a;
  }
  // True while the consumer is behind (more kPause than resume()).
  bool held() const { return holds_.load() > 0; }
  // One resume per kPause, in either order with it; resumes the transfer when none is left.
  void resume() {
    if (holds_.fetch_sub(1) != 1) return;
    TransferId id = 0;
    std::shared_ptr<ApiClient> client;
    {
      std::lock_guard lock(send_mu_);  // waits for send() to have stored the id
      id = transfer_;
      client = transfer_client_;
    }
    if (id != 0 && client) client->transport().resume(id);
  }
  std::pair<std::string, int> progress() const {
    std::lock_guard lock(send_mu_);
    return {model_, sent_};
  }
  // Transfers in flight on the transport that ran the latest attempt (this one's own excluded
  // once it ended); 0 before the first attempt.
  int64_t transport_active() const {
    std::shared_ptr<ApiClient> client;
    {
      std::lock_guard lock(send_mu_);
      client = transfer_client_;
    }
    return client ? client->transport().active() : 0;
  }
  ApiClient& client() { return *client_; }

 private:
  // The attempt at a provider other than the engine's own endpoint.
  void send_to(const ProviderRoute& route, const std::string& candidate,
               AttemptDone done);
  // Submits `req` on `client`'s transport with `sink` (aborted at once if cancel() came first).
  void submit(std::shared_ptr<ApiClient> client, HttpRequest req, std::shared_ptr<Sink> sink,
              const std::string& model);

 public:

 private:
  std::shared_ptr<ApiClient> client_;
  const Clock* clock_;
  std::string body_json_;
  bool stream_;
  std::vector<std::string> server_models_;
  ChunkCallback on_chunk_;
  int64_t meter_limit_ = 0;
  int64_t output_limit_ = 0;
  mutable std::mutex mu_;
  std::optional<ApiError> last_error_;
  std::atomic<int> holds_{0};
  mutable std::mutex send_mu_;  // guards the fields below
  TransferId transfer_ = 0;     // the latest attempt's transfer
  bool cancelled_ = false;      // cancel() was called: a restart with another key is aborted
  uint64_t attempt_ = 0;        // send() calls so far (the current attempt's number)
  std::shared_ptr<ApiClient> transfer_client_;  // whose transport runs it
  const ProviderRoutes* routes_ = nullptr;
  std::optional<PreparedAttempt> prepared_;  // taken by the first start()
  std::string model_;
  int sent_ = 0;
};

}  // namespace orroute
