// The selector's log2 of a cost: part of how candidates are ranked (cheapness is log-scaled), so
// every scan and the reference scan in the tests use this one definition.
#pragma once

#include <cstdint>
#include <cstring>

namespace orroute {

// log2 to about 1e-4, much cheaper than std::log: only used to rank (never for money), and the
// same function serves select_model and rank so both order candidates identically.
inline double fast_log2(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;  // mantissa in [1, 2)
  double m;
  std::memcpy(&m, &bits, sizeof m);
  // Least-squares quintic for log2(1 + t) on t in [0, 1): max error 5e-5.
  const double t = m - 1.0;
  return exponent +
         t * (1.44127084 +
              t * (-0.705719485 + t * (0.40874967 + t * (-0.187743999 + t * 0.0434343352))));
}

}  // namespace orroute
