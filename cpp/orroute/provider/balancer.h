// Spreads the calls for one model over its deployments (the same model at several providers or
// endpoints): round-robin, weighted, least-busy (fewest in flight) or lowest-latency (measured),
// skipping deployments that are down. After a deployment recovers it gets its full share at once
// (immediate) or a share that ramps linearly back to its weight (gradual).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/route/clock.h"

namespace orroute {

enum class BalanceStrategy { kRoundRobin, kWeighted, kLeastBusy, kLowestLatency };
enum class FailoverMode { kImmediate, kGradual };

// "round_robin", "weighted", "least_busy", "lowest_latency" / "immediate", "gradual". Throw
// InvalidArgument listing the names.
BalanceStrategy parse_balance_strategy(std::string_view name);
FailoverMode parse_failover_mode(std::string_view name);

struct Deployment {
  std::string name;    // e.g. the provider name
  int32_t weight = 1;  // share under kWeighted (0: only when nothing else is up)
};

struct BalancerOptions {
  BalanceStrategy strategy = BalanceStrategy::kRoundRobin;
  FailoverMode failover = FailoverMode::kImmediate;
  Duration ramp = std::chrono::seconds(60);  // gradual: time from recovery to the full weight
  double ramp_floor = 0.1;                   // gradual: share right after recovery (fraction of weight)
  int32_t failures_to_down = 3;              // consecutive failed calls that take a deployment down (0: never)
  Duration cooldown = std::chrono::seconds(30);  // how long a deployment stays down before trying again
  double latency_alpha = 0.3;                // weight of the newest sample in the latency average
  int32_t explore_every = 20;                // lowest-latency: every Nth pick goes round-robin (0: never)
};

// Thread-safe (one mutex; every method is O(deployments)). `clock` must outlive the balancer.
class Balancer {
 public:
  // Throws InvalidArgument if `deployments` is empty, a weight is negative, or an option is out of
  // range (ramp <= 0, ramp_floor outside (0, 1], latency_alpha outside (0, 1]).
  Balancer(std::vector<Deployment> deployments, BalancerOptions options, const Clock& clock);

  // Chooses a deployment for one call and counts it in flight; nullopt if every deployment is down.
  // Every pick must be followed by exactly one finish() for the same index.
  std::optional<size_t> pick();
  // Like pick(), but never returns an index in `exclude` (the deployments a failover already tried).
  std::optional<size_t> pick_excluding(const std::vector<size_t>& exclude);
  // Ends a call: `ok` false counts toward failures_to_down; a success resets the count and, if the
  // deployment was on probation after a cooldown, makes it healthy (starting the ramp). `latency`
  // feeds the lowest-latency average (successes only). Out-of-range index: no-op.
  void finish(size_t index, bool ok, Duration latency);

  // External health (a circuit breaker, a health check): down takes it out now; up brings it back
  // and, in gradual mode, starts the ramp. Out-of-range index: no-op.
  void set_down(size_t index);
  void set_up(size_t index);

  size_t size() const { return deps_.size(); }
  const std::string& name(size_t index) const { return deps_.at(index).spec.name; }
  bool is_up(size_t index) const;
  int64_t in_flight(size_t index) const;
  // The share weight now (weight x ramp fraction; 0 while down).
  double effective_weight(size_t index) const;
  // The smoothed latency of successful calls; nullopt before the first.
  std::optional<Duration> latency(size_t index) const;

 private:
  struct State {
    Deployment spec;
    int64_t in_flight = 0;
    int32_t failures = 0;
    bool down = false;
    Instant down_until{};
    std::optional<Instant> recovered_at;  // start of the ramp (gradual)
    double latency_ns = -1;               // EWMA; < 0 = no sample yet
    double current = 0;                   // smooth weighted round-robin state
    double admit_credit = 0;              // ramp admission for the count-based strategies
  };
  bool available(const State& s, Instant now) const;  // up, or cooldown over (probation)
  double ramp_fraction(const State& s, Instant now) const;
  std::optional<size_t> choose(const std::vector<size_t>& exclude);

  const Clock& clock_;
  BalancerOptions options_;
  mutable std::mutex mu_;
  std::vector<State> deps_;
  size_t cursor_ = 0;
  int64_t picks_ = 0;
  size_t explore_cursor_ = 0;
};

}  // namespace orroute
