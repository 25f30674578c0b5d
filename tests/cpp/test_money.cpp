#include <catch2/catch.hpp>

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
