#include "orroute/cost/posix_tz.h"

#include <chrono>
#include <limits>

#include "orroute/ascii.h"

namespace orroute {
namespace {

constexpr int64_t kSecPerDay = 86'400;
// The Gregorian calendar repeats (weekdays included) every 400 years, so does every rule.
constexpr int64_t kSecPer400Years = 146'097 * kSecPerDay;
constexpr int kMaxHours = 167;  // RFC 8536's bound for a rule's time; tzcode's for offsets too

// A cursor over the TZ string. Each reader consumes what it accepts and returns false (leaving
// the cursor anywhere) on anything else; every loop is bounded by the text's length.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  bool at_end() const { return at_ == text_.size(); }
  bool take(char c) {
    if (at_ == text_.size() || text_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool peek_is(char c) const { return at_ < text_.size() && text_[at_] == c; }

  // A zone abbreviation: letters ("EST"), or anything of letters, digits, '+' and '-' inside
  // angle brackets ("<+0530>"). Its characters are not kept: only offsets matter here.
  bool name() {
    const size_t from = at_;
    if (take('<')) {
      while (at_ < text_.size() && (ascii::is_alnum(byte()) || text_[at_] == '+' || text_[at_] == '-')) ++at_;
      return at_ > from + 1 && take('>');
    }
    while (at_ < text_.size() && ascii::is_alpha(byte())) ++at_;
    return at_ > from;
  }

  // [+|-]hh[:mm[:ss]] with hh at most kMaxHours, in seconds.
  bool signed_hms(int32_t& out) {
    const bool negative = take('-');
    if (!negative) take('+');
    int h = 0, m = 0, s = 0;
    if (!number(0, kMaxHours, h)) return false;
    if (take(':')) {
      if (!number(0, 59, m)) return false;
      if (take(':') && !number(0, 59, s)) return false;
    }
    const int32_t value = h * 3600 + m * 60 + s;
    out = negative ? -value : value;
    return true;
  }

  // Decimal digits (at least one) making a value within [lo, hi].
  bool number(int lo, int hi, int& out) {
    const size_t from = at_;
    int64_t value = 0;
    while (at_ < text_.size() && ascii::is_digit(byte())) {
      value = value * 10 + (text_[at_++] - '0');
      if (value > hi) return false;  // also bounds the value before it could overflow
    }
    if (at_ == from || value < lo) return false;
    out = static_cast<int>(value);
    return true;
  }

 private:
  unsigned char byte() const { return static_cast<unsigned char>(text_[at_]); }
  std::string_view text_;
  size_t at_ = 0;
};

// ",Jn[/time]", ",n[/time]" or ",Mm.w.d[/time]".
bool read_rule(Reader& r, PosixTz::Rule& rule) {
  using Kind = PosixTz::Rule::Kind;
  if (!r.take(',')) return false;
  if (r.take('J')) {
    rule.kind = Kind::kJulianNoLeap;
    if (!r.number(1, 365, rule.day)) return false;
  } else if (r.take('M')) {
    rule.kind = Kind::kMonthWeekDay;
    if (!r.number(1, 12, rule.month) || !r.take('.') || !r.number(1, 5, rule.week) || !r.take('.') ||
        !r.number(0, 6, rule.day)) {
      return false;
    }
  } else {
    rule.kind = Kind::kDayOfYear;
    if (!r.number(0, 365, rule.day)) return false;
  }
  return !r.take('/') || r.signed_hms(rule.seconds);
}

// The local time (seconds since the epoch, as if local time were UTC) at which `rule` switches
// in `year`.
int64_t local_switch(const PosixTz::Rule& rule, int year) {
  using namespace std::chrono;
  using Kind = PosixTz::Rule::Kind;
  const sys_days jan1{std::chrono::year{year} / January / 1};
  sys_days day;
  switch (rule.kind) {
    case Kind::kJulianNoLeap: {
      const bool past_feb28 = std::chrono::year{year}.is_leap() && rule.day >= 60;
      day = jan1 + days{rule.day - 1 + (past_feb28 ? 1 : 0)};
      break;
    }
    case Kind::kDayOfYear: day = jan1 + days{rule.day}; break;
    case Kind::kMonthWeekDay: {
      const year_month ym = std::chrono::year{year} / rule.month;
      const sys_days first{ym / 1};
      day = first + (weekday{static_cast<unsigned>(rule.day)} - weekday{first});  // its first
      day += weeks{rule.week - 1};
      const sys_days last{ym / std::chrono::last};
      while (day > last) day -= weeks{1};  // week 5: the last such weekday of the month
      break;
    }
  }
  return day.time_since_epoch().count() * kSecPerDay + rule.seconds;
}

}  // namespace

std::optional<PosixTz> PosixTz::parse(std::string_view text) {
  PosixTz tz;
  Reader r(text);
  int32_t west = 0;
  if (!r.name() || !r.signed_hms(west)) return std::nullopt;
  tz.std_offset_ = -west;
  if (r.at_end()) return tz;
  if (!r.name()) return std::nullopt;
  tz.has_dst_ = true;
  tz.dst_offset_ = tz.std_offset_ + 3600;
  if (!r.at_end() && !r.peek_is(',')) {
    if (!r.signed_hms(west)) return std::nullopt;
    tz.dst_offset_ = -west;
  }
  if (r.at_end()) {  // no rules: POSIX leaves them to the implementation; tzcode's are the US's
    tz.start_ = Rule{Rule::Kind::kMonthWeekDay, 0, 2, 3, 2 * 3600};
    tz.end_ = Rule{Rule::Kind::kMonthWeekDay, 0, 1, 11, 2 * 3600};
    return tz;
  }
  if (!read_rule(r, tz.start_) || !read_rule(r, tz.end_) || !r.at_end()) return std::nullopt;
  return tz;
}

int64_t PosixTz::offset_seconds(int64_t utc_seconds) const {
  if (!has_dst_) return std_offset_;
  // Moved into the 400 years from 1970, where the calendar's arithmetic cannot overflow: the
  // answer repeats with the calendar.
  int64_t utc = utc_seconds % kSecPer400Years;  // a remainder: no product that could overflow
  if (utc < 0) utc += kSecPer400Years;
  using namespace std::chrono;
  const int year =
      static_cast<int>(year_month_day{sys_days{days{floor_div(utc + std_offset_, kSecPerDay)}}}.year());
  // The latest switch at or before the instant, among those of the years around it: a rule's
  // time may move a switch up to a week into the next or the previous year, and a southern
  // zone's summer spans the new year. When a year's end of daylight time is the next year's
  // start (daylight time all year: "0/0,J365/25"), daylight time wins.
  int64_t latest = std::numeric_limits<int64_t>::min();
  bool daylight = false;
  auto consider = [&](int64_t at, bool into_daylight) {
    if (at > utc || at < latest || (at == latest && !into_daylight)) return;
    latest = at;
    daylight = into_daylight;
  };
  for (int y = year - 1; y <= year + 1; ++y) {
    consider(local_switch(end_, y) - dst_offset_, false);  // given in daylight time
    consider(local_switch(start_, y) - std_offset_, true);  // given in standard time
  }
  return daylight ? dst_offset_ : std_offset_;
}

}  // namespace orroute
