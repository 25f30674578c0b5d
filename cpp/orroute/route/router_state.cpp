#include "orroute/route/router_state.h"

#include <atomic>

#include "orroute/error.h"
#include "orroute/route/capped_names.h"

namespace orroute {

namespace {

// Epochs are never 0 (a default BreakerHandle's) and never repeat across states in a process.
uint64_t fresh_epoch() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void apply(CircuitBreaker& b, CallOutcome outcome, Instant now) {
  switch (outcome) {
    case CallOutcome::kSuccess: b.record_success(now); break;
    case CallOutcome::kOutage: b.record_failure(now); break;
    case CallOutcome::kNeutral: b.release(now); break;
  }
}

}  // namespace

size_t RouterState::breakers_allow(std::span<BreakerPass> passes, Instant now) {
  size_t i = 0;
  try {
    for (; i < passes.size(); ++i) {
      if (!breaker_allow(passes[i].key, now)) return i;
    }
  } catch (...) {
    // Holds none when it throws: the permits taken before are given back (best effort: the
    // store that failed the allow may fail these too), the one that threw was never taken.
    for (size_t j = 0; j < i; ++j) {
      try {
        breaker_record(passes[j].key, CallOutcome::kNeutral, now);
      } catch (...) {
      }
    }
    throw;
  }
  return passes.size();
}

void RouterState::breakers_record(std::span<const BreakerRecord> records, Instant now) {
  for (const BreakerRecord& r : records) breaker_record(r.key, r.outcome, now);
}

InMemoryRouterState::InMemoryRouterState(BreakerConfig breaker_config)
    : breaker_config_(breaker_config), breaker_epoch_(fresh_epoch()) {
  CircuitBreaker validate(breaker_config_);  // throws InvalidArgument early on a bad config
  (void)validate;
}

void InMemoryRouterState::set_breaker_config(const BreakerConfig& config) {
  CircuitBreaker validate(config);
  (void)validate;
  std::lock_guard lock(mu_);
  breaker_config_ = config;
  breakers_.clear();
  breaker_epoch_ = fresh_epoch();  // every handle given out so far names a freed entry
}

CircuitBreaker& InMemoryRouterState::breaker(std::string_view key) {
  return capped_entry(breakers_, key, kMaxBreakers, [this](const std::string&) { return CircuitBreaker(breaker_config_); });
}

bool InMemoryRouterState::breaker_allow(std::string_view key, Instant now) {
  std::lock_guard lock(mu_);
  return breaker(key).allow(now);
}

void InMemoryRouterState::breaker_record(std::string_view key, CallOutcome outcome, Instant now) {
  std::lock_guard lock(mu_);
  apply(breaker(key), outcome, now);
}

CircuitBreaker& InMemoryRouterState::breaker(std::string_view key, const BreakerHandle& handle) {
  if (handle.entry != 0 && handle.epoch == breaker_epoch_) {
    return *reinterpret_cast<CircuitBreaker*>(handle.entry);  // NOLINT: ours, and not freed since
  }
  return breaker(key);
}

size_t InMemoryRouterState::breakers_allow(std::span<BreakerPass> passes, Instant now) {
  std::lock_guard lock(mu_);
  size_t i = 0;
  try {
    for (; i < passes.size(); ++i) {
      CircuitBreaker& b = breaker(passes[i].key);  // may throw (a new key's entry: bad_alloc)
      if (!b.allow(now)) return i;
      // A map's entries stay where they are until it is cleared (set_breaker_config: a new epoch).
      passes[i].handle = BreakerHandle{reinterpret_cast<uintptr_t>(&b), breaker_epoch_};
    }
  } catch (...) {
    for (size_t j = 0; j < i; ++j) apply(breaker(passes[j].key, passes[j].handle), CallOutcome::kNeutral, now);
    throw;  // holds none (as the base class's)
  }
  return passes.size();
}

void InMemoryRouterState::breakers_record(std::span<const BreakerRecord> records, Instant now) {
  std::lock_guard lock(mu_);
  for (const BreakerRecord& r : records) apply(breaker(r.key, r.handle), r.outcome, now);
}

BreakerSnapshot InMemoryRouterState::breaker_snapshot(std::string_view key, Instant now) {
  std::lock_guard lock(mu_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return BreakerSnapshot{};
  return it->second.snapshot(now);
}

size_t InMemoryRouterState::breaker_count() {
  std::lock_guard lock(mu_);
  return breakers_.size();
}

void InMemoryRouterState::set_limit(std::string_view scope, const RateLimit& limit) {
  std::lock_guard lock(mu_);
  limiter_.set_limit(scope, limit);
}

Admission InMemoryRouterState::try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                                         Instant now) {
  std::lock_guard lock(mu_);
  return limiter_.try_acquire(scopes, usage, now);
}

void InMemoryRouterState::settle_admission(uint64_t ticket, const LimitUsage& actual) {
  std::lock_guard lock(mu_);
  limiter_.settle(ticket, actual);
}

void InMemoryRouterState::forget_admission(uint64_t ticket) {
  std::lock_guard lock(mu_);
  limiter_.forget(ticket);
}

void InMemoryRouterState::hold(std::string_view scope, Instant until) {
  std::lock_guard lock(mu_);
  limiter_.hold(scope, until);
}

Duration InMemoryRouterState::held_for(std::string_view scope, Instant now) {
  std::lock_guard lock(mu_);
  return limiter_.held_for(scope, now);
}

LimitUsage InMemoryRouterState::usage_in_window(std::string_view scope, Instant now) {
  std::lock_guard lock(mu_);
  return limiter_.in_window(scope, now);
}

InMemoryRouterState::Group& InMemoryRouterState::group(std::string_view name) {
  auto it = groups_.find(std::string(name));
  if (it == groups_.end()) throw NotFound("no balancer for model group \"" + std::string(name) + "\"");
  return it->second;
}

void InMemoryRouterState::set_balancer(std::string_view name, const BalancerRules& rules) {
  auto fresh = std::make_shared<const BalancerRules>(rules);
  std::lock_guard lock(mu_);
  auto it = groups_.find(std::string(name));
  if (it == groups_.end()) {
    groups_.emplace(std::string(name), Group{fresh, fresh->fresh()});
    return;
  }
  it->second.state = carry_over(*it->second.rules, it->second.state, *fresh);
  it->second.rules = std::move(fresh);
}

std::optional<size_t> InMemoryRouterState::balancer_pick(std::string_view name, const std::vector<size_t>& exclude,
                                                         Instant now) {
  std::lock_guard lock(mu_);
  Group& g = group(name);
  return g.rules->choose(g.state, exclude, now);
}

void InMemoryRouterState::balancer_finish(std::string_view name, size_t index, bool ok, Duration latency,
                                          Instant now) {
  std::lock_guard lock(mu_);
  Group& g = group(name);
  g.rules->finish(g.state, index, ok, latency, now);
}

void InMemoryRouterState::balancer_release(std::string_view name, size_t index, Instant) {
  std::lock_guard lock(mu_);
  Group& g = group(name);
  g.rules->release(g.state, index);
}

void InMemoryRouterState::balancer_set_health(std::string_view name, size_t index, bool up, Instant now) {
  std::lock_guard lock(mu_);
  Group& g = group(name);
  if (up) {
    g.rules->set_up(g.state, index, now);
  } else {
    g.rules->set_down(g.state, index);
  }
}

std::vector<DeploymentView> InMemoryRouterState::balancer_view(std::string_view name, Instant now) {
  std::lock_guard lock(mu_);
  Group& g = group(name);
  return view_of(*g.rules, g.state, now);
}

}  // namespace orroute
