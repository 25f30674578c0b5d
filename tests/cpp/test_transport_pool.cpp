// A transfer's libcurl handle comes from a pool and keeps its last transfer's options (no
// curl_easy_reset): every request must go out as its own, with nothing of the one before it
// (method, body, headers, timeouts, the callbacks' data).
#include <catch2/catch.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// An HTTP/1.1 server on 127.0.0.1 whose reply body is the request it read (head and body), one
// keep-alive connection at a time; a request for /slow is answered after 300 ms.
class EchoServer : public test::LoopbackServer {
 public:
  EchoServer() { start(); }
  ~EchoServer() override { stop(); }

 private:
  // The length of the first whole request in `got` (head and Content-Length body), or 0.
  static size_t request_length(const std::string& got) {
    const size_t head_end = got.find("\r\n\r\n");
    if (head_end == std::string::npos) return 0;
    size_t body = 0;
    const size_t cl = got.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) body = std::stoul(got.substr(cl + 16));
    const size_t total = head_end + 4 + body;
    return got.size() >= total ? total : 0;
  }
  void serve_connection(int conn) override {
    std::string got;
    while (read_more(conn, got)) {
      for (size_t len = request_length(got); len > 0; len = request_length(got)) {
        const std::string request = got.substr(0, len);
        got.erase(0, len);
        if (request.find(" /slow ") != std::string::npos) std::this_thread::sleep_for(300ms);
        const std::string reply =
            "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(request.size()) + "\r\n\r\n" + request;
        if (write(conn, reply.data(), reply.size()) < 0) return;
      }
    }
  }
};

// Sends `request` and waits for it: one transfer at a time, so each reuses the pooled handle of
// the one before.
std::string send(Transport& transport, HttpRequest request) {
  auto sink = std::make_shared<orroute::test::BodySink>();
  transport.submit(std::move(request), sink);
  return sink->body();
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a pooled transfer handle carries nothing of the transfer before it", "[transport][pool]") {
  EchoServer server;
  Transport transport;

  Headers shared;
  shared.add("X-Shared", "s");
  shared.add("X-Empty", "");
  HttpRequest first;
  first.method = "POST";
  first.url = server.url("/first");
  first.body = "{\"first\":1}";
  first.headers.add("Content-Type", "application/json");
  first.headers.add("X-Call", "own");
  first.shared = std::make_shared<const HeaderLines>(shared);
  first.shared_at = 1;
  first.timeouts.total_ms = 100;
  const std::string one = send(transport, first);
  CHECK(one.rfind("POST /first ", 0) == 0);
  CHECK(has(one, "\r\n\r\n{\"first\":1}"));
  // in order: the request's first header, the shared lines, then the rest of its own
  const size_t content_type = one.find("Content-Type: application/json");
  const size_t x_shared = one.find("X-Shared: s");
  const size_t x_call = one.find("X-Call: own");
  CHECK(content_type < x_shared);
  CHECK(x_shared < x_call);
  CHECK(x_call != std::string::npos);
  CHECK(has(one, "X-Empty:"));
  CHECK_FALSE(has(one, "Expect"));

  SECTION("a GET after a POST: no body, none of its headers, not its total timeout") {
    HttpRequest get;
    get.url = server.url("/slow");
    get.timeouts.total_ms = 0;
    const std::string two = send(transport, get);
    CHECK(two.rfind("GET /slow ", 0) == 0);
    CHECK_FALSE(has(two, "first"));
    CHECK_FALSE(has(two, "Content-Length"));
    CHECK_FALSE(has(two, "Content-Type"));
    CHECK_FALSE(has(two, "X-Shared"));
    CHECK_FALSE(has(two, "X-Call"));
    CHECK(two.size() == two.find("\r\n\r\n") + 4);  // no body
  }
  SECTION("a POST after a DELETE is a POST") {
    HttpRequest del;
    del.method = "DELETE";
    del.url = server.url("/second");
    CHECK(send(transport, del).rfind("DELETE /second ", 0) == 0);
    HttpRequest post;
    post.method = "POST";
    post.url = server.url("/third");
    post.body = "3";
    const std::string three = send(transport, post);
    CHECK(three.rfind("POST /third ", 0) == 0);
    CHECK(has(three, "\r\n\r\n3"));
    CHECK_FALSE(has(three, "X-Shared"));
  }
}

// libcurl is given each URL parsed (CURLOPT_CURLU, a handle the transport keeps for the last URLs
// used): a pooled handle must still go to its own request's URL, with transfers in flight while
// the kept handles are dropped for new ones, and a URL libcurl refuses still fails its transfer.
TEST_CASE("a pooled transfer handle goes to each request's own URL", "[transport][pool]") {
  EchoServer server;  // one connection at a time: the transfers below wait in libcurl for it
  TransportOptions one_connection;
  one_connection.max_total_connections = 1;
  Transport transport(one_connection);
  auto get = [&](const std::string& target) {
    HttpRequest r;
    r.url = server.url(target);
    return r;
  };
  CHECK(send(transport, get("/a?x=1")).rfind("GET /a?x=1 ", 0) == 0);
  CHECK(send(transport, get("/b")).rfind("GET /b ", 0) == 0);
  CHECK(send(transport, get("/a?x=1")).rfind("GET /a?x=1 ", 0) == 0);
  CHECK(send(transport, get("/a?x=2")).rfind("GET /a?x=2 ", 0) == 0);

  // more URLs at once than are kept parsed, libcurl reading each when its turn to connect comes:
  // each transfer keeps the one it was given
  std::vector<std::shared_ptr<orroute::test::BodySink>> sinks;
  for (int i = 0; i < 40; ++i) {
    sinks.push_back(std::make_shared<orroute::test::BodySink>());
    transport.submit(get("/p" + std::to_string(i)), sinks.back());
  }
  for (int i = 0; i < 40; ++i) {
    CHECK(sinks[static_cast<size_t>(i)]->body().rfind("GET /p" + std::to_string(i) + " ", 0) == 0);
  }

  HttpRequest bad;
  bad.url = "http://[127.0.0.1/x";  // not a URL libcurl parses
  std::promise<TransferResult> done;
  class Failed : public Sink {
   public:
    explicit Failed(std::promise<TransferResult>& p) : p_(p) {}
    DataAction on_data(std::string_view) override { return DataAction::kContinue; }
    void on_done(const TransferResult& r) override { p_.set_value(r); }

   private:
    std::promise<TransferResult>& p_;
  };
  transport.submit(bad, std::make_shared<Failed>(done));
  auto result = done.get_future();
  REQUIRE(result.wait_for(5s) == std::future_status::ready);
  CHECK(result.get().status != TransferStatus::kOk);
  CHECK(send(transport, get("/after")).rfind("GET /after ", 0) == 0);
}
