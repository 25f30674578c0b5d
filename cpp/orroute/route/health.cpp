#include "orroute/route/health.h"

#include <cstdio>

namespace orroute {

const char* to_string(HealthState s) noexcept {
  switch (s) {
    case HealthState::kOk: return "ok";
    case HealthState::kDegraded: return "degraded";
    case HealthState::kRateLimited: return "rate_limited";
    case HealthState::kCircuitOpen: return "circuit_open";
  }
  return "ok";
}

const char* to_string(OverallHealth s) noexcept {
  switch (s) {
    case OverallHealth::kOk: return "ok";
    case OverallHealth::kDegraded: return "degraded";
    case OverallHealth::kDown: return "down";
  }
  return "ok";
}

namespace {

BreakerHealth breaker_health(const std::string& key, const BreakerSnapshot& b) {
  BreakerHealth h;
  h.key = key;
  const auto colon = key.find(':');
  h.kind = colon == std::string::npos ? std::string() : key.substr(0, colon);
  h.name = colon == std::string::npos ? key : key.substr(colon + 1);
  h.state = b.state;
  h.retry_in = b.state == BreakerState::kOpen ? b.open_for : Duration(0);
  h.consecutive_failures = b.consecutive_failures;
  h.times_opened = b.times_opened;
  return h;
}

}  // namespace

HealthReport assess_health(std::span<const std::string> models, RouterState& state,
                           const Metrics& metrics, Instant now, const HealthConfig& config,
                           std::span<const std::string> breaker_keys) {
  HealthReport report;
  int usable = 0;
  int ok = 0;
  for (const std::string& id : models) {
    ModelHealth h;
    h.model = id;
    const std::string key = "model:" + id;
    const BreakerSnapshot b = state.breaker_snapshot(key, now);
    if (b.state != BreakerState::kClosed) report.breakers.push_back(breaker_health(key, b));
    const ModelStats m = metrics.model(id, now);
    h.breaker = b.state;
    h.success_rate = m.success_rate();
    h.window_calls = m.window_calls;
    const Duration held = state.held_for(key, now);
    char buf[160];
    if (b.state == BreakerState::kOpen) {
      h.state = HealthState::kCircuitOpen;
      h.retry_in = b.open_for;
      std::snprintf(buf, sizeof buf, "circuit open after %d consecutive failures",
                    b.consecutive_failures);
      h.reason = buf;
    } else if (held.count() > 0) {
      h.state = HealthState::kRateLimited;
      h.retry_in = held;
      std::snprintf(buf, sizeof buf, "rate limited for %.1fs", static_cast<double>(held.count()) / 1e9);
      h.reason = buf;
    } else if (b.state == BreakerState::kHalfOpen) {
      h.state = HealthState::kDegraded;
      h.reason = "circuit half-open: probing";
    } else if (m.window_calls >= config.min_calls && h.success_rate < config.degraded_below) {
      h.state = HealthState::kDegraded;
      std::snprintf(buf, sizeof buf, "success rate %.0f%% over %lld recent calls",
                    h.success_rate * 100, static_cast<long long>(m.window_calls));
      h.reason = buf;
    }
    if (h.state == HealthState::kOk || h.state == HealthState::kDegraded) ++usable;
    if (h.state == HealthState::kOk) ++ok;
    report.models.push_back(std::move(h));
  }
  bool endpoint_open = false;
  for (const std::string& key : breaker_keys) {
    const BreakerSnapshot b = state.breaker_snapshot(key, now);
    if (b.state == BreakerState::kClosed) continue;
    BreakerHealth h = breaker_health(key, b);
    if (h.kind == "endpoint" && b.state == BreakerState::kOpen) endpoint_open = true;
    report.breakers.push_back(std::move(h));
  }
  const int n = static_cast<int>(report.models.size());
  if (endpoint_open || (n > 0 && usable == 0)) {
    report.overall = OverallHealth::kDown;
  } else if (ok == n && report.breakers.empty()) {
    report.overall = OverallHealth::kOk;
  } else {
    report.overall = OverallHealth::kDegraded;
  }
  return report;
}

}  // namespace orroute
