// RedisRouterState against a private redis-server: two state objects stand for two processes
// (or machines) sharing breakers, rate-limit windows and holds. Skipped without hiredis or
// redis-server.
#include <catch2/catch.hpp>

#ifdef ORROUTE_HAVE_REDIS

#include <memory>

#include "orroute/route/capped_names.h"
#include "orroute/route/redis_router_state.h"
#include "redis_server.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

BreakerConfig quick_breaker() {
  BreakerConfig c;
  c.consecutive_failures = 3;
  c.cooldown = 10s;
  c.half_open_probes = 1;
  c.successes_to_close = 2;
  return c;
}

// Two states on one prefix (wiped), or nulls when Redis is unavailable.
std::pair<std::unique_ptr<RedisRouterState>, std::unique_ptr<RedisRouterState>> pair_of(
    const std::string& name, const Clock& clock) {
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary");
    return {};
  }
  const std::string url = server->url("rs-" + name);
  auto a = std::make_unique<RedisRouterState>(url, clock, quick_breaker());
  a->wipe();
  return {std::move(a), std::make_unique<RedisRouterState>(url, clock, quick_breaker())};
}

const std::vector<std::string> kModel = {"model:a"};
const std::vector<std::string> kModelAndKey = {"model:a", "key:k"};

}  // namespace

TEST_CASE("redis router state: a breaker opened by one process refuses in another",
          "[redis][breaker]") {
  ManualClock clock;
  auto [a, b] = pair_of("breaker", clock);
  if (!a) return;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(a->breaker_allow("model:a", clock.now()));
    a->breaker_record("model:a", CallOutcome::kOutage, clock.now());
  }
  REQUIRE_FALSE(b->breaker_allow("model:a", clock.now()));
  REQUIRE(b->breaker_allow("model:b", clock.now()));
  b->breaker_record("model:b", CallOutcome::kNeutral, clock.now());
  auto snap = b->breaker_snapshot("model:a", clock.now());
  REQUIRE(snap.state == BreakerState::kOpen);
  REQUIRE(snap.open_for == Duration(10s));
  REQUIRE(snap.times_opened == 1);
  REQUIRE(b->breaker_snapshot("model:never", clock.now()).state == BreakerState::kClosed);
  clock.advance(10s);
  REQUIRE(a->breaker_snapshot("model:a", clock.now()).state == BreakerState::kHalfOpen);
  REQUIRE(a->breaker_allow("model:a", clock.now()));        // the probe
  REQUIRE_FALSE(b->breaker_allow("model:a", clock.now()));  // one probe in flight, everywhere
  a->breaker_record("model:a", CallOutcome::kSuccess, clock.now());
  REQUIRE(b->breaker_allow("model:a", clock.now()));
  b->breaker_record("model:a", CallOutcome::kSuccess, clock.now());
  REQUIRE(a->breaker_snapshot("model:a", clock.now()).state == BreakerState::kClosed);
  SECTION("the failure rate over the window also opens it") {
    BreakerConfig c = quick_breaker();
    c.consecutive_failures = 0;
    c.min_calls_in_window = 4;
    c.failure_rate = 0.5;
    a->set_breaker_config(c);
    b->set_breaker_config(c);
    for (int i = 0; i < 2; ++i) {
      a->breaker_allow("model:r", clock.now());
      a->breaker_record("model:r", CallOutcome::kSuccess, clock.now());
      b->breaker_allow("model:r", clock.now());
      b->breaker_record("model:r", CallOutcome::kOutage, clock.now());
    }
    REQUIRE(a->breaker_snapshot("model:r", clock.now()).state == BreakerState::kOpen);
  }
}

TEST_CASE("redis router state: provider and endpoint breaker keys, recorded without a permit",
          "[redis][breaker]") {
  // The attempt loop records a reply's provider even when it took no permit for it (OpenRouter
  // routed the call to another provider than last time); names may hold spaces.
  ManualClock clock;
  auto [a, b] = pair_of("provider-keys", clock);
  if (!a) return;
  for (int i = 0; i < 3; ++i) a->breaker_record("provider:Google AI Studio", CallOutcome::kOutage, clock.now());
  REQUIRE_FALSE(b->breaker_allow("provider:Google AI Studio", clock.now()));
  REQUIRE(b->breaker_snapshot("provider:Google AI Studio", clock.now()).state == BreakerState::kOpen);
  REQUIRE(b->breaker_allow("provider:Google", clock.now()));
  b->breaker_record("provider:Google", CallOutcome::kNeutral, clock.now());
  REQUIRE(b->breaker_allow("endpoint:openrouter.ai", clock.now()));
  b->breaker_record("endpoint:openrouter.ai", CallOutcome::kSuccess, clock.now());
  REQUIRE(a->breaker_snapshot("endpoint:openrouter.ai", clock.now()).state == BreakerState::kClosed);
}

TEST_CASE("redis router state: past kMaxBreakers names, new ones share the breaker of (other)",
          "[redis][breaker]") {
  // The keys name requested models: a caller naming a new model per call must not grow Redis
  // without bound (the in-memory state's rule, kept in Redis so every process files a name alike).
  ManualClock clock;
  auto [a, b] = pair_of("breaker-cap", clock);
  if (!a) return;
  for (size_t i = 0; i < RedisRouterState::kMaxBreakers; ++i) {
    a->breaker_record("model:m" + std::to_string(i), CallOutcome::kNeutral, clock.now());
  }
  for (int i = 0; i < 3; ++i) a->breaker_record("model:new-1", CallOutcome::kOutage, clock.now());
  REQUIRE_FALSE(b->breaker_allow("model:new-2", clock.now()));  // the shared "(other)" breaker
  REQUIRE(b->breaker_snapshot(kOtherName, clock.now()).state == BreakerState::kOpen);
  REQUIRE(b->breaker_allow("model:m7", clock.now()));  // a name within the cap keeps its own
  b->breaker_record("model:m7", CallOutcome::kNeutral, clock.now());
}

TEST_CASE("redis router state: rate limits and holds hold across processes", "[redis][limiter]") {
  ManualClock clock;
  auto [a, b] = pair_of("limits", clock);
  if (!a) return;
  for (auto* s : {a.get(), b.get()}) {
    s->set_limit("model:a", {.requests = 3, .window = 10s});
  }
  REQUIRE(a->try_admit(kModel, {}, clock.now()).admitted);
  clock.advance(1s);
  REQUIRE(b->try_admit(kModel, {}, clock.now()).admitted);
  clock.advance(1s);
  REQUIRE(a->try_admit(kModel, {}, clock.now()).admitted);
  clock.advance(1s);
  auto refused = b->try_admit(kModel, {}, clock.now());
  REQUIRE_FALSE(refused.admitted);
  REQUIRE(refused.blocked_by == "model:a");
  REQUIRE(refused.retry_in == Duration(7s));  // the first request leaves at t=10s
  REQUIRE(a->usage_in_window("model:a", clock.now()).requests == 3);
  clock.advance(refused.retry_in);
  REQUIRE(b->try_admit(kModel, {}, clock.now()).admitted);

  SECTION("tokens: settle frees unused output, a too-big request never passes") {
    for (auto* s : {a.get(), b.get()}) {
      s->set_limit("model:t", {.input_tokens = 1000, .output_tokens = 500, .window = 60s});
    }
    const std::vector<std::string> t = {"model:t"};
    auto x = a->try_admit(t, {.requests = 1, .input_tokens = 600, .output_tokens = 400},
                          clock.now());
    REQUIRE(x.admitted);
    REQUIRE_FALSE(b->try_admit(t, {.requests = 1, .output_tokens = 200}, clock.now()).admitted);
    a->settle_admission(x.ticket, {.requests = 1, .input_tokens = 600, .output_tokens = 50});
    REQUIRE(b->usage_in_window("model:t", clock.now()).output_tokens == 50);
    REQUIRE(b->try_admit(t, {.requests = 1, .output_tokens = 200}, clock.now()).admitted);
    auto never = b->try_admit(t, {.requests = 1, .input_tokens = 5000}, clock.now());
    REQUIRE_FALSE(never.admitted);
    REQUIRE(never.never);
  }
  SECTION("all or nothing across scopes; a hold refuses everyone until it ends") {
    for (auto* s : {a.get(), b.get()}) s->set_limit("key:k", {.requests = 1, .window = 60s});
    clock.advance(20s);
    REQUIRE(a->try_admit(kModelAndKey, {}, clock.now()).admitted);
    auto r = b->try_admit(kModelAndKey, {}, clock.now());
    REQUIRE_FALSE(r.admitted);
    REQUIRE(r.blocked_by == "key:k");
    REQUIRE(a->usage_in_window("model:a", clock.now()).requests == 1);
    a->hold("model:h", clock.now() + 5s);
    b->hold("model:h", clock.now() + 1s);  // a shorter hold does not shorten it
    REQUIRE(b->held_for("model:h", clock.now()) == Duration(5s));
    const std::vector<std::string> h = {"model:h"};
    auto held = b->try_admit(h, {}, clock.now());
    REQUIRE_FALSE(held.admitted);
    REQUIRE(held.retry_in == Duration(5s));
    clock.advance(5s);
    REQUIRE(b->try_admit(h, {}, clock.now()).admitted);
  }
}

#endif
