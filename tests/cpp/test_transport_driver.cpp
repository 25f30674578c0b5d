// A blocking caller may run the transport's loop on its own thread while the loop thread is idle
// (Transport::Driver): the work runs on the caller's thread without waking anyone; only one thread
// drives at a time; whatever is left when the caller lets go is taken over by the loop thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Claims `t`'s loop once its thread has parked (it parks as soon as it starts with nothing to do).
std::unique_ptr<Transport::Driver> claim(Transport& t) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    auto d = std::make_unique<Transport::Driver>(t);
    if (d->held()) return d;
    std::this_thread::sleep_for(1ms);
  }
  FAIL("the loop thread never parked");
  return nullptr;
}

}  // namespace

TEST_CASE("a caller driving the idle loop runs its work on its own thread without a wake-up",
          "[transport][driver]") {
  Transport t;
  auto driver = claim(t);
  const int64_t before = t.wakeups();
  std::atomic<bool> ran{false};
  std::thread::id ran_on;
  t.post([&] {
    ran_on = std::this_thread::get_id();
    ran = true;
  });
  CHECK(t.wakeups() == before);  // queued by the driver's thread: nobody to wake
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(driver->run_until([&] { return ran.load(); }, 60s));
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);  // returns once done, not at the timeout
  CHECK(ran_on == std::this_thread::get_id());
}

TEST_CASE("only one thread drives the loop; another's command still runs", "[transport][driver]") {
  Transport t;
  auto driver = claim(t);
  std::atomic<bool> ran{false};
  std::thread other([&] {
    Transport::Driver second(t);
    CHECK_FALSE(second.held());
    t.post([&] { ran = true; });  // wakes the driver's poll
  });
  REQUIRE(driver->run_until([&] { return ran.load(); }, 10s));
  other.join();
}

TEST_CASE("what a driver leaves behind, the loop thread takes over", "[transport][driver]") {
  Transport t;
  auto ran = std::make_shared<std::promise<std::thread::id>>();
  auto ran_on = ran->get_future();
  {
    auto driver = claim(t);
    t.post([ran] { ran->set_value(std::this_thread::get_id()); }, 30ms);  // still waiting at release
  }
  REQUIRE(ran_on.wait_for(10s) == std::future_status::ready);
  CHECK(ran_on.get() != std::this_thread::get_id());
}

TEST_CASE("a busy loop is not claimed", "[transport][driver]") {
  Transport t;
  auto busy = std::make_shared<std::promise<void>>();
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  t.post([busy, released] {
    busy->set_value();
    released.wait();  // the loop thread is inside a turn
  });
  busy->get_future().wait();
  {
    Transport::Driver driver(t);
    CHECK_FALSE(driver.held());
  }
  release->set_value();
  auto after = claim(t);  // idle again once its work is done
  CHECK(after->held());
}
