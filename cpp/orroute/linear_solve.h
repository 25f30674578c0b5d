// Small dense linear algebra for the models that fit themselves (the escalation model's Newton
// steps, the learned router's ridge regression of cost): one Cholesky solver for both.
#pragma once

#include <cstddef>
#include <vector>

namespace orroute {

// Solves A x = b for a symmetric positive (semi-)definite A, row-major n x n, by Cholesky
// (A = L L^T, then L y = b and L^T x = y). Each pivot is clamped to at least `min_pivot` before
// its square root, so a semi-definite or slightly indefinite A (rounding) still gives a finite x.
// `a` must have n * n entries and `b` n. Pure; O(n^3).
std::vector<double> cholesky_solve(std::vector<double> a, std::vector<double> b, size_t n,
                                   double min_pivot);

}  // namespace orroute
