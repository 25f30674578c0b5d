// A call the caller cancels after its request went out: the upstream got it and a non-streamed
// call runs to its end, billed (docs/cost.md, rule 5), so the cut attempt is counted, once its
// transfer has ended; arm() after cancel() tells when (the gateway's embeddings book it then).
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "loopback_server.h"
#include "orroute/net/api_client.h"

using namespace orroute;

namespace {

// Reads a request and never answers; its future is ready once the whole request has arrived.
class HoldingServer : public test::LoopbackServer {
 public:
  HoldingServer() { start(); }
  ~HoldingServer() override { stop(); }
  std::future<void> request_arrived() { return arrived_.get_future(); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    bool told = false;
    while (read_more(conn, got)) {
      if (!told && got.find(R"({"input":"hi"})") != std::string::npos) {
        arrived_.set_value();
        told = true;
      }
    }
  }
  std::promise<void> arrived_;
};

}  // namespace

TEST_CASE("a call cancelled after its request went out counts the cut attempt once it ended", "[net][abandoned]") {
  HoldingServer server;
  ClientConfig cfg;
  cfg.base_url = server.url("/api/v1");
  const auto client = ApiClient::create(cfg);
  CallSpec spec;
  spec.method = "POST";
  spec.path = "/embeddings";
  spec.body = R"({"input":"hi"})";
  spec.max_retries = 0;
  auto arrived = server.request_arrived();
  const auto call = client->start(spec);
  REQUIRE(arrived.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  call->cancel();
  const auto notifier = std::make_shared<Notifier>();
  call->arm(notifier, 7);
  pollfd p{notifier->fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  CHECK(notifier->drain() == std::vector<uint64_t>{7});
  CHECK(call->abandoned_attempts() == 1);  // the transfer had ended when arm() told
  CHECK(call->state() == Call::State::kFailed);
  CHECK(call->error().kind == ApiError::Kind::kCancelled);
}
