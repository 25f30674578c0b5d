// A pooled connection's socket stays in the loop's epoll set while it idles between transfers,
// and an event loop's LoopWatch keeps its lender's set registered between leases (no syscall a
// call for either). What that must not break: a server closing an idle connection (its socket
// readable for ever, level-triggered) keeps neither the loop nor the event loop turning, and a
// closed connection's number taken by the next connection's socket is watched.
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <csignal>

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

// While set, timerfd_settime() arming a timer takes this long before it arms it, as when the thread
// is preempted between reading the clock and the syscall on a loaded machine (the test's own
// thread only; the loop thread is parked while a lease is armed).
std::atomic<int> g_settime_delay_ms{0};
std::atomic<int64_t> g_settime_at_ns{0};     // when the last delayed call began (steady clock)
std::atomic<int64_t> g_settime_value_ns{0};  // the timeout it armed

}  // namespace

extern "C" int timerfd_settime(int fd, int flags, const itimerspec* value, itimerspec* old) {
  using Fn = int (*)(int, int, const itimerspec*, itimerspec*);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "timerfd_settime"));
  const int delay = g_settime_delay_ms.load();
  if (delay > 0 && value != nullptr && value->it_value.tv_sec * 1'000'000'000LL + value->it_value.tv_nsec > 1) {
    g_settime_at_ns = std::chrono::steady_clock::now().time_since_epoch().count();
    g_settime_value_ns = value->it_value.tv_sec * 1'000'000'000LL + value->it_value.tv_nsec;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
  return real(fd, flags, value, old);
}

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
  std::thread::id done_on;  // the thread that ended the transfer (read once done)
  DataAction on_data(std::string_view) override { return DataAction::kContinue; }
  void on_done(const TransferResult& r) override {
    result = r;
    done_on = std::this_thread::get_id();
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
  const int64_t lends_before_next = t.lends();
  start_sending_here(t, [&] { return t.submit(get(server), next); }, watch);
  REQUIRE(t.lends() == lends_before_next + 1);
  server.answer();
  // serve_until may return early when fd() has news for another waiter (the last lease's timer
  // firing late): its caller then waits on fd() and serves again, as an event loop does. The
  // reply is read here, on this thread, or the set is not watched (and the lease's timeout hands
  // the transfer to the loop thread).
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!next->done.load() && std::chrono::steady_clock::now() < until) {
    pollfd ready{watch->fd(), POLLIN, 0};
    poll(&ready, 1, 100);
    watch->serve_until([&] { return next->done.load(); }, -1, 1s);
  }
  REQUIRE(next->done.load());
  CHECK(next->done_on == std::this_thread::get_id());
  CHECK(next->result.http_status == 200);
}

TEST_CASE("a lease's timer read by a turn before it fired is still read once it fires", "[transport][sockets][lend]") {
  // The lease's timer is due at the clock read before timerfd_settime, and fires a little later
  // (here 200 ms: the arming thread preempted). A turn in between finds it unfired; the lease
  // then ends with the timer left armed: when it fires, fd() is readable, and must not stay so.
  ClosingServer server;
  server.hold();
  Transport t;
  auto watch = std::make_shared<LoopWatch>();
  server.answer();
  REQUIRE(send(t, server) == "ok");
  until_idle(t);
  const int64_t lends = t.lends();
  auto sink = std::make_shared<DoneSink>();
  g_settime_delay_ms = 200;
  start_sending_here(t, [&] { return t.submit(get(server), sink); }, watch);
  g_settime_delay_ms = 0;
  REQUIRE(t.lends() == lends + 1);
  const auto due = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(g_settime_at_ns.load() + g_settime_value_ns.load()));
  REQUIRE(Transport::Driver(t).held());  // this thread ends the lease (nobody in serve_until): the timer stays armed
  REQUIRE_FALSE(watch->lent());
  std::this_thread::sleep_until(due + 50ms);
  watch->turn();  // the event loop turns for something else: due by the clock, not fired yet
  std::this_thread::sleep_until(due + 400ms);
  pollfd p{watch->fd(), POLLIN, 0};
  int turns = 0;
  for (; turns < 50 && poll(&p, 1, 0) == 1; ++turns) watch->turn();
  CHECK(turns <= 3);
  CHECK(poll(&p, 1, 0) == 0);
  server.answer();
  for (int i = 0; i < 5000 && !sink->done.load(); ++i) std::this_thread::sleep_for(1ms);
  CHECK(sink->result.http_status == 200);
}

TEST_CASE("a lender closed between leases while a forked child holds its set does not keep the watch readable", "[transport][sockets][lend]") {
  // A forked child (a multiprocessing worker) holds copies of the lender's descriptors: closing
  // the transport in the parent leaves its epoll set alive, still in the watch's set, and
  // readable (its wake-up was written as it closed). The lender's number names nothing now.
  ClosingServer server;
  server.hold();
  auto watch = std::make_shared<LoopWatch>();
  pid_t child = -1;
  {
    Transport t;
    server.answer();
    REQUIRE(send(t, server) == "ok");
    until_idle(t);
    const int64_t lends = t.lends();
    auto sink = std::make_shared<DoneSink>();
    start_sending_here(t, [&] { return t.submit(get(server), sink); }, watch);
    REQUIRE(t.lends() == lends + 1);
    server.answer();
    REQUIRE(watch->serve_until([&] { return sink->done.load(); }, -1, 10s));
    child = fork();
    if (child == 0) {
      sleep(30);
      _exit(0);
    }
    REQUIRE(child > 0);
  }
  pollfd p{watch->fd(), POLLIN, 0};
  int turns = 0;
  for (; turns < 50 && poll(&p, 1, turns == 0 ? 500 : 0) == 1; ++turns) watch->turn();
  const bool readable = poll(&p, 1, 0) == 1;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  CHECK(turns <= 3);
  CHECK_FALSE(readable);
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
