// The connection: opening (pragmas, migrations), statements (cached), closing.
#include <sys/mman.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <thread>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/schema.h"
#include "orroute/cost/sqlite/wal_gather_vfs.h"
#include "orroute/sqlite_util.h"

namespace orroute {

using namespace sqlite;

int SqliteLedger::Impl::busy_wait(void* self, int count) {
  auto& impl = *static_cast<Impl*>(self);
  const auto now = std::chrono::steady_clock::now();
  if (count == 0) impl.busy_since = now;
  if (!impl.waiting_for_migration &&
      now - impl.busy_since >= std::chrono::milliseconds(impl.options.busy_timeout_ms)) {
    return 0;
  }
  if (count < 3) {
    std::this_thread::yield();
  } else {
    // 25, 50, 100, 200, then 400 µs: a few times the ~50 µs a writer holds the lock.
    std::this_thread::sleep_for(std::chrono::microseconds(25 << std::min(count - 3, 4)));
  }
  return 1;
}

SqliteLedger::Impl::~Impl() {
  const bool ours = static_cast<int64_t>(::getpid()) == pid;  // else: the parent's (fork)
  if (flusher && ours) stop_flusher();
  if (checkpointer && ours) stop_checkpointer();
  sqlite::ForkGate gate;  // the registry's mutex, then SQLite's (closing)
  if (!canonical.empty()) {
    std::lock_guard lk(open_ledgers().mu);
    auto [lo, hi] = open_ledgers().by_path.equal_range(canonical);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == this) {
        open_ledgers().by_path.erase(it);
        break;
      }
    }
  }
  for (auto& [sql, s] : stmts) sqlite3_finalize(s);
  for (auto& [sql, s] : literal_stmts) sqlite3_finalize(s);
  if (ckpt_db) sqlite3_close_v2(ckpt_db);
  if (db) sqlite3_close_v2(db);
  if (sidecar_map) ::munmap(sidecar_map, kSidecarSize);
}

void SqliteLedger::Impl::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw Error(std::string("ledger: ") + msg);
  }
}

sqlite::Query SqliteLedger::Impl::q(const char* sql) {
  auto it = literal_stmts.find(sql);
  if (it == literal_stmts.end()) {
    sqlite3_stmt* s = prepare(sql);
    it = literal_stmts.emplace(sql, s).first;
  }
  return Query(db, it->second);
}

sqlite3_stmt* SqliteLedger::Impl::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    fail(db, "prepare");
  }
  return s;
}

sqlite::Query SqliteLedger::Impl::q(const std::string& sql) {
  auto it = stmts.find(sql);
  if (it == stmts.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
        SQLITE_OK) {
      fail(db, "prepare");
    }
    it = stmts.emplace(sql, s).first;
  }
  return Query(db, it->second);
}

void SqliteLedger::Impl::open(const Impl* copy_of) {
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  // The WAL-gathering VFS: one write() per commit instead of two per page (wal_gather_vfs.h).
  if (sqlite3_open_v2(path.c_str(), &db, flags, wal_gather_vfs()) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    throw Error("ledger: cannot open '" + path + "': " + msg);
  }
  sqlite3_busy_handler(db, &Impl::busy_wait, this);
  sqlite3_update_hook(db, &Impl::reservations_changed, this);
  // Only takes effect on a new, empty file (existing files keep theirs).
  if (options.page_size > 0) exec(("PRAGMA page_size=" + std::to_string(options.page_size)).c_str());
  // Before anything reads the file: what open() caches (schema, state) is the copy's.
  if (copy_of) copy_from(*copy_of);
  if (path != ":memory:") exec("PRAGMA journal_mode=WAL");
  if (options.wal_autocheckpoint > 0) {
    exec(("PRAGMA wal_autocheckpoint=" + std::to_string(options.wal_autocheckpoint)).c_str());
  }
  exec(options.durable_fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  exec("PRAGMA temp_store=MEMORY");
  migrate();
  if (path != ":memory:") start_checkpointer();
  open_sidecar();
  leases_on = options.leases && has_epoch;
  behind_on = leases_on && options.settle_delay_us > 0;
  if (behind_on) start_flusher();  // here, so a thread that cannot start fails the open
}

int64_t SqliteLedger::Impl::version() {
  auto v = q("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  v.step();
  return v.i64(0);
}

void SqliteLedger::Impl::migrate() {
  // Read outside the lock (before the first statement that may take it): committed batches.
  waiting_for_migration =
      q("SELECT 1 FROM sqlite_master WHERE name = 'calls_blocks_building'").step();
  struct Patience {  // the busy timeout back when the migration is done or fails
    Impl& impl;
    ~Patience() { impl.waiting_for_migration = false; }
  } patience{*this};
  exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL, "
       "applied_at INTEGER NOT NULL)");
  if (version() >= kSchemaVersion) {
    if (version() > kSchemaVersion) {
      throw Error("ledger '" + path + "' has schema version " + std::to_string(version()) +
                  ", newer than this orroute understands (" + std::to_string(kSchemaVersion) +
                  ")");
    }
    return;
  }
  build_blocks_ahead();
  Txn txn(*this);
  // Re-read under the write lock: another process may have migrated meanwhile.
  for (int64_t v = version(); v < kSchemaVersion; ++v) {
    // the blocks of calls written since the last batch (by an older orroute) or, when no batch
    // ran (a file of an older schema, or small), all of them
    if (v + 1 == kBlocksMigration) build_blocks(std::numeric_limits<int64_t>::max());
    exec(kMigrations[v]);
    q("INSERT INTO schema_version(version, applied_at) VALUES (?, ?)").bind(1, v + 1).bind(2, now_us()).run();
  }
  txn.commit();
}

void SqliteLedger::Impl::build_blocks_ahead() {
  const int64_t batch_blocks = std::max<int64_t>(1, options.migration_batch_calls >> 6);
  bool more = true;
  while (more && step_at_schema_4([&] { more = build_blocks(batch_blocks); })) {
  }
  // A drop frees every page of its index in one statement: the longest the migration holds
  // the lock. Schema 5's transaction drops them if they are still there.
  for (const char* drop : {"DROP INDEX IF EXISTS calls_type_model", "DROP INDEX IF EXISTS calls_ts"}) {
    if (!step_at_schema_4([&] { exec(drop); })) return;
  }
}

bool SqliteLedger::Impl::step_at_schema_4(const std::function<void()>& step) {
  {
    Txn txn(*this);
    if (version() != kBlocksMigration - 1) return false;
    step();
    txn.commit();
  }
  // The lock free long enough for a waiting writer's busy handler to take it (ours polls every
  // 400 µs at most): taken again at once, it would wait for the whole migration.
  std::this_thread::sleep_for(kBatchPause);
  return true;
}

bool SqliteLedger::Impl::build_blocks(int64_t most) {
  exec(kBlocksBuilding);
  auto left = q(kBlocksToBuild);
  left.step();
  if (left.null(0) || left.i64(0) >= left.i64(1)) return false;
  const int64_t next = left.i64(0);
  const int64_t complete = left.i64(1);
  const int64_t end = complete - next > most ? next + most : complete;
  q(kBuildBlocks).bind(1, next).bind(2, end).run();
  return end < complete;
}

}  // namespace orroute
