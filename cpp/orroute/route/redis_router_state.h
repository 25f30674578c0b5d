// RouterState in Redis: circuit breakers and rate-limit windows shared by every process (on any
// machine) that uses the same server, database and key prefix. Same semantics as
// InMemoryRouterState (CircuitBreaker, RateLimiter), each operation one Lua script, so a breaker
// opened by one process refuses calls in all of them and a rate limit holds across all of them.
//
// Time: Instants are process-local (steady clock); they are mapped to wall-clock microseconds with
// the offset between `clock.now()` and `clock.unix_millis()` taken at construction, so processes
// on different machines must have synchronised wall clocks (NTP).
//
// Limits (set_limit) are each process's configuration and are passed with every admission; the
// windows' logs, holds and breakers live in Redis (keys expire when idle for a day).
//
// Breaker outcome recording is not idempotent: a command whose reply was lost with its connection
// is retried once on a new connection and may count twice (health state, not money).
//
// Thread-safe (one connection behind a mutex, reopened when dropped).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "orroute/route/router_state.h"

namespace orroute {

class RedisRouterState final : public RouterState {
 public:
  // `url`: redis://[[user]:password@]host[:port][/db][?prefix=...] (prefix default
  // "orroute:rs:"). `clock` must outlive this object. Throws InvalidArgument on a bad URL or
  // config and Error if the server cannot be reached (the message never contains the password).
  RedisRouterState(const std::string& url, const Clock& clock, BreakerConfig breaker_config = {});
  ~RedisRouterState() override;

  // The keys name requested models: past this many names (over every process on the prefix), new
  // keys share the breaker of "(other)" (kOtherName), as in InMemoryRouterState.
  static constexpr size_t kMaxBreakers = InMemoryRouterState::kMaxBreakers;

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

  // Balancer state: one hash per group holding the whole BalancerState (encoded, times as wall
  // clock) and a version. Each operation reads it, runs BalancerRules on it here (the rules are
  // not repeated in Lua) and writes it back only if the version is unchanged (a compare-and-set
  // script); on a conflict it reads again. So picks and finishes from every process apply one
  // after another to one state: round-robin rotates, least-busy sees the others' calls in flight,
  // lowest-latency uses everybody's measurements. A process that dies with calls in flight leaves
  // them counted until the group's key expires (idle for a day).
  void set_balancer(std::string_view group, const BalancerRules& rules) override;
  std::optional<size_t> balancer_pick(std::string_view group, const std::vector<size_t>& exclude,
                                      Instant now) override;
  void balancer_finish(std::string_view group, size_t index, bool ok, Duration latency, Instant now) override;
  void balancer_release(std::string_view group, size_t index, Instant now) override;
  void balancer_set_health(std::string_view group, size_t index, bool up, Instant now) override;
  std::vector<DeploymentView> balancer_view(std::string_view group, Instant now) override;

  // Deletes every key under the prefix (tests). Throws Error on server failure.
  void wipe();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orroute
