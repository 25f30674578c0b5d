// Circuit breaker for one model or provider. Closed: calls pass. It opens after N consecutive
// outage failures, or when the failure rate over a sliding window passes a threshold (with a minimum
// number of calls). Open: calls are refused instantly until a cooldown passes. Half-open: a few
// probe calls pass; enough successes close it, any failure opens it again.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "orroute/route/clock.h"

namespace orroute {

struct BreakerConfig {
  int consecutive_failures = 5;     // open after this many outage failures in a row (0 = off)
  double failure_rate = 0.5;        // open when failures / calls in the window reach this (> 1 = off)
  int min_calls_in_window = 10;     // ... and the window holds at least this many calls
  Duration window = std::chrono::seconds(60);
  Duration cooldown = std::chrono::seconds(30);  // open -> half-open after this
  int half_open_probes = 1;         // concurrent probes allowed while half-open
  int successes_to_close = 2;       // probe successes that close the circuit
};

enum class BreakerState : uint8_t { kClosed, kOpen, kHalfOpen };
const char* to_string(BreakerState s) noexcept;  // "closed", "open", "half_open"

// Point-in-time view of a breaker, for health reports.
struct BreakerSnapshot {
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int64_t calls_in_window = 0;
  int64_t failures_in_window = 0;
  Duration open_for{0};  // time left until half-open (kOpen only)
  int64_t times_opened = 0;
};

// Not thread-safe on its own: RouterState serializes access. Cheap to copy.
class CircuitBreaker {
 public:
  // Throws InvalidArgument on a non-positive window, negative counts or cooldown.
  explicit CircuitBreaker(BreakerConfig config = {});

  // May a call start now? Closed: yes. Open: no until the cooldown passes (then half-open).
  // Half-open: yes while fewer than half_open_probes probes are in flight (the call becomes one).
  // Every true must be followed by exactly one of record_success / record_failure / release.
  bool allow(Instant now);

  // Outcome of a call that allow() let through.
  void record_success(Instant now);
  // An outage failure (see counts_as_outage).
  void record_failure(Instant now);
  // The call ended without saying anything about health (cancelled, 400, 429, moderation ...).
  void release(Instant now);

  BreakerSnapshot snapshot(Instant now) const;
  BreakerState state(Instant now) const { return snapshot(now).state; }

 private:
  static constexpr int kBuckets = 12;
  struct Bucket {
    int64_t epoch = -1;  // window slot this bucket currently counts
    int64_t calls = 0;
    int64_t failures = 0;
  };
  void tick(Instant now);
  void count(Instant now, bool failure);
  void trip(Instant now);
  void window_totals(Instant now, int64_t& calls, int64_t& failures) const;
  int64_t slot(Instant now) const;

  BreakerConfig config_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_ = 0;
  Instant opened_at_{};
  int probes_in_flight_ = 0;
  int probe_successes_ = 0;
  int64_t times_opened_ = 0;
  std::array<Bucket, kBuckets> buckets_{};
};

}  // namespace orroute
