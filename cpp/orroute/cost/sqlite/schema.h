// The ledger's schema: its migrations (applied in order, recorded in schema_version) and the
// columns a CallRecord is read from.
#pragma once

#include <cstdint>

namespace orroute::sqlite {

// Migration i (1-based) brings the schema from version i-1 to i. Append, never edit.
extern const char* const kMigrations[];
// The number of migrations: the schema version this build writes.
extern const int64_t kSchemaVersion;
// SELECT list of a calls row, as SqliteLedger::calls reads it (tags last, "k=v" lines).
extern const char* const kCallColumns;

}  // namespace orroute::sqlite
