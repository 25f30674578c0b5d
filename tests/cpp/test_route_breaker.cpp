#include <catch2/catch.hpp>

#include "orroute/error.h"
#include "orroute/route/circuit_breaker.h"
#include "orroute/route/router_state.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {
BreakerConfig config() {
  BreakerConfig c;
  c.consecutive_failures = 3;
  c.failure_rate = 0.5;
  c.min_calls_in_window = 10;
  c.window = 60s;
  c.cooldown = 10s;
  c.half_open_probes = 1;
  c.successes_to_close = 2;
  return c;
}
void fail(CircuitBreaker& b, Instant now) {
  REQUIRE(b.allow(now));
  b.record_failure(now);
}
void succeed(CircuitBreaker& b, Instant now) {
  REQUIRE(b.allow(now));
  b.record_success(now);
}
}  // namespace

TEST_CASE("breaker opens after consecutive failures and refuses instantly", "[route][breaker]") {
  ManualClock clock;
  CircuitBreaker b(config());
  fail(b, clock.now());
  fail(b, clock.now());
  REQUIRE(b.state(clock.now()) == BreakerState::kClosed);
  SECTION("a success in between resets the run") {
    succeed(b, clock.now());
    fail(b, clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kClosed);
  }
  SECTION("the third in a row opens it") {
    fail(b, clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kOpen);
    REQUIRE_FALSE(b.allow(clock.now()));
    REQUIRE(b.snapshot(clock.now()).open_for == Duration(10s));
    REQUIRE(b.snapshot(clock.now()).times_opened == 1);
  }
}

TEST_CASE("breaker opens on the failure rate over its window", "[route][breaker]") {
  ManualClock clock;
  CircuitBreaker b(config());
  // Alternate: never 3 in a row, but half of the calls fail.
  for (int i = 0; i < 4; ++i) {
    succeed(b, clock.now());
    fail(b, clock.now());
    clock.advance(1s);
  }
  REQUIRE(b.state(clock.now()) == BreakerState::kClosed);  // 8 calls < min_calls_in_window
  succeed(b, clock.now());
  fail(b, clock.now());  // 10 calls, 5 failures
  REQUIRE(b.state(clock.now()) == BreakerState::kOpen);
}

TEST_CASE("old calls leave the failure-rate window", "[route][breaker]") {
  ManualClock clock;
  CircuitBreaker b(config());
  for (int i = 0; i < 4; ++i) {
    succeed(b, clock.now());
    fail(b, clock.now());
  }
  clock.advance(2min);  // those 8 calls are out of the window
  for (int i = 0; i < 8; ++i) succeed(b, clock.now());
  succeed(b, clock.now());
  fail(b, clock.now());
  REQUIRE(b.state(clock.now()) == BreakerState::kClosed);
  REQUIRE(b.snapshot(clock.now()).calls_in_window == 10);
}

TEST_CASE("open breaker half-opens after the cooldown and closes after probe successes",
          "[route][breaker]") {
  ManualClock clock;
  CircuitBreaker b(config());
  for (int i = 0; i < 3; ++i) fail(b, clock.now());
  clock.advance(9s);
  REQUIRE_FALSE(b.allow(clock.now()));
  clock.advance(1s);
  REQUIRE(b.state(clock.now()) == BreakerState::kHalfOpen);
  REQUIRE(b.allow(clock.now()));         // the probe
  REQUIRE_FALSE(b.allow(clock.now()));   // only one probe in flight
  SECTION("probe failure reopens for a fresh cooldown") {
    b.record_failure(clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kOpen);
    REQUIRE(b.snapshot(clock.now()).open_for == Duration(10s));
    REQUIRE(b.snapshot(clock.now()).times_opened == 2);
  }
  SECTION("probe successes close it") {
    b.record_success(clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kHalfOpen);
    succeed(b, clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kClosed);
    REQUIRE(b.allow(clock.now()));
    REQUIRE(b.allow(clock.now()));
  }
  SECTION("a neutral end frees the probe slot without deciding") {
    b.release(clock.now());
    REQUIRE(b.state(clock.now()) == BreakerState::kHalfOpen);
    REQUIRE(b.allow(clock.now()));
  }
}

TEST_CASE("breaker refuses invalid configuration", "[route][breaker]") {
  BreakerConfig c;
  c.window = 0s;
  REQUIRE_THROWS_AS(CircuitBreaker(c), InvalidArgument);
  BreakerConfig d;
  d.half_open_probes = 0;
  REQUIRE_THROWS_AS(CircuitBreaker(d), InvalidArgument);
}

TEST_CASE("router state keeps one breaker per key", "[route][breaker]") {
  ManualClock clock;
  InMemoryRouterState state(config());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(state.breaker_allow("model:a", clock.now()));
    state.breaker_record("model:a", CallOutcome::kOutage, clock.now());
  }
  REQUIRE_FALSE(state.breaker_allow("model:a", clock.now()));
  REQUIRE(state.breaker_allow("model:b", clock.now()));
  state.breaker_record("model:b", CallOutcome::kNeutral, clock.now());
  REQUIRE(state.breaker_snapshot("model:a", clock.now()).state == BreakerState::kOpen);
  REQUIRE(state.breaker_snapshot("model:never", clock.now()).state == BreakerState::kClosed);
}
