// fixed_text writes what printf("%.*f") writes (the plan's reasons used printf before).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "orroute/fixed_text.h"

using orroute::fixed_text;

namespace {

std::string printf_fixed(double v, int digits) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

TEST_CASE("fixed_text equals printf's %.*f, ties and extremes included", "[fixed_text]") {
  const double edge[] = {0.0, -0.0, 0.125, 0.375, 2.675, 1.005, 0.045, 0.5, 1.5, 2.5, -0.125,
                         0.9999999, 1e-12, 123456789.125, 1e300, -1e300,
                         std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min()};
  for (double v : edge) {
    for (int digits = 0; digits <= 6; ++digits) {
      INFO(v << " with " << digits << " digits");
      REQUIRE(fixed_text(v, digits) == printf_fixed(v, digits));
    }
  }
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 20000; ++i) {
    const double v = i % 2 ? unit(rng) : std::ldexp(unit(rng), static_cast<int>(rng() % 80) - 40);
    const int digits = static_cast<int>(rng() % 7);
    INFO(v << " with " << digits << " digits");
    REQUIRE(fixed_text(v, digits) == printf_fixed(v, digits));
  }
}
