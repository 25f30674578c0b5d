#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "orroute/error.h"
#include "orroute/seconds.h"

// A double that is NaN, infinite or out of int64's range cast to an integer is undefined (clang's
// -fsanitize=undefined reports it, GCC 12's does not; on x86-64 it gave INT64_MIN): these inputs
// reached such casts from Python (a timeout, an event loop's timer, a delay or a window).
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::nan("");
}  // namespace

TEST_CASE("limit_ms: NaN and negative are refused, +inf and huge are no limit", "[seconds]") {
  using orroute::limit_ms;
  CHECK(limit_ms(0, "t") == 0);
  CHECK(limit_ms(1.5, "t") == 1500);
  CHECK(limit_ms(0.0001, "t") == 1);  // rounded up: a positive limit never becomes "none"
  CHECK(limit_ms(999'999'999.0, "t") == 999'999'999'000);
  CHECK_FALSE(limit_ms(kInf, "t").has_value());
  CHECK_FALSE(limit_ms(1e300, "t").has_value());
  CHECK_FALSE(limit_ms(orroute::kMaxSeconds, "t").has_value());
  CHECK_FALSE(limit_ms(std::numeric_limits<double>::max(), "t").has_value());
  CHECK_THROWS_AS(limit_ms(kNaN, "t"), orroute::InvalidArgument);
  CHECK_THROWS_AS(limit_ms(-1, "t"), orroute::InvalidArgument);
  CHECK_THROWS_AS(limit_ms(-kInf, "t"), orroute::InvalidArgument);
  CHECK_THROWS_WITH(limit_ms(kNaN, "timeout"), "timeout must be a number of seconds, got nan");
}

TEST_CASE("wait_ms: negative, +inf and huge are no limit (-1), NaN is refused", "[seconds]") {
  using orroute::wait_ms;
  CHECK(wait_ms(0.25, "t") == 250);
  CHECK(wait_ms(-1, "t") == -1);
  CHECK(wait_ms(-kInf, "t") == -1);
  CHECK(wait_ms(kInf, "t") == -1);
  CHECK(wait_ms(1e300, "t") == -1);
  CHECK_THROWS_AS(wait_ms(kNaN, "t"), orroute::InvalidArgument);
}

TEST_CASE("clamped_duration saturates at kMaxSeconds both ways and refuses NaN", "[seconds]") {
  using orroute::clamped_duration;
  using std::chrono::nanoseconds;
  const auto max = nanoseconds(static_cast<int64_t>(orroute::kMaxSeconds * 1e9));
  CHECK(clamped_duration(0.5, "d") == nanoseconds(500'000'000));
  CHECK(clamped_duration(kInf, "d") == max);
  CHECK(clamped_duration(1e300, "d") == max);
  CHECK(clamped_duration(-kInf, "d") == -max);  // negative: the caller's own check refuses it
  CHECK_THROWS_AS(clamped_duration(kNaN, "d"), orroute::InvalidArgument);
}
