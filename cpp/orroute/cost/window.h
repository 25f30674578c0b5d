// Budget windows (total, daily, weekly, monthly) in UTC or in an IANA time zone.
//
// GCC 12's libstdc++ has no std::chrono::tzdb, so time zones are read directly from the system's
// compiled zoneinfo files (TZif, as shipped by tzdata; $TZDIR overrides the directory). Fixed
// offsets ("+05:30", "-08:00") and "UTC" need no files. Past the last transition in the file
// (2037 for the "fat" files Debian and macOS ship, the last rule change for the "slim" ones zic
// writes by default) the file's footer rule applies (posix_tz.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orroute/cost/posix_tz.h"

namespace orroute {

// Microseconds since the Unix epoch, UTC. The ledger's only time type.
using TimeUs = int64_t;

// Current wall-clock time. Thread-safe.
TimeUs now_us();

// How a budget's spend resets. Weekly windows start on Monday 00:00 (ISO 8601 weeks).
enum class Window { kTotal, kDaily, kWeekly, kMonthly };

// "total" / "daily" / "weekly" / "monthly"; parse throws InvalidArgument on anything else
// (also accepts "day", "week", "month").
std::string_view to_string(Window w);
Window parse_window(std::string_view text);

// A time zone: UTC offset as a function of the instant. Immutable, safe to share across threads.
class TimeZone {
 public:
  // "UTC"/"" (zero), "+HH:MM"/"-HH:MM" (fixed), or an IANA name ("Europe/Berlin"). Cached: the
  // same name returns the same object. Throws NotFound if the zone file does not exist and
  // ParseError if it is not a TZif file.
  static std::shared_ptr<const TimeZone> locate(std::string_view name);
  static std::shared_ptr<const TimeZone> utc();
  // The zone a TZif file's bytes describe (RFC 8536, versions 1 to 4), named `name`; not cached.
  // Throws ParseError if `data` is not such a file or its footer is not a POSIX TZ string. Reads
  // the bytes with work bounded by their size.
  static std::shared_ptr<const TimeZone> from_tzif(std::string name, std::string_view data);

  const std::string& name() const { return name_; }
  // Offset from UTC in seconds at the UTC instant `utc_seconds` (local = utc + offset).
  int64_t offset_seconds(int64_t utc_seconds) const;

 private:
  TimeZone() = default;
  std::string name_;
  int64_t fixed_offset_ = 0;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int32_t> offsets_;      // offset in force from transitions_[i]
  int32_t initial_offset_ = 0;        // before the first transition
  std::optional<PosixTz> footer_;     // after the last transition (none: its offset is kept)
};

// [start, end) of the window of kind `w` that contains `at`, in UTC microseconds; the boundaries
// are local midnights of `tz`. kTotal is [0, INT64_MAX). Pure, thread-safe.
std::pair<TimeUs, TimeUs> window_bounds(Window w, const TimeZone& tz, TimeUs at);

}  // namespace orroute
