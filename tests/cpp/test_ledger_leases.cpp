// Budget leases: reserve() served from a per-process allowance must keep every guarantee of exact
// reservations (budgets never overspent, cutoffs and budget changes seen at once by every process,
// dead processes' money reclaimed). A second SqliteLedger object on the same file acts like
// another process for everything that goes through the database and the epoch sidecar (it has
// its own connection, cache and leases); what another process *sees* is read by a forked child
// (objects of one process share their view of reserved money).
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fork_util.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

// Reserved (first matching budget) and live reservations as another process sees them.
struct Outside {
  Money reserved;
  int64_t live = 0;
  Money live_amount;
};
Outside outside(const std::string& path, const char* project = "p", TimeUs at = 0) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = orroute::test::fork_when_quiet();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = "ERR";
    try {
      SqliteLedger l(path);
      const auto st = l.budget_states({project, "", {}}, at, false).at(0);
      const auto live = l.live_reservations();
      out = st.reserved.to_string() + " " + std::to_string(live.first) + " " + live.second.to_string();
    } catch (...) {
    }
    const ssize_t n = ::write(fds[1], out.data(), out.size());
    ::_exit(n == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(text != "ERR");
  const auto a = text.find(' '), b = text.find(' ', a + 1);
  return {Money::parse(text.substr(0, a)), std::stoll(text.substr(a + 1, b - a - 1)),
          Money::parse(text.substr(b + 1))};
}

BudgetState state(SqliteLedger& l, const char* project = "p", TimeUs at = 0) {
  const auto states = l.budget_states({project, "", {}}, at, false);
  REQUIRE(states.size() == 1);
  return states[0];
}

// `a` reserves 0.1 of a total budget of 1 on a lease that expires after a second; `b`, far past
// that, reclaims the lease while `a`'s process still lives. Returns `a`'s reservation.
ReserveOutcome reserve_on_a_lease_reclaimed_by(SqliteLedger& a, SqliteLedger& b) {
  a.set_budget(spec("global", Window::kTotal, "1"));
  ReserveRequest early = req("0.1", "p", 1000 * kSec);
  early.ttl_us = kSec;
  const auto r = a.reserve(early);
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE(b.reclaim(now_us()) == 1);
  return r;
}

}  // namespace

TEST_CASE("a lease serves reserves locally and others see it as reserved", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  REQUIRE(a.leases_enabled());
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  const auto r = a.reserve(req("0.01", "p"));
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE(r.reservation_id < 0);  // served from a lease
  // The grant is 32 calls of this size (well under 1/8 of what is left): the next 31 are local.
  Outside seen = outside(file.path);
  REQUIRE(seen.reserved == Money::parse("0.32"));
  REQUIRE((seen.live == 1 && seen.live_amount == Money::parse("0.32")));
  REQUIRE(state(a).reserved == Money::parse("0.01"));  // this process sees its own reservation
  REQUIRE(state(b).reserved == Money::parse("0.01"));  // from any of its objects on the file
  REQUIRE(a.live_reservations() == std::pair<int64_t, Money>{1, Money::parse("0.01")});
  REQUIRE(b.live_reservations() == std::pair<int64_t, Money>{1, Money::parse("0.01")});
  a.settle(r.reservation_id, cost("0.004"));
  REQUIRE(state(a).spent == Money::parse("0.004"));
  REQUIRE(state(a).reserved.is_zero());
  // The settled 0.01 stays in the lease row (its cost is in spent) until the row is next
  // written (a grant, a return): one page fewer per settle. Others see the whole grant.
  REQUIRE(outside(file.path).reserved == Money::parse("0.32"));
  a.release_leases();
  seen = outside(file.path);
  REQUIRE(seen.reserved.is_zero());
  REQUIRE(seen.live == 0);
  // No budget matches: purely local, nothing booked.
  const auto free_call = a.reserve(req("5", "unbudgeted"));
  REQUIRE(free_call.status == ReserveStatus::kReserved);
  REQUIRE_FALSE(free_call.remaining.has_value());
  REQUIRE(a.settle(free_call.reservation_id, cost("5")).reservation_found);
  REQUIRE(b.calls({}).size() == 2);
}

TEST_CASE("grants shrink near the limit and end up exact", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "1"));
  // B holds most of the budget; A's grants must fit in what is left.
  const auto held = b.reserve(req("0.9", "p"));
  REQUIRE(held.status == ReserveStatus::kReserved);
  int reserved = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = a.reserve(req("0.01", "p"));
    if (r.status != ReserveStatus::kReserved) {
      REQUIRE(r.status == ReserveStatus::kExceeded);
      REQUIRE(r.blocking->budget.name() == "project:p/total");
      break;
    }
    ++reserved;
  }
  // Exactly what fits: 0.1 / 0.01 (B's unused grant is 0, its reservation was exact).
  REQUIRE(reserved == 10);
  REQUIRE(state(b).reserved == Money::parse("1"));
  REQUIRE(state(a).reserved == Money::parse("1"));  // A's 10 calls + B's 0.9
}

TEST_CASE("leases keep a budget exact across processes and threads", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger parent(file.path);
  parent.set_budget(spec("project:p", Window::kTotal, "1"));
  parent.set_budget(spec("global", Window::kDaily, "50"));
  constexpr int kProcs = 3, kThreads = 4, kIters = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = orroute::test::fork_when_quiet();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        SqliteLedger mine(file.path);
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
      ::_exit(rc);  // the ledger's destructor gave its unused lease money back
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
  const auto states = parent.budget_states({"p", "", {}}, 0, false);
  REQUIRE(states.size() == 2);
  const BudgetState st = states[0];
  REQUIRE(st.budget.name() == "project:p/total");
  REQUIRE(st.spent <= Money::dollars(1));
  REQUIRE(st.spent == Money::parse("0.007") * static_cast<int64_t>(rows.size()));
  REQUIRE(rows.size() < kProcs * kThreads * kIters * 4 / 5);  // the budget did bind
  REQUIRE(st.reserved.is_zero());
  REQUIRE(states[1].spent == st.spent);
  REQUIRE(states[1].reserved.is_zero());
  REQUIRE(parent.live_reservations().first == 0);
  REQUIRE(parent.total_cost({}) == st.spent);
}

TEST_CASE("a cutoff reaches a process holding a lease on its very next reserve", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  BudgetGuard guard(a);
  const auto first = guard.reserve(req("0.01", "p"));
  a.settle(first.reservation_id, cost("0.01"));
  REQUIRE_FALSE(a.cutoff().has_value());
  b.set_cutoff("runaway agent");
  REQUIRE(a.cutoff() == std::optional<std::string>("runaway agent"));
  REQUIRE(a.reserve(req("0.01", "p")).status == ReserveStatus::kCutoff);
  REQUIRE_THROWS_AS(guard.reserve(req("0.01", "p")), EmergencyCutoff);
  REQUIRE(a.reserve(req("0.01", "unbudgeted")).status == ReserveStatus::kCutoff);
  b.set_cutoff(std::nullopt);
  REQUIRE_FALSE(a.cutoff().has_value());
  REQUIRE(guard.reserve(req("0.01", "p")).status == ReserveStatus::kReserved);
}

TEST_CASE("grants grow while a lease is refilled quickly and shrink once it idles", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "1000"));
  const TimeUs t0 = 1'700'000'000'000'000;
  int64_t n = 0;  // reservations made; each 0.01, none settled: the lease row is every grant
  auto reserve_until = [&](int64_t count, TimeUs at) {
    for (; n < count; ++n) REQUIRE(a.reserve(req("0.01", "p", at)).status == ReserveStatus::kReserved);
  };
  auto cents = [](int64_t calls) { return Money::parse("0.01") * calls; };
  reserve_until(32, t0);
  REQUIRE(outside(file.path).reserved == cents(32));  // the first grant: 32 calls
  // Refilled within 250 ms of the last grant: each grant doubles (64, 128, 256, 512, 1024).
  reserve_until(33, t0 + 1'000);
  REQUIRE(outside(file.path).reserved == cents(32 + 64));
  int64_t granted = 32 + 64;
  TimeUs at = t0 + 1'000;
  for (const int64_t grant : {128, 256, 512, 1024, 1024}) {  // and no further than 1024 calls
    at += 10'000;
    reserve_until(granted + 1, at);
    granted += grant;
    REQUIRE(outside(file.path).reserved == cents(granted));
  }
  // A refill more than 2 s after the last grant halves it; one in between keeps it.
  reserve_until(granted + 1, at + 3'000'000);
  REQUIRE(outside(file.path).reserved == cents(granted + 512));
  reserve_until(granted + 512 + 1, at + 4'000'000);
  REQUIRE(outside(file.path).reserved == cents(granted + 1024));
}

TEST_CASE("write-behind leases keep grants of 32 calls", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedgerOptions o;
  o.settle_delay_us = 10'000;
  SqliteLedger a(file.path, o);
  a.set_budget(spec("project:p", Window::kTotal, "1000"));
  const TimeUs t0 = 1'700'000'000'000'000;
  for (int i = 0; i < 97; ++i) {
    REQUIRE(a.reserve(req("0.01", "p", t0 + i)).status == ReserveStatus::kReserved);
  }
  // A crash counts a write-behind lease as spent whole: its grants stay small however busy.
  REQUIRE(outside(file.path).reserved == Money::parse("0.01") * 128);
}

TEST_CASE("a lower limit set by another process applies to the next reserve", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "100"));
  const auto held = a.reserve(req("0.01", "p"));  // lease of 0.32, 0.31 free
  REQUIRE(held.status == ReserveStatus::kReserved);
  b.set_budget(spec("project:p", Window::kTotal, "0.015"));
  const auto r = a.reserve(req("0.01", "p"));
  REQUIRE(r.status == ReserveStatus::kExceeded);
  REQUIRE(r.blocking->budget.limit == Money::parse("0.015"));
  REQUIRE(r.blocking->reserved == Money::parse("0.01"));  // only what is in flight
  REQUIRE(*r.remaining == Money::parse("0.005"));
  // The free part went back: the other process sees only the call in flight.
  REQUIRE(state(b).reserved == Money::parse("0.01"));
  REQUIRE(a.reserve(req("0.005", "p")).status == ReserveStatus::kReserved);
  REQUIRE(a.reserve(req("0.000000001", "p")).status == ReserveStatus::kExceeded);
  a.settle(held.reservation_id, cost("0.01"));
  REQUIRE(state(b).spent == Money::parse("0.01"));
}

TEST_CASE("a removed budget stops binding at once", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("project:p", Window::kTotal, "0.02"));
  REQUIRE(a.reserve(req("0.02", "p")).status == ReserveStatus::kReserved);
  REQUIRE(a.reserve(req("0.01", "p")).status == ReserveStatus::kExceeded);
  REQUIRE(b.remove_budget(parse_scope("project:p"), Window::kTotal));
  const auto r = a.reserve(req("0.01", "p"));
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE_FALSE(r.remaining.has_value());
}

TEST_CASE("a new day moves to a new lease and returns the old one", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("global", Window::kDaily, "10"));
  auto r = a.reserve(req("0.01", "p", kJan31_2359));
  REQUIRE(r.status == ReserveStatus::kReserved);
  a.settle(r.reservation_id, cost("0.01"));
  REQUIRE(outside(file.path, "p", kJan31_2359).reserved == Money::parse("0.31"));  // unused part
  r = a.reserve(req("0.01", "p", kFeb01_0000));
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE(outside(file.path, "p", kJan31_2359).reserved.is_zero());
  const auto new_day = b.budget_states({}, kFeb01_0000, false).at(0);
  REQUIRE(new_day.window_start == kFeb01_0000);
  REQUIRE(new_day.spent.is_zero());
  REQUIRE(outside(file.path, "p", kFeb01_0000).reserved == Money::parse("0.32"));
  a.settle(r.reservation_id, cost("0.02"));
  REQUIRE(a.budget_states({}, kFeb01_0000, false).at(0).spent == Money::parse("0.02"));
  REQUIRE(a.calls({}).at(1).at == kFeb01_0000);  // booked at the reservation's time
}

TEST_CASE("a new day returns the old lease's settled (consumed) money too", "[ledger][leases]") {
  // Reserves dated ahead of the clock: the lease row's expiry is then more than a lease ttl
  // away at settle time, so settles leave their reservations in the row (consumed). Moving to
  // the next day's lease must take those off the old day's counters as well.
  TempLedgerFile file;
  SqliteLedger a(file.path);
  a.set_budget(spec("global", Window::kDaily, "10"));
  constexpr TimeUs kDay = 86400 * kSec;
  const TimeUs midnight = (now_us() / kDay + 2) * kDay;
  const TimeUs before = midnight - 60 * kSec;
  for (int i = 0; i < 3; ++i) {
    const auto r = a.reserve(req("0.01", "p", before));
    REQUIRE(r.status == ReserveStatus::kReserved);
    REQUIRE(a.settle(r.reservation_id, cost("0.004")).reservation_found);
  }
  CHECK(outside(file.path, "p", before).reserved > Money::parse("0.03"));  // grant + consumed
  const auto next = a.reserve(req("0.01", "p", midnight));
  REQUIRE(next.status == ReserveStatus::kReserved);
  CHECK(outside(file.path, "p", before).reserved.is_zero());
  CHECK(a.budget_states({}, before, false).at(0).spent == Money::parse("0.012"));
  REQUIRE(a.settle(next.reservation_id, cost("0.01")).reservation_found);
  a.release_leases();
  CHECK(outside(file.path, "p", midnight).reserved.is_zero());
  CHECK(outside(file.path, "p", before).reserved.is_zero());
}

TEST_CASE("a lease reclaimed while its process lives is noticed at settle", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  const auto r = reserve_on_a_lease_reclaimed_by(a, b);
  REQUIRE(outside(file.path).live == 0);
  const auto s = a.settle(r.reservation_id, cost("0.05"));
  REQUIRE_FALSE(s.reservation_found);
  REQUIRE(b.budget_states({}, 0, false).at(0).spent == Money::parse("0.05"));
  REQUIRE(b.budget_states({}, 0, false).at(0).reserved.is_zero());
  REQUIRE(a.reserve(req("0.9", "p")).status == ReserveStatus::kReserved);  // a fresh lease
}

TEST_CASE("a reclaimed lease's row id taken by a new reservation is not mistaken for the lease",
          "[ledger][leases]") {
  // SQLite reuses the largest rowid once its row is deleted: the reclaimed lease's id can name
  // another reservation by the time the lease's process settles. That settle must not find (and
  // write) the other row, or that reservation's money and the counters drift.
  TempLedgerFile file;
  SqliteLedgerOptions off;
  off.leases = false;
  SqliteLedger a(file.path), b(file.path, off);
  const auto r = reserve_on_a_lease_reclaimed_by(a, b);
  const auto other = b.reserve(req("0.3", "p"));
  REQUIRE(other.reservation_id > 0);
  const auto s = a.settle(r.reservation_id, cost("0.05"));
  CHECK_FALSE(s.reservation_found);
  CHECK(b.live_reservations() == std::pair<int64_t, Money>{1, Money::parse("0.3")});
  CHECK(b.budget_states({}, 0, false).at(0).reserved == Money::parse("0.3"));
  CHECK(b.budget_states({}, 0, false).at(0).spent == Money::parse("0.05"));
  REQUIRE(b.settle(other.reservation_id, cost("0.3")).reservation_found);
  CHECK(b.budget_states({}, 0, false).at(0).reserved.is_zero());
}

TEST_CASE("leases off: one exact database reservation per call", "[ledger][leases]") {
  TempLedgerFile file;
  SqliteLedgerOptions off;
  off.leases = false;
  SqliteLedger a(file.path, off), b(file.path);
  REQUIRE_FALSE(a.leases_enabled());
  a.set_budget(spec("project:p", Window::kTotal, "1"));
  const auto r = a.reserve(req("0.01", "p"));
  REQUIRE(r.reservation_id > 0);
  REQUIRE(state(b).reserved == Money::parse("0.01"));  // exactly the call, no grant
  REQUIRE(b.live_reservations() == std::pair<int64_t, Money>{1, Money::parse("0.01")});
  REQUIRE(a.settle(r.reservation_id, cost("0.005")).reservation_found);
  REQUIRE(state(b).reserved.is_zero());
  REQUIRE(state(b).spent == Money::parse("0.005"));
}

TEST_CASE("settle_batch writes many settles in one transaction, as settling each would", "[ledger][leases][batch]") {
  for (const bool leases : {true, false}) {
    TempLedgerFile file, same;
    SqliteLedgerOptions o;
    o.leases = leases;
    SqliteLedger batched(file.path, o), one_by_one(same.path, o);
    for (SqliteLedger* l : {&batched, &one_by_one}) {
      l->set_budget(spec("project:p", Window::kTotal, "1"));
    }
    std::vector<SettleItem> items;
    const char* costs[] = {"0.004", "0.01", "0.05", "0.0001", "0.007"};  // 0.05 > its reservation
    for (const char* c : costs) {
      const auto a = batched.reserve(req("0.01", "p"));
      const auto b = one_by_one.reserve(req("0.01", "p"));
      REQUIRE((a.status == ReserveStatus::kReserved && b.status == ReserveStatus::kReserved));
      items.push_back({a.reservation_id, cost(c)});
      one_by_one.settle(b.reservation_id, cost(c));
    }
    items.push_back({leases ? -999999 : 999999, cost("0.002")});  // gone: the row alone
    one_by_one.settle(leases ? -999999 : 999999, cost("0.002"));
    const auto out = batched.settle_batch(items);
    REQUIRE(out.size() == items.size());
    std::set<int64_t> ids;
    for (size_t i = 0; i < out.size(); ++i) {
      INFO("item " << i << " leases " << leases);
      REQUIRE(out[i].error.empty());
      REQUIRE(out[i].outcome.has_value());
      REQUIRE(out[i].outcome->reservation_found == (i + 1 < out.size()));
      ids.insert(out[i].outcome->call_id);
    }
    REQUIRE(ids.size() == out.size());  // one row each
    REQUIRE(state(batched).spent == state(one_by_one).spent);
    REQUIRE(state(batched).spent == Money::parse("0.0711"));  // the row without one is outside p
    REQUIRE(state(batched).reserved.is_zero());
    REQUIRE(batched.live_reservations().first == 0);
    REQUIRE(batched.calls({}).size() == out.size());
    // a settled reservation cannot be settled twice: the second batch books rows without one
    const auto again = batched.settle_batch({items[0], items[1]});
    REQUIRE((again[0].outcome && !again[0].outcome->reservation_found));
    REQUIRE(state(batched).reserved.is_zero());
  }
}

TEST_CASE("a settle that fails inside a batch leaves nothing for the batch's later settles to read",
          "[ledger][batch]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  BudgetSpec budget = spec("project:p", Window::kDaily, "1");
  budget.thresholds_pct = {10, 60};
  ledger.set_budget(budget);
  auto in_p = [](const char* usd) {
    CallRecord c = cost(usd);
    c.scope.project = "p";
    return c;
  };
  ledger.settle(999000, in_p("0.5"));  // today's counter: 0.5 spent
  // The batch's first settle fails at its alert, after it wrote the counter (0.75 spent).
  REQUIRE(exec_on_file(file.path, "CREATE TRIGGER boom BEFORE INSERT ON alerts WHEN NEW.spent_nanos "
                                  "= 750000000 BEGIN SELECT RAISE(ABORT, 'boom'); END") == SQLITE_OK);
  // Reservations the ledger no longer has: each settle books its row and its spend alone.
  const auto out =
      ledger.settle_batch({{999001, in_p("0.25")}, {999002, in_p("0.125")}, {999003, in_p("0.0625")}});
  REQUIRE(out.size() == 3);
  REQUIRE_FALSE(out[0].error.empty());
  REQUIRE((out[1].outcome && out[2].outcome));
  CHECK(state(ledger).spent == Money::parse("0.6875"));
  CHECK(ledger.calls({}).size() == 3);
}

TEST_CASE("a lease settle that fails late in a batch: the earlier ones are booked once, and it can be "
          "settled again", "[ledger][leases][batch]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  ledger.set_budget(spec("project:p", Window::kTotal, "1"));
  // The batch's third settle fails at its row, after the two before it wrote theirs (run_batch
  // then runs them again in a new transaction).
  REQUIRE(exec_on_file(file.path, "CREATE TRIGGER boom BEFORE INSERT ON calls WHEN "
                                  "NEW.prompt_tokens = 666 BEGIN SELECT RAISE(ABORT, 'boom'); END") == SQLITE_OK);
  std::vector<SettleItem> items;
  for (const char* c : {"0.004", "0.002", "0.001", "0.008"}) {
    const auto r = ledger.reserve(req("0.01", "p"));
    REQUIRE(r.status == ReserveStatus::kReserved);
    REQUIRE(r.reservation_id < 0);  // served from the lease
    items.push_back({r.reservation_id, cost(c)});
  }
  items[2].call.prompt_tokens = 666;
  const auto out = ledger.settle_batch(items);
  REQUIRE(out.size() == 4);
  REQUIRE_FALSE(out[2].error.empty());
  for (const size_t i : {0, 1, 3}) {
    INFO("item " << i);
    REQUIRE((out[i].outcome && out[i].outcome->reservation_found));
  }
  CHECK(ledger.calls({}).size() == 3);
  CHECK(state(ledger).spent == Money::parse("0.014"));
  // Still held, not booked: settled now, it finds its reservation.
  items[2].call.prompt_tokens = 1;
  const SettleOutcome again = ledger.settle(items[2].reservation_id, items[2].call);
  CHECK(again.reservation_found);
  CHECK(state(ledger).spent == Money::parse("0.015"));
  CHECK(ledger.live_reservations() == std::pair<int64_t, Money>{0, Money()});
  CHECK(ledger.calls({}).size() == 4);
  // Nothing held twice or consumed twice: the lease, given back, leaves no row and no reserved
  // money in the file.
  ledger.release_leases();
  CHECK(int_on_file(file.path, "SELECT count(*) FROM reservations") == 0);
  CHECK(int_on_file(file.path, "SELECT count(*) FROM budget_windows WHERE reserved_nanos <> 0 OR "
                               "reserved_attos <> 0") == 0);
}

namespace {
// Counter rows whose atto columns left [0, 1e9) (the carry formulas rely on it).
int64_t unnormalized_counters(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM budget_windows WHERE spent_attos NOT BETWEEN "
                                 "0 AND 999999999 OR reserved_attos NOT BETWEEN 0 AND 999999999",
                             -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close_v2(db);
  return n;
}
}  // namespace

TEST_CASE("settles keep counters exact to the atto through carries and borrows", "[ledger][leases]") {
  // The counters are (nanos, attos) columns updated in SQL (one UPDATE ... RETURNING per window):
  // amounts whose atto parts sum past 1e9 carry, released reservations with larger atto parts
  // than what is reserved borrow, and a release larger than what is reserved stops at zero.
  for (const bool leases : {true, false}) {
    TempLedgerFile file;
    SqliteLedgerOptions options;
    options.leases = leases;
    SqliteLedger l(file.path, options);
    l.set_budget(spec("project:p", Window::kDaily, "1000"));
    l.set_budget(spec("global", Window::kTotal, "1000"));
    Money spent;
    const char* amounts[] = {"0.000000000999999999", "0.123456789987654321", "0.000000001000000001",
                             "0.5"};
    const char* costs[] = {"0.000000000999999999", "0.000000000000000001", "0.100000000900000000",
                           "0.499999999999999999"};
    for (int i = 0; i < 40; ++i) {
      const auto r = l.reserve(req(amounts[i % 4], "p"));
      REQUIRE(r.status == ReserveStatus::kReserved);
      spent += Money::parse(costs[(i / 4) % 4]);
      REQUIRE(l.settle(r.reservation_id, cost(costs[(i / 4) % 4])).reservation_found);
      SpendScope scope;
      scope.project = "p";
      for (const BudgetState& s : l.budget_states(scope, 0, false)) {
        REQUIRE(s.spent == spent);
        REQUIRE(s.reserved.is_zero());  // this process's own free lease money is not counted
      }
      REQUIRE(unnormalized_counters(file.path) == 0);
    }
    l.release_leases();
    Outside seen = outside(file.path);
    REQUIRE(seen.reserved.is_zero());
    REQUIRE(l.total_cost({}) == spent);
  }
}

// A process that dies with calls in flight: whoever reclaims its reservations books them as
// spent (the calls may have been sent and billed, and no settle will come), with a row
// (outcome "abandoned"); money the ledger knows was never handed to a call is released.
// Returns the budget of project "p" after the reclaim; `settled` calls of 0.004 were settled
// and one of 0.01 was in flight when the child was killed.
namespace {

BudgetState killed_with_a_call_in_flight(const std::string& path, SqliteLedgerOptions options,
                                         int settled) {
  SqliteLedger parent(path);
  parent.set_budget(spec("project:p", Window::kTotal, "100"));
  const pid_t pid = orroute::test::fork_when_quiet();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    SqliteLedger mine(path, options);
    for (int i = 0; i < settled; ++i) {
      const auto r = mine.reserve(req("0.01", "p"));
      if (r.status != ReserveStatus::kReserved) ::_exit(1);
      mine.settle(r.reservation_id, cost("0.004"));
    }
    mine.flush_settles();
    (void)mine.reserve(req("0.01", "p"));  // in flight
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  parent.reclaim(0);
  REQUIRE(parent.live_reservations().first == 0);
  const std::vector<CallRecord> rows = parent.calls({});
  REQUIRE(rows.size() == static_cast<size_t>(settled) + 1);
  const auto abandoned = std::find_if(rows.begin(), rows.end(),
                                      [](const CallRecord& row) { return row.outcome == "abandoned"; });
  REQUIRE(abandoned != rows.end());
  REQUIRE(abandoned->cost == Money::parse("0.01"));
  REQUIRE(abandoned->scope.project == "p");
  REQUIRE(abandoned->cost_source.starts_with("reservation: "));
  SpendScope scope;
  scope.project = "p";
  return parent.budget_states(scope, 0, false).at(0);
}

}  // namespace

TEST_CASE("a process killed with a call in flight has it booked as spent", "[ledger][leases]") {
  SECTION("leases off: its reservation") {
    TempLedgerFile file;
    const BudgetState st = killed_with_a_call_in_flight(file.path, {.leases = false}, 10);
    REQUIRE(st.spent == Money::parse("0.05"));
    REQUIRE(st.reserved.is_zero());
  }
  SECTION("a lease: what it held in flight, not its free money nor what it settled") {
    // Its settled reservations were still in its lease row (consumed, their cost in spent) and
    // its grant (0.32) is mostly free: only the call in flight is booked.
    TempLedgerFile file;
    const BudgetState st = killed_with_a_call_in_flight(file.path, {}, 10);
    REQUIRE(st.spent == Money::parse("0.05"));
    REQUIRE(st.reserved.is_zero());
  }
  SECTION("a write-behind lease") {
    TempLedgerFile file;
    const BudgetState st =
        killed_with_a_call_in_flight(file.path, {.settle_delay_us = 1'000'000'000}, 3);
    REQUIRE(st.spent == Money::parse("0.022"));
    REQUIRE(st.reserved.is_zero());
  }
}

TEST_CASE("a counter kept from an earlier transaction is read again once another connection wrote it",
          "[ledger][leases]") {
  // A committed transaction's counters are served to the next one without a statement while
  // nobody else changed the file (the data version): `b`'s settles between `a`'s must be seen.
  const bool leases = GENERATE(true, false);
  TempLedgerFile file;
  SqliteLedgerOptions options;
  options.leases = leases;
  SqliteLedger a(file.path, options), b(file.path, options);
  a.set_budget(spec("global", Window::kTotal, "100"));
  Money spent;
  for (int i = 0; i < 6; ++i) {
    SqliteLedger& l = i % 3 == 1 ? b : a;  // a, b, a, a, b, a: kept reads on both sides
    const auto r = l.reserve(req("0.5", "p"));
    REQUIRE(r.status == ReserveStatus::kReserved);
    const Money c = Money::parse(i % 2 == 0 ? "0.1" : "0.25");
    spent += c;
    REQUIRE(l.settle(r.reservation_id, cost(c.to_string().c_str())).reservation_found);
    CHECK(state(a).spent == spent);
    CHECK(state(b).spent == spent);
  }
  a.release_leases();
  b.release_leases();
  CHECK(outside(file.path).reserved.is_zero());
  CHECK(a.total_cost({}) == spent);
}

TEST_CASE("a lease row kept from an earlier transaction is looked up again once another connection "
          "changed the file", "[ledger][leases]") {
  // `a` settled from its lease (the row's existence kept for its next transaction); then the row
  // goes (another program, or a reclaim by another process) before `a`'s next settle, which
  // must find it gone rather than book against a lease that is not in the file.
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("global", Window::kTotal, "100"));
  const auto r1 = a.reserve(req("0.01", "p"));
  const auto r2 = a.reserve(req("0.01", "p"));
  REQUIRE((r1.reservation_id < 0 && r2.reservation_id < 0));
  REQUIRE(a.settle(r1.reservation_id, cost("0.004")).reservation_found);
  REQUIRE(exec_on_file(file.path, "DELETE FROM reservations WHERE lease != 0") == SQLITE_OK);
  CHECK_FALSE(a.settle(r2.reservation_id, cost("0.004")).reservation_found);
  CHECK(state(b).spent == Money::parse("0.008"));
}

TEST_CASE("a settle_batch of 3000 settles commits in one transaction", "[ledger][batch]") {
  // ~170 KiB of WAL frames in one commit: the WAL-gathering VFS once handed that to SQLite's unix
  // VFS in one write, which it cannot take, and the whole batch failed "database or disk is full".
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  ledger.set_budget(spec("project:p", Window::kTotal, "1000"));
  std::vector<SettleItem> items;
  for (int i = 0; i < 3000; ++i) {
    const auto r = ledger.reserve(req("0.01", "p"));
    REQUIRE(r.status == ReserveStatus::kReserved);
    CallRecord c = cost("0.004");
    c.scope.project = "p";
    items.push_back({r.reservation_id, c});
  }
  const auto out = ledger.settle_batch(items);
  REQUIRE(out.size() == items.size());
  for (const auto& b : out) REQUIRE(b.error.empty());
  CHECK(ledger.calls({}).size() == items.size());
  CHECK(state(ledger).spent == Money::parse("12"));
  CHECK(state(ledger).reserved.is_zero());
}
