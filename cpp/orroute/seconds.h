// A caller's seconds (a timeout, a wait, a delay, a window: a Python float) as an integer count,
// without undefined behaviour. Converting a double that is NaN, infinite or beyond the target's
// range to an integer is undefined in C++ (UBSan: "is outside the range of representable values";
// on x86-64 it gives INT64_MIN, a timeout already expired or a wait never ended), so every place
// that turns a caller's seconds into milliseconds or nanoseconds goes through one of these.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "orroute/error.h"

namespace orroute {

// A limit at or beyond this many seconds (~31.7 years) is no limit: far below what a count of
// nanoseconds in int64 holds (~292 years), so the arithmetic on a deadline cannot overflow either.
inline constexpr double kMaxSeconds = 1e9;

namespace detail {
[[noreturn]] inline void bad_seconds(std::string_view what, double seconds) {
  if (std::isnan(seconds)) throw InvalidArgument(std::string(what) + " must be a number of seconds, got nan");
  throw InvalidArgument(std::string(what) + " must be a number of seconds >= 0, got " + std::to_string(seconds));
}
}  // namespace detail

// `seconds` as whole milliseconds, rounded up; nullopt for no limit (+inf, or kMaxSeconds and
// beyond). Throws InvalidArgument naming `what` for NaN or a negative value.
inline std::optional<int64_t> limit_ms(double seconds, std::string_view what) {
  if (!(seconds >= 0)) detail::bad_seconds(what, seconds);  // NaN fails every comparison
  if (seconds >= kMaxSeconds) return std::nullopt;
  return static_cast<int64_t>(std::ceil(seconds * 1000.0));
}

// A wait of the "< 0: no limit" kind as whole milliseconds, rounded up: -1 for a negative value,
// +inf or kMaxSeconds and beyond. Throws InvalidArgument naming `what` for NaN.
inline int64_t wait_ms(double seconds, std::string_view what) {
  if (std::isnan(seconds)) detail::bad_seconds(what, seconds);
  if (seconds < 0 || seconds >= kMaxSeconds) return -1;
  return static_cast<int64_t>(std::ceil(seconds * 1000.0));
}

// `seconds` (a delay, a window) as nanoseconds, clamped to [-kMaxSeconds, kMaxSeconds] (a
// negative one is left for the caller's own check to refuse). Throws InvalidArgument naming
// `what` for NaN.
inline std::chrono::nanoseconds clamped_duration(double seconds, std::string_view what) {
  if (std::isnan(seconds)) detail::bad_seconds(what, seconds);
  const double s = seconds < -kMaxSeconds ? -kMaxSeconds : seconds > kMaxSeconds ? kMaxSeconds : seconds;
  return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
}

}  // namespace orroute
