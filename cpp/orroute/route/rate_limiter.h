// Rate limits per scope ("model:<id>", "key:<name>", "provider:<name>"): requests, input tokens and
// output tokens per window (the plan's limit_requests / limit_input / limit_output, per minute by
// default). Each scope keeps a sliding-window log of what it admitted, so the amount admitted in
// ANY interval of one window never exceeds the limit. (A token bucket whose capacity equals the
// limit can pass twice the limit in one window: a full burst, then a window's worth of refill.)
// Output tokens are unknown until the response ends: admission books the request's max output and
// settle() corrects it to the actual count. A 429's Retry-After holds a scope for everyone.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "orroute/route/clock.h"

namespace orroute {

struct RateLimit {
  int64_t requests = 0;       // per window; 0 = unlimited
  int64_t input_tokens = 0;   // per window; 0 = unlimited
  int64_t output_tokens = 0;  // per window; 0 = unlimited
  Duration window = std::chrono::seconds(60);
  bool unlimited() const { return requests <= 0 && input_tokens <= 0 && output_tokens <= 0; }
};

// What one request uses (or, for output tokens at admission, may use).
struct LimitUsage {
  int64_t requests = 1;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
};

struct Admission {
  bool admitted = false;
  uint64_t ticket = 0;        // pass to settle() (admitted only; 0 when no scope had a limit)
  Duration retry_in{0};       // not admitted: earliest time it could fit (hold or window)
  bool never = false;         // not admitted: the request alone is larger than a limit
  std::string blocked_by;     // not admitted: the scope that refused
};

// Not thread-safe on its own: RouterState serializes access.
class RateLimiter {
 public:
  // Sets (or replaces, or with an unlimited RateLimit removes) the limit of `scope`.
  // Throws InvalidArgument on a non-positive window or negative limit.
  void set_limit(std::string_view scope, const RateLimit& limit);
  std::optional<RateLimit> limit(std::string_view scope) const;

  // Admits `usage` under every scope in `scopes` (scopes without a limit or hold are ignored), all
  // or nothing. Throws InvalidArgument on negative usage.
  Admission try_acquire(std::span<const std::string> scopes, const LimitUsage& usage, Instant now);

  // Replaces the booked usage of an admitted request by its actual usage (normally fewer output
  // tokens). Unknown or already settled tickets are ignored; entries already out of the window too.
  void settle(uint64_t ticket, const LimitUsage& actual);
  // Drops a ticket without changing what it booked (the request was sent: it counts).
  void forget(uint64_t ticket);

  // Refuses everything under `scope` until `until` (a 429's Retry-After). Holds only extend. The
  // scopes come from upstream replies: a new one past kMaxScopes held is not kept.
  void hold(std::string_view scope, Instant until);
  static constexpr size_t kMaxScopes = 4096;
  // Time left on the hold of `scope` (0 if none).
  Duration held_for(std::string_view scope, Instant now) const;
  // LimitUsage admitted under `scope` in the window ending at `now`.
  LimitUsage in_window(std::string_view scope, Instant now);

 private:
  struct Entry {
    Instant at;
    uint64_t seq;
    LimitUsage usage;
  };
  struct Scope {
    RateLimit limit;
    std::deque<Entry> log;
    LimitUsage total{0, 0, 0};
    Instant held_until{};
  };
  void expire(Scope& s, Instant now);
  // 0 if it fits now; otherwise the wait. nullopt if it can never fit.
  static std::optional<Duration> wait_to_fit(const Scope& s, const LimitUsage& u, Instant now);

  std::unordered_map<std::string, Scope> scopes_;
  std::unordered_map<uint64_t, std::vector<std::pair<Scope*, uint64_t>>> tickets_;
  uint64_t next_seq_ = 1;
};

}  // namespace orroute
