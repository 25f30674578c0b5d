#include <catch2/catch.hpp>

#include "orroute/route/health.h"
#include "orroute/route/metrics.h"

using namespace orroute;
using namespace std::chrono_literals;

TEST_CASE("log histogram quantiles are within 5 percent", "[route][metrics]") {
  LogHistogram h(1e-6);
  for (int i = 1; i <= 1000; ++i) h.add(i * 0.001);  // 1ms .. 1s uniformly
  REQUIRE(h.count() == 1000);
  REQUIRE(*h.quantile(0.5) == Approx(0.5).epsilon(0.05));
  REQUIRE(*h.quantile(0.95) == Approx(0.95).epsilon(0.05));
  REQUIRE(*h.quantile(0.99) == Approx(0.99).epsilon(0.05));
  LogHistogram empty;
  REQUIRE_FALSE(empty.quantile(0.5).has_value());
}

TEST_CASE("metrics keep per-model percentiles, counts, errors and cost", "[route][metrics]") {
  ManualClock clock;
  Metrics m({.window = 60s, .slices = 6});
  for (int i = 1; i <= 100; ++i) {
    m.record_success("m/a", clock.now(), Duration(i * 10ms), Duration(i * 1ms), 100, 50,
                     Money::parse("0.001"));
  }
  m.record_failure("m/a", clock.now(), ErrorClass::kServer, 1s);
  m.record_failure("m/a", clock.now(), ErrorClass::kRateLimited, 1s);
  m.record_retry("m/a");
  m.record_fallback("m/a");
  const ModelStats a = m.model("m/a", clock.now());
  REQUIRE(a.calls == 102);
  REQUIRE(a.successes == 100);
  REQUIRE(a.failures == 2);
  REQUIRE(a.errors_by_class.at("server") == 1);
  REQUIRE(a.errors_by_class.at("rate_limited") == 1);
  REQUIRE(a.retries == 1);
  REQUIRE(a.fallbacks == 1);
  REQUIRE(a.input_tokens == 10000);
  REQUIRE(a.cost_of_successes == Money::parse("0.1"));
  REQUIRE(a.cost_per_success() == Money::parse("0.001"));
  REQUIRE(a.success_rate() == Approx(100.0 / 102));
  REQUIRE(*a.latency.p50 == Approx(0.5).epsilon(0.05));
  REQUIRE(*a.latency.p99 == Approx(0.99).epsilon(0.05));
  REQUIRE(*a.ttft.p95 == Approx(0.095).epsilon(0.05));
  REQUIRE(a.tokens_per_second.p50.has_value());
  SECTION("window figures age out, lifetime counters stay") {
    clock.advance(2min);
    const ModelStats later = m.model("m/a", clock.now());
    REQUIRE_FALSE(later.latency.p50.has_value());
    REQUIRE(later.window_calls == 0);
    REQUIRE(later.calls == 102);
  }
  SECTION("unknown models are empty and listed models sorted") {
    m.record_retry("m/0");
    REQUIRE(m.model("m/zzz", clock.now()).calls == 0);
    const auto all = m.all(clock.now());
    REQUIRE(all.size() == 2);
    REQUIRE(all[0].model == "m/0");
  }
}

TEST_CASE("the selector's figures follow the window as calls arrive and slices expire",
          "[route][metrics]") {
  // Random latencies, speeds and failures over 3 windows of time, including idle gaps longer than
  // the window: after every record the running figures equal a full merge of the window.
  ManualClock clock;
  Metrics m({.window = 60s, .slices = 6});
  uint64_t seed = 12345;
  const auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(seed >> 11) / 9007199254740992.0;  // [0, 1)
  };
  const auto same = [&](std::string_view id) {
    const ModelStats full = m.model(id, clock.now());
    const SelectionFigures fast = m.selection_figures(id, clock.now());
    REQUIRE(fast.success_rate == full.success_rate());
    REQUIRE(fast.latency_p50 == full.latency.p50);
    REQUIRE(fast.tokens_per_second_p50 == full.tokens_per_second.p50);
  };
  REQUIRE(m.selection_figures("m/none", clock.now()).success_rate == 1.0);
  REQUIRE_FALSE(m.selection_figures("m/none", clock.now()).latency_p50);
  for (int i = 0; i < 3000; ++i) {
    const double r = next();
    if (r < 0.02) {
      clock.advance(Duration(std::chrono::seconds(61 + static_cast<int>(next() * 90))));
    } else {
      clock.advance(Duration(std::chrono::milliseconds(static_cast<int>(next() * 200))));
    }
    const std::string id = next() < 0.5 ? "m/a" : "m/b";
    if (next() < 0.2) {
      m.record_failure(id, clock.now(), ErrorClass::kServer, 1s);
    } else {
      const auto lat = Duration(std::chrono::microseconds(100 + static_cast<int>(next() * 2e6)));
      m.record_success(id, clock.now(), lat, std::nullopt, 10,
                       static_cast<int64_t>(next() * 400), Money::zero());
    }
    same("m/a");
    same("m/b");
  }
}

TEST_CASE("health reports breaker, holds and success rate", "[route][health]") {
  ManualClock clock;
  BreakerConfig bc;
  bc.consecutive_failures = 2;
  bc.cooldown = 10s;
  InMemoryRouterState state(bc);
  Metrics metrics;
  const std::vector<std::string> models = {"m/ok", "m/open", "m/held", "m/flaky"};
  for (int i = 0; i < 2; ++i) {
    REQUIRE(state.breaker_allow("model:m/open", clock.now()));
    state.breaker_record("model:m/open", CallOutcome::kOutage, clock.now());
  }
  state.hold("model:m/held", clock.now() + 3s);
  for (int i = 0; i < 10; ++i) {
    if (i % 3 == 0) {
      metrics.record_failure("m/flaky", clock.now(), ErrorClass::kServer, 1s);
    } else {
      metrics.record_success("m/flaky", clock.now(), 1s, std::nullopt, 1, 1, Money::zero());
    }
  }
  auto report = assess_health(models, state, metrics, clock.now());
  REQUIRE(report.overall == OverallHealth::kDegraded);
  REQUIRE(report.models[0].state == HealthState::kOk);
  REQUIRE(report.models[1].state == HealthState::kCircuitOpen);
  REQUIRE(report.models[1].retry_in == Duration(10s));
  REQUIRE(report.models[2].state == HealthState::kRateLimited);
  REQUIRE(report.models[3].state == HealthState::kDegraded);
  SECTION("nothing usable is down") {
    const std::vector<std::string> bad = {"m/open", "m/held"};
    REQUIRE(assess_health(bad, state, metrics, clock.now()).overall == OverallHealth::kDown);
  }
  SECTION("after the cooldown the open model is probing (degraded)") {
    clock.advance(10s);
    auto later = assess_health(models, state, metrics, clock.now());
    REQUIRE(later.models[1].state == HealthState::kDegraded);
    REQUIRE(later.models[2].state == HealthState::kOk);
  }
}
