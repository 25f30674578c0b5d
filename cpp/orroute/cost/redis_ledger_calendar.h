// UTC calendar labels for the Redis ledger's report() (the SQLite ledger's strftime labels).
#pragma once

#include <string>
#include <string_view>

#include "orroute/cost/ledger.h"

namespace orroute::redis_ledger {

// The label of the `period` ("hour", "day"/"daily", "week"/"weekly" (its Monday),
// "month"/"monthly", "total"/"") that `ts` falls in, in UTC.
std::string period_label(std::string_view period, TimeUs ts);

}  // namespace orroute::redis_ledger
