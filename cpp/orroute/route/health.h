// Health of each model from the router's own state: its circuit breaker, rate-limit holds and the
// success rate over the metrics window; and an overall state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "orroute/route/metrics.h"
#include "orroute/route/router_state.h"

namespace orroute {

enum class HealthState : uint8_t { kOk, kDegraded, kRateLimited, kCircuitOpen };
const char* to_string(HealthState s) noexcept;  // "ok", "degraded", "rate_limited", "circuit_open"

enum class OverallHealth : uint8_t { kOk, kDegraded, kDown };
const char* to_string(OverallHealth s) noexcept;  // "ok", "degraded", "down"

struct ModelHealth {
  std::string model;
  HealthState state = HealthState::kOk;
  std::string reason;       // human-readable why (empty when ok)
  BreakerState breaker = BreakerState::kClosed;
  Duration retry_in{0};     // circuit_open / rate_limited: time until it may pass again
  double success_rate = 1;  // over the metrics window
  int64_t window_calls = 0;
};

// One circuit breaker that is not closed: a model's, a provider's or the endpoint's.
struct BreakerHealth {
  std::string key;   // "model:<id>", "provider:<name>", "endpoint:<host>"
  std::string kind;  // "model", "provider", "endpoint"
  std::string name;  // the model id, provider name or host
  BreakerState state = BreakerState::kOpen;
  Duration retry_in{0};  // open: time until it lets a probe through
  int consecutive_failures = 0;
  int64_t times_opened = 0;
};

struct HealthReport {
  OverallHealth overall = OverallHealth::kOk;
  std::vector<ModelHealth> models;
  std::vector<BreakerHealth> breakers;  // every open or half-open breaker, models' first
};

struct HealthConfig {
  double degraded_below = 0.9;  // success rate under which a model is degraded ...
  int64_t min_calls = 5;        // ... once the window holds this many calls
};

// Assesses each of `models` and the breakers `breaker_keys` (provider / endpoint keys, see
// attempt_loop.h). Overall: ok when every model is ok and no breaker is open or half-open; down
// when no model can take a call now (all circuit-open or rate-limited) or the endpoint's breaker
// is open; degraded otherwise. Empty lists are ok.
// Thread-safe (reads through the thread-safe state and metrics).
HealthReport assess_health(std::span<const std::string> models, RouterState& state,
                           const Metrics& metrics, Instant now, const HealthConfig& config = {},
                           std::span<const std::string> breaker_keys = {});

}  // namespace orroute
