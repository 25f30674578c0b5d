#include "orroute/catalog/money.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "orroute/error.h"

namespace orroute {
namespace {

constexpr Int128 kMax = ~(static_cast<Int128>(1) << 127);

[[noreturn]] void bad(std::string_view text, const char* why) {
  throw InvalidArgument("not a valid amount of money: '" + std::string(text) + "' (" + why + ")");
}

// The usual amount (a price, a reply's cost): 1-9 whole digits, then nothing or a point and 1-18
// decimals, no sign, no exponent. Exact in two 64-bit parts, without the general reading's
// string of digits; the same units it gives (an exact value, no digit below the unit). Nothing
// for any other text.
std::optional<Int128> plain_decimal(std::string_view s) noexcept {
  constexpr uint64_t kPow10[19] = {1,
                                   10,
                                   100,
                                   1'000,
                                   10'000,
                                   100'000,
                                   1'000'000,
                                   10'000'000,
                                   100'000'000,
                                   1'000'000'000,
                                   10'000'000'000,
                                   100'000'000'000,
                                   1'000'000'000'000,
                                   10'000'000'000'000,
                                   100'000'000'000'000,
                                   1'000'000'000'000'000,
                                   10'000'000'000'000'000,
                                   100'000'000'000'000'000,
                                   1'000'000'000'000'000'000};
  const auto digit = [&](size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
  size_t i = 0;
  uint64_t whole = 0;
  for (; digit(i) && i < 10; ++i) whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
  if (i == 0 || i > 9) return std::nullopt;
  if (i == s.size()) return static_cast<Int128>(whole) * static_cast<Int128>(kPow10[18]);
  if (s[i] != '.') return std::nullopt;
  const size_t first = ++i;
  uint64_t frac = 0;
  for (; digit(i) && i - first < 19; ++i) frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
  const size_t n = i - first;
  if (n == 0 || n > 18 || i != s.size()) return std::nullopt;
  return static_cast<Int128>(whole) * static_cast<Int128>(kPow10[18]) + static_cast<Int128>(frac * kPow10[18 - n]);
}

}  // namespace

Money Money::parse(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty()) bad(text, "empty");
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (const std::optional<Int128> units = plain_decimal(s)) return Money(negative ? -*units : *units);
  // Split mantissa and exponent.
  int exponent = 0;
  if (const auto e = s.find_first_of("eE"); e != std::string_view::npos) {
    std::string_view exp = s.substr(e + 1);
    s = s.substr(0, e);
    if (!exp.empty() && exp.front() == '+') exp.remove_prefix(1);
    const auto [ptr, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), exponent);
    if (exp.empty() || ec != std::errc() || ptr != exp.data() + exp.size()) bad(text, "bad exponent");
    if (exponent > 40 || exponent < -80) bad(text, "exponent out of range");
  }
  // Collect digits; `scale` counts digits after the decimal point.
  std::string digits;
  int scale = 0;
  bool seen_point = false;
  for (const char c : s) {
    if (c == '.') {
      if (seen_point) bad(text, "two decimal points");
      seen_point = true;
    } else if (c >= '0' && c <= '9') {
      digits.push_back(c);
      if (seen_point) ++scale;
    } else {
      bad(text, "unexpected character");
    }
  }
  if (digits.empty()) bad(text, "no digits");
  // value = digits * 10^(exponent - scale); we want units = value * 10^kScale.
  int shift = kScale + exponent - scale;
  // Drop leading zeros so long zero-prefixed strings never overflow.
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return Money();
  digits.erase(0, first);
  // Digits that fall below the unit are rounded away (half even).
  Int128 value = 0;
  const int keep = static_cast<int>(digits.size()) + std::min(shift, 0);
  if (keep <= 0) {
    // Entire value is below one unit: rounds to 0 or 1 unit.
    if (keep == 0) {
      // value in [0.1, 1) units: rounds up when first digit > 5, or == 5 with more non-zero digits.
      const bool above_half = digits[0] > '5' ||
                              (digits[0] == '5' && digits.find_first_not_of('0', 1) != std::string::npos);
      value = above_half ? 1 : 0;
    }
    return Money(negative ? -value : value);
  }
  for (int i = 0; i < keep; ++i) {
    if (value > (kMax - 9) / 10) bad(text, "too large");
    value = value * 10 + (digits[static_cast<size_t>(i)] - '0');
  }
  if (shift > 0) {
    for (int i = 0; i < shift; ++i) {
      if (value > kMax / 10) bad(text, "too large");
      value *= 10;
    }
  } else if (keep < static_cast<int>(digits.size())) {
    const std::string_view rest = std::string_view(digits).substr(static_cast<size_t>(keep));
    const bool more = rest.find_first_not_of('0', 1) != std::string_view::npos;
    const bool round_up = rest[0] > '5' || (rest[0] == '5' && (more || (value % 2 != 0)));
    if (round_up) ++value;
  }
  return Money(negative ? -value : value);
}

Money Money::from_double(double usd) {
  if (!std::isfinite(usd)) throw InvalidArgument("amount of money must be finite");
  std::array<char, 64> buf{};
  const auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), usd);
  if (ec != std::errc()) throw InvalidArgument("amount of money could not be formatted");
  return parse(std::string_view(buf.data(), static_cast<size_t>(ptr - buf.data())));
}

std::string Money::to_string() const {
  // Every result dict carries an amount or two: whole dollars and the 18 decimals are each written
  // with 64-bit arithmetic (two 128-bit divisions in all, not two per digit).
  const bool negative = units_ < 0;
  // |INT128_MIN| is not representable, but no parse/arith path within budgets reaches it.
  const Int128 u = negative ? -units_ : units_;
  const Int128 whole = u / kOne;
  uint64_t frac = static_cast<uint64_t>(u % kOne);
  char buf[64];  // '-', at most 21 whole digits (|units_| / 10^18 < 1.8e20), '.', 18 decimals
  char* p = buf;
  if (negative) *p++ = '-';
  if (whole <= static_cast<Int128>(std::numeric_limits<uint64_t>::max())) {
    p = std::to_chars(p, buf + sizeof buf, static_cast<uint64_t>(whole)).ptr;
  } else {  // above $1.8e19: the high digits, then the low 19 zero-padded
    constexpr uint64_t kTen19 = 10'000'000'000'000'000'000ULL;
    p = std::to_chars(p, buf + sizeof buf, static_cast<uint64_t>(whole / kTen19)).ptr;
    const auto low = static_cast<uint64_t>(whole % kTen19);
    char digits[20];
    char* end = std::to_chars(digits, digits + sizeof digits, low).ptr;
    const auto n = static_cast<size_t>(end - digits);
    p = std::fill_n(p, n < 19 ? 19 - n : 0, '0');
    p = std::copy(digits, end, p);
  }
  if (frac != 0) {
    int width = kScale;
    while (frac % 10 == 0) {  // trailing zeros are not written
      frac /= 10;
      --width;
    }
    char digits[20];
    char* end = std::to_chars(digits, digits + sizeof digits, frac).ptr;
    const auto n = static_cast<size_t>(end - digits);
    *p++ = '.';
    const auto w = static_cast<size_t>(width);
    p = std::fill_n(p, n < w ? w - n : 0, '0');
    p = std::copy(digits, end, p);
  }
  return std::string(buf, p);
}

double Money::to_double() const {
  // Split to keep precision: whole dollars plus fraction.
  const Int128 whole = units_ / kOne;
  const Int128 frac = units_ % kOne;
  return static_cast<double>(whole) + static_cast<double>(frac) / 1e18;
}

int64_t Money::to_nanos_rounded() const {
  const Int128 d = kUnitsPerNano;
  Int128 q = units_ / d;
  Int128 r = units_ % d;
  if (r < 0) r = -r;
  if (r * 2 >= d) q += units_ < 0 ? -1 : 1;
  return static_cast<int64_t>(q);
}

int64_t Money::to_nanos_ceil() const {
  const Int128 d = kUnitsPerNano;
  Int128 q = units_ / d;
  if (units_ % d > 0) ++q;
  return static_cast<int64_t>(q);
}

Money scale(Money m, int64_t num, int64_t den) {
  if (den == 0) throw InvalidArgument("scale: zero denominator");
  Int128 n = m.units() * num;
  Int128 d = den;
  if (d < 0) {
    n = -n;
    d = -d;
  }
  Int128 q = n / d;
  Int128 r = n % d;
  if (r < 0) r = -r;
  if (r * 2 >= d) q += n < 0 ? -1 : 1;
  return Money::from_units(q);
}

}  // namespace orroute
