#include "orroute/cost/sqlite/schema.h"

#include <string>

namespace orroute::sqlite {

extern const char* const kMigrations[] = {
    R"sql(
CREATE TABLE state(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  budget_gen INTEGER NOT NULL,
  cutoff_reason TEXT,
  cutoff_at INTEGER);
INSERT INTO state(id, budget_gen) VALUES (1, 0);

CREATE TABLE calls(
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  project TEXT, conversation TEXT, task_id TEXT, task_type TEXT,
  model_requested TEXT, model_used TEXT, provider TEXT, generation_id TEXT,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  est_nanos INTEGER, est_attos INTEGER,
  cost_nanos INTEGER NOT NULL, cost_attos INTEGER NOT NULL,
  latency_us INTEGER, ttft_us INTEGER,
  outcome TEXT NOT NULL, error_class TEXT, attempts INTEGER NOT NULL);
CREATE INDEX calls_ts ON calls(ts);
CREATE INDEX calls_project_ts ON calls(project, ts);
CREATE INDEX calls_type_model ON calls(task_type, model_used, id);

CREATE TABLE call_tags(
  call_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (call_id, key)) WITHOUT ROWID;
CREATE INDEX call_tags_kv ON call_tags(key, value, call_id);

CREATE TABLE budgets(
  id INTEGER PRIMARY KEY,
  scope_kind TEXT NOT NULL, scope_key TEXT NOT NULL, scope_value TEXT NOT NULL,
  period TEXT NOT NULL, time_zone TEXT NOT NULL,
  limit_nanos INTEGER NOT NULL, limit_attos INTEGER NOT NULL,
  policy TEXT NOT NULL, thresholds TEXT NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (scope_kind, scope_key, scope_value, period));

CREATE TABLE budget_windows(
  budget_id INTEGER NOT NULL, window_start INTEGER NOT NULL,
  spent_nanos INTEGER NOT NULL, spent_attos INTEGER NOT NULL,
  reserved_nanos INTEGER NOT NULL, reserved_attos INTEGER NOT NULL,
  PRIMARY KEY (budget_id, window_start)) WITHOUT ROWID;

CREATE TABLE reservations(
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, host TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  amount_nanos INTEGER NOT NULL, amount_attos INTEGER NOT NULL,
  project TEXT, conversation TEXT, tags TEXT, model TEXT, task_id TEXT,
  windows TEXT NOT NULL);

CREATE TABLE alerts(
  budget_id INTEGER NOT NULL, window_start INTEGER NOT NULL, threshold_pct INTEGER NOT NULL,
  fired_at INTEGER NOT NULL, budget_name TEXT NOT NULL,
  spent_nanos INTEGER NOT NULL, spent_attos INTEGER NOT NULL,
  limit_nanos INTEGER NOT NULL, limit_attos INTEGER NOT NULL,
  PRIMARY KEY (budget_id, window_start, threshold_pct));
CREATE INDEX alerts_fired_at ON alerts(fired_at);
)sql",
    // 2: budget leases (a process's allowance, see SqliteLedger) are reservation rows marked 1.
    R"sql(
ALTER TABLE reservations ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
-- One page fewer per recorded call: project filters and project budgets use calls_ts.
DROP INDEX calls_project_ts;
)sql",
    // 3: where each call's cost came from (the upstream's checked figure, the catalog, ...).
    R"sql(
ALTER TABLE calls ADD COLUMN cost_source TEXT NOT NULL DEFAULT '';
)sql",
    // 4: budget ids are never reused. SQLite gives a new row the largest rowid + 1, so a budget
    // made after the newest one was removed took its id, and the removed budget's alerts (and
    // reservations naming its windows) stood for the new one's: its thresholds never fired.
    R"sql(
ALTER TABLE state ADD COLUMN last_budget_id INTEGER NOT NULL DEFAULT 0;
UPDATE state SET last_budget_id = (SELECT MAX(m) FROM (
  SELECT COALESCE(MAX(id), 0) AS m FROM budgets UNION ALL
  SELECT COALESCE(MAX(budget_id), 0) FROM alerts UNION ALL
  SELECT COALESCE(MAX(budget_id), 0) FROM budget_windows));
)sql",
    // 5: the calls table keeps no index: each was a page and 5-9k instructions of every recorded
    // call.
    // - (task_type, model_used, id), for completion_quantile, an estimate read now and then: the
    //   same keys, for the 'ok' calls it can match, are kept in a table of their own, filled up
    //   to state.completions_through and brought up to date by its reader (queries.cpp,
    //   index_completions), 10,000 calls a transaction: left to it here (through 0), as built
    //   here it held the write lock 4.6 of this migration's 7.9 s per million calls.
    // - (ts), for the time filters: a call's ts is its reservation's time, so ids (given in
    //   order) follow ts within a reservation's life, but not exactly (and a recorded call may
    //   carry any time). calls_blocks holds the span of ts of each complete block of 64 ids
    //   (block = id >> 6; its first id, as a block may cover the ids since the last block
    //   written), written by the call that completes it (call_rows.cpp, note_call); calls_spans
    //   adds the calls after the last block, read from the rows. A time range's calls then lie in
    //   the ids from the first span that reaches its start to the end of the last that begins
    //   before its end (calls_from, calls_before): a range of the rowid.
    // The blocks are built before this runs, in calls_blocks_building (kBuildBlocks), most of
    // them in transactions of their own, and the indexes dropped in one each (SqliteLedger's
    // migrate): this renames the table. (Edited in session 27 from a build and drops in this
    // transaction, which held the lock ~5 s a million calls on a loaded machine; a file either
    // version migrated has the same tables, views and indexes.)
    R"sql(
CREATE TABLE ok_completions(
  task_type TEXT NOT NULL, model_used TEXT NOT NULL, call_id INTEGER NOT NULL,
  PRIMARY KEY (task_type, model_used, call_id)) WITHOUT ROWID;
ALTER TABLE state ADD COLUMN completions_through INTEGER NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS calls_type_model;
ALTER TABLE calls_blocks_building RENAME TO calls_blocks;
CREATE VIEW calls_spans(first_id, end_id, min_ts, max_ts) AS
  SELECT first_id, (block + 1) << 6, min_ts, max_ts FROM calls_blocks
  UNION ALL
  SELECT MIN(id), MAX(id) + 1, MIN(ts), MAX(ts) FROM calls
    WHERE id >= (SELECT COALESCE(MAX(block) + 1, 0) << 6 FROM calls_blocks);
DROP INDEX IF EXISTS calls_ts;
)sql",
    // 6: the reservations the reclaim booked as abandoned (their owner taken for dead, or on
    // another host and past its expiry), each with the call row that booked it: the owner may
    // live and settle late, and its settle then replaces that booking instead of adding to it
    // (reservations.cpp, settle_abandoned). `created_at` is the reservation's, so a reused id
    // names another reservation; `reclaimed_at` tells a lease's calls in flight at the reclaim
    // (its booking) from those it served after.
    R"sql(
CREATE TABLE abandoned(
  reservation INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, reclaimed_at INTEGER NOT NULL,
  call_id INTEGER NOT NULL);
)sql",
    // 7: which call each refund gives money back for (record_refund_of): a refund is capped at
    // what its call cost less the refunds booked for it before.
    R"sql(
CREATE TABLE refunds(
  call_id INTEGER NOT NULL, refund_id INTEGER NOT NULL,
  PRIMARY KEY (call_id, refund_id)) WITHOUT ROWID;
)sql",
};
extern const int64_t kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);
extern const int64_t kBlocksMigration = 5;

extern const char* const kBlocksBuilding =
    "CREATE TABLE IF NOT EXISTS calls_blocks_building("
    "block INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, "
    "min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL)";

// The first block after those built that holds a call (ids deleted by hand may leave whole
// blocks empty: they are skipped, not searched one by one), and the end of the complete blocks.
extern const char* const kBlocksToBuild =
    "SELECT (SELECT MIN(id) FROM calls WHERE id >= "
    "(SELECT COALESCE(MAX(block) + 1, 0) << 6 FROM calls_blocks_building)) >> 6, "
    "((SELECT MAX(id) FROM calls) + 1) >> 6";

// A block at a time: three searches of its 64 rowids, half the time of a GROUP BY's sort.
extern const char* const kBuildBlocks = R"sql(
INSERT INTO calls_blocks_building
WITH RECURSIVE blocks(block) AS (SELECT ?1 UNION ALL SELECT block + 1 FROM blocks WHERE block + 1 < ?2),
  spans(block, first_id, min_ts, max_ts) AS (
    SELECT block, (SELECT MIN(id) FROM calls WHERE id BETWEEN block << 6 AND (block << 6) + 63),
      (SELECT MIN(ts) FROM calls WHERE id BETWEEN block << 6 AND (block << 6) + 63),
      (SELECT MAX(ts) FROM calls WHERE id BETWEEN block << 6 AND (block << 6) + 63)
    FROM blocks)
SELECT * FROM spans WHERE first_id IS NOT NULL
)sql";

extern const char* const kCallColumns =
    "id, ts, project, conversation, task_id, task_type, model_requested, model_used, provider, "
    "generation_id, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, "
    "reasoning_tokens, est_nanos, est_attos, cost_nanos, cost_attos, latency_us, ttft_us, outcome, "
    "error_class, attempts, cost_source, "
    "(SELECT group_concat(key || '=' || value, char(10)) FROM call_tags WHERE call_id = calls.id)";

std::string calls_from(const char* from) {
  return std::string("id >= (SELECT MIN(first_id) FROM calls_spans WHERE max_ts >= ") + from + ")";
}

std::string calls_before(const char* to) {
  return std::string("id < (SELECT MAX(end_id) FROM calls_spans WHERE min_ts < ") + to + ")";
}

}  // namespace orroute::sqlite
