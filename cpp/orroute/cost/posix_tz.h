// The rule a TZif file's footer gives for every instant after its last transition: a POSIX TZ
// string (POSIX.1-2017 8.3, "TZ"), as RFC 8536 section 3.3 extends it (a rule's time may be
// negative or past 24 hours, -167 to 167). Slim files (zic's default since 2020) list transitions
// only up to the last rule change, so for most zones this rule is what says whether today is
// daylight time.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace orroute {

// a / b rounded toward negative infinity (an instant before 1970 to the day it falls in).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// One zone's standard and (optional) daylight offset and the two yearly rules between them.
// Immutable, safe to share across threads.
class PosixTz {
 public:
  // "EST5EDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "<-04>4<-03>,M9.1.6/24,
  // M4.1.6/24", "<+01>-1": nullopt if `text` is not such a string (a name missing or with other
  // characters, an offset or time out of range, a rule field out of range, anything left over).
  // A daylight name without rules takes the US rules (M3.2.0,M11.1.0), as tzcode does. Reads
  // `text` once with bounded work whatever it holds; never throws.
  static std::optional<PosixTz> parse(std::string_view text);

  // The offset from UTC in seconds (east positive: local = utc + offset) at the UTC instant
  // `utc_seconds`, any int64 value. Pure.
  int64_t offset_seconds(int64_t utc_seconds) const;

  // When a yearly switch happens: a day of the year and a local time of that day.
  struct Rule {
    enum class Kind {
      kJulianNoLeap,  // Jn: day n (1-365) of the year, February 29 never counted
      kDayOfYear,     // n: day n (0-365), counting February 29
      kMonthWeekDay,  // Mm.w.d: weekday d (0 Sunday) of week w (1-5, 5 the last) of month m
    };
    Kind kind = Kind::kMonthWeekDay;
    int day = 0;     // n of Jn and n; d of Mm.w.d
    int week = 0;    // w of Mm.w.d
    int month = 0;   // m of Mm.w.d
    int32_t seconds = 2 * 3600;  // local time of the switch, -167h to 167h (default 02:00)
  };

 private:
  int32_t std_offset_ = 0;  // east positive (POSIX writes west positive: EST5 is -5h)
  int32_t dst_offset_ = 0;
  bool has_dst_ = false;
  Rule start_;  // into daylight time, in standard time
  Rule end_;    // back to standard time, in daylight time
};

}  // namespace orroute
