#include "orroute/cost/redis_ledger_calendar.h"

#include <cstdint>
#include <cstdio>

namespace orroute::redis_ledger {

namespace {

// Howard Hinnant's civil_from_days.
void civil(int64_t days, int64_t& y, unsigned& m, unsigned& d) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::string period_label(std::string_view period, TimeUs ts) {
  const int64_t secs = floor_div(ts, 1'000'000);
  int64_t days = floor_div(secs, 86400);
  char buf[48];
  int64_t y;
  unsigned m, d;
  if (period == "total" || period.empty()) return "total";
  if (period == "week" || period == "weekly") {
    const int64_t weekday = ((days % 7) + 7 + 3) % 7;  // 1970-01-01 was a Thursday; Monday = 0
    days -= weekday;
  }
  civil(days, y, m, d);
  if (period == "month" || period == "monthly") {
    std::snprintf(buf, sizeof buf, "%04lld-%02u", static_cast<long long>(y), m);
  } else if (period == "hour") {
    const int64_t hour = floor_div(secs - days * 86400, 3600);
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld", static_cast<long long>(y), m, d,
                  static_cast<long long>(hour));
  } else {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  }
  return buf;
}

}  // namespace orroute::redis_ledger
