#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "orroute/error.h"
#include "orroute/provider/balancer.h"

namespace {

using namespace std::chrono_literals;
using orroute::BalanceStrategy;
using orroute::Balancer;
using orroute::BalancerOptions;
using orroute::FailoverMode;

// Runs `calls` sequential picks, each finished at once with the latency `latency_of(index)`, and
// returns how many each deployment got.
template <class Latency>
std::vector<int> split(Balancer& b, int calls, Latency latency_of) {
  std::vector<int> counts(b.size(), 0);
  for (int k = 0; k < calls; ++k) {
    const auto i = b.pick();
    REQUIRE(i);
    ++counts[*i];
    b.finish(*i, true, latency_of(*i));
  }
  return counts;
}

std::vector<int> split(Balancer& b, int calls) {
  return split(b, calls, [](size_t) { return orroute::Duration(1ms); });
}

}  // namespace

TEST_CASE("round-robin splits evenly and skips a deployment that is down", "[balancer]") {
  orroute::ManualClock clock;
  Balancer b({{"a", 1}, {"b", 5}, {"c", 1}}, {}, clock);
  REQUIRE(split(b, 300) == std::vector<int>{100, 100, 100});  // weights ignored
  b.set_down(1);
  REQUIRE(split(b, 300) == std::vector<int>{150, 0, 150});
}

TEST_CASE("weighted splits in proportion to the weights, interleaved", "[balancer]") {
  orroute::ManualClock clock;
  BalancerOptions o;
  o.strategy = BalanceStrategy::kWeighted;
  Balancer b({{"openrouter", 3}, {"anthropic", 1}}, o, clock);
  std::vector<size_t> first8;
  for (int k = 0; k < 8; ++k) {
    const auto i = *b.pick();
    first8.push_back(i);
    b.finish(i, true, 1ms);
  }
  REQUIRE(first8 == std::vector<size_t>{0, 1, 0, 0, 0, 1, 0, 0});  // smooth: one "anthropic" in every 4
  REQUIRE(split(b, 4000) == std::vector<int>{3000, 1000});
  SECTION("weight 0 only serves when nothing else can") {
    Balancer z({{"main", 1}, {"spare", 0}}, o, clock);
    REQUIRE(split(z, 50) == std::vector<int>{50, 0});
    z.set_down(0);
    REQUIRE(split(z, 5) == std::vector<int>{0, 5});
  }
}

TEST_CASE("least-busy sends each call to the deployment with the fewest in flight", "[balancer]") {
  orroute::ManualClock clock;
  BalancerOptions o;
  o.strategy = BalanceStrategy::kLeastBusy;
  Balancer b({{"a", 1}, {"b", 1}, {"c", 1}}, o, clock);
  // "a" holds 5 long calls, "b" 2: the next 8 picks fill "c" and "b" until all are level.
  for (int k = 0; k < 5; ++k) b.pick_excluding({1, 2});
  for (int k = 0; k < 2; ++k) b.pick_excluding({0, 2});
  std::map<size_t, int> got;
  for (int k = 0; k < 8; ++k) ++got[*b.pick()];
  REQUIRE(got[0] == 0);
  REQUIRE(got[1] == 3);
  REQUIRE(got[2] == 5);
  for (size_t i = 0; i < 3; ++i) REQUIRE(b.in_flight(i) == 5);
  b.finish(1, true, 1ms);
  REQUIRE(b.pick() == 1u);  // the one that just freed a slot
}

TEST_CASE("lowest-latency prefers the fastest measured deployment and keeps exploring", "[balancer]") {
  orroute::ManualClock clock;
  BalancerOptions o;
  o.strategy = BalanceStrategy::kLowestLatency;
  o.explore_every = 20;
  Balancer b({{"slow", 1}, {"fast", 1}, {"medium", 1}}, o, clock);
  const std::vector<orroute::Duration> lat{300ms, 40ms, 120ms};
  const auto counts = split(b, 1000, [&](size_t i) { return lat[i]; });
  INFO(counts[0] << " " << counts[1] << " " << counts[2]);
  REQUIRE(counts[1] >= 930);  // every 20th pick explores: 50 go round-robin
  REQUIRE(counts[0] >= 15);
  REQUIRE(counts[2] >= 15);
  REQUIRE(b.latency(1)->count() == Approx(40e6));
  SECTION("a deployment that becomes faster wins once explored") {
    std::vector<orroute::Duration> now{300ms, 400ms, 10ms};
    const auto after = split(b, 1000, [&](size_t i) { return now[i]; });
    INFO(after[0] << " " << after[1] << " " << after[2]);
    REQUIRE(after[2] >= 900);
  }
}

TEST_CASE("failures take a deployment down; after the cooldown a probe brings it back", "[balancer]") {
  orroute::ManualClock clock;
  BalancerOptions o;
  o.failures_to_down = 2;
  o.cooldown = 10s;
  Balancer b({{"openrouter", 1}, {"anthropic", 1}}, o, clock);
  // openrouter fails twice: it is out, every call goes to anthropic.
  for (int k = 0; k < 4; ++k) {
    const auto i = *b.pick();
    b.finish(i, i == 1, 1ms);
  }
  REQUIRE_FALSE(b.is_up(0));
  REQUIRE(split(b, 10) == std::vector<int>{0, 10});
  clock.advance(11s);  // cooldown over: openrouter gets a probe
  const auto probe = b.pick_excluding({1});
  REQUIRE(probe == 0u);
  b.finish(0, false, 1ms);  // the probe fails: down for another cooldown
  REQUIRE(split(b, 10) == std::vector<int>{0, 10});
  clock.advance(11s);
  b.finish(*b.pick_excluding({1}), true, 1ms);
  REQUIRE(b.is_up(0));
  REQUIRE(split(b, 10) == std::vector<int>{5, 5});  // immediate: full share at once
  REQUIRE(b.pick_excluding({0, 1}) == std::nullopt);
}

TEST_CASE("gradual failover ramps a recovered deployment's share back to its weight", "[balancer]") {
  orroute::ManualClock clock;
  for (const auto strategy : {BalanceStrategy::kWeighted, BalanceStrategy::kRoundRobin}) {
    BalancerOptions o;
    o.strategy = strategy;
    o.failover = FailoverMode::kGradual;
    o.ramp = 100s;
    o.ramp_floor = 0.1;
    Balancer b({{"a", 1}, {"b", 1}}, o, clock);
    b.set_down(0);
    REQUIRE(b.effective_weight(0) == 0);
    b.set_up(0);
    // Right after recovery "a" has 10% of its weight: 1 call in 11.
    const auto c0 = split(b, 1100);
    INFO("strategy " << static_cast<int>(strategy) << ": " << c0[0] << "/" << c0[1]);
    REQUIRE(c0[0] == Approx(100).margin(2));
    clock.advance(50s);  // half way: weight 0.5 -> a third of the calls
    REQUIRE(b.effective_weight(0) == Approx(0.5));
    REQUIRE(split(b, 1500)[0] == Approx(500).margin(2));
    clock.advance(60s);  // past the ramp: even again
    REQUIRE(split(b, 1000)[0] == Approx(500).margin(2));
  }
  SECTION("count-based strategies admit the recovering deployment in proportion to the ramp") {
    BalancerOptions o;
    o.strategy = BalanceStrategy::kLeastBusy;
    o.failover = FailoverMode::kGradual;
    o.ramp = 100s;
    Balancer b({{"a", 1}, {"b", 1}}, o, clock);
    b.set_down(0);
    b.set_up(0);
    const int early = split(b, 1000)[0];
    clock.advance(50s);
    const int half = split(b, 1000)[0];
    clock.advance(60s);
    const int full = split(b, 1000)[0];
    INFO(early << " " << half << " " << full);
    REQUIRE(early <= 100);  // admitted to at most 10% of the picks
    REQUIRE(early >= 50);
    REQUIRE(half <= 500);
    REQUIRE(half > early);
    REQUIRE(full == 500);
  }
}

TEST_CASE("balancer options and names are checked", "[balancer]") {
  orroute::ManualClock clock;
  REQUIRE_THROWS_AS(Balancer({}, {}, clock), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(Balancer({{"a", -1}}, {}, clock), orroute::InvalidArgument);
  REQUIRE(orroute::parse_balance_strategy("least_busy") == BalanceStrategy::kLeastBusy);
  REQUIRE(orroute::parse_failover_mode("gradual") == FailoverMode::kGradual);
  REQUIRE_THROWS_AS(orroute::parse_balance_strategy("random"), orroute::InvalidArgument);
}
