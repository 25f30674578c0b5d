// HttpRequest::keep_ok_headers: a caller that reads a success's body only (the client's plain
// chat call) gets a 2xx head without its header fields, which the transport then never copies;
// any other status keeps them, since an error reads them (Retry-After, the rate-limit reset).
#include <catch2/catch.hpp>

#include <future>
#include <string>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Answers GET /<status> with that status, two header fields and a short body, one request per
// connection.
class StatusServer : public test::LoopbackServer {
 public:
  StatusServer() { start(); }
  ~StatusServer() override { stop(); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos) {
      if (!read_more(conn, got)) return;
    }
    const std::string status = got.substr(5, 3);  // "GET /429 HTTP/1.1"
    const std::string reply = "HTTP/1.1 " + status + " X\r\nRetry-After: 3\r\nX-Generation-Id: gen-1\r\n" +
                              "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    [[maybe_unused]] const ssize_t n = write(conn, reply.data(), reply.size());
  }
};

class HeadSink : public Sink {
 public:
  void on_head(int status, const Headers& headers) override {
    status_ = status;
    headers_ = headers;
  }
  DataAction on_data(std::string_view) override { return DataAction::kContinue; }
  void on_done(const TransferResult& result) override { done_.set_value(result); }
  // The head's fields, once the transfer ended.
  const Headers& head() {
    auto done = done_.get_future();
    REQUIRE(done.wait_for(5s) == std::future_status::ready);
    REQUIRE(done.get().status == TransferStatus::kOk);
    return headers_;
  }
  int status() const { return status_; }

 private:
  int status_ = 0;
  Headers headers_;
  std::promise<TransferResult> done_;
};

Headers head_of(Transport& transport, const StatusServer& server, const std::string& status, bool keep_ok) {
  HttpRequest req;
  req.url = server.url("/" + status);
  req.keep_ok_headers = keep_ok;
  auto sink = std::make_shared<HeadSink>();
  transport.submit(std::move(req), sink);
  Headers h = sink->head();
  REQUIRE(sink->status() == std::stoi(status));
  return h;
}

}  // namespace

TEST_CASE("a 2xx head reaches the sink without its fields when the request keeps none", "[net][transport]") {
  StatusServer server;
  Transport transport;
  CHECK(head_of(transport, server, "200", false).fields.empty());
  CHECK(head_of(transport, server, "204", false).fields.empty());
  // kept by default, and for any other status whatever the request says
  CHECK(head_of(transport, server, "200", true).get("x-generation-id") == "gen-1");
  for (const char* status : {"429", "500", "404", "301"}) {
    INFO(status);
    CHECK(head_of(transport, server, status, false).get("retry-after") == "3");
  }
}
