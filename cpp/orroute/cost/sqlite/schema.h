// The ledger's schema: its migrations (applied in order, recorded in schema_version) and the
// columns a CallRecord is read from.
#pragma once

#include <cstdint>
#include <string>

namespace orroute::sqlite {

// Migration i (1-based) brings the schema from version i-1 to i. Append, never edit.
extern const char* const kMigrations[];
// The number of migrations: the schema version this build writes.
extern const int64_t kSchemaVersion;
// The migration whose calls_blocks is built ahead of its transaction, in calls_blocks_building
// (SqliteLedger's migrate): the table made if missing (kBlocksBuilding); the next block to build
// and the end of the complete blocks, the first NULL when there is none (kBlocksToBuild); the
// blocks from ?1 to ?2 (exclusive) added (kBuildBlocks).
extern const int64_t kBlocksMigration;
extern const char* const kBlocksBuilding;
extern const char* const kBlocksToBuild;
extern const char* const kBuildBlocks;
// SELECT list of a calls row, as SqliteLedger::calls reads it (tags last, "k=v" lines).
extern const char* const kCallColumns;

// Conditions on calls.id that every call with ts >= `from` (ts < `to`) meets, `from` and `to`
// being SQL parameters (":from", "?1"): the range of the rowid a time filter scans (schema 5's
// calls_spans). A NULL bound (no span reaches the time) matches no call, as the filter would.
std::string calls_from(const char* from);
std::string calls_before(const char* to);

}  // namespace orroute::sqlite
