// The loop lent to an event loop's LoopWatch (Transport::Driver::lend_to): the one transfer left
// after the send is read on the watch's thread, with no wake-up of the loop thread; a command
// from another thread ends the lease (a thread waiting in serve_until learns it at once) and the
// loop thread finishes the transfer.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>

#include "loopback_server.h"
#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// An HTTP/1.1 server on 127.0.0.1 that answers each request with "ok" once answer() was called
// (keep-alive, one connection at a time).
class HeldServer : public test::LoopbackServer {
 public:
  HeldServer() { start(); }
  ~HeldServer() override { stop(); }
  std::string url() const { return LoopbackServer::url("/x"); }
  void answer() { answers_.fetch_add(1); }

 private:
  void serve_connection(int conn) override {
    std::string got;
    while (read_more(conn, got)) {
      while (got.find("\r\n\r\n") != std::string::npos) {  // a GET: the head is the request
        got.erase(0, got.find("\r\n\r\n") + 4);
        while (answers_.load() == 0 && !stopping()) std::this_thread::sleep_for(1ms);
        answers_.fetch_sub(1);
        const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (write(conn, reply.data(), reply.size()) < 0) return;
      }
    }
  }

  std::atomic<int> answers_{0};
};

struct DoneSink : Sink {
  std::atomic<bool> done{false};
  std::thread::id done_on;
  TransferResult result;
  DataAction on_data(std::string_view) override { return DataAction::kContinue; }
  void on_done(const TransferResult& r) override {
    result = r;
    done_on = std::this_thread::get_id();
    done = true;
  }
};

HttpRequest get(const HeldServer& server) {
  HttpRequest r;
  r.url = server.url();
  return r;
}

// Waits until `t`'s loop thread has parked with nothing to do (a Driver can claim it).
void until_idle(Transport& t) {
  for (int i = 0; i < 1000; ++i) {
    if (Transport::Driver(t).held()) return;
    std::this_thread::sleep_for(1ms);
  }
  FAIL("the loop thread never parked");
}

// One transfer on a kept-alive connection, sent here and lent to `watch` (asserted).
std::shared_ptr<DoneSink> lent_transfer(Transport& t, HeldServer& server, const std::shared_ptr<LoopWatch>& watch) {
  auto warm = std::make_shared<DoneSink>();
  server.answer();
  t.submit(get(server), warm);
  for (int i = 0; i < 5000 && !warm->done; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(warm->done);
  until_idle(t);
  const int64_t lends = t.lends();
  auto sink = std::make_shared<DoneSink>();
  start_sending_here(t, [&] { return t.submit(get(server), sink); }, watch);
  REQUIRE(t.lends() == lends + 1);  // the reply is held back: the transfer waits on its socket
  CHECK(watch->lent());
  return sink;
}

}  // namespace

TEST_CASE("a lent transfer is read on the watch's thread without waking the loop thread", "[transport][lend]") {
  HeldServer server;
  Transport t;
  auto watch = std::make_shared<LoopWatch>();
  auto sink = lent_transfer(t, server, watch);
  const int64_t wakeups = t.wakeups();
  server.answer();
  REQUIRE(watch->serve_until([&] { return sink->done.load(); }, -1, 10s));
  CHECK(sink->done_on == std::this_thread::get_id());
  CHECK(sink->result.status == TransferStatus::kOk);
  CHECK(sink->result.http_status == 200);
  CHECK(t.wakeups() == wakeups);
  CHECK_FALSE(watch->lent());  // the lease ended with its transfer
  pollfd p{watch->fd(), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);  // and left nothing readable to spin on
}

TEST_CASE("another thread's command ends the lease; the loop thread finishes the transfer", "[transport][lend]") {
  HeldServer server;
  Transport t;
  auto watch = std::make_shared<LoopWatch>();
  auto sink = lent_transfer(t, server, watch);
  std::thread other([&] {
    std::this_thread::sleep_for(50ms);
    t.post([] {});  // ends the lease
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(watch->serve_until([&] { return sink->done.load(); }, -1, 10s));  // told at once
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  other.join();
  CHECK_FALSE(watch->lent());
  watch->turn();  // what the event loop's reader does with fd() readable: reads the timer
  pollfd p{watch->fd(), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);
  server.answer();
  for (int i = 0; i < 5000 && !sink->done; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(sink->done);
  CHECK(sink->done_on != std::this_thread::get_id());
  CHECK(sink->result.http_status == 200);
}

TEST_CASE("a watch with nothing lent serves nothing", "[transport][lend]") {
  LoopWatch watch;
  CHECK_FALSE(watch.lent());
  watch.turn();
  CHECK_FALSE(watch.serve_until([] { return false; }, -1, 10ms));
  CHECK(watch.serve_until([] { return true; }, -1, 10ms));
}
