#include "orroute/cost/window.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <tuple>
#include <map>
#include <mutex>

#include "orroute/ascii.h"
#include "orroute/error.h"
#include "orroute/no_destructor.h"
#include "orroute/utf8.h"

namespace orroute {
namespace {

constexpr int64_t kUsPerSec = 1'000'000;
constexpr int64_t kSecPerDay = 86'400;

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
int64_t be64(const unsigned char* p) {
  return static_cast<int64_t>((uint64_t{be32(p)} << 32) | uint64_t{be32(p + 4)});
}

// Parses "+HH:MM", "-HH", "+HHMM"; false if `s` is not a fixed offset.
bool parse_fixed(std::string_view s, int64_t& out) {
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return false;
  std::string digits;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == ':') continue;
    if (s[i] < '0' || s[i] > '9') return false;
    digits.push_back(s[i]);
  }
  if (digits.size() != 2 && digits.size() != 4) return false;
  const int64_t h = std::stoi(digits.substr(0, 2));
  const int64_t m = digits.size() == 4 ? std::stoi(digits.substr(2, 2)) : 0;
  if (h > 18 || m > 59) return false;
  out = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return true;
}

}  // namespace

TimeUs now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view to_string(Window w) {
  switch (w) {
    case Window::kTotal: return "total";
    case Window::kDaily: return "daily";
    case Window::kWeekly: return "weekly";
    case Window::kMonthly: return "monthly";
  }
  return "total";
}

Window parse_window(std::string_view text) {
  if (text == "total" || text == "all") return Window::kTotal;
  if (text == "daily" || text == "day") return Window::kDaily;
  if (text == "weekly" || text == "week") return Window::kWeekly;
  if (text == "monthly" || text == "month") return Window::kMonthly;
  throw InvalidArgument("unknown budget period '" + std::string(text) +
                        "' (expected total, daily, weekly or monthly)");
}

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const NoDestructor<std::shared_ptr<const TimeZone>> zone([] {
    auto z = std::shared_ptr<TimeZone>(new TimeZone());
    z->name_ = "UTC";
    return std::shared_ptr<const TimeZone>(std::move(z));
  }());
  return *zone;
}

namespace {

// An IANA zone name as a file under the zone directories: letters, digits and / _ - + only, and
// no way out of them ("..", a leading "/"). A NUL would end the file name early ("UTC\0x" opened
// UTC's file and was stored under its own name), a control byte would reach the messages.
bool zone_name_ok(std::string_view name) {
  if (name.size() > 255 || name.front() == '/' || name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return ascii::is_alnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
  });
}

// The rule of a version 2+ file's footer ("\nEST5EDT,M3.2.0,M11.1.0\n" after its last data
// block), for the instants past its last transition. An empty footer, or a file without one,
// gives none (the last offset is kept); one that does not parse is a broken file.
std::optional<PosixTz> footer_rule(std::string_view tail, const std::string& zone) {
  if (tail.size() < 2 || tail.front() != '\n') return std::nullopt;
  const size_t end = tail.find('\n', 1);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view text = tail.substr(1, end - 1);
  if (text.empty()) return std::nullopt;
  std::optional<PosixTz> rule = PosixTz::parse(text);
  if (!rule) {
    throw ParseError("time zone file for '" + client_text(zone) +
                     "' ends with a rule that is not a POSIX TZ string");
  }
  return rule;
}

}  // namespace

std::shared_ptr<const TimeZone> TimeZone::locate(std::string_view name) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC" || name == "Z") return utc();
  static std::mutex mu;
  static NoDestructor<std::map<std::string, std::shared_ptr<const TimeZone>, std::less<>>> zones;
  auto& cache = *zones;
  std::lock_guard lock(mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  int64_t fixed = 0;
  std::shared_ptr<const TimeZone> zone;
  if (parse_fixed(name, fixed)) {
    auto z = std::shared_ptr<TimeZone>(new TimeZone());
    z->name_ = std::string(name);
    z->fixed_offset_ = fixed;
    zone = std::move(z);
  } else {
    if (!zone_name_ok(name)) {
      throw InvalidArgument("bad time zone name '" + client_text(name) + "'");
    }
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("TZDIR"); env && *env) dirs.emplace_back(env);
    for (const char* d : {"/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo",
                          "/etc/zoneinfo"}) {
      dirs.emplace_back(d);
    }
    std::string data;
    bool found = false;
    for (const auto& dir : dirs) {
      std::ifstream in(dir + "/" + std::string(name), std::ios::binary);
      if (!in) continue;
      data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      found = true;
      break;
    }
    if (!found) throw NotFound("unknown time zone '" + std::string(name) + "'");
    zone = from_tzif(std::string(name), data);
  }
  cache.emplace(std::string(name), zone);
  return zone;
}

std::shared_ptr<const TimeZone> TimeZone::from_tzif(std::string name, std::string_view data) {
  auto zone = std::shared_ptr<TimeZone>(new TimeZone());
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  auto bad = [&] { return ParseError("time zone file for '" + client_text(name) + "' is not TZif"); };
  if (n < 44 || data.compare(0, 4, "TZif") != 0) throw bad();
  // Header: magic, version, 15 reserved, then six counts.
  auto counts = [&](size_t at, uint32_t c[6]) {
    if (at + 44 > n) throw bad();
    for (int i = 0; i < 6; ++i) c[i] = be32(p + at + 20 + 4 * static_cast<size_t>(i));
  };
  // The bytes of a data block after its header (RFC 8536 3.2): transition times and types,
  // local time types, abbreviations, leap second records, the two indicator arrays.
  auto block_size = [](const uint32_t c[6], size_t time_size) {
    return size_t{c[3]} * time_size + c[3] + size_t{c[4]} * 6 + c[5] + size_t{c[2]} * (time_size + 4) + c[1] +
           c[0];
  };
  uint32_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  size_t at = 44;
  size_t tsize = 4;
  const bool v2 = data[4] >= '2';
  if (v2) {  // skip the v1 block and read the 64-bit one
    at += block_size(c, 4);
    counts(at, c);
    at += 44;
    tsize = 8;
  }
  const size_t timecnt = c[3], typecnt = c[4];
  if (typecnt == 0 || at + block_size(c, tsize) > n) throw bad();
  const unsigned char* idx = p + at + timecnt * tsize;
  const unsigned char* types = idx + timecnt;
  auto type_offset = [&](size_t t) {
    if (t >= typecnt) throw bad();
    return static_cast<int32_t>(be32(types + t * 6));
  };
  zone->name_ = std::move(name);
  zone->initial_offset_ = type_offset(0);
  zone->transitions_.reserve(timecnt);
  zone->offsets_.reserve(timecnt);
  for (size_t i = 0; i < timecnt; ++i) {
    const unsigned char* q = p + at + i * tsize;
    zone->transitions_.push_back(tsize == 8 ? be64(q) : static_cast<int32_t>(be32(q)));
    zone->offsets_.push_back(type_offset(idx[i]));
  }
  if (v2) zone->footer_ = footer_rule(data.substr(at + block_size(c, tsize)), zone->name_);
  return zone;
}

int64_t TimeZone::offset_seconds(int64_t utc_seconds) const {
  if (footer_ && (transitions_.empty() || utc_seconds >= transitions_.back())) {
    return footer_->offset_seconds(utc_seconds);
  }
  if (transitions_.empty()) return fixed_offset_ != 0 ? fixed_offset_ : initial_offset_;
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_seconds);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<size_t>(it - transitions_.begin() - 1)];
}

namespace {

// The first instant whose local time is `local` or later, given `before`, an instant whose local
// time is earlier, and no instant whose local time is `local` (a skipped time): the switch past
// it, found by halving. The old offset's reading of `local` is at or after the switch. Returns
// `before` when the zone's offsets do not bracket it so (no such switch within a few days).
int64_t switch_into(const TimeZone& tz, int64_t local, int64_t before) {
  int64_t lo = before;
  int64_t hi = local - tz.offset_seconds(before);
  if (hi <= lo || hi - lo > 7 * kSecPerDay || hi + tz.offset_seconds(hi) < local) return before;
  while (hi - lo > 1) {  // local time is before `local` at lo, at or after it at hi
    const int64_t mid = lo + (hi - lo) / 2;
    (mid + tz.offset_seconds(mid) < local ? lo : hi) = mid;
  }
  return hi;
}

// The first instant whose local time is `local`, given `utc`, one that is. A midnight the clocks
// go back across (Havana's and the Azores' 01:00 back to 00:00) comes twice, and the day starts
// at the first, when the local date changes; the lookup found the second east of UTC (Amman).
// The earlier reading takes the offset in force before the switch: tzdata's folds are at most
// kMaxFold long.
int64_t first_reading(const TimeZone& tz, int64_t local, int64_t utc) {
  constexpr int64_t kMaxFold = 3 * 3600;
  const int64_t earlier = local - tz.offset_seconds(utc - kMaxFold);
  return earlier < utc && earlier + tz.offset_seconds(earlier) == local ? earlier : utc;
}

// The first and the last-plus-one local day of the window of kind `w` holding the day `today`.
std::pair<std::chrono::sys_days, std::chrono::sys_days> window_days(Window w,
                                                                    std::chrono::sys_days today) {
  using namespace std::chrono;
  switch (w) {
    case Window::kDaily:
      return {today, today + days{1}};
    case Window::kWeekly: {
      const sys_days monday = today - days{(weekday{today}.c_encoding() + 6) % 7};
      return {monday, monday + days{7}};
    }
    default: {
      const year_month ym = year_month_day{today}.year() / year_month_day{today}.month();
      return {sys_days{ym / day{1}}, sys_days{(ym + months{1}) / day{1}}};
    }
  }
}

}  // namespace

std::pair<TimeUs, TimeUs> window_bounds(Window w, const TimeZone& tz, TimeUs at) {
  using namespace std::chrono;
  if (w == Window::kTotal) return {0, std::numeric_limits<TimeUs>::max()};
  const int64_t utc_s = floor_div(at, kUsPerSec);
  const int64_t local_s = utc_s + tz.offset_seconds(utc_s);
  const sys_days today{days{floor_div(local_s, kSecPerDay)}};
  // Local midnight -> UTC. The offset is looked up near the instant itself; a second pass fixes
  // the case where a transition lies between the guess and the answer. A midnight the zone skips
  // (Santiago's daylight time starts at 24:00) leaves the answer in the day before: the day then
  // starts at the switch; one that comes twice, at the first.
  auto to_utc = [&](sys_days d) {
    const int64_t local = d.time_since_epoch().count() * kSecPerDay;
    int64_t utc = local - tz.offset_seconds(local);
    utc = local - tz.offset_seconds(utc);
    const int64_t reads = utc + tz.offset_seconds(utc);
    if (reads < local) utc = switch_into(tz, local, utc);
    if (reads == local) utc = first_reading(tz, local, utc);
    return utc * kUsPerSec;
  };
  auto [first_day, end_day] = window_days(w, today);
  TimeUs end = to_utc(end_day);
  if (at >= end) {
    // The clocks went back across the midnight that ended the window (St. John's 00:01 back to
    // 23:01, 1988-2010): the day had changed at the first, and the hour read again as the day
    // before is the next window's.
    std::tie(first_day, end_day) = window_days(w, end_day);
    return {end, to_utc(end_day)};
  }
  return {to_utc(first_day), end};
}

}  // namespace orroute
