// Shared router state: circuit breakers and rate-limit counters. The engine reaches them only
// through this interface, so the state can live in process (InMemoryRouterState, the default) or be
// shared between processes and machines (a Redis backend implements the same calls).
#pragma once

#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "orroute/route/circuit_breaker.h"
#include "orroute/route/clock.h"
#include "orroute/route/rate_limiter.h"

namespace orroute {

// How a call that a breaker let through ended.
enum class CallOutcome : uint8_t { kSuccess, kOutage, kNeutral };

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

  // Rate limits; see RateLimiter for the meaning of each call.
  virtual void set_limit(std::string_view scope, const RateLimit& limit) = 0;
  virtual Admission try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                              Instant now) = 0;
  virtual void settle_admission(uint64_t ticket, const LimitUsage& actual) = 0;
  virtual void forget_admission(uint64_t ticket) = 0;
  virtual void hold(std::string_view scope, Instant until) = 0;
  virtual Duration held_for(std::string_view scope, Instant now) = 0;
  virtual LimitUsage usage_in_window(std::string_view scope, Instant now) = 0;
};

// Process-local state behind one mutex (each call is a few map lookups and counter updates).
class InMemoryRouterState final : public RouterState {
 public:
  explicit InMemoryRouterState(BreakerConfig breaker_config = {});

  void set_breaker_config(const BreakerConfig& config) override;
  bool breaker_allow(std::string_view key, Instant now) override;
  void breaker_record(std::string_view key, CallOutcome outcome, Instant now) override;
  BreakerSnapshot breaker_snapshot(std::string_view key, Instant now) override;

  void set_limit(std::string_view scope, const RateLimit& limit) override;
  Admission try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                      Instant now) override;
  void settle_admission(uint64_t ticket, const LimitUsage& actual) override;
  void forget_admission(uint64_t ticket) override;
  void hold(std::string_view scope, Instant until) override;
  Duration held_for(std::string_view scope, Instant now) override;
  LimitUsage usage_in_window(std::string_view scope, Instant now) override;

 private:
  CircuitBreaker& breaker(std::string_view key);  // caller holds mu_

  std::mutex mu_;
  BreakerConfig breaker_config_;
  std::unordered_map<std::string, CircuitBreaker> breakers_;
  RateLimiter limiter_;
};

}  // namespace orroute
