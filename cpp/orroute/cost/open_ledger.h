// Opens the ledger a location names: "redis://..." is a RedisLedger (multi-machine), anything
// else a SqliteLedger file path (or ":memory:"). Lets the engine and the bindings take one string.
#pragma once

#include <memory>
#include <string>

#include "orroute/cost/ledger.h"
#include "orroute/cost/sqlite_ledger.h"

namespace orroute {

// Whether this build has the Redis ledger (hiredis was found at configure time).
bool redis_ledger_available();

// True for "redis://..." locations.
bool is_redis_location(std::string_view location);

// Throws InvalidArgument for a redis:// location in a build without Redis, and whatever the
// backend's constructor throws (Error when the file or server cannot be opened).
std::shared_ptr<Ledger> open_ledger(const std::string& location);
// The same, with the options a SQLite file is opened with (e.g. write-behind settles for a
// settle worker: `settle_delay_us`); ignored for Redis.
std::shared_ptr<Ledger> open_ledger(const std::string& location,
                                    const SqliteLedgerOptions& sqlite_options);

}  // namespace orroute
