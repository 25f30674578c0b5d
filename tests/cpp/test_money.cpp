#include <catch2/catch.hpp>

#include <array>
#include <optional>
#include <random>
#include <string>

#include "orroute/catalog/money.h"
#include "orroute/error.h"

using orroute::Money;

TEST_CASE("money parses OpenRouter price strings exactly", "[money]") {
  SECTION("per-token prices keep every digit") {
    REQUIRE(Money::parse("0.0000025").to_string() == "0.0000025");
    REQUIRE(Money::parse("0.00000015").units() == 150'000'000'000);
    REQUIRE(Money::parse("15").to_string() == "15");
    REQUIRE(Money::parse("-1").is_negative());
  }
  SECTION("exponent forms") {
    REQUIRE(Money::parse("1e-6") == Money::parse("0.000001"));
    REQUIRE(Money::parse("2.5E+3") == Money::dollars(2500));
  }
  SECTION("digits past the 18th place round half to even") {
    REQUIRE(Money::parse("0.0000000208333333333333").to_string() == "0.000000020833333333");
    REQUIRE(Money::parse("0.0000000000000000005").is_zero());
    REQUIRE(Money::parse("0.0000000000000000015").units() == 2);
    REQUIRE(Money::parse("0.00000000000000000051").units() == 1);
  }
  SECTION("garbage is an error naming the text") {
    for (const char* bad : {"", "abc", "1.2.3", "1e", "--1", "0x10"}) {
      CAPTURE(bad);
      REQUIRE_THROWS_AS(Money::parse(bad), orroute::InvalidArgument);
    }
  }
}

TEST_CASE("money arithmetic is exact where doubles are not", "[money]") {
  Money sum;
  for (int i = 0; i < 10; ++i) sum += Money::parse("0.1");
  REQUIRE(sum == Money::dollars(1));
  REQUIRE(Money::parse("0.0000025") * 1'000'000 == Money::parse("2.5"));
  REQUIRE(Money::from_double(0.1) == Money::parse("0.1"));
}

TEST_CASE("money converts to nano-dollars for storage", "[money]") {
  REQUIRE(Money::parse("0.0000000015").to_nanos_rounded() == 2);
  REQUIRE(Money::parse("0.0000000011").to_nanos_ceil() == 2);
  REQUIRE(Money::parse("-0.0000000015").to_nanos_rounded() == -2);
  REQUIRE(Money::from_nanos(5) == Money::parse("0.000000005"));
  REQUIRE(orroute::scale(Money::dollars(10), 8, 10) == Money::dollars(8));
}

namespace {

// Money::to_string as first written (one 128-bit division per digit): the reference the fast
// version must match character for character.
std::string reference_text(orroute::Int128 v) {
  const bool negative = v < 0;
  if (negative) v = -v;
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  if (digits.size() <= 18) digits.insert(0, 18 + 1 - digits.size(), '0');
  std::string out = digits.substr(0, digits.size() - 18);
  std::string frac = digits.substr(digits.size() - 18);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  if (!frac.empty()) out += "." + frac;
  return negative ? "-" + out : out;
}

}  // namespace

TEST_CASE("Money::to_string writes what the digit-by-digit reference writes", "[money]") {
  using orroute::Int128;
  const Int128 one = static_cast<Int128>(1'000'000'000'000'000'000LL);
  const Int128 max = ~(static_cast<Int128>(1) << 127);
  std::vector<Int128> values = {0, 1, -1, 10, 100, one, -one, one - 1, one + 1, 10 * one,
                                one / 2, one / 1000, static_cast<Int128>(25) * one / 10'000'000,
                                max, -max, max / 3, static_cast<Int128>(UINT64_MAX) * one,
                                static_cast<Int128>(UINT64_MAX) * one + one - 1,
                                (static_cast<Int128>(UINT64_MAX) + 1) * one};
  uint64_t s = 0x9E3779B97F4A7C15ULL;  // splitmix64: spread over every magnitude
  for (int i = 0; i < 20000; ++i) {
    s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    Int128 v = (static_cast<Int128>(z) << 64 | z * 0x2545F4914F6CDD1DULL) & max;
    v >>= (z % 127);  // every number of digits
    if (z & 1) v = -v;
    values.push_back(v);
  }
  for (const Int128 v : values) {
    INFO(reference_text(v));
    REQUIRE(orroute::Money::from_units(v).to_string() == reference_text(v));
  }
}

TEST_CASE("a plain decimal reads as the general reading reads it", "[money]") {
  // Money::parse reads the usual amount (up to 9 whole digits and 18 decimals) on a short path;
  // an exponent ("e0": the same value) sends the same text down the general one.
  std::mt19937_64 rng(18);
  const auto digits = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += static_cast<char>('0' + rng() % 10);
    return out;
  };
  for (int i = 0; i < 50'000; ++i) {
    std::string text = std::array<const char*, 4>{"", "", "-", "+"}[rng() % 4];
    text += digits(rng() % 11);  // 0-10 whole digits: 0 and 10 are not the short path's
    if (rng() % 4 != 0) text += "." + digits(rng() % 20);  // 0-19 decimals: likewise
    INFO(text);
    std::optional<Money> general;
    try {
      general = Money::parse(text + "e0");
    } catch (const orroute::InvalidArgument&) {
    }
    if (general) {
      CHECK(Money::parse(text) == *general);
    } else {
      CHECK_THROWS_AS(Money::parse(text), orroute::InvalidArgument);
    }
  }
  CHECK(Money::parse("999999999.999999999999999999").to_string() == "999999999.999999999999999999");
  CHECK(Money::parse("0.000042").units() == 42'000'000'000'000);
  CHECK(Money::parse("-0.000042").units() == -42'000'000'000'000);
  CHECK(Money::parse("007.50").to_string() == "7.5");
}
