#include "orroute/cost/open_ledger.h"

#include "orroute/cost/sqlite_ledger.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#endif

namespace orroute {

bool redis_ledger_available() {
#ifdef ORROUTE_HAVE_REDIS
  return true;
#else
  return false;
#endif
}

bool is_redis_location(std::string_view location) {
  return location.substr(0, 8) == "redis://" || location.substr(0, 9) == "rediss://";
}

std::shared_ptr<Ledger> open_ledger(const std::string& location) {
  return open_ledger(location, SqliteLedgerOptions{});
}

std::shared_ptr<Ledger> open_ledger(const std::string& location,
                                    const SqliteLedgerOptions& sqlite_options) {
  if (is_redis_location(location)) {
#ifdef ORROUTE_HAVE_REDIS
    return std::make_shared<RedisLedger>(location);
#else
    throw InvalidArgument("this orroute was built without the Redis ledger (hiredis was not found "
                          "at build time; install libhiredis-dev and rebuild)");
#endif
  }
  return std::make_shared<SqliteLedger>(location, sqlite_options);
}

}  // namespace orroute
