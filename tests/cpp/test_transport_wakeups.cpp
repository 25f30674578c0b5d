// The transport wakes its thread once per batch of commands: commands queued while an earlier one
// still waits ride along with it, and commands queued from the transport thread itself wake
// nobody; every command still runs, in order.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Runs `fn` on the transport thread and waits for it.
void on_loop(Transport& t, std::function<void()> fn) {
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  t.post([fn = std::move(fn), p] {
    fn();
    p->set_value();
  });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
}

}  // namespace

TEST_CASE("commands queued while the loop is busy share one wake-up and all run in order",
          "[transport]") {
  Transport t;
  on_loop(t, [] {});  // the loop is up and idle
  auto release = std::make_shared<std::promise<void>>();
  auto busy = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  t.post([busy, released] {
    busy->set_value();
    released.wait();  // holds the loop while the commands below queue up
  });
  busy->get_future().wait();
  const int64_t before = t.wakeups();
  std::mutex mu;
  std::vector<int> ran;
  auto all = std::make_shared<std::promise<void>>();
  constexpr int kCommands = 100;
  for (int i = 0; i < kCommands; ++i) {
    t.post([i, &mu, &ran, all] {
      std::lock_guard lock(mu);
      ran.push_back(i);
      if (ran.size() == kCommands) all->set_value();
    });
  }
  CHECK(t.wakeups() - before == 1);  // the first woke the loop; the other 99 rode along
  release->set_value();
  REQUIRE(all->get_future().wait_for(10s) == std::future_status::ready);
  std::lock_guard lock(mu);
  for (int i = 0; i < kCommands; ++i) REQUIRE(ran[static_cast<size_t>(i)] == i);
}

TEST_CASE("a command queued from the transport thread runs without waking it", "[transport]") {
  Transport t;
  on_loop(t, [] {});
  auto inner = std::make_shared<std::promise<void>>();
  auto inner_ran = inner->get_future();
  int64_t during = -1;
  on_loop(t, [&t, inner, &during] {
    const int64_t before = t.wakeups();
    t.post([inner] { inner->set_value(); });  // e.g. a retry scheduled by a sink
    during = t.wakeups() - before;
  });
  CHECK(during == 0);
  // It still runs: the loop reads its queue before it sleeps.
  REQUIRE(inner_ran.wait_for(10s) == std::future_status::ready);
}

TEST_CASE("commands from several threads at once all run", "[transport]") {
  Transport t;
  constexpr int kThreads = 4;
  constexpr int kEach = 500;
  std::atomic<int> ran{0};
  auto all = std::make_shared<std::promise<void>>();
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&t, &ran, all] {
      for (int i = 0; i < kEach; ++i) {
        t.post([&ran, all] {
          if (ran.fetch_add(1) + 1 == kThreads * kEach) all->set_value();
        });
      }
    });
  }
  for (std::thread& th : threads) th.join();
  REQUIRE(all->get_future().wait_for(10s) == std::future_status::ready);
  CHECK(t.wakeups() <= kThreads * kEach);
}
