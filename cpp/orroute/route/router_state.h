// Shared router state: circuit breakers and rate-limit counters. The engine reaches them only
// through this interface, so the state can live in process (InMemoryRouterState, the default) or be
// shared between processes and machines (a Redis backend implements the same calls).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "orroute/provider/balancer.h"
#include "orroute/route/circuit_breaker.h"
#include "orroute/route/capped_names.h"
#include "orroute/route/clock.h"
#include "orroute/route/rate_limiter.h"

namespace orroute {

// How a call that a breaker let through ended.
enum class CallOutcome : uint8_t { kSuccess, kOutage, kNeutral };

// What a state found a breaker's key to, kept by the caller between the allow and the record so
// the record need not look the key up again. Opaque to the caller; a state checks that a handle is
// its own and still current before it uses one, else it goes by the key. {} = go by the key.
struct BreakerHandle {
  uintptr_t entry = 0;
  uint64_t epoch = 0;
};
// One breaker a call asks (breakers_allow fills `handle` for each it allows).
struct BreakerPass {
  std::string_view key;
  BreakerHandle handle;
};
// One record of a call's breakers: what breaker_record(key, outcome) does.
struct BreakerRecord {
  std::string_view key;
  BreakerHandle handle;  // from the allow of `key`, or {} (recorded without a permit)
  CallOutcome outcome;
};

// Implementations are thread-safe.
class RouterState {
 public:
  virtual ~RouterState() = default;

  // Breakers, keyed by "model:<id>" / "provider:<name>"; created on first use with the config.
  virtual void set_breaker_config(const BreakerConfig& config) = 0;
  // See CircuitBreaker::allow. Every true must be followed by one breaker_record for that key.
  virtual bool breaker_allow(std::string_view key, Instant now) = 0;
  virtual void breaker_record(std::string_view key, CallOutcome outcome, Instant now) = 0;
  virtual BreakerSnapshot breaker_snapshot(std::string_view key, Instant now) = 0;
  // A call's breakers in one step: asks each of `passes` in order, as breaker_allow does, and
  // stops at the first that refuses. Returns its index, or passes.size() when every one allowed;
  // each allowed pass (those before the index) gets its handle and must be followed by one record
  // of its key. When it throws, it holds none (those allowed before are given back): nothing is
  // to be recorded. The default calls breaker_allow per key (a shared state sees every call).
  virtual size_t breakers_allow(std::span<BreakerPass> passes, Instant now);
  // Records each of `records` in order, as breaker_record(key, outcome, now) does. The default
  // calls breaker_record per key.
  virtual void breakers_record(std::span<const BreakerRecord> records, Instant now);

  // Rate limits; see RateLimiter for the meaning of each call.
  virtual void set_limit(std::string_view scope, const RateLimit& limit) = 0;
  virtual Admission try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                              Instant now) = 0;
  virtual void settle_admission(uint64_t ticket, const LimitUsage& actual) = 0;
  virtual void forget_admission(uint64_t ticket) = 0;
  virtual void hold(std::string_view scope, Instant until) = 0;
  virtual Duration held_for(std::string_view scope, Instant now) = 0;
  virtual LimitUsage usage_in_window(std::string_view scope, Instant now) = 0;

  // Balancing over a model group's deployments (BalancerRules: the one place the rules live),
  // keyed by group name. set_balancer gives this process's rules for a group; state already kept
  // for it (by this process, or by others sharing the store) is carried over by deployment name.
  // The other calls throw NotFound for a group without rules, and mean what the Balancer method
  // of the same name means (every pick followed by one finish for that index).
  virtual void set_balancer(std::string_view group, const BalancerRules& rules) = 0;
  virtual std::optional<size_t> balancer_pick(std::string_view group, const std::vector<size_t>& exclude,
                                              Instant now) = 0;
  virtual void balancer_finish(std::string_view group, size_t index, bool ok, Duration latency, Instant now) = 0;
  virtual void balancer_release(std::string_view group, size_t index, Instant now) = 0;
  // A breaker or health check says a deployment is down (or up again).
  virtual void balancer_set_health(std::string_view group, size_t index, bool up, Instant now) = 0;
  virtual std::vector<DeploymentView> balancer_view(std::string_view group, Instant now) = 0;
};

// Process-local state behind one mutex (each call is a few map lookups and counter updates).
class InMemoryRouterState final : public RouterState {
 public:
  explicit InMemoryRouterState(BreakerConfig breaker_config = {});

  void set_breaker_config(const BreakerConfig& config) override;
  bool breaker_allow(std::string_view key, Instant now) override;
  void breaker_record(std::string_view key, CallOutcome outcome, Instant now) override;
  BreakerSnapshot breaker_snapshot(std::string_view key, Instant now) override;
  // Under one lock; an allowed breaker's handle is its entry, valid until set_breaker_config.
  size_t breakers_allow(std::span<BreakerPass> passes, Instant now) override;
  void breakers_record(std::span<const BreakerRecord> records, Instant now) override;
  // How many breakers are held (one per key used since the last set_breaker_config). The keys name
  // requested models: past kMaxBreakers, new keys share the breaker of "(other)" (kOtherName).
  size_t breaker_count();
  static constexpr size_t kMaxBreakers = 4096;

  void set_limit(std::string_view scope, const RateLimit& limit) override;
  Admission try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                      Instant now) override;
  void settle_admission(uint64_t ticket, const LimitUsage& actual) override;
  void forget_admission(uint64_t ticket) override;
  void hold(std::string_view scope, Instant until) override;
  Duration held_for(std::string_view scope, Instant now) override;
  LimitUsage usage_in_window(std::string_view scope, Instant now) override;

  void set_balancer(std::string_view group, const BalancerRules& rules) override;
  std::optional<size_t> balancer_pick(std::string_view group, const std::vector<size_t>& exclude,
                                      Instant now) override;
  void balancer_finish(std::string_view group, size_t index, bool ok, Duration latency, Instant now) override;
  void balancer_release(std::string_view group, size_t index, Instant now) override;
  void balancer_set_health(std::string_view group, size_t index, bool up, Instant now) override;
  std::vector<DeploymentView> balancer_view(std::string_view group, Instant now) override;

 private:
  struct Group {
    std::shared_ptr<const BalancerRules> rules;
    BalancerState state;
  };
  CircuitBreaker& breaker(std::string_view key);  // caller holds mu_
  // The breaker `handle` names when it is this state's and current, else `key`'s. Holds mu_.
  CircuitBreaker& breaker(std::string_view key, const BreakerHandle& handle);
  Group& group(std::string_view name);            // caller holds mu_; NotFound if unknown

  std::mutex mu_;
  BreakerConfig breaker_config_;
  NameMap<CircuitBreaker> breakers_;
  // Names this state's breakers as they are now (the entries stay put until the next clear): a
  // number no other state and no earlier set_breaker_config of this one had.
  uint64_t breaker_epoch_;
  RateLimiter limiter_;
  std::unordered_map<std::string, Group> groups_;
};

}  // namespace orroute
