// The one Cholesky solver the escalation model and the learned router fit with.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "orroute/linear_solve.h"

using namespace orroute;

TEST_CASE("cholesky_solve solves a symmetric positive definite system", "[linear_solve]") {
  // A = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = (1, -2, 3): b = A x.
  const std::vector<double> a = {4, 2, 0, 2, 5, 1, 0, 1, 3};
  const std::vector<double> x = cholesky_solve(a, {0, -5, 7}, 3, 1e-12);
  REQUIRE(x.size() == 3);
  CHECK(x[0] == Approx(1.0).margin(1e-12));
  CHECK(x[1] == Approx(-2.0).margin(1e-12));
  CHECK(x[2] == Approx(3.0).margin(1e-12));
}

TEST_CASE("cholesky_solve leaves a random well-conditioned system with a tiny residual",
          "[linear_solve]") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  for (const size_t n : {1u, 2u, 5u, 12u}) {
    CAPTURE(n);
    // A = M^T M + I is symmetric positive definite.
    std::vector<double> m(n * n), a(n * n, 0.0), b(n);
    for (double& v : m) v = normal(rng);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        for (size_t k = 0; k < n; ++k) a[i * n + j] += m[k * n + i] * m[k * n + j];
      }
      a[i * n + i] += 1.0;
    }
    for (double& v : b) v = normal(rng);
    const std::vector<double> x = cholesky_solve(a, b, n, 1e-12);
    for (size_t i = 0; i < n; ++i) {
      double ax = 0;
      for (size_t j = 0; j < n; ++j) ax += a[i * n + j] * x[j];
      CHECK(ax == Approx(b[i]).margin(1e-9));
    }
  }
}

TEST_CASE("cholesky_solve clamps the pivots of a singular matrix to a finite answer",
          "[linear_solve]") {
  // Rank 1: the second pivot is 0 before the clamp.
  const std::vector<double> a = {1, 1, 1, 1};
  const std::vector<double> x = cholesky_solve(a, {2, 2}, 2, 1e-12);
  REQUIRE(std::isfinite(x[0]));
  REQUIRE(std::isfinite(x[1]));
  CHECK(x[0] + x[1] == Approx(2.0));  // A x = b still holds along A's range
}
