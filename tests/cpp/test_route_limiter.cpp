#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "orroute/error.h"
#include "orroute/route/rate_limiter.h"
#include "orroute/route/router_state.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {
const std::vector<std::string> kModel = {"model:a"};
const std::vector<std::string> kModelAndKey = {"model:a", "key:k"};
}  // namespace

TEST_CASE("request limit admits up to the limit per window, then says when", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  rl.set_limit("model:a", {.requests = 3, .window = 10s});
  for (int i = 0; i < 3; ++i) {
    REQUIRE(rl.try_acquire(kModel, {}, clock.now()).admitted);
    clock.advance(1s);
  }
  auto refused = rl.try_acquire(kModel, {}, clock.now());
  REQUIRE_FALSE(refused.admitted);
  REQUIRE(refused.blocked_by == "model:a");
  REQUIRE(refused.retry_in == Duration(7s));  // the first request leaves at t=10s
  clock.advance(refused.retry_in);
  REQUIRE(rl.try_acquire(kModel, {}, clock.now()).admitted);
}

TEST_CASE("unlimited scopes and unknown scopes admit everything", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  for (int i = 0; i < 1000; ++i) {
    auto a = rl.try_acquire(kModelAndKey, {.requests = 1, .input_tokens = 100000}, clock.now());
    REQUIRE(a.admitted);
    REQUIRE(a.ticket == 0);
  }
}

TEST_CASE("token limits count input and booked output tokens", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  rl.set_limit("model:a", {.input_tokens = 1000, .output_tokens = 500, .window = 60s});
  auto a = rl.try_acquire(kModel, {.requests = 1, .input_tokens = 600, .output_tokens = 400},
                          clock.now());
  REQUIRE(a.admitted);
  SECTION("input tokens run out") {
    REQUIRE_FALSE(rl.try_acquire(kModel, {.requests = 1, .input_tokens = 500}, clock.now()).admitted);
    REQUIRE(rl.try_acquire(kModel, {.requests = 1, .input_tokens = 400}, clock.now()).admitted);
  }
  SECTION("settling to the actual output frees the unused booking") {
    REQUIRE_FALSE(rl.try_acquire(kModel, {.requests = 1, .output_tokens = 200}, clock.now()).admitted);
    rl.settle(a.ticket, {.requests = 1, .input_tokens = 600, .output_tokens = 50});
    REQUIRE(rl.in_window("model:a", clock.now()).output_tokens == 50);
    REQUIRE(rl.try_acquire(kModel, {.requests = 1, .output_tokens = 200}, clock.now()).admitted);
  }
  SECTION("a request bigger than the limit can never pass") {
    auto n = rl.try_acquire(kModel, {.requests = 1, .input_tokens = 5000}, clock.now());
    REQUIRE_FALSE(n.admitted);
    REQUIRE(n.never);
  }
}

TEST_CASE("admission is all or nothing across scopes", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  rl.set_limit("model:a", {.requests = 10, .window = 60s});
  rl.set_limit("key:k", {.requests = 1, .window = 60s});
  REQUIRE(rl.try_acquire(kModelAndKey, {}, clock.now()).admitted);
  auto refused = rl.try_acquire(kModelAndKey, {}, clock.now());
  REQUIRE_FALSE(refused.admitted);
  REQUIRE(refused.blocked_by == "key:k");
  REQUIRE(rl.in_window("model:a", clock.now()).requests == 1);  // nothing booked on refusal
}

TEST_CASE("a hold refuses a scope for everyone until it ends", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  rl.hold("model:a", clock.now() + 5s);
  auto refused = rl.try_acquire(kModel, {}, clock.now());
  REQUIRE_FALSE(refused.admitted);
  REQUIRE(refused.retry_in == Duration(5s));
  rl.hold("model:a", clock.now() + 1s);  // a shorter hold does not shorten it
  REQUIRE(rl.held_for("model:a", clock.now()) == Duration(5s));
  clock.advance(5s);
  REQUIRE(rl.try_acquire(kModel, {}, clock.now()).admitted);
}

TEST_CASE("no window of random traffic ever holds more than the limit", "[route][limiter]") {
  ManualClock clock;
  RateLimiter rl;
  const int64_t limit = 7;
  const Duration window = 1s;
  rl.set_limit("model:a", {.requests = limit, .input_tokens = 700, .window = window});
  std::mt19937 rng(42);
  std::vector<std::pair<Instant, int64_t>> admitted;
  for (int i = 0; i < 5000; ++i) {
    clock.advance(Duration(std::uniform_int_distribution<int64_t>(0, 60'000'000)(rng)));
    const int64_t in = std::uniform_int_distribution<int64_t>(1, 200)(rng);
    if (rl.try_acquire(kModel, {.requests = 1, .input_tokens = in}, clock.now()).admitted) {
      admitted.emplace_back(clock.now(), in);
    }
  }
  REQUIRE(admitted.size() > 100);
  size_t lo = 0;
  int64_t tokens = 0;
  for (size_t hi = 0; hi < admitted.size(); ++hi) {
    tokens += admitted[hi].second;
    while (admitted[hi].first - admitted[lo].first >= window) tokens -= admitted[lo++].second;
    REQUIRE(static_cast<int64_t>(hi - lo + 1) <= limit);
    REQUIRE(tokens <= 700);
  }
}

TEST_CASE("router state serializes limiter calls", "[route][limiter]") {
  ManualClock clock;
  InMemoryRouterState state;
  state.set_limit("model:a", {.requests = 2, .window = 60s});
  REQUIRE(state.try_admit(kModel, {}, clock.now()).admitted);
  REQUIRE(state.try_admit(kModel, {}, clock.now()).admitted);
  REQUIRE_FALSE(state.try_admit(kModel, {}, clock.now()).admitted);
  REQUIRE_THROWS_AS(state.set_limit("model:a", {.requests = -1}), InvalidArgument);
}

TEST_CASE("holds on scopes named by upstream replies stop growing at the cap", "[route][limiter]") {
  RateLimiter rl;
  ManualClock clock;
  const Instant until = clock.now() + 30s;
  for (size_t i = 0; i < RateLimiter::kMaxScopes + 1000; ++i) rl.hold("model:m/" + std::to_string(i), until);
  CHECK(rl.held_for("model:m/0", clock.now()) == 30s);
  CHECK(rl.held_for("model:m/" + std::to_string(RateLimiter::kMaxScopes - 1), clock.now()) == 30s);
  CHECK(rl.held_for("model:m/" + std::to_string(RateLimiter::kMaxScopes), clock.now()) == Duration(0));
  rl.hold("model:m/0", until + 10s);  // a scope kept before still extends its hold
  CHECK(rl.held_for("model:m/0", clock.now()) == 40s);
}
