#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "orroute/cost/posix_tz.h"
#include "orroute/cost/window.h"
#include "orroute/error.h"
#include "tzif_test_util.h"

using namespace orroute;
using orroute::test::tzif_with_footer;

namespace {

constexpr int64_t kHour = 3600;

// Seconds since the epoch of a UTC date and time.
int64_t utc(int y, unsigned m, unsigned d, int64_t h = 0, int64_t min = 0) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count() * 86'400 + h * kHour + min * 60;
}

int64_t offset_at(std::string_view tz, int64_t at) {
  const auto rule = PosixTz::parse(tz);
  REQUIRE(rule.has_value());
  return rule->offset_seconds(at);
}

}  // namespace

TEST_CASE("a POSIX TZ string gives daylight time between its two rules", "[posix_tz]") {
  constexpr std::string_view kNewYork = "EST5EDT,M3.2.0,M11.1.0";
  // 2040: the second Sunday of March is the 11th, the first of November the 4th (02:00 local).
  REQUIRE(offset_at(kNewYork, utc(2040, 3, 11, 7) - 1) == -5 * kHour);
  REQUIRE(offset_at(kNewYork, utc(2040, 3, 11, 7)) == -4 * kHour);
  REQUIRE(offset_at(kNewYork, utc(2040, 11, 4, 6) - 1) == -4 * kHour);  // 02:00 EDT is 06:00 UTC
  REQUIRE(offset_at(kNewYork, utc(2040, 11, 4, 6)) == -5 * kHour);
  SECTION("the last week of a month is its last such weekday") {
    constexpr std::string_view kLondon = "GMT0BST,M3.5.0/1,M10.5.0";
    REQUIRE(offset_at(kLondon, utc(2041, 3, 31, 1) - 1) == 0);  // 2041-03-31 is a Sunday
    REQUIRE(offset_at(kLondon, utc(2041, 3, 31, 1)) == kHour);
    REQUIRE(offset_at(kLondon, utc(2041, 10, 27, 1) - 1) == kHour);
    REQUIRE(offset_at(kLondon, utc(2041, 10, 27, 1)) == 0);
  }
  SECTION("a southern summer spans the new year") {
    constexpr std::string_view kSydney = "AEST-10AEDT,M10.1.0,M4.1.0/3";
    REQUIRE(offset_at(kSydney, utc(2039, 12, 31, 12)) == 11 * kHour);
    REQUIRE(offset_at(kSydney, utc(2040, 1, 1, 12)) == 11 * kHour);
    REQUIRE(offset_at(kSydney, utc(2040, 7, 1)) == 10 * kHour);
  }
  SECTION("a half-hour daylight shift, offsets with minutes") {
    constexpr std::string_view kLordHowe = "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0";
    REQUIRE(offset_at(kLordHowe, utc(2040, 7, 1)) == 10 * kHour + 1800);
    REQUIRE(offset_at(kLordHowe, utc(2040, 1, 1)) == 11 * kHour);
  }
  SECTION("a switch at 24:00 is the next day's midnight") {
    // Santiago: daylight time from the first Saturday of September 24:00 (2040-09-01 is one).
    constexpr std::string_view kSantiago = "<-04>4<-03>,M9.1.6/24,M4.1.6/24";
    REQUIRE(offset_at(kSantiago, utc(2040, 9, 2, 4) - 1) == -4 * kHour);
    REQUIRE(offset_at(kSantiago, utc(2040, 9, 2, 4)) == -3 * kHour);
  }
  SECTION("negative and past-a-day times (RFC 8536)") {
    // Greenland's: daylight time from the last Sunday of March at -1:00 (Saturday 23:00 local).
    constexpr std::string_view kNuuk = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0";
    REQUIRE(offset_at(kNuuk, utc(2040, 3, 25, 1) - 1) == -2 * kHour);  // 2040-03-25 is a Sunday
    REQUIRE(offset_at(kNuuk, utc(2040, 3, 25, 1)) == -1 * kHour);
    // J59 (February 28) at 167 hours is March 6 of a common year, 23:00 local.
    REQUIRE(offset_at("AAA3BBB,J59/167,J300", utc(2041, 3, 7, 2) - 1) == -3 * kHour);
    REQUIRE(offset_at("AAA3BBB,J59/167,J300", utc(2041, 3, 7, 2)) == -2 * kHour);
  }
  SECTION("Jn never counts February 29, n does") {
    // 2040 is a leap year: J60 is March 1, 60 is March 1 too (day 0 is January 1), 59 Feb 29.
    REQUIRE(offset_at("AAA0BBB,J60/0,J300", utc(2040, 3, 1) - 1) == 0);
    REQUIRE(offset_at("AAA0BBB,J60/0,J300", utc(2040, 3, 1)) == kHour);
    REQUIRE(offset_at("AAA0BBB,59/0,300", utc(2040, 2, 29) - 1) == 0);
    REQUIRE(offset_at("AAA0BBB,59/0,300", utc(2040, 2, 29)) == kHour);
  }
  SECTION("daylight time all year") {
    constexpr std::string_view kAllYear = "EST5EDT,0/0,J365/25";
    for (int64_t at : {utc(2040, 1, 1, 5), utc(2040, 12, 31, 23), utc(2041, 1, 1, 5) - 1, utc(2041, 1, 1, 5)}) {
      REQUIRE(offset_at(kAllYear, at) == -4 * kHour);
    }
  }
  SECTION("no rules: the US's; an explicit daylight offset") {
    REQUIRE(offset_at("EST5EDT", utc(2040, 7, 1)) == -4 * kHour);
    REQUIRE(offset_at("EST5EDT", utc(2040, 1, 1)) == -5 * kHour);
    REQUIRE(offset_at("<+01>-1", utc(2040, 7, 1)) == kHour);
    REQUIRE(offset_at("XXX3YYY1,M3.2.0,M11.1.0", utc(2040, 7, 1)) == -1 * kHour);
  }
  SECTION("any instant, the first and last int64 seconds included") {
    for (int64_t at : {INT64_MIN, INT64_MIN + 1, int64_t{-1}, int64_t{0}, INT64_MAX - 1, INT64_MAX}) {
      const int64_t offset = offset_at(kNewYork, at);
      REQUIRE((offset == -5 * kHour || offset == -4 * kHour));
    }
    // 400 Gregorian years later the rule gives the same answer
    REQUIRE(offset_at(kNewYork, utc(2440, 7, 1)) == -4 * kHour);
    REQUIRE(offset_at(kNewYork, utc(1640, 1, 1)) == -5 * kHour);
  }
}

TEST_CASE("a string that is not a POSIX TZ string is refused", "[posix_tz]") {
  using namespace std::string_view_literals;
  const std::string_view kBad[] = {
      "", "EST", "5", "EST5EDT,", "EST5EDT,M3.2.0", "EST5EDT,M3.2.0,M11.1.0,", "EST5EDT,M13.1.0,M11.1.0",
      "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0", "EST5EDT,M3.0.0,M11.1.0", "EST5EDT,J0,J365",
      "EST5EDT,J366,J1", "EST5EDT,366,1", "EST5EDT,M3.2.0/168,M11.1.0", "EST168", "EST5:60", "EST5:00:60",
      "EST5EDT,M3.2.0/,M11.1.0", "<>5", "<EST5", "<E S>5", "EST99999999999999999999", "EST5EDT,M3.2.0,M11.1.0 ",
      "EST5EDT4x", "EST5\0EDT"sv, "EST-", "EST+"};
  for (std::string_view bad : kBad) {
    INFO(std::string(bad));
    REQUIRE_FALSE(PosixTz::parse(bad).has_value());
  }
}

TEST_CASE("a TZif file's footer decides past its last transition", "[posix_tz][budget]") {
  const auto zone = TimeZone::from_tzif("Test/Footer", tzif_with_footer("EST5EDT,M3.2.0,M11.1.0", -5 * 3600));
  REQUIRE(zone->offset_seconds(utc(2030, 7, 1)) == -4 * kHour);
  REQUIRE(zone->offset_seconds(utc(2030, 1, 1)) == -5 * kHour);
  const auto [start, end] = window_bounds(Window::kDaily, *zone, utc(2030, 7, 1, 12) * 1'000'000);
  REQUIRE(start == utc(2030, 7, 1, 4) * 1'000'000);  // local midnight in EDT
  REQUIRE(end == utc(2030, 7, 2, 4) * 1'000'000);
  SECTION("an empty footer keeps the last offset") {
    REQUIRE(TimeZone::from_tzif("Test/Empty", tzif_with_footer("", 3600))->offset_seconds(utc(2030, 7, 1)) == kHour);
  }
  SECTION("a footer that is not a TZ string is a broken file") {
    REQUIRE_THROWS_AS(TimeZone::from_tzif("Test/Bad", tzif_with_footer("EST5EDT,M3.2.0")), ParseError);
  }
}
