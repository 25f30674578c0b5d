#include "orroute/route/circuit_breaker.h"

#include <algorithm>

#include "orroute/error.h"

namespace orroute {

const char* to_string(BreakerState s) noexcept {
  switch (s) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kOpen: return "open";
    case BreakerState::kHalfOpen: return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(BreakerConfig config) : config_(config) {
  if (config_.window.count() <= 0) throw InvalidArgument("breaker window must be > 0");
  if (config_.cooldown.count() < 0 || config_.consecutive_failures < 0 ||
      config_.min_calls_in_window < 0 || config_.half_open_probes < 1 ||
      config_.successes_to_close < 1) {
    throw InvalidArgument("breaker: invalid configuration");
  }
}

int64_t CircuitBreaker::slot(Instant now) const {
  const int64_t width = std::max<int64_t>(1, config_.window.count() / kBuckets);
  return now.time_since_epoch().count() / width;
}

void CircuitBreaker::window_totals(Instant now, int64_t& calls, int64_t& failures) const {
  const int64_t current = slot(now);
  calls = failures = 0;
  for (const Bucket& b : buckets_) {
    if (b.epoch > current - kBuckets && b.epoch <= current) {
      calls += b.calls;
      failures += b.failures;
    }
  }
}

void CircuitBreaker::count(Instant now, bool failure) {
  const int64_t current = slot(now);
  Bucket& b = buckets_[static_cast<size_t>(current % kBuckets)];
  if (b.epoch != current) b = Bucket{current, 0, 0};
  ++b.calls;
  if (failure) ++b.failures;
}

void CircuitBreaker::trip(Instant now) {
  state_ = BreakerState::kOpen;
  opened_at_ = now;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
  ++times_opened_;
  // Forget the window: after recovery the circuit is judged on fresh calls only.
  buckets_.fill(Bucket{});
}

void CircuitBreaker::tick(Instant now) {
  if (state_ == BreakerState::kOpen && now - opened_at_ >= config_.cooldown) {
    state_ = BreakerState::kHalfOpen;
    probes_in_flight_ = 0;
    probe_successes_ = 0;
  }
}

bool CircuitBreaker::allow(Instant now) {
  tick(now);
  switch (state_) {
    case BreakerState::kClosed: return true;
    case BreakerState::kOpen: return false;
    case BreakerState::kHalfOpen:
      if (probes_in_flight_ >= config_.half_open_probes) return false;
      ++probes_in_flight_;
      return true;
  }
  return false;
}

void CircuitBreaker::record_success(Instant now) {
  tick(now);
  consecutive_ = 0;
  if (state_ == BreakerState::kHalfOpen) {
    probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
    if (++probe_successes_ >= config_.successes_to_close) {
      state_ = BreakerState::kClosed;
      buckets_.fill(Bucket{});
    }
    return;
  }
  if (state_ == BreakerState::kClosed) count(now, false);
}

void CircuitBreaker::record_failure(Instant now) {
  tick(now);
  ++consecutive_;
  if (state_ == BreakerState::kHalfOpen) {
    trip(now);
    return;
  }
  if (state_ != BreakerState::kClosed) return;  // a straggler from before the circuit opened
  count(now, true);
  if (config_.consecutive_failures > 0 && consecutive_ >= config_.consecutive_failures) {
    trip(now);
    return;
  }
  int64_t calls = 0, failures = 0;
  window_totals(now, calls, failures);
  if (calls >= config_.min_calls_in_window && calls > 0 &&
      static_cast<double>(failures) >= config_.failure_rate * static_cast<double>(calls)) {
    trip(now);
  }
}

void CircuitBreaker::release(Instant now) {
  tick(now);
  if (state_ == BreakerState::kHalfOpen) probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
}

BreakerSnapshot CircuitBreaker::snapshot(Instant now) const {
  BreakerSnapshot s;
  s.state = state_;
  if (state_ == BreakerState::kOpen) {
    const Duration elapsed = now - opened_at_;
    if (elapsed >= config_.cooldown) {
      s.state = BreakerState::kHalfOpen;
    } else {
      s.open_for = config_.cooldown - elapsed;
    }
  }
  s.consecutive_failures = consecutive_;
  window_totals(now, s.calls_in_window, s.failures_in_window);
  s.times_opened = times_opened_;
  return s;
}

}  // namespace orroute
