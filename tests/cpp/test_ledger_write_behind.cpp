// Write-behind settles (SqliteLedgerOptions::settle_delay_us): lease-served settles are queued and
// written in batches. What must hold: the object that settled reads its own calls at once, others
// see them within the delay or the batch size, alerts still come back from a settle, and a
// process killed with settles queued never lets a budget be exceeded (its lease counts as spent).
// A second SqliteLedger object on the same file stands for another process for what goes through
// the database; the crash case forks a real child and SIGKILLs it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "fork_util.h"
#include "orroute/cost/open_ledger.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

SqliteLedgerOptions behind(int64_t delay_us, int32_t batch = 64) {
  SqliteLedgerOptions o;
  o.settle_delay_us = delay_us;
  o.settle_batch = batch;
  return o;
}

Money spent(SqliteLedger& l, const char* project = "p") {
  return l.budget_states({project, "", {}}, 0, false).at(0).spent;
}

constexpr int64_t kMinute = 60 * kSec;

}  // namespace

TEST_CASE("a queued settle is read back at once by its own ledger and by others once written",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SqliteLedger a(file.path, behind(kMinute)), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  const auto r = a.reserve(req("0.01", "p"));
  REQUIRE(r.reservation_id < 0);
  const SettleOutcome s = a.settle(r.reservation_id, cost("0.004"));
  REQUIRE(s.reservation_found);
  REQUIRE(s.call_id == 0);  // not written yet
  REQUIRE(b.calls({}).empty());  // another connection: not on the file yet...
  REQUIRE(spent(b).is_zero());
  REQUIRE(a.calls({}).size() == 1);  // ...but the ledger that settled reads it back
  REQUIRE(spent(b) == Money::parse("0.004"));
  REQUIRE(a.budget_states({"p", "", {}}, 0, false).at(0).reserved.is_zero());
  REQUIRE(a.live_reservations().first == 0);
}

TEST_CASE("open_ledger passes the SQLite options on (a settle worker's write-behind)",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  auto ledger = open_ledger(file.path, behind(kMinute));
  ledger->set_budget(spec("project:p", Window::kTotal, "100"));
  const auto s = ledger->settle(ledger->reserve(req("0.01", "p")).reservation_id, cost("0.001"));
  REQUIRE(s.call_id == 0);  // queued
  REQUIRE(ledger->calls({}).size() == 1);
  auto plain = open_ledger(file.path);  // default options: every settle written at once
  const auto id = plain->reserve(req("0.01", "p")).reservation_id;
  REQUIRE(plain->settle(id, cost("0.001")).call_id > 0);
}

TEST_CASE("the queue is written when it holds settle_batch calls or its oldest is due",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SECTION("batch") {
    SqliteLedger a(file.path, behind(kMinute, 4)), b(file.path);
    a.set_budget(spec("project:p", Window::kTotal, "100"));
    for (int i = 0; i < 3; ++i) a.settle(a.reserve(req("0.01", "p")).reservation_id, cost("0.001"));
    REQUIRE(b.calls({}).empty());
    a.settle(a.reserve(req("0.01", "p")).reservation_id, cost("0.001"));
    REQUIRE(b.calls({}).size() == 4);
    REQUIRE(spent(b) == Money::parse("0.004"));
  }
  SECTION("delay") {
    SqliteLedger a(file.path, behind(20'000)), b(file.path);
    a.set_budget(spec("project:p", Window::kTotal, "100"));
    a.settle(a.reserve(req("0.01", "p")).reservation_id, cost("0.001"));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (b.calls({}).empty() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(b.calls({}).size() == 1);  // the flusher thread wrote it, nobody read through `a`
  }
  SECTION("close") {
    {
      SqliteLedger a(file.path, behind(kMinute));
      a.set_budget(spec("project:p", Window::kTotal, "100"));
      a.settle(a.reserve(req("0.01", "p")).reservation_id, cost("0.001"));
    }
    SqliteLedger b(file.path);
    REQUIRE(b.calls({}).size() == 1);
    REQUIRE(b.budget_states({"p", "", {}}, 0, false).at(0).reserved.is_zero());
    REQUIRE(b.live_reservations().first == 0);
  }
}

TEST_CASE("a settle above its reservation, or without a lease, is written before it returns",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SqliteLedger a(file.path, behind(kMinute)), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  const auto over = a.settle(a.reserve(req("0.01", "p")).reservation_id, cost("0.02"));
  REQUIRE(over.call_id > 0);
  const auto unbudgeted = a.settle(a.reserve(req("0.01", "other")).reservation_id, cost("0.01"));
  REQUIRE(unbudgeted.call_id > 0);
  REQUIRE(b.calls({}).size() == 2);
}

TEST_CASE("alerts crossed by a queued settle come back from the settle that writes it",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SqliteLedger a(file.path, behind(kMinute, 2));
  BudgetSpec s = spec("project:p", Window::kTotal, "1");
  s.thresholds_pct = {50};
  a.set_budget(s);
  const auto first = a.settle(a.reserve(req("0.6", "p")).reservation_id, cost("0.6"));
  REQUIRE(first.alerts.empty());  // queued: nothing crossed on the file yet
  const auto second = a.settle(a.reserve(req("0.1", "p")).reservation_id, cost("0.1"));
  REQUIRE(second.alerts.size() == 1);  // the batch of both crossed 50 %
  REQUIRE(second.alerts[0].threshold_pct == 50);
  REQUIRE(a.alerts(0).size() == 1);
  SECTION("an alert written by a read is handed to the next settle") {
    BudgetSpec t = spec("project:q", Window::kTotal, "1");
    t.thresholds_pct = {50};
    a.set_budget(t);
    REQUIRE(a.settle(a.reserve(req("0.6", "q")).reservation_id, cost("0.6")).alerts.empty());
    REQUIRE(a.calls({}).size() == 3);  // writes the queue; the alert waits for a settle
    const auto next = a.settle(a.reserve(req("0.1", "q")).reservation_id, cost("0.1"));
    REQUIRE(next.alerts.size() == 1);
    REQUIRE(next.alerts[0].budget_name == "project:q/total");
  }
}

TEST_CASE("a process killed with settles queued never lets the budget be exceeded",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  {
    SqliteLedger setup(file.path);
    setup.set_budget(spec("project:p", Window::kTotal, "1"));
  }
  // The child spends 0.30 in 30 calls (each sent upstream, so really spent), all still queued,
  // then tells the parent and waits to be killed.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = orroute::test::fork_when_quiet();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    try {
      SqliteLedger child(file.path, behind(kMinute, 1000));
      for (int i = 0; i < 30; ++i) {
        const auto r = child.reserve(req("0.01", "p"));
        if (r.status != ReserveStatus::kReserved) ::_exit(2);
        child.settle(r.reservation_id, cost("0.01"));
      }
      if (::write(ready[1], "k", 1) != 1) ::_exit(3);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(4);
    }
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));

  SqliteLedger parent(file.path);
  // Grants are 1/8 of what is left, so the child's slow-path reserves wrote the settles queued
  // before them; those after its last one are lost with it...
  REQUIRE(parent.calls({}).size() < 30);
  REQUIRE(parent.reclaim(0) == 1);
  // ...but its whole lease (with the 0.30 it spent) is counted as spent, not released.
  const BudgetState st = parent.budget_states({"p", "", {}}, 0, false).at(0);
  REQUIRE(st.spent >= Money::parse("0.30"));
  REQUIRE(st.reserved.is_zero());
  int more = 0;
  for (;; ++more) {
    const auto r = parent.reserve(req("0.01", "p"));
    if (r.status != ReserveStatus::kReserved) break;
    parent.settle(r.reservation_id, cost("0.01"));
  }
  // What was really spent upstream (the child's 30 calls and the parent's) stays within $1.
  REQUIRE(Money::parse("0.01") * (30 + more) <= Money::dollars(1));
  REQUIRE(spent(parent) <= Money::dollars(1));
}

TEST_CASE("processes killed mid-run with settles queued never let the budget be exceeded",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  {
    SqliteLedger setup(file.path);
    setup.set_budget(spec("project:p", Window::kTotal, "2"));
  }
  // Calls sent upstream by the children (counted once reserved: the request goes out then, and
  // may cost its whole reservation), in memory shared with the parent.
  void* shared = ::mmap(nullptr, sizeof(std::atomic<int64_t>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(shared != MAP_FAILED);
  auto* sent = new (shared) std::atomic<int64_t>(0);
  constexpr int kKids = 3;
  std::vector<pid_t> kids;
  for (int k = 0; k < kKids; ++k) {
    const pid_t pid = orroute::test::fork_when_quiet();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        SqliteLedger child(file.path, behind(kMinute, 1000));
        for (;;) {
          const auto r = child.reserve(req("0.001", "p"));
          if (r.status != ReserveStatus::kReserved) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
          }
          sent->fetch_add(1);
          child.settle(r.reservation_id, cost("0.001"));
        }
      } catch (...) {
        ::_exit(4);
      }
    }
    kids.push_back(pid);
  }
  // Kill them while they run: at least a few hundred calls in, far from the $2 limit.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (sent->load() < 300 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (const pid_t pid : kids) ::kill(pid, SIGKILL);
  for (const pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));  // killed mid-run, not exited on an error
  }
  const int64_t by_children = sent->load();
  ::munmap(shared, sizeof(std::atomic<int64_t>));
  REQUIRE(by_children >= 300);

  SqliteLedger parent(file.path);
  const int64_t reclaimed = parent.reclaim(0);
  REQUIRE(reclaimed >= 1);  // the children's leases, counted as spent
  // Each reclaimed lease with money in flight is booked as one "abandoned" row; the others are
  // the children's settles (usually fewer than their calls: the settles queued in them are lost).
  size_t settled = 0, abandoned = 0;
  for (const CallRecord& c : parent.calls({})) ++(c.outcome == "abandoned" ? abandoned : settled);
  REQUIRE(settled <= static_cast<size_t>(by_children));
  REQUIRE(abandoned <= static_cast<size_t>(reclaimed));
  int64_t by_parent = 0;
  for (;; ++by_parent) {
    const auto r = parent.reserve(req("0.001", "p"));
    if (r.status != ReserveStatus::kReserved) break;
    parent.settle(r.reservation_id, cost("0.001"));
  }
  // Everything that was sent, at its full reservation, stays within the limit.
  REQUIRE(Money::parse("0.001") * (by_children + by_parent) <= Money::dollars(2));
  const BudgetState st = parent.budget_states({"p", "", {}}, 0, false).at(0);
  REQUIRE(st.spent <= Money::dollars(2));
  REQUIRE(st.reserved.is_zero());
}

TEST_CASE("an expired write-behind lease is released if its process lives here, else spent",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SqliteLedger a(file.path, behind(kMinute)), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  REQUIRE(a.reserve(req("0.01", "p")).status == ReserveStatus::kReserved);  // a 0.32 lease
  const char* host = "";
  bool slot_seen = true;
  Money spent;
  SECTION("this host, process alive") { host = nullptr; }
  SECTION("another host (a container of this machine): what its slot holds in flight") {
    host = "elsewhere";
    spent = Money::parse("0.01");
  }
  SECTION("another host, its slot not seen (another machine): all of it") {
    host = "elsewhere";
    slot_seen = false;
    spent = Money::parse("0.32");
  }
  if (host) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(file.path.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "UPDATE reservations SET host = 'elsewhere'", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  if (!slot_seen) {  // the sidecar's slot table (after its first 64 bytes) emptied
    const std::string side = file.path + "-orroute";
    const int fd = ::open(side.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const std::string zeros(1024 * 32, '\0');  // 1,024 slots of 32 bytes
    REQUIRE(::pwrite(fd, zeros.data(), zeros.size(), 64) == static_cast<ssize_t>(zeros.size()));
    ::close(fd);
  }
  REQUIRE(b.reclaim(now_us() + 365 * 24 * 3600 * kSec) == 1);  // long past its expiry
  const BudgetState st = b.budget_states({"p", "", {}}, 0, false).at(0);
  REQUIRE(st.reserved.is_zero());
  REQUIRE(st.spent == spent);
}

TEST_CASE("write-behind keeps a budget exact across processes and threads",
          "[ledger][write_behind]") {
  TempLedgerFile file;
  SqliteLedger parent(file.path);
  parent.set_budget(spec("project:p", Window::kTotal, "1"));
  constexpr int kProcs = 3, kThreads = 3, kIters = 60;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = orroute::test::fork_when_quiet();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        SqliteLedger mine(file.path, behind(2'000, 8));
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&] {
            for (int i = 0; i < kIters; ++i) {
              const auto r = mine.reserve(req("0.01", "p"));
              if (r.status != ReserveStatus::kReserved) continue;
              if (i % 5 == 0) {
                mine.release(r.reservation_id);
              } else {
                mine.settle(r.reservation_id, cost("0.007"));
              }
            }
          });
        }
        for (auto& t : threads) t.join();
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);  // the destructor wrote the queue and gave the leases back
    }
    kids.push_back(pid);
  }
  for (const pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  const auto rows = parent.calls({});
  const BudgetState st = parent.budget_states({"p", "", {}}, 0, false).at(0);
  REQUIRE(st.spent <= Money::dollars(1));
  REQUIRE(st.spent == Money::parse("0.007") * static_cast<int64_t>(rows.size()));
  REQUIRE(rows.size() < kProcs * kThreads * kIters * 4 / 5);  // the budget did bind
  REQUIRE(st.reserved.is_zero());
  REQUIRE(parent.live_reservations().first == 0);
}
