#include "orroute/cost/sqlite/query.h"

namespace orroute::sqlite {

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw Error("ledger: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace orroute::sqlite
