// Money in SQLite columns: a pair of INTEGERs, whole nano-dollars (floor) and the rest in
// 1e-18 USD (0 <= attos < 1e9), exactly the orroute::Money value (see sqlite_ledger.h).
#pragma once

#include <cstdint>
#include <utility>

#include "orroute/catalog/money.h"

namespace orroute::sqlite {

// (nanos, attos) of `m`. Throws InvalidArgument if the nanos do not fit in int64.
std::pair<int64_t, int64_t> split(Money m);

// The Money of a (nanos, attos) pair.
Money join(int64_t nanos, int64_t attos);

}  // namespace orroute::sqlite
