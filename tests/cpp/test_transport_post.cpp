// Transport::post's delay, and Driver::run_until's timeout, at the ends of their range: a delay
// past what the clock counts means "never", a negative one "now"; neither is undefined behaviour
// (now + delay overflowed: milliseconds::max() in nanoseconds wrapped to a millisecond ago, so
// "never" ran at once), and the loop goes on running other work and stops.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <thread>

#include "orroute/net/transport.h"

using namespace orroute;
using namespace std::chrono_literals;

TEST_CASE("a post delayed past the clock's range waits for ever while other work runs",
          "[transport][post]") {
  auto never = std::make_shared<std::atomic<int>>(0);
  std::promise<void> negative, soon, later;
  {
    Transport t;
    t.post([never] { ++*never; }, std::chrono::milliseconds::max());
    t.post([never] { ++*never; }, std::chrono::milliseconds(std::numeric_limits<int64_t>::max() / 2));
    t.post([never] { ++*never; }, std::chrono::milliseconds(10'000'000'000'000));  // 317 years
    t.post([&] { negative.set_value(); }, std::chrono::milliseconds::min());
    t.post([&] { soon.set_value(); }, 20ms);
    REQUIRE(negative.get_future().wait_for(10s) == std::future_status::ready);
    REQUIRE(soon.get_future().wait_for(10s) == std::future_status::ready);
    t.post([&] { later.set_value(); });
    REQUIRE(later.get_future().wait_for(10s) == std::future_status::ready);
    CHECK(*never == 0);
  }  // the loop stops with the three still pending
}

TEST_CASE("a driver's run_until with the longest timeout returns once done", "[transport][post]") {
  Transport t;
  std::unique_ptr<Transport::Driver> driver;
  for (int i = 0; i < 10'000 && !(driver && driver->held()); ++i) {
    driver = std::make_unique<Transport::Driver>(t);  // held once the loop thread has parked
    if (!driver->held()) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(driver->held());
  std::atomic<bool> ran{false};
  t.post([&] { ran = true; }, 20ms);
  CHECK(driver->run_until([&] { return ran.load(); }, std::chrono::milliseconds::max()));
  CHECK(ran);
}
