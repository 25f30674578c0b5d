// One SQLite ledger file under contention: many processes taking turns at its write lock (with and
// without budget leases) still book every call exactly once and never overspend; a writer that
// cannot get the lock gives up after busy_timeout_ms instead of hanging.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "fork_util.h"
#include "orroute/cost/sqlite_ledger.h"
#include "orroute/error.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

// Waits for every child; true if all exited with status 0.
bool all_exited_ok(const std::vector<pid_t>& kids) {
  bool ok = true;
  for (const pid_t pid : kids) {
    int status = 0;
    ok &= ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

}  // namespace

TEST_CASE("processes taking turns at the write lock keep a budget exact", "[ledger][contention]") {
  const bool leases = GENERATE(true, false);
  CAPTURE(leases);
  TempLedgerFile file;
  SqliteLedgerOptions options;
  options.leases = leases;
  SqliteLedger parent(file.path, options);
  parent.set_budget(spec("project:p", Window::kTotal, "0.5"));
  parent.set_budget(spec("global", Window::kDaily, "50"));
  // Single-threaded processes: nothing is group-committed within one, so every settle (and,
  // without leases, every reserve) waits its turn for the file's write lock.
  constexpr int kProcs = 6, kIters = 20;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = orroute::test::fork_when_quiet();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        SqliteLedger mine(file.path, options);
        for (int i = 0; i < kIters; ++i) {
          const auto r = mine.reserve(req("0.01", "p"));
          if (r.status != ReserveStatus::kReserved) continue;
          if (i % 4 == 0) {
            mine.release(r.reservation_id);
          } else {
            mine.settle(r.reservation_id, cost("0.007"));
          }
        }
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  REQUIRE(all_exited_ok(kids));
  const auto rows = parent.calls({});
  const auto states = parent.budget_states({"p", "", {}}, 0, false);
  REQUIRE(states.size() == 2);
  REQUIRE(states[0].spent <= Money::parse("0.5"));
  REQUIRE(states[0].spent == Money::parse("0.007") * static_cast<int64_t>(rows.size()));
  REQUIRE(rows.size() < kProcs * kIters * 3 / 4);  // the budget did bind
  REQUIRE(states[0].reserved.is_zero());
  REQUIRE(states[1].spent == states[0].spent);
  REQUIRE(states[1].reserved.is_zero());
  REQUIRE(parent.live_reservations().first == 0);
}

TEST_CASE("a writer gives up after busy_timeout_ms while another holds the lock", "[ledger][contention]") {
  TempLedgerFile file;
  SqliteLedgerOptions options;
  options.leases = false;  // every reserve is a write transaction
  options.busy_timeout_ms = 200;
  SqliteLedger ledger(file.path, options);
  ledger.set_budget(spec("global", Window::kDaily, "1"));

  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(file.path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(ledger.reserve(req("0.01")), Error);
  REQUIRE(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(200));
  REQUIRE(ledger.live_reservations().first == 0);  // nothing was half-written

  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  const auto r = ledger.reserve(req("0.01"));
  REQUIRE(r.status == ReserveStatus::kReserved);
  ledger.settle(r.reservation_id, cost("0.01"));
  REQUIRE(ledger.total_cost({}) == Money::parse("0.01"));
}
