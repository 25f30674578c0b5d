// Budget windows rolling over (a daily budget at midnight, a monthly one at month end) while money
// is held: a reservation made before the boundary settles, or is released, in the window it was
// made in, and the new window starts empty, whatever the backend holds the money in: SQLite with
// budget leases (a process's lease was granted from the old window's room) or Redis (each
// reservation remembers the windows it charged).
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ledger_test_util.h"
#include "orroute/cost/sqlite_ledger.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#include "redis_server.h"
#endif

using namespace orroute;
using namespace orroute::test;

namespace {

constexpr TimeUs kBefore = kFeb01_0000 - 30 * kSec;  // Jan 31, 23:59:30 UTC
constexpr TimeUs kAfter = kFeb01_0000 + 30 * kSec;   // Feb 1, 00:00:30 UTC

// Two objects on one store: what two processes sharing a budget are (SQLite: each has its own
// connection and leases; Redis: its own connections).
struct Store {
  std::string name;
  std::function<std::unique_ptr<Ledger>()> open;
};

std::vector<Store> stores(const std::shared_ptr<TempLedgerFile>& file) {
  std::vector<Store> out;
  out.push_back({"sqlite with leases",
                 [file] { return std::make_unique<SqliteLedger>(file->path); }});
  out.push_back({"sqlite with leases and write-behind settles", [file] {
                   SqliteLedgerOptions o;
                   o.settle_delay_us = 60'000'000;  // written when read, or at the next budget change
                   return std::make_unique<SqliteLedger>(file->path, o);
                 }});
#ifdef ORROUTE_HAVE_REDIS
  if (auto* server = RedisServer::shared()) {
    const auto id = reinterpret_cast<uintptr_t>(file.get());
    const std::string url = server->url("rollover-" + std::to_string(id));
    RedisLedger(url).wipe();
    out.push_back({"redis", [url] { return std::make_unique<RedisLedger>(url); }});
  }
#endif
  return out;
}

// Runs `body` once for every store, each in a section of its own.
void on_every_store(const std::function<void(const Store&)>& body) {
  auto file = std::make_shared<TempLedgerFile>();
  for (const auto& store : stores(file)) {
    SECTION(store.name) { body(store); }
  }
}

BudgetState state(Ledger& l, TimeUs at, Window window) {
  for (const auto& s : l.budget_states({"p", "", {}}, at, false)) {
    if (s.budget.window == window) return s;
  }
  FAIL("no such budget");
  return {};
}

BudgetState daily_state(Ledger& l, TimeUs at) { return state(l, at, Window::kDaily); }

CallRecord spent_at(const char* usd, TimeUs at) {
  CallRecord c = cost(usd);
  c.at = at;
  c.scope.project = "p";
  return c;
}

}  // namespace

TEST_CASE("rollover: a reservation made before midnight settles in its own window",
          "[budget][rollover]") {
  on_every_store([](const Store& store) {
    auto a = store.open();
    a->set_budget(spec("project:p", Window::kDaily, "1"));
    const auto r = a->reserve(req("0.6", "p", kBefore));
    REQUIRE(r.status == ReserveStatus::kReserved);
    // The new day starts empty, even with the old day's reservation still held.
    auto b = store.open();
    const auto fresh = b->reserve(req("0.9", "p", kAfter));
    REQUIRE(fresh.status == ReserveStatus::kReserved);
    // The call ends after midnight: its cost is the old day's, its hold leaves the old day.
    a->settle(r.reservation_id, spent_at("0.5", kAfter));
    b->settle(fresh.reservation_id, spent_at("0.9", kAfter));
    a->release_leases();
    b->release_leases();
    const auto old_day = daily_state(*b, kBefore);
    CHECK(old_day.spent == Money::parse("0.5"));
    CHECK(old_day.reserved == Money());
    const auto new_day = daily_state(*b, kAfter);
    CHECK(new_day.spent == Money::parse("0.9"));
    CHECK(new_day.reserved == Money());
    // The new day has 0.1 left, the old day's 0.5 notwithstanding.
    CHECK(b->reserve(req("0.2", "p", kAfter + kSec)).status == ReserveStatus::kExceeded);
    CHECK(a->reserve(req("0.1", "p", kAfter + kSec)).status == ReserveStatus::kReserved);
  });
}

TEST_CASE("rollover: a reservation released after midnight frees its own window",
          "[budget][rollover]") {
  on_every_store([](const Store& store) {
    auto a = store.open();
    a->set_budget(spec("project:p", Window::kDaily, "1"));
    const auto r = a->reserve(req("0.7", "p", kBefore));
    REQUIRE(r.status == ReserveStatus::kReserved);
    REQUIRE(a->reserve(req("0.9", "p", kAfter)).status == ReserveStatus::kReserved);
    REQUIRE(a->release(r.reservation_id));
    a->release_leases();
    auto b = store.open();
    CHECK(daily_state(*b, kBefore).reserved == Money());
    CHECK(daily_state(*b, kBefore).spent == Money());
    CHECK(b->reserve(req("0.9", "p", kBefore + kSec)).status == ReserveStatus::kReserved);
  });
}

TEST_CASE("rollover: money held across midnight never lets a day overspend",
          "[budget][rollover]") {
  on_every_store([](const Store& store) {
    auto a = store.open();
    auto b = store.open();
    a->set_budget(spec("project:p", Window::kDaily, "1"));
    // Both "processes" spend before midnight (a lease each, granted from Jan 31's room) ...
    std::vector<int64_t> held;
    for (int i = 0; i < 3; ++i) {
      for (Ledger* l : {a.get(), b.get()}) {
        const auto r = l->reserve(req("0.1", "p", kBefore + i * kSec));
        REQUIRE(r.status == ReserveStatus::kReserved);
        if (i == 0) {
          held.push_back(r.reservation_id);
        } else {
          l->settle(r.reservation_id, spent_at("0.1", kBefore + i * kSec));
        }
      }
    }
    // ... and after it: Feb 1 has its whole 1.00 and not a cent more, whichever lease is held.
    int reserved = 0;
    for (int i = 0; i < 14; ++i) {
      Ledger* l = i % 2 ? a.get() : b.get();
      const auto r = l->reserve(req("0.1", "p", kAfter + i * kSec));
      if (r.status != ReserveStatus::kReserved) continue;
      ++reserved;
      l->settle(r.reservation_id, spent_at("0.1", kAfter + i * kSec));
    }
    CHECK(reserved == 10);
    a->settle(held[0], spent_at("0.1", kAfter + 20 * kSec));
    b->settle(held[1], spent_at("0.1", kAfter + 20 * kSec));
    a->release_leases();
    b->release_leases();
    auto c = store.open();
    const auto old_day = daily_state(*c, kBefore);
    CHECK(old_day.spent == Money::parse("0.6"));
    CHECK(old_day.reserved == Money());
    const auto new_day = daily_state(*c, kAfter);
    CHECK(new_day.spent == Money::parse("1"));
    CHECK(new_day.reserved == Money());
  });
}

TEST_CASE("rollover: a total budget binds across midnight while each day starts afresh",
          "[budget][rollover]") {
  on_every_store([](const Store& store) {
    auto a = store.open();
    auto b = store.open();
    a->set_budget(spec("project:p", Window::kDaily, "1"));
    a->set_budget(spec("project:p", Window::kTotal, "1.5"));
    // 0.5 spent before midnight, by both, with one call of each (0.2) still running over it.
    std::vector<std::pair<Ledger*, int64_t>> running;
    for (int i = 0; i < 5; ++i) {
      Ledger* l = i % 2 ? a.get() : b.get();
      const auto r = l->reserve(req("0.1", "p", kBefore + i * kSec));
      REQUIRE(r.status == ReserveStatus::kReserved);
      l->settle(r.reservation_id, spent_at("0.1", kBefore + i * kSec));
    }
    for (Ledger* l : {a.get(), b.get()}) {
      const auto r = l->reserve(req("0.2", "p", kBefore + 10 * kSec));
      REQUIRE(r.status == ReserveStatus::kReserved);
      running.emplace_back(l, r.reservation_id);
    }
    // After midnight the day has 1.00 but the total only 0.6 (0.4 of it held by the two).
    int reserved = 0;
    for (int i = 0; i < 10; ++i) {
      Ledger* l = i % 2 ? a.get() : b.get();
      const auto r = l->reserve(req("0.1", "p", kAfter + i * kSec));
      if (r.status != ReserveStatus::kReserved) continue;
      ++reserved;
      l->settle(r.reservation_id, spent_at("0.1", kAfter + i * kSec));
    }
    CHECK(reserved == 6);
    for (auto [l, id] : running) l->settle(id, spent_at("0.15", kAfter + 20 * kSec));
    a->release_leases();
    b->release_leases();
    auto c = store.open();
    CHECK(state(*c, kAfter, Window::kTotal).spent == Money::parse("1.4"));
    CHECK(state(*c, kAfter, Window::kTotal).reserved == Money());
    CHECK(daily_state(*c, kBefore).spent == Money::parse("0.8"));
    CHECK(daily_state(*c, kAfter).spent == Money::parse("0.6"));
    CHECK(c->reserve(req("0.11", "p", kAfter + 30 * kSec)).status == ReserveStatus::kExceeded);
    CHECK(c->reserve(req("0.1", "p", kAfter + 30 * kSec)).status == ReserveStatus::kReserved);
  });
}
