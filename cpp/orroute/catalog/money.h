// Exact money. Prices arrive from OpenRouter as decimal strings of USD per token (some with 22
// decimals); they are held as integers of 1e-18 USD ("attodollars") in a 128-bit integer, so sums,
// products with token counts and comparisons with budgets are exact. Digits beyond the 18th
// decimal place are rounded half-to-even when parsing (only repeating fractions such as
// 0.0000000208333333333333 have them). Convert to double only to display.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace orroute {

__extension__ typedef __int128 Int128;

class Money {
 public:
  using Rep = Int128;
  static constexpr int kScale = 18;                        // decimal places held exactly
  static constexpr int64_t kUnitsPerNano = 1'000'000'000;  // 1e-9 USD in units

  constexpr Money() = default;
  static constexpr Money from_units(Rep units) { return Money(units); }
  static constexpr Money zero() { return Money(); }
  // Whole USD, exactly.
  static constexpr Money dollars(int64_t usd) { return Money(static_cast<Rep>(usd) * kOne); }
  // Parses a plain decimal ("0.0000025", "-1", "15", ".5", "1e-6", "2.5E+3"). Throws
  // InvalidArgument naming the text if it is not a number or overflows.
  static Money parse(std::string_view text);
  // Lossy, for display and for amounts a user typed as a float (goes through the shortest decimal
  // form of the double, so 0.1 becomes exactly 0.1). Throws InvalidArgument on NaN/inf.
  static Money from_double(double usd);

  constexpr Rep units() const { return units_; }
  // Exact decimal form without trailing zeros: "0.0000025", "12", "-1".
  std::string to_string() const;
  double to_double() const;
  // Amount rounded to whole nano-dollars (half away from zero), for compact storage.
  int64_t to_nanos_rounded() const;
  // Amount rounded up (toward +inf) to whole nano-dollars: for reservations, which must not be low.
  int64_t to_nanos_ceil() const;
  static constexpr Money from_nanos(int64_t nanos) { return Money(static_cast<Rep>(nanos) * kUnitsPerNano); }

  constexpr bool is_zero() const { return units_ == 0; }
  constexpr bool is_negative() const { return units_ < 0; }

  friend constexpr Money operator+(Money a, Money b) { return Money(a.units_ + b.units_); }
  friend constexpr Money operator-(Money a, Money b) { return Money(a.units_ - b.units_); }
  friend constexpr Money operator-(Money a) { return Money(-a.units_); }
  // Price per unit times a count of units (tokens, requests, images).
  friend constexpr Money operator*(Money a, int64_t n) { return Money(a.units_ * n); }
  friend constexpr Money operator*(int64_t n, Money a) { return Money(a.units_ * n); }
  Money& operator+=(Money o) { units_ += o.units_; return *this; }
  Money& operator-=(Money o) { units_ -= o.units_; return *this; }
  friend constexpr auto operator<=>(Money a, Money b) = default;

 private:
  static constexpr Rep kOne = static_cast<Rep>(1'000'000'000'000'000'000LL);  // 1 USD
  constexpr explicit Money(Rep units) : units_(units) {}
  Rep units_ = 0;
};

// The largest price of one unit (token, request, image) a catalog or a provider's price list may
// give: a larger one is refused where prices are read, so a worst case (a price times a count of
// at most ~2^40 units, summed over a few prices) stays far inside Money's range instead of
// overflowing it (a hostile catalog's $1e20 per token made a call's worst case $0).
inline constexpr Money kMaxUnitPrice = Money::dollars(1'000'000);

// Multiplies by num/den, rounding half away from zero (used for per-family correction factors
// and percentage thresholds, never for billing). Throws InvalidArgument if den == 0.
Money scale(Money m, int64_t num, int64_t den);

}  // namespace orroute
