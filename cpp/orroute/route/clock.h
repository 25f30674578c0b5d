// Time for the router. Every router component takes "now" from a Clock so tests drive time by hand
// (ManualClock) and never sleep; production uses SteadyClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "orroute/no_destructor.h"

namespace orroute {

using Duration = std::chrono::nanoseconds;
using Instant = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// Source of monotonic time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Current monotonic time; never goes backwards.
  virtual Instant now() const = 0;
  // Wall-clock time in milliseconds since the Unix epoch (to read X-RateLimit-Reset and
  // HTTP-dates in Retry-After).
  virtual int64_t unix_millis() const = 0;
};

// The real clock (std::chrono::steady_clock and system_clock). Stateless, thread-safe.
class SteadyClock final : public Clock {
 public:
  Instant now() const override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
  int64_t unix_millis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance.
  static const SteadyClock& instance() {
    static const NoDestructor<SteadyClock> clock;
    return *clock;
  }
};

// A clock that moves only when told to, for tests. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t unix_millis_at_start = 1'700'000'000'000)
      : unix_start_ms_(unix_millis_at_start) {}
  Instant now() const override { return Instant(Duration(ns_.load())); }
  int64_t unix_millis() const override { return unix_start_ms_ + ns_.load() / 1'000'000; }
  // Moves time forward by `d` (must be >= 0).
  void advance(Duration d) { ns_.fetch_add(d.count()); }

 private:
  int64_t unix_start_ms_;
  std::atomic<int64_t> ns_{1'000'000'000};  // start at 1s so "zero" instants stay in the past
};

}  // namespace orroute
