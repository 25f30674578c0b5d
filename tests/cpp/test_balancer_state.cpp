// Balancing through the router state: the same BalancerRules on state kept in process
// (InMemoryRouterState) or in Redis (RedisRouterState, where two state objects stand for two
// processes sharing one group). The measured splits are the ones test_balancer.cpp measures on a
// lone Balancer, now across processes.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <atomic>
#include <thread>
#include <vector>

#include "orroute/error.h"
#include "orroute/provider/balancer.h"
#include "orroute/route/router_state.h"

#ifdef ORROUTE_HAVE_REDIS
#include "orroute/route/redis_router_state.h"
#include "redis_server.h"
#endif

using namespace orroute;
using namespace std::chrono_literals;

namespace {

BalancerRules rules(BalanceStrategy strategy, std::vector<Deployment> deps = {{"openrouter", 3}, {"anthropic", 1}}) {
  BalancerOptions o;
  o.strategy = strategy;
  o.explore_every = 0;
  return BalancerRules(std::move(deps), o);
}

// `calls` picks alternating between the states in `procs` (each finished at once with the
// latency of its deployment); the count per deployment.
std::vector<int> split(const std::vector<RouterState*>& procs, const std::string& group, int calls, const Clock& clock,
                       const std::function<Duration(size_t)>& latency = [](size_t) { return Duration(1ms); }) {
  std::vector<int> counts;
  for (int k = 0; k < calls; ++k) {
    RouterState* s = procs[static_cast<size_t>(k) % procs.size()];
    const auto i = s->balancer_pick(group, {}, clock.now());
    REQUIRE(i);
    if (counts.size() <= *i) counts.resize(*i + 1, 0);
    ++counts[*i];
    s->balancer_finish(group, *i, true, latency(*i), clock.now());
  }
  return counts;
}

void strategies_across(RouterState& a, RouterState& b, const Clock& clock) {
  const std::vector<RouterState*> both = {&a, &b};
  SECTION("round-robin rotates over the deployments whoever picks") {
    a.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}, {"z", 1}}));
    b.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}, {"z", 1}}));
    REQUIRE(split(both, "g", 300, clock) == std::vector<int>{100, 100, 100});
    // two processes alternating over 2 deployments: per process alone this would give each
    // process one deployment only; shared, the rotation is global
    a.set_balancer("h", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}}));
    b.set_balancer("h", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}}));
    std::vector<size_t> seq;
    for (int k = 0; k < 4; ++k) {
      RouterState& s = k % 2 ? b : a;
      const auto i = *s.balancer_pick("h", {}, clock.now());
      seq.push_back(i);
      s.balancer_finish("h", i, true, 1ms, clock.now());
    }
    REQUIRE(seq == std::vector<size_t>{0, 1, 0, 1});
  }
  SECTION("weighted 3:1 over 4,000 calls from two processes") {
    a.set_balancer("g", rules(BalanceStrategy::kWeighted));
    b.set_balancer("g", rules(BalanceStrategy::kWeighted));
    REQUIRE(split(both, "g", 4000, clock) == std::vector<int>{3000, 1000});
  }
  SECTION("least-busy counts the other process's calls in flight") {
    a.set_balancer("g", rules(BalanceStrategy::kLeastBusy, {{"x", 1}, {"y", 1}, {"z", 1}}));
    b.set_balancer("g", rules(BalanceStrategy::kLeastBusy, {{"x", 1}, {"y", 1}, {"z", 1}}));
    std::vector<int> held(3, 0);
    for (int k = 0; k < 5; ++k) ++held[*a.balancer_pick("g", {}, clock.now())];  // a: 5 calls open
    for (int k = 0; k < 7; ++k) ++held[*b.balancer_pick("g", {}, clock.now())];  // b: 7 more
    REQUIRE(held == std::vector<int>{4, 4, 4});  // one pool of 12 in flight, spread evenly
    const auto view = a.balancer_view("g", clock.now());
    REQUIRE(view[0].in_flight + view[1].in_flight + view[2].in_flight == 12);
  }
  SECTION("lowest-latency follows measurements either process made") {
    a.set_balancer("g", rules(BalanceStrategy::kLowestLatency, {{"slow", 1}, {"fast", 1}, {"mid", 1}}));
    b.set_balancer("g", rules(BalanceStrategy::kLowestLatency, {{"slow", 1}, {"fast", 1}, {"mid", 1}}));
    const auto ms = [](size_t i) { return Duration(i == 0 ? 300ms : i == 1 ? 40ms : 120ms); };
    const auto counts = split(both, "g", 300, clock, ms);
    REQUIRE(counts[1] >= 297);  // each measured once, then the 40 ms one
    REQUIRE(b.balancer_view("g", clock.now())[1].latency == Duration(40ms));
  }
  SECTION("a deployment one process takes down is skipped by the other, and comes back") {
    a.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}}));
    b.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}}));
    a.balancer_set_health("g", 0, false, clock.now());
    REQUIRE(split({&b}, "g", 10, clock) == std::vector<int>{0, 10});
    REQUIRE_FALSE(b.balancer_view("g", clock.now())[0].up);
    b.balancer_set_health("g", 0, true, clock.now());
    REQUIRE(split({&a}, "g", 10, clock) == std::vector<int>{5, 5});
  }
  SECTION("failures counted by both processes take a deployment down for both") {
    BalancerOptions o;
    o.failures_to_down = 2;
    a.set_balancer("g", BalancerRules({{"x", 1}, {"y", 1}}, o));
    b.set_balancer("g", BalancerRules({{"x", 1}, {"y", 1}}, o));
    a.balancer_finish("g", 0, false, 0ms, clock.now());
    b.balancer_finish("g", 0, false, 0ms, clock.now());
    REQUIRE_FALSE(a.balancer_view("g", clock.now())[0].up);
  }
  SECTION("a process with another deployment list keeps the state by name") {
    a.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}}));
    a.balancer_set_health("g", 1, false, clock.now());
    b.set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"y", 1}, {"z", 1}}));
    REQUIRE_FALSE(b.balancer_view("g", clock.now())[0].up);  // y, down
    REQUIRE(b.balancer_view("g", clock.now())[1].up);
  }
}

}  // namespace

TEST_CASE("router state balancing in process: the Balancer's rules on kept state", "[balancer][router_state]") {
  ManualClock clock;
  InMemoryRouterState state;
  REQUIRE_THROWS_AS(state.balancer_pick("nobody", {}, clock.now()), NotFound);
  strategies_across(state, state, clock);
}

#ifdef ORROUTE_HAVE_REDIS
namespace {

std::pair<std::unique_ptr<RedisRouterState>, std::unique_ptr<RedisRouterState>> redis_pair(const std::string& name,
                                                                                           const Clock& clock) {
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary");
    return {};
  }
  const std::string url = server->url("bal-" + name);
  auto a = std::make_unique<RedisRouterState>(url, clock);
  a->wipe();
  return {std::move(a), std::make_unique<RedisRouterState>(url, clock)};
}

}  // namespace

TEST_CASE("redis router state: balancing shared by two processes", "[redis][balancer]") {
  ManualClock clock;
  auto [a, b] = redis_pair("strategies", clock);
  if (!a) return;
  REQUIRE_THROWS_AS(a->balancer_view("nobody", clock.now()), NotFound);
  strategies_across(*a, *b, clock);
}

TEST_CASE("redis router state: concurrent picks from two processes lose no update", "[redis][balancer]") {
  const SteadyClock& clock = SteadyClock::instance();
  auto [a, b] = redis_pair("concurrent", clock);
  if (!a) return;
  for (auto* s : {a.get(), b.get()}) s->set_balancer("g", rules(BalanceStrategy::kRoundRobin, {{"x", 1}, {"y", 1}, {"z", 1}}));
  std::vector<std::vector<int>> counts(2, std::vector<int>(3, 0));
  std::atomic<int> errors{0};
  auto run = [&](RedisRouterState* s, std::vector<int>* c) {
    for (int k = 0; k < 150; ++k) {
      try {
        const auto i = s->balancer_pick("g", {}, clock.now());
        if (i) ++(*c)[*i];
      } catch (const std::exception&) {  // a thread must not end the test process
        ++errors;
      }
    }
  };
  std::thread t1(run, a.get(), &counts[0]), t2(run, b.get(), &counts[1]);
  t1.join();
  t2.join();
  REQUIRE(errors == 0);
  // every pick went through the one shared rotation: 300 picks, exactly 100 each, all in flight
  for (size_t i = 0; i < 3; ++i) REQUIRE(counts[0][i] + counts[1][i] == 100);
  const auto view = a->balancer_view("g", clock.now());
  REQUIRE(view[0].in_flight + view[1].in_flight + view[2].in_flight == 300);
}
#endif
