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

TEST_CASE("a call's breakers asked and recorded in one step mean what each key's call means",
          "[route][breaker]") {
  ManualClock clock;
  InMemoryRouterState state(config());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(state.breaker_allow("endpoint:b", clock.now()));
    state.breaker_record("endpoint:b", CallOutcome::kOutage, clock.now());
  }
  // Asked in order, stopped at the first refused: the one before it is allowed (and handled).
  BreakerPass passes[] = {{"model:a", {}}, {"endpoint:b", {}}, {"provider:c", {}}};
  REQUIRE(state.breakers_allow(passes, clock.now()) == 1);
  REQUIRE(passes[0].handle.entry != 0);
  REQUIRE(passes[2].handle.entry == 0);  // never asked
  REQUIRE(state.breaker_snapshot("provider:c", clock.now()).calls_in_window == 0);
  // Recorded through the handle: the breaker of its key.
  const BreakerRecord outage[] = {{"model:a", passes[0].handle, CallOutcome::kOutage}};
  state.breakers_record(outage, clock.now());
  REQUIRE(state.breaker_snapshot("model:a", clock.now()).calls_in_window == 1);
  BreakerPass all[] = {{"model:a", {}}, {"provider:c", {}}};
  REQUIRE(state.breakers_allow(all, clock.now()) == 2);
  const BreakerRecord done[] = {{"model:a", all[0].handle, CallOutcome::kSuccess},
                                {"provider:c", all[1].handle, CallOutcome::kSuccess},
                                {"provider:d", {}, CallOutcome::kOutage}};  // without a permit
  state.breakers_record(done, clock.now());
  REQUIRE(state.breaker_snapshot("model:a", clock.now()).calls_in_window == 2);
  REQUIRE(state.breaker_snapshot("provider:c", clock.now()).calls_in_window == 1);
  REQUIRE(state.breaker_snapshot("provider:d", clock.now()).calls_in_window == 1);
}

TEST_CASE("a breaker handle is used only by the state that gave it, before its breakers are reset",
          "[route][breaker]") {
  ManualClock clock;
  BreakerConfig one = config();
  one.consecutive_failures = 1;
  InMemoryRouterState a(one);
  InMemoryRouterState b(one);
  BreakerPass pass[] = {{"model:m", {}}};
  REQUIRE(a.breakers_allow(pass, clock.now()) == 1);
  // Another state given a's handle goes by the key: its own breaker takes the outage, a's none.
  REQUIRE(b.breaker_allow("model:m", clock.now()));
  const BreakerRecord outage[] = {{"model:m", pass[0].handle, CallOutcome::kOutage}};
  b.breakers_record(outage, clock.now());
  REQUIRE(b.breaker_snapshot("model:m", clock.now()).state == BreakerState::kOpen);
  REQUIRE(a.breaker_snapshot("model:m", clock.now()).state == BreakerState::kClosed);
  // Reset breakers (a new config) free the entry the handle named: the record finds the new one.
  a.set_breaker_config(one);
  a.breakers_record(outage, clock.now());
  REQUIRE(a.breaker_snapshot("model:m", clock.now()).state == BreakerState::kOpen);
}
