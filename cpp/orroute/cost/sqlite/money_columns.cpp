#include "orroute/cost/sqlite/money_columns.h"

#include <limits>
#include <string>

#include "orroute/error.h"

namespace orroute::sqlite {

constexpr Int128 kAttosPerNano = 1'000'000'000;

std::pair<int64_t, int64_t> split(Money m) {
  Int128 n = m.units() / kAttosPerNano;
  Int128 r = m.units() % kAttosPerNano;
  if (r < 0) {
    r += kAttosPerNano;
    n -= 1;
  }
  if (n > std::numeric_limits<int64_t>::max() || n < std::numeric_limits<int64_t>::min()) {
    throw InvalidArgument("amount too large for the ledger: $" + m.to_string());
  }
  return {static_cast<int64_t>(n), static_cast<int64_t>(r)};
}

Money join(int64_t nanos, int64_t attos) {
  return Money::from_units(static_cast<Int128>(nanos) * kAttosPerNano + attos);
}

}  // namespace orroute::sqlite
