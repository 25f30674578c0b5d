#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "orroute/cost/budget_guard.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

TEST_CASE("windows start at local midnight, Monday and the first of the month", "[budget]") {
  const auto utc = TimeZone::utc();
  SECTION("daily rolls over at midnight") {
    const auto [s, e] = window_bounds(Window::kDaily, *utc, kJan31_2359);
    REQUIRE(s == kFeb01_0000 - 86400 * kSec);
    REQUIRE(e == kFeb01_0000);
    REQUIRE(window_bounds(Window::kDaily, *utc, kFeb01_0000).first == kFeb01_0000);
  }
  SECTION("monthly rolls over at month end, leap February included") {
    REQUIRE(window_bounds(Window::kMonthly, *utc, kJan31_2359).second == kFeb01_0000);
    const auto [s, e] = window_bounds(Window::kMonthly, *utc, kFeb01_0000);
    REQUIRE(s == kFeb01_0000);
    REQUIRE(e == kFeb01_0000 + 29 * 86400 * kSec);
  }
  SECTION("weekly starts on Monday") {
    // 2024-01-31 is a Wednesday; the week began Monday 2024-01-29.
    REQUIRE(window_bounds(Window::kWeekly, *utc, kJan31_2359).first == kFeb01_0000 - 3 * 86400 * kSec);
  }
  SECTION("a time zone moves the boundary, with daylight saving") {
    const auto berlin = TimeZone::locate("Europe/Berlin");
    // Winter: local midnight is 23:00 UTC the day before.
    REQUIRE(window_bounds(Window::kDaily, *berlin, kJan31_2359).first == kFeb01_0000 - kSec * 3600);
    // Summer (2024-07-01T12:00Z): local midnight is 22:00 UTC.
    const TimeUs jul1_noon = 1719835200LL * kSec;
    REQUIRE(window_bounds(Window::kDaily, *berlin, jul1_noon).first == jul1_noon - 14 * 3600 * kSec);
    const auto fixed = TimeZone::locate("+05:30");
    REQUIRE(fixed->offset_seconds(0) == 5 * 3600 + 1800);
    REQUIRE_THROWS_AS(TimeZone::locate("Mars/Olympus_Mons"), NotFound);
  }
}

TEST_CASE("a midnight that comes twice starts the day at the first: when the local date changes",
          "[budget]") {
  // Daylight time ending at 01:00, back to 00:00: Havana's (2024-11-03: midnight at 04:00 and at
  // 05:00 UTC), the Azores' (2024-10-27: at 00:00 and 01:00 UTC), Amman's (2021-10-29: at 21:00
  // and 22:00 UTC the day before; east of UTC, where the lookup found the second).
  const auto [zone, first_s] = GENERATE(table<const char*, int64_t>({
      {"America/Havana", 1730606400}, {"Atlantic/Azores", 1729987200},
      {"Asia/Amman", 1635454800}}));
  const auto tz = TimeZone::locate(zone);
  const TimeUs first = first_s * kSec;
  const TimeUs hour = 3600 * kSec;
  REQUIRE(tz->offset_seconds(first_s) - tz->offset_seconds(first_s + 3600) == 3600);  // a fold
  for (const TimeUs at : {first, first + hour / 2, first + hour, first + 3 * hour / 2}) {
    const auto [start, end] = window_bounds(Window::kDaily, *tz, at);
    CHECK(start == first);
    CHECK(end == first + 25 * hour);  // the next midnight comes once, an hour later in UTC
  }
  CHECK(window_bounds(Window::kDaily, *tz, first - 1).second == first);
}

TEST_CASE("the hour read again as the day before after a midnight is the new day's", "[budget]") {
  // St. John's daylight time ended at 00:01, back to 23:01 (2009-11-01: midnight at 02:30 UTC,
  // Saturday 23:01-24:00 again from 02:31 to 03:30 UTC): the day changed at the first midnight.
  const auto tz = TimeZone::locate("America/St_Johns");
  const TimeUs first = 1257042600 * kSec;
  const TimeUs minute = 60 * kSec;
  for (const TimeUs at : {first, first + 2 * minute, first + 59 * minute, first + 60 * minute}) {
    const auto [start, end] = window_bounds(Window::kDaily, *tz, at);
    CHECK(start == first);
    CHECK(end == first + (25 * 60 + 0) * minute);  // Monday's midnight, at -03:30
    CHECK(window_bounds(Window::kWeekly, *tz, at).second == first + (25 * 60) * minute);
    CHECK(window_bounds(Window::kMonthly, *tz, at).first == first);  // November's first day
  }
  CHECK(window_bounds(Window::kDaily, *tz, first - 1).second == first);
  CHECK(window_bounds(Window::kMonthly, *tz, first - 1).second == first);
}

TEST_CASE("reserve refuses what would exceed a budget and settles to the actual cost", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1"));
  const auto r1 = ledger.reserve(req("0.6"));
  REQUIRE(r1.status == ReserveStatus::kReserved);
  REQUIRE(*r1.remaining == Money::parse("1"));
  const auto r2 = ledger.reserve(req("0.5"));
  REQUIRE(r2.status == ReserveStatus::kExceeded);
  REQUIRE(r2.blocking->reserved == Money::parse("0.6"));
  REQUIRE(*r2.remaining == Money::parse("0.4"));
  ledger.settle(r1.reservation_id, cost("0.25"));  // actual below the worst case frees the rest
  const auto states = ledger.budget_states({}, 0, false);
  REQUIRE(states.size() == 1);
  REQUIRE(states[0].spent == Money::parse("0.25"));
  REQUIRE(states[0].reserved.is_zero());
  REQUIRE(ledger.reserve(req("0.5")).status == ReserveStatus::kReserved);
  SECTION("release gives the room back") {
    const auto r3 = ledger.reserve(req("0.25"));
    REQUIRE(r3.status == ReserveStatus::kReserved);
    REQUIRE(ledger.reserve(req("0.01")).status == ReserveStatus::kExceeded);
    REQUIRE(ledger.release(r3.reservation_id));
    REQUIRE_FALSE(ledger.release(r3.reservation_id));
    REQUIRE(ledger.reserve(req("0.01")).status == ReserveStatus::kReserved);
  }
}

TEST_CASE("budgets apply by scope: project, conversation and tag", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("project:a", Window::kTotal, "1"));
  ledger.set_budget(spec("tag:user=alice", Window::kTotal, "0.5"));
  REQUIRE(ledger.reserve(req("2", "b")).status == ReserveStatus::kReserved);  // no budget for b
  REQUIRE(ledger.reserve(req("2", "a")).status == ReserveStatus::kExceeded);
  ReserveRequest alice = req("0.6", "b");
  alice.scope.tags = {{"user", "alice"}};
  const auto out = ledger.reserve(alice);
  REQUIRE(out.status == ReserveStatus::kExceeded);
  REQUIRE(out.blocking->budget.name() == "tag:user=alice/total");
}

TEST_CASE("a daily budget starts afresh after midnight; a monthly one at month end", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kDaily, "1"));
  ledger.set_budget(spec("project:p", Window::kMonthly, "1.5"));
  auto r = ledger.reserve(req("1", "p", kJan31_2359 - 3600 * kSec));
  REQUIRE(r.status == ReserveStatus::kReserved);
  ledger.settle(r.reservation_id, cost("1"));
  REQUIRE(ledger.reserve(req("0.01", "q", kJan31_2359)).status == ReserveStatus::kExceeded);
  // After midnight the daily window is empty again; Feb is a new month for project p too.
  r = ledger.reserve(req("1", "p", kFeb01_0000));
  REQUIRE(r.status == ReserveStatus::kReserved);
  ledger.settle(r.reservation_id, cost("1"));
  const auto states = ledger.budget_states({"p", "", {}}, kFeb01_0000, false);
  REQUIRE(states.size() == 2);
  for (const auto& s : states) REQUIRE(s.spent == Money::parse("1"));
  // A budget set later counts the calls already in its window.
  ledger.set_budget(spec("project:p", Window::kTotal, "10"));
  const auto total = ledger.budget_states({"p", "", {}}, kFeb01_0000, false);
  REQUIRE(total.back().spent == Money::parse("2"));
}

TEST_CASE("soft thresholds fire once per threshold per window", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kDaily, "1"));
  std::vector<int32_t> fired;
  auto spend = [&](const char* usd, TimeUs at) {
    CallRecord c = cost(usd);
    c.at = at;
    for (const auto& a : ledger.record(c).alerts) fired.push_back(a.threshold_pct);
  };
  spend("0.4", kJan31_2359 - 60 * kSec);
  REQUIRE(fired.empty());
  spend("0.2", kJan31_2359 - 50 * kSec);  // 60%
  REQUIRE(fired == std::vector<int32_t>{50});
  spend("0.01", kJan31_2359 - 40 * kSec);
  REQUIRE(fired.size() == 1);
  spend("0.5", kJan31_2359 - 30 * kSec);  // 111%: 80 and 100 at once
  REQUIRE(fired == std::vector<int32_t>{50, 80, 100});
  spend("0.5", kJan31_2359 - 20 * kSec);
  REQUIRE(fired.size() == 3);
  spend("0.6", kFeb01_0000);  // next day: 50% fires again
  REQUIRE(fired == std::vector<int32_t>{50, 80, 100, 50});
  REQUIRE(ledger.alerts(0).size() == 4);
}

TEST_CASE("a budget made after another was removed fires its own thresholds", "[budget]") {
  // SQLite would give the new budget the removed one's id (the largest rowid + 1): the removed
  // budget's alerts must not stand for the new one's.
  SqliteLedger ledger(":memory:");
  const int64_t first = ledger.set_budget(spec("project:a", Window::kTotal, "1"));
  auto spend = [&](const char* project, const char* usd) {
    CallRecord c = cost(usd);
    c.scope.project = project;
    std::vector<int32_t> fired;
    for (const auto& a : ledger.record(c).alerts) fired.push_back(a.threshold_pct);
    return fired;
  };
  REQUIRE(spend("a", "0.6") == std::vector<int32_t>{50});
  REQUIRE(spend("a", "0.1").empty());  // fired once
  REQUIRE(ledger.remove_budget(parse_scope("project:a"), Window::kTotal));
  CHECK(ledger.set_budget(spec("project:b", Window::kTotal, "1")) != first);
  REQUIRE(spend("b", "0.6") == std::vector<int32_t>{50});
  REQUIRE(spend("b", "0.3") == std::vector<int32_t>{80});
  REQUIRE(spend("b", "0.05").empty());
}

TEST_CASE("a threshold fires once per window across the ledger objects of one file", "[budget]") {
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  a.set_budget(spec("global", Window::kTotal, "1"));
  auto spend = [](SqliteLedger& l, const char* usd) {
    std::vector<int32_t> fired;
    for (const auto& x : l.record(cost(usd)).alerts) fired.push_back(x.threshold_pct);
    return fired;
  };
  REQUIRE(spend(a, "0.6") == std::vector<int32_t>{50});
  REQUIRE(spend(b, "0.1").empty());
  REQUIRE(spend(a, "0.01").empty());
  REQUIRE(spend(b, "0.2") == std::vector<int32_t>{80});
  REQUIRE(spend(a, "0.01").empty());
  REQUIRE(spend(b, "0.01").empty());
  REQUIRE(a.alerts(0).size() == 2);
}

TEST_CASE("downgrade budgets report what is left instead of throwing", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1", Policy::kDowngrade));
  BudgetGuard guard(ledger);
  const auto a = guard.reserve(req("0.7"));
  REQUIRE(a.status == ReserveStatus::kReserved);
  const auto b = guard.reserve(req("0.7"));
  REQUIRE(b.status == ReserveStatus::kExceeded);
  REQUIRE(*b.remaining == Money::parse("0.3"));
  REQUIRE(guard.reserve(req("0.3")).status == ReserveStatus::kReserved);
}

TEST_CASE("the guard throws for refusals, cutoff and denied approvals", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1"));
  BudgetGuard guard(ledger);
  SECTION("refuse") {
    try {
      guard.reserve(req("2"));
      FAIL("no throw");
    } catch (const BudgetExceeded& e) {
      REQUIRE(e.budget == "global/total");
      REQUIRE(e.limit == Money::dollars(1));
      REQUIRE(e.estimate == Money::dollars(2));
      REQUIRE(e.kind() == ErrorKind::kBudgetExceeded);
    }
  }
  SECTION("cutoff stops everything until lifted") {
    ledger.set_cutoff("runaway agent");
    REQUIRE_THROWS_AS(guard.reserve(req("0.01")), EmergencyCutoff);
    REQUIRE(ledger.reserve(req("0.01")).status == ReserveStatus::kCutoff);
    ledger.set_cutoff(std::nullopt);
    REQUIRE(guard.reserve(req("0.01")).status == ReserveStatus::kReserved);
  }
  SECTION("approval hook is asked only above the amount") {
    int asked = 0;
    guard.set_approval(Money::parse("0.1"), [&](const ApprovalRequest& r) {
      ++asked;
      return r.estimate < Money::parse("0.5");
    });
    REQUIRE(guard.reserve(req("0.1")).status == ReserveStatus::kReserved);
    REQUIRE(asked == 0);
    REQUIRE(guard.reserve(req("0.2")).status == ReserveStatus::kReserved);
    REQUIRE_THROWS_AS(guard.reserve(req("0.6")), ApprovalDenied);
    REQUIRE(asked == 2);
  }
}

TEST_CASE("expired reservations are reclaimed", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1"));
  ReserveRequest r = req("1", "", 1000 * kSec);
  r.ttl_us = 10 * kSec;
  REQUIRE(ledger.reserve(r).status == ReserveStatus::kReserved);
  REQUIRE(ledger.reserve(req("1", "", 1005 * kSec)).status == ReserveStatus::kExceeded);
  // Past its expiry the reservation no longer holds room: reserve reclaims before refusing.
  REQUIRE(ledger.reserve(req("1", "", 1011 * kSec)).status == ReserveStatus::kReserved);
  REQUIRE(ledger.live_reservations().first == 1);
}

TEST_CASE("threads reserving against one budget never overspend it", "[budget]") {
  SqliteLedger ledger(":memory:");
  ledger.set_budget(spec("global", Window::kTotal, "1"));
  std::atomic<int> reserved{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        const auto r = ledger.reserve(req("0.01"));
        if (r.status != ReserveStatus::kReserved) continue;
        ++reserved;
        ledger.settle(r.reservation_id, cost("0.009"));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto state = ledger.budget_states({}, 0, false).at(0);
  REQUIRE(state.spent <= Money::dollars(1));
  REQUIRE(state.reserved.is_zero());
  REQUIRE(state.spent == Money::parse("0.009") * reserved.load());
  REQUIRE(ledger.total_cost({}) == state.spent);
  REQUIRE(ledger.live_reservations().first == 0);
}
