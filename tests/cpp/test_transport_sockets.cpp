// A pooled connection's socket stays in the loop's epoll set while it idles between transfers,
// and an event loop's LoopWatch keeps its lender's set registered between leases (no syscall a
// call for either). What that must not break: a server closing an idle connection (its socket
// readable for ever, level-triggered) keeps neither the loop nor the event loop turning, and a
// closed connection's number taken by the next connection's socket is watched.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// An HTTP/1.1 server on 127.0.0.1 that answers each GET with "ok" (keep-alive, no "Connection:
// close") and shuts the connection down, from its side, once close_idle() was called after the
// reply: the client's pooled connection is then closed while it idles. With hold(), a request
// is answered only once answer() was called.
class ClosingServer : public test::LoopbackServer {
 public:
  ClosingServer() { start(); }
  ~ClosingServer() override { stop(); }
  std::string url() const { return LoopbackServer::url("/x"); }
  void close_idle() {
    asked_ += 1;
    close_.fetch_add(1);
  }
  void hold() { held_ = true; }
  void answer() { answers_.fetch_add(1); }
  int connections() const { return connections_.load(); }
  // Waits until the connection was shut down as the last close_idle() asked (5 s at most); false
  // if it was not.
  bool closed() {
    for (int i = 0; i < 5000 && closed_.load() < asked_; ++i) std::this_thread::sleep_for(1ms);
    return closed_.load() == asked_;
  }

 private:
  void serve_connection(int conn) override {
    connections_.fetch_add(1);
    std::string got;
    while (true) {
      while (got.find("\r\n\r\n") == std::string::npos) {
        if (close_.load() > 0) {
          close_.fetch_sub(1);
          shutdown(conn, SHUT_RDWR);  // the client sees the end of the stream now
          closed_.fetch_add(1);
          return;
        }
        pollfd p{conn, POLLIN, 0};
        if (stopping()) return;
        if (poll(&p, 1, 5) > 0 && !read_more(conn, got)) return;
      }
      got.erase(0, got.find("\r\n\r\n") + 4);
      while (held_ && answers_.load() == 0 && !stopping()) std::this_thread::sleep_for(1ms);
      if (held_) answers_.fetch_sub(1);
      const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (write(conn, reply.data(), reply.size()) < 0) return;
    }
  }

  int asked_ = 0;  // the test's thread only
  std::atomic<int> close_{0};
  std::atomic<int> closed_{0};
  std::atomic<int> connections_{0};
  std::atomic<int> answers_{0};
  std::atomic<bool> held_{false};
};

HttpRequest get(const ClosingServer& server) {
  HttpRequest r;
  r.url = server.url();
  r.timeouts.total_ms = 5000;
  return r;
}

std::string send(Transport& t, const ClosingServer& server) {
  auto sink = std::make_shared<test::BodySink>();
  t.submit(get(server), sink);
  return sink->body();
}

struct DoneSink : Sink {
  std::atomic<bool> done{false};
  TransferResult result;
  DataAction on_data(std::string_view) override { return DataAction::kContinue; }
  void on_done(const TransferResult& r) override {
    result = r;
    done = true;
  }
};

// Waits until `t`'s loop thread has parked with nothing to do (a Driver can claim it).
void until_idle(Transport& t) {
  for (int i = 0; i < 1000; ++i) {
    if (Transport::Driver(t).held()) return;
    std::this_thread::sleep_for(1ms);
  }
  FAIL("the loop thread never parked");
}

}  // namespace

TEST_CASE("an idle pooled connection closed by the server does not keep the loop turning", "[transport][sockets]") {
  ClosingServer server;
  Transport t;
  REQUIRE(send(t, server) == "ok");  // the connection now idles in the pool
  server.close_idle();
  REQUIRE(server.closed());
  // The loop thread waits in epoll for a timer 200 ms away; the closed connection's socket is
  // readable meanwhile. One turn for the post, one at most for the socket, one for the timer.
  const int64_t turns = t.turns();
  std::promise<void> ran;
  t.post([&ran] { ran.set_value(); }, 200ms);
  REQUIRE(ran.get_future().wait_for(5s) == std::future_status::ready);
  CHECK(t.turns() - turns <= 10);
  // And the next transfer finds the connection dead and opens another.
  CHECK(send(t, server) == "ok");
  CHECK(server.connections() == 2);
}

TEST_CASE("a closed connection's socket number taken by the next connection is watched", "[transport][sockets]") {
  ClosingServer server;
  Transport t;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(send(t, server) == "ok");
    server.close_idle();
    REQUIRE(server.closed());
  }
  CHECK(server.connections() == 5);
  // A kept-alive connection after those: its socket took a closed one's number.
  CHECK(send(t, server) == "ok");
  CHECK(send(t, server) == "ok");
  CHECK(server.connections() == 6);
}

TEST_CASE("a watch whose lease ended is not left readable by its lender's set", "[transport][sockets][lend]") {
  ClosingServer server;
  server.hold();
  Transport t;
  auto watch = std::make_shared<LoopWatch>();
  server.answer();
  REQUIRE(send(t, server) == "ok");
  until_idle(t);
  const int64_t lends = t.lends();
  auto sink = std::make_shared<DoneSink>();
  start_sending_here(t, [&] { return t.submit(get(server), sink); }, watch);
  REQUIRE(t.lends() == lends + 1);
  server.answer();
  REQUIRE(watch->serve_until([&] { return sink->done.load(); }, -1, 10s));
  REQUIRE_FALSE(watch->lent());
  // The server closes the idle connection: the lender's set is readable while its loop thread
  // is parked (nobody reads it). The event loop's fd() then wakes it once: a turn takes the set
  // out (within a few turns: the last lease's timer may fire too, and is read by a turn).
  server.close_idle();
  REQUIRE(server.closed());
  pollfd p{watch->fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  int turns = 0;
  for (; turns < 50 && poll(&p, 1, 0) == 1; ++turns) watch->turn();
  CHECK(turns <= 3);
  CHECK(poll(&p, 1, 0) == 0);
  // The next lease watches the set again.
  auto next = std::make_shared<DoneSink>();
  until_idle(t);
  start_sending_here(t, [&] { return t.submit(get(server), next); }, watch);
  server.answer();
  REQUIRE(watch->serve_until([&] { return next->done.load(); }, -1, 10s));
  CHECK(next->result.http_status == 200);
}

TEST_CASE("a timer is waited for without turning the loop", "[transport][sockets]") {
  Transport t;
  for (int i = 0; i < 5; ++i) {
    const int64_t turns = t.turns();
    std::promise<void> ran;
    t.post([&ran] { ran.set_value(); }, 50ms);
    REQUIRE(ran.get_future().wait_for(5s) == std::future_status::ready);
    CHECK(t.turns() - turns <= 5);  // the post, the timer, and a spurious wake-up or two at most
  }
}
