// Helpers shared by the ledger and budget tests (test_ledger.cpp, test_ledger_leases.cpp,
// test_budget.cpp): a temporary ledger file, and one-line builders for budgets, reservations and
// recorded calls. Test code only; nothing here is thread-safe beyond what the builders return.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "orroute/cost/ledger.h"

namespace orroute::test {

// 2024-01-31T23:59:00Z and the month boundary a minute later, in microseconds.
inline constexpr TimeUs kSec = 1'000'000;
inline constexpr TimeUs kJan31_2359 = 1706745540LL * kSec;
inline constexpr TimeUs kFeb01_0000 = 1706745600LL * kSec;

// Runs `sql` on the ledger file at `path` through a connection of its own (what another program
// could do to the file: add a trigger, drop a column); SQLite's result code.
inline int exec_on_file(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

// The first column of the first row of `sql` on the file, read by a connection of its own (-1 when
// there is no row or the query fails).
inline int64_t int_on_file(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_stmt* s = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    out = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// A fresh ledger path in the temp directory (unique per process and object); the file and its
// sidecars (-wal, -shm, -orroute) are removed at construction and at scope exit.
struct TempLedgerFile {
  std::string path;
  TempLedgerFile()
      : path((std::filesystem::temp_directory_path() /
              ("orroute-test-ledger-" + std::to_string(::getpid()) + "-" +
               std::to_string(reinterpret_cast<uintptr_t>(this)) + ".sqlite3"))
                 .string()) {
    cleanup();
  }
  ~TempLedgerFile() { cleanup(); }
  TempLedgerFile(const TempLedgerFile&) = delete;
  TempLedgerFile& operator=(const TempLedgerFile&) = delete;
  void cleanup() const {
    for (const char* suffix : {"", "-wal", "-shm", "-orroute"}) {
      std::filesystem::remove(path + suffix);
    }
  }
};

// A budget of `limit` USD on `scope` ("global", "project:p", "tag:user=alice", ...).
// Throws InvalidArgument for a bad scope or amount.
inline BudgetSpec spec(const char* scope, Window window, const char* limit,
                       Policy policy = Policy::kRefuse) {
  BudgetSpec s;
  s.scope = parse_scope(scope);
  s.window = window;
  s.limit = Money::parse(limit);
  s.policy = policy;
  return s;
}

// A reservation of `amount` USD for `project` ("" = none) at time `at` (0 = now).
inline ReserveRequest req(const char* amount, const char* project = "", TimeUs at = 0) {
  ReserveRequest r;
  r.amount = Money::parse(amount);
  r.scope.project = project;
  r.at = at;
  return r;
}

// A recorded call to `model` (requested and used) that cost `usd`, at time `at` (0 = now).
inline CallRecord call(const std::string& model, const char* usd, TimeUs at = 0) {
  CallRecord c;
  c.model_used = model;
  c.model_requested = model;
  c.cost = Money::parse(usd);
  c.at = at;
  return c;
}

// The actual cost of a settled call: a call to model "m" that cost `usd`.
inline CallRecord cost(const char* usd) { return call("m", usd); }

}  // namespace orroute::test
