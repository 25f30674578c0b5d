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

// One deployment's balancing state (what a Balancer or a RouterState keeps between calls).
struct DeploymentState {
  int64_t in_flight = 0;
  int32_t failures = 0;
  bool down = false;
  Instant down_until{};
  std::optional<Instant> recovered_at;  // start of the ramp (gradual)
  double latency_ns = -1;               // EWMA; < 0 = no sample yet
  double current = 0;                   // smooth weighted round-robin state
  double admit_credit = 0;              // ramp admission for the count-based strategies
};

// A whole group's balancing state.
struct BalancerState {
  std::vector<DeploymentState> deps;
  size_t cursor = 0;
  int64_t picks = 0;
  size_t explore_cursor = 0;
};

// The balancing rules, as functions of a state passed in: the one place they live. Balancer runs
// them on its own state under its mutex; a RouterState runs them on state it keeps in memory or
// in Redis (shared by processes). Immutable after construction, so thread-safe.
class BalancerRules {
 public:
  // Throws InvalidArgument if `deployments` is empty, a weight is negative, or an option is out of
  // range (ramp <= 0, ramp_floor outside (0, 1], latency_alpha outside (0, 1]).
  BalancerRules(std::vector<Deployment> deployments, BalancerOptions options);

  // A state with every deployment up and unmeasured.
  BalancerState fresh() const;
  // See Balancer::pick_excluding. `state` must have size() deployments.
  std::optional<size_t> choose(BalancerState& state, const std::vector<size_t>& exclude, Instant now) const;
  // See Balancer::finish / set_down / set_up. Out-of-range index: no-op.
  void finish(BalancerState& state, size_t index, bool ok, Duration latency, Instant now) const;
  // A picked deployment that was never sent to (skipped by a breaker, a budget, a rate limit):
  // no longer in flight, no outcome counted.
  void release(BalancerState& state, size_t index) const;
  void set_down(BalancerState& state, size_t index) const;
  void set_up(BalancerState& state, size_t index, Instant now) const;
  // The share weight now (weight x ramp fraction; 0 while down).
  double effective_weight(const BalancerState& state, size_t index, Instant now) const;

  size_t size() const { return deps_.size(); }
  const std::vector<Deployment>& deployments() const { return deps_; }
  const BalancerOptions& options() const { return options_; }

 private:
  bool available(const DeploymentState& s, Instant now) const;  // up, or cooldown over (probation)
  double ramp_fraction(const DeploymentState& s, Instant now) const;

  std::vector<Deployment> deps_;
  BalancerOptions options_;
};

// One deployment of a group as its state says now (health pages, tests).
struct DeploymentView {
  std::string name;
  bool up = true;
  int64_t in_flight = 0;
  double effective_weight = 0;
  std::optional<Duration> latency;  // smoothed latency of successful calls
};

std::vector<DeploymentView> view_of(const BalancerRules& rules, const BalancerState& state, Instant now);

// `old`'s per-deployment state carried over to `rules` by deployment name (a config change in
// one process keeps what the others measured); new names start fresh.
BalancerState carry_over(const BalancerRules& old_rules, const BalancerState& old, const BalancerRules& rules);

// Thread-safe (one mutex; every method is O(deployments)). `clock` must outlive the balancer.
class Balancer {
 public:
  // Throws as BalancerRules does.
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

  size_t size() const { return rules_.size(); }
  const std::string& name(size_t index) const { return rules_.deployments().at(index).name; }
  bool is_up(size_t index) const;
  int64_t in_flight(size_t index) const;
  // The share weight now (weight x ramp fraction; 0 while down).
  double effective_weight(size_t index) const;
  // The smoothed latency of successful calls; nullopt before the first.
  std::optional<Duration> latency(size_t index) const;

 private:
  const Clock& clock_;
  BalancerRules rules_;
  mutable std::mutex mu_;
  BalancerState state_;
};

}  // namespace orroute
