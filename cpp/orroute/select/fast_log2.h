// The selector's log2 of a cost: part of how candidates are ranked (cheapness is log-scaled), so
// every scan and the reference scan in the tests use this one definition.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// fast_log2 of two values at once, bit for bit the same results: the same IEEE operations in the
// same order, two lanes wide (SSE2, x86-64's baseline: no FMA to change a rounding). Scalar
// elsewhere.
inline void fast_log2_x2(double x0, double x1, double& l0, double& l1) {
#if defined(__SSE2__)
  const __m128i bits = _mm_castpd_si128(_mm_set_pd(x1, x0));
  // The exponent field as a double, exactly: OR it into the mantissa of 2^52 and subtract 2^52.
  const __m128i field = _mm_and_si128(_mm_srli_epi64(bits, 52), _mm_set1_epi64x(0x7ff));
  const __m128d two52 = _mm_set1_pd(4503599627370496.0);
  const __m128d exponent = _mm_sub_pd(
      _mm_sub_pd(_mm_or_pd(_mm_castsi128_pd(field), two52), two52), _mm_set1_pd(1023.0));
  const __m128i mant = _mm_or_si128(_mm_and_si128(bits, _mm_set1_epi64x(0x000fffffffffffffLL)),
                                    _mm_set1_epi64x(0x3ff0000000000000LL));
  const __m128d t = _mm_sub_pd(_mm_castsi128_pd(mant), _mm_set1_pd(1.0));
  __m128d p = _mm_mul_pd(t, _mm_set1_pd(0.0434343352));
  p = _mm_mul_pd(t, _mm_add_pd(_mm_set1_pd(-0.187743999), p));
  p = _mm_mul_pd(t, _mm_add_pd(_mm_set1_pd(0.40874967), p));
  p = _mm_mul_pd(t, _mm_add_pd(_mm_set1_pd(-0.705719485), p));
  p = _mm_mul_pd(t, _mm_add_pd(_mm_set1_pd(1.44127084), p));
  const __m128d r = _mm_add_pd(exponent, p);
  l0 = _mm_cvtsd_f64(r);
  l1 = _mm_cvtsd_f64(_mm_unpackhi_pd(r, r));
#else
  l0 = fast_log2(x0);
  l1 = fast_log2(x1);
#endif
}

}  // namespace orroute
