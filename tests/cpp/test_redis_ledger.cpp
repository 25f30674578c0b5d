// RedisLedger against a private redis-server (tests/cpp/redis_server.h). Skipped, with a warning,
// when the build has no hiredis or no redis-server binary is installed.
#include <catch2/catch.hpp>

#ifdef ORROUTE_HAVE_REDIS

#include <hiredis/hiredis.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "fork_util.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/open_ledger.h"
#include "ledger_test_util.h"
#include "orroute/cost/redis_ledger.h"
#include "redis_server.h"
#include "refund_checks.h"

using namespace orroute;
using test::cost, test::kFeb01_0000, test::kJan31_2359, test::kSec, test::req, test::spec;

namespace {

// A fresh ledger under its own key prefix (wiped first), or nullptr when Redis is unavailable.
std::unique_ptr<RedisLedger> fresh(const std::string& name) {
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary (install redis-server or set ORROUTE_REDIS_SERVER)");
    return nullptr;
  }
  auto l = std::make_unique<RedisLedger>(server->url(name));
  l->wipe();
  return l;
}

// Runs one command on a separate connection (admin actions the ledger does not offer).
std::string admin(const std::vector<std::string>& args) {
  redisContext* c = redisConnect("127.0.0.1", test::RedisServer::shared()->port());
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  std::string out = r && r->str ? std::string(r->str, r->len) : "";
  if (r && r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

}  // namespace

TEST_CASE("redis URLs parse and never show the password", "[redis]") {
  const auto u = parse_redis_url("redis://:hunter2@db.example:6380/3?prefix=app:");
  REQUIRE(u.host == "db.example");
  REQUIRE(u.port == 6380);
  REQUIRE(u.db == 3);
  REQUIRE(u.password == "hunter2");
  REQUIRE(u.prefix == "app:");
  REQUIRE(u.redacted() == "redis://:***@db.example:6380/3?prefix=app:");
  REQUIRE(parse_redis_url("redis://localhost").port == 6379);
  REQUIRE(parse_redis_url("redis://u:p@h:1/0").user == "u");
  REQUIRE_THROWS_AS(parse_redis_url("http://h"), InvalidArgument);
  REQUIRE_THROWS_AS(parse_redis_url("redis://h:port"), InvalidArgument);
  REQUIRE_THROWS_AS(parse_redis_url("redis://h/x"), InvalidArgument);
  REQUIRE(is_redis_location("redis://h"));
  REQUIRE_FALSE(is_redis_location("/tmp/ledger.sqlite3"));
}

TEST_CASE("redis: reserve refuses what would exceed a budget and settles to the actual cost",
          "[redis]") {
  auto ledger = fresh("reserve");
  if (!ledger) return;
  ledger->set_budget(spec("global", Window::kTotal, "1"));
  const auto r1 = ledger->reserve(req("0.6"));
  REQUIRE(r1.status == ReserveStatus::kReserved);
  REQUIRE(*r1.remaining == Money::parse("1"));
  const auto r2 = ledger->reserve(req("0.5"));
  REQUIRE(r2.status == ReserveStatus::kExceeded);
  REQUIRE(r2.blocking->reserved == Money::parse("0.6"));
  REQUIRE(*r2.remaining == Money::parse("0.4"));
  const auto settled = ledger->settle(r1.reservation_id, cost("0.25"));
  REQUIRE(settled.reservation_found);
  const auto states = ledger->budget_states({}, 0, false);
  REQUIRE(states.size() == 1);
  REQUIRE(states[0].spent == Money::parse("0.25"));
  REQUIRE(states[0].reserved.is_zero());
  REQUIRE(ledger->reserve(req("0.5")).status == ReserveStatus::kReserved);
  const auto r3 = ledger->reserve(req("0.25"));
  REQUIRE(r3.status == ReserveStatus::kReserved);
  REQUIRE(ledger->reserve(req("0.01")).status == ReserveStatus::kExceeded);
  REQUIRE(ledger->release(r3.reservation_id));
  REQUIRE_FALSE(ledger->release(r3.reservation_id));
  REQUIRE(ledger->reserve(req("0.01")).status == ReserveStatus::kReserved);
  // Settling a reservation that is gone still records the call.
  const auto gone = ledger->settle(r3.reservation_id, cost("0.01"));
  REQUIRE_FALSE(gone.reservation_found);
  REQUIRE(ledger->total_cost({}) == Money::parse("0.26"));
}

TEST_CASE("redis: budgets apply by scope, and windows roll over in their zone", "[redis]") {
  auto ledger = fresh("scopes");
  if (!ledger) return;
  ledger->set_budget(spec("project:a", Window::kTotal, "1"));
  ledger->set_budget(spec("tag:user=alice", Window::kTotal, "0.5"));
  REQUIRE(ledger->reserve(req("2", "b")).status == ReserveStatus::kReserved);
  REQUIRE(ledger->reserve(req("2", "a")).status == ReserveStatus::kExceeded);
  ReserveRequest alice = req("0.6", "b");
  alice.scope.tags = {{"user", "alice"}};
  const auto out = ledger->reserve(alice);
  REQUIRE(out.status == ReserveStatus::kExceeded);
  REQUIRE(out.blocking->budget.name() == "tag:user=alice/total");
  REQUIRE(ledger->remove_budget(parse_scope("project:a"), Window::kTotal));
  REQUIRE_FALSE(ledger->remove_budget(parse_scope("project:a"), Window::kTotal));
  REQUIRE(ledger->reserve(req("2", "a")).status == ReserveStatus::kReserved);
  REQUIRE(ledger->budgets().size() == 1);

  auto daily = fresh("windows");
  daily->set_budget(spec("global", Window::kDaily, "1"));
  BudgetSpec berlin = spec("project:p", Window::kMonthly, "1.5");
  berlin.time_zone = "Europe/Berlin";
  daily->set_budget(berlin);
  auto r = daily->reserve(req("1", "p", kJan31_2359 - 3600 * kSec));
  REQUIRE(r.status == ReserveStatus::kReserved);
  daily->settle(r.reservation_id, cost("1"));
  REQUIRE(daily->reserve(req("0.01", "q", kJan31_2359)).status == ReserveStatus::kExceeded);
  // Feb 1 00:00 UTC is already Feb in Berlin, and a new UTC day.
  r = daily->reserve(req("1", "p", kFeb01_0000));
  REQUIRE(r.status == ReserveStatus::kReserved);
  daily->settle(r.reservation_id, cost("1"));
  const auto states = daily->budget_states({"p", "", {}}, kFeb01_0000, false);
  REQUIRE(states.size() == 2);
  for (const auto& s : states) REQUIRE(s.spent == Money::parse("1"));
  // Reservations in a window that ended long ago (an injected clock) still hold their money.
  constexpr TimeUs kFeb02 = kFeb01_0000 + 86400 * kSec;
  const auto held = daily->reserve(req("0.6", "q", kFeb02 + kSec));
  REQUIRE(held.status == ReserveStatus::kReserved);
  REQUIRE(daily->budget_states({"q", "", {}}, kFeb02, false).at(0).reserved ==
          Money::parse("0.6"));
  REQUIRE(daily->reserve(req("0.5", "q", kFeb02 + 2 * kSec)).status == ReserveStatus::kExceeded);
  REQUIRE(daily->release(held.reservation_id));
  // A budget set later counts the calls already in its window.
  daily->set_budget(spec("project:p", Window::kTotal, "10"));
  REQUIRE(daily->budget_states({"p", "", {}}, kFeb01_0000, false).back().spent ==
          Money::parse("2"));
}

TEST_CASE("redis: thresholds fire once per budget, window and threshold across clients",
          "[redis]") {
  auto a = fresh("alerts");
  if (!a) return;
  RedisLedger b(test::RedisServer::shared()->url("alerts"));
  a->set_budget(spec("global", Window::kDaily, "1"));
  std::vector<int32_t> fired;
  auto spend = [&](RedisLedger& l, const char* usd, TimeUs at) {
    CallRecord c = cost(usd);
    c.at = at;
    for (const auto& al : l.record(c).alerts) fired.push_back(al.threshold_pct);
  };
  spend(*a, "0.4", kJan31_2359 - 60 * kSec);
  REQUIRE(fired.empty());
  spend(b, "0.2", kJan31_2359 - 50 * kSec);  // 60%, from the other client
  REQUIRE(fired == std::vector<int32_t>{50});
  spend(*a, "0.01", kJan31_2359 - 40 * kSec);
  REQUIRE(fired.size() == 1);
  spend(*a, "0.5", kJan31_2359 - 30 * kSec);  // 111%: 80 and 100 at once
  REQUIRE(fired == std::vector<int32_t>{50, 80, 100});
  spend(b, "0.5", kJan31_2359 - 20 * kSec);
  REQUIRE(fired.size() == 3);
  spend(b, "0.6", kFeb01_0000);  // next day: 50% fires again
  REQUIRE(fired == std::vector<int32_t>{50, 80, 100, 50});
  const auto all = a->alerts(0);
  REQUIRE(all.size() == 4);
  REQUIRE(all[0].budget_name == "global/daily");
  REQUIRE(all[3].spent == Money::parse("0.6"));
  REQUIRE(all[3].limit == Money::dollars(1));
}

TEST_CASE("redis: the guard's policies and a cutoff seen by another client", "[redis]") {
  auto ledger = fresh("guard");
  if (!ledger) return;
  RedisLedger other(test::RedisServer::shared()->url("guard"));
  ledger->set_budget(spec("global", Window::kTotal, "1", Policy::kDowngrade));
  BudgetGuard guard(*ledger);
  REQUIRE(guard.reserve(req("0.7")).status == ReserveStatus::kReserved);
  const auto b = guard.reserve(req("0.7"));
  REQUIRE(b.status == ReserveStatus::kExceeded);
  REQUIRE(*b.remaining == Money::parse("0.3"));
  // The other client sees the reservation and the budget (set after it connected).
  REQUIRE(other.reserve(req("0.31")).status == ReserveStatus::kExceeded);
  other.set_cutoff("runaway agent");
  REQUIRE(ledger->cutoff() == "runaway agent");
  REQUIRE_THROWS_AS(guard.reserve(req("0.01")), EmergencyCutoff);
  const auto cut = ledger->reserve(req("0.01"));
  REQUIRE(cut.status == ReserveStatus::kCutoff);
  REQUIRE(cut.cutoff_reason == "runaway agent");
  other.set_cutoff(std::nullopt);
  REQUIRE(guard.reserve(req("0.3")).status == ReserveStatus::kReserved);
}

// Redis cannot tell whether a reservation's owner lives: one left past its expiry (which covers
// its call's whole time) may be a call sent and billed by a process that died, so it is booked
// as spent, with a row, never handed back (fail closed; SqliteLedger does the same for a dead
// process's reservations and for another host's expired ones).
TEST_CASE("redis: expired reservations are reclaimed as spent", "[redis]") {
  auto ledger = fresh("reclaim");
  if (!ledger) return;
  ledger->set_budget(spec("project:p", Window::kTotal, "1"));
  ReserveRequest r = req("0.6", "p", 1000 * kSec);
  r.ttl_us = 10 * kSec;
  r.model = "m/x";
  REQUIRE(ledger->reserve(r).status == ReserveStatus::kReserved);
  REQUIRE(ledger->reserve(req("0.5", "p", 1005 * kSec)).status == ReserveStatus::kExceeded);
  // Past its expiry it is spent: 0.4 is left, not 1.
  REQUIRE(ledger->reserve(req("0.5", "p", 1011 * kSec)).status == ReserveStatus::kExceeded);
  REQUIRE(ledger->reserve(req("0.4", "p", 1011 * kSec)).status == ReserveStatus::kReserved);
  REQUIRE(ledger->live_reservations().first == 1);
  REQUIRE(ledger->reclaim(1011 * kSec + 15LL * 60 * kSec) == 1);
  REQUIRE(ledger->live_reservations().first == 0);
  SpendScope p;
  p.project = "p";
  const BudgetState st = ledger->budget_states(p, 0, false).at(0);
  REQUIRE(st.reserved.is_zero());
  REQUIRE(st.spent == Money::dollars(1));
  const std::vector<CallRecord> rows = ledger->calls({});
  REQUIRE(rows.size() == 2);
  for (const CallRecord& row : rows) {
    REQUIRE(row.outcome == "abandoned");
    REQUIRE(row.scope.project == "p");
    REQUIRE(row.cost_source.starts_with("reservation: "));
  }
  REQUIRE(ledger->total_cost({}) == Money::dollars(1));
}

// Its owner lived (a call slower than its expiry): the settle replaces the reclaim's booking,
// by this process (which made the reservation) or another (which reads the booking's time).
TEST_CASE("redis: a late settle replaces the reclaim's booking of its reservation", "[redis][late]") {
  auto ledger = fresh("late");
  if (!ledger) return;
  ledger->set_budget(spec("project:p", Window::kTotal, "10"));
  const ReserveOutcome r = ledger->reserve(req("1", "p", 1000 * kSec));
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE(ledger->reclaim(2000 * kSec) == 1);
  SpendScope p;
  p.project = "p";
  REQUIRE(ledger->budget_states(p, 0, false).at(0).spent == Money::dollars(1));
  bool by_another = false;
  SECTION("by its process") {}
  SECTION("by another process") { by_another = true; }
  CallRecord c = cost("0.1");
  c.scope.project = "p";
  if (by_another) {
    RedisLedger other(test::RedisServer::shared()->url("late"));
    other.settle(r.reservation_id, c);
  } else {
    ledger->settle(r.reservation_id, c);
  }
  CHECK(ledger->budget_states(p, 0, false).at(0).spent == Money::parse("0.1"));
  const std::vector<CallRecord> rows = ledger->calls({});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].outcome == "ok");
  CHECK(rows[0].cost == Money::parse("0.1"));
  CHECK(rows[0].at == 1000 * kSec);
  // Replaced once: settled again, it is a call of its own.
  ledger->settle(r.reservation_id, c);
  CHECK(ledger->total_cost({}) == Money::parse("0.2"));
}

// The key naming a booking lived a day: a late settle after it (a process stopped for longer:
// SIGSTOP, a suspended VM) found neither its reservation nor the booking and booked the call on
// top of the reclaim's booking (2 + 0.1 spent for a 0.1 call).
TEST_CASE("redis: the booking of a reservation is named as long as its row lives", "[redis][late]") {
  auto ledger = fresh("late-key");
  if (!ledger) return;
  ledger->set_budget(spec("project:p", Window::kTotal, "10"));
  const ReserveOutcome r = ledger->reserve(req("2", "p", 1000 * kSec));
  REQUIRE(ledger->reclaim(2000 * kSec) == 1);
  const std::string key = ledger->prefix() + "abandoned:" + std::to_string(r.reservation_id);
  REQUIRE_FALSE(admin({"GET", key}).empty());
  CHECK(admin({"TTL", key}) == "-1");  // no expiry
  CallRecord c = cost("0.1");
  c.scope.project = "p";
  ledger->settle(r.reservation_id, c);
  SpendScope p;
  p.project = "p";
  CHECK(ledger->budget_states(p, 0, false).at(0).spent == Money::parse("0.1"));
}

// The owner of a reservation the reclaim booked lived and released it: its call cost nothing,
// so the booking is undone (it stood: 1 spent for a call never sent), and the id names no
// booking after it (a settle of it later is a call of its own, not a second take-over).
TEST_CASE("redis: a release after the reclaim undoes the booking", "[redis][late]") {
  auto ledger = fresh("late-release");
  if (!ledger) return;
  ledger->set_budget(spec("project:p", Window::kTotal, "10"));
  const ReserveOutcome r = ledger->reserve(req("1", "p", 1000 * kSec));
  REQUIRE(ledger->reclaim(2000 * kSec) == 1);
  SpendScope p;
  p.project = "p";
  REQUIRE(ledger->budget_states(p, 0, false).at(0).spent == Money::dollars(1));
  CHECK(ledger->release(r.reservation_id));
  CHECK(ledger->budget_states(p, 0, false).at(0).spent.is_zero());
  const std::vector<CallRecord> rows = ledger->calls({});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].outcome == "abandoned");
  CHECK(rows[0].cost.is_zero());
  CHECK(rows[0].cost_source.find("released") != std::string::npos);
  CHECK(ledger->total_cost({}).is_zero());
  CHECK_FALSE(ledger->release(r.reservation_id));
  CallRecord c = cost("0.1");
  c.scope.project = "p";
  ledger->settle(r.reservation_id, c);
  CHECK(ledger->calls({}).size() == 2);
  CHECK(ledger->budget_states(p, 0, false).at(0).spent == Money::parse("0.1"));
}

// A reclaim books spent (in Lua) and checked no threshold: an alert it crossed fired only with a
// later settle that found it crossed, on whichever client wrote that settle, or never.
TEST_CASE("redis: the alerts a reclaim's booking crosses are handed out once", "[redis][late]") {
  auto ledger = fresh("late-alerts");
  if (!ledger) return;
  BudgetSpec budget = spec("project:p", Window::kTotal, "1");
  budget.thresholds_pct = {50, 90};
  ledger->set_budget(budget);
  REQUIRE(ledger->reserve(req("0.6", "p", 1000 * kSec)).status == ReserveStatus::kReserved);
  CallRecord c = cost("0.01");
  c.scope.project = "p";
  SECTION("by reclaim(), then flush_settles") {
    REQUIRE(ledger->reclaim(2000 * kSec) == 1);
    const std::vector<Alert> fired = ledger->flush_settles();
    REQUIRE(fired.size() == 1);
    CHECK(fired[0].threshold_pct == 50);
    CHECK(fired[0].spent == Money::parse("0.6"));
    CHECK(ledger->record(c).alerts.empty());
  }
  SECTION("by a reserve's reclaim, then the next settle") {
    const ReserveOutcome next = ledger->reserve(req("0.01", "p", 2000 * kSec));
    REQUIRE(next.status == ReserveStatus::kReserved);
    const SettleOutcome out = ledger->settle(next.reservation_id, c);
    REQUIRE(out.alerts.size() == 1);
    CHECK(out.alerts[0].threshold_pct == 50);
    CHECK(ledger->flush_settles().empty());
  }
  CHECK(ledger->alerts(0).size() == 1);
  RedisLedger other(test::RedisServer::shared()->url("late-alerts"));
  CHECK(other.record(c).alerts.empty());  // inserted once, across clients
}

TEST_CASE("redis: a refund names its call and gives back no more than it cost", "[redis][refund]") {
  auto ledger = fresh("refund");
  if (!ledger) return;
  test::check_refunds_name_their_call(*ledger);
  CallRecord as_refund = cost("0.1");
  as_refund.outcome = std::string(kRefundOutcome);
  const ReserveOutcome r = ledger->reserve(req("0.1"));
  CHECK_THROWS_AS(ledger->settle(r.reservation_id, as_refund), InvalidArgument);
  CHECK_THROWS_AS(record_call(*ledger, as_refund), InvalidArgument);
}

TEST_CASE("redis: money stays exact beyond 2^53 attodollars and over many tiny amounts",
          "[redis]") {
  auto ledger = fresh("exact");
  if (!ledger) return;
  const Money two53 = Money::from_units(static_cast<Int128>(1) << 53);  // ~$0.009
  const Money one = Money::from_units(1);                               // 1e-18 USD
  SECTION("a limit of 2^53 + 1 attodollars admits exactly that") {
    BudgetSpec s = spec("global", Window::kTotal, "0");
    s.limit = two53 + one;
    ledger->set_budget(s);
    ReserveRequest a = req("0");
    a.amount = two53;
    const auto ra = ledger->reserve(a);
    REQUIRE(ra.status == ReserveStatus::kReserved);
    ReserveRequest b = req("0");
    b.amount = one;
    REQUIRE(ledger->reserve(b).status == ReserveStatus::kReserved);  // a double would say no
    REQUIRE(ledger->reserve(b).status == ReserveStatus::kExceeded);
    CallRecord c = cost("0");
    c.cost = two53 - one;
    ledger->settle(ra.reservation_id, c);
    const auto st = ledger->budget_states({}, 0, false).at(0);
    REQUIRE(st.spent == two53 - one);
    REQUIRE(st.reserved == one);
    REQUIRE(ledger->reserve(b).status == ReserveStatus::kReserved);
    REQUIRE(ledger->reserve(b).status == ReserveStatus::kExceeded);
  }
  SECTION("huge budgets") {
    BudgetSpec s = spec("global", Window::kTotal, "123456789012345.678901234567890123");
    ledger->set_budget(s);
    REQUIRE(ledger->budgets().at(0).limit == s.limit);
    ReserveRequest a = req("123456789012345.678901234567890122");
    REQUIRE(ledger->reserve(a).status == ReserveStatus::kReserved);
    REQUIRE(ledger->reserve(req("0.000000000000000001")).status == ReserveStatus::kReserved);
    REQUIRE(ledger->reserve(req("0.000000000000000001")).status == ReserveStatus::kExceeded);
    REQUIRE(ledger->live_reservations().second == s.limit);
  }
  SECTION("random signed amounts up to 1e30 attodollars sum as in int128") {
    ledger->set_budget(spec("global", Window::kTotal, "1000000000000"));  // $1e12
    std::mt19937_64 rng(42);
    Money expected;
    std::vector<std::pair<int64_t, Money>> left;  // each call's id and what is left to refund
    for (int i = 0; i < 200; ++i) {
      Int128 v = static_cast<Int128>(rng() % 1'000'000'000'000'000ULL) * 1'000'000'000'000LL +
                 static_cast<Int128>(rng() % 1'000'000'000'000ULL);  // < 1e30
      v >>= static_cast<int>(rng() % 90);  // every magnitude, most far beyond 2^53
      CallRecord c = cost("0");
      c.cost = Money::from_units(v);
      auto dearest = std::max_element(left.begin(), left.end(),
                                      [](const auto& x, const auto& y) { return x.second < y.second; });
      if (rng() % 3 == 0 && !c.cost.is_zero() && dearest != left.end() && c.cost <= dearest->second) {  // a refund of it
        record_refund(*ledger, dearest->first, c);
        dearest->second -= c.cost;
        expected -= c.cost;
      } else {
        left.emplace_back(ledger->record(c).call_id, c.cost);
        expected += c.cost;
      }
      REQUIRE(ledger->budget_states({}, 0, false).at(0).spent == expected);  // summed in Lua
    }
    REQUIRE(ledger->total_cost({}) == expected);
  }
  SECTION("sums of many tiny and odd amounts, with a refund") {
    ledger->set_budget(spec("global", Window::kTotal, "1000"));
    const Money price = Money::parse("0.000000020833333333");
    Money expected;
    for (int i = 1; i <= 600; ++i) {
      CallRecord c = cost("0");
      c.cost = price * (i * 7919);
      expected += c.cost;
      ledger->record(c);
    }
    record_refund(*ledger, ledger->calls({}).back().id, cost("0.000000000000000007"));
    expected -= Money::parse("0.000000000000000007");
    REQUIRE(ledger->total_cost({}) == expected);
    REQUIRE(ledger->budget_states({}, 0, false).at(0).spent == expected);
    const auto rows = ledger->report({}, "total", "model");
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].cost == expected);
    REQUIRE(rows[0].calls == 600);  // a refund is no call (is_call)
  }
}

TEST_CASE("redis: calls keep every column and feed reports and quantiles", "[redis]") {
  auto ledger = fresh("calls");
  if (!ledger) return;
  CallRecord c = cost("0.123456789012345678");
  c.at = kJan31_2359;
  c.scope = {"proj", "conv", {{"user", "bob"}, {"env", "prod"}}};
  c.task_id = "t1";
  c.task_type = "code";
  c.model_requested = "m/req";
  c.model_used = "m/used";
  c.provider = "prov";
  c.generation_id = "gen-1";
  c.prompt_tokens = 11;
  c.completion_tokens = 22;
  c.cached_tokens = 3;
  c.cache_write_tokens = 4;
  c.reasoning_tokens = 5;
  c.estimated_cost = Money::parse("0.2");
  c.latency_us = 1500;
  c.ttft_us = 700;
  c.attempts = 2;
  const auto id = ledger->record(c).call_id;
  CallRecord e = cost("0.5");
  e.at = kFeb01_0000;
  e.outcome = "error";
  e.error_class = "RateLimitError";
  e.model_used = "m/other";
  ledger->record(e);
  const auto rows = ledger->calls({});
  REQUIRE(rows.size() == 2);
  const CallRecord& r = rows[0];
  REQUIRE(r.id == id);
  REQUIRE(r.at == c.at);
  REQUIRE(r.scope.project == "proj");
  REQUIRE(r.scope.conversation == "conv");
  REQUIRE(r.scope.tags == std::vector<std::pair<std::string, std::string>>{{"env", "prod"}, {"user", "bob"}});
  REQUIRE(r.model_requested == "m/req");
  REQUIRE(r.model_used == "m/used");
  REQUIRE(r.provider == "prov");
  REQUIRE(r.generation_id == "gen-1");
  REQUIRE(r.cached_tokens == 3);
  REQUIRE(r.reasoning_tokens == 5);
  REQUIRE(*r.estimated_cost == Money::parse("0.2"));
  REQUIRE(r.cost == c.cost);
  REQUIRE(r.latency_us == 1500);
  REQUIRE(r.ttft_us == 700);
  REQUIRE(r.attempts == 2);
  REQUIRE(rows[1].latency_us == -1);
  REQUIRE_FALSE(rows[1].estimated_cost.has_value());
  CallQuery q;
  q.tag_key = "user";
  q.tag_value = "bob";
  REQUIRE(ledger->calls(q).size() == 1);
  q = {};
  q.from = kFeb01_0000;
  REQUIRE(ledger->total_cost(q) == Money::parse("0.5"));
  q = {};
  q.limit = 1;
  REQUIRE(ledger->calls(q).at(0).model_used == "m/other");
  const auto by_day = ledger->report({}, "day", "outcome");
  REQUIRE(by_day.size() == 2);
  REQUIRE(by_day[0].period == "2024-01-31");
  REQUIRE(by_day[0].key == "ok");
  REQUIRE(by_day[0].latency_count == 1);
  REQUIRE(by_day[1].period == "2024-02-01");
  REQUIRE(by_day[1].errors == 1);
  REQUIRE(ledger->report({}, "week", "")[0].period == "2024-01-29");
  REQUIRE(ledger->report({}, "month", "tag:user")[0].key == "bob");
  REQUIRE(ledger->report({}, "hour", "")[0].period == "2024-01-31T23");
  REQUIRE_THROWS_AS(ledger->report({}, "year", ""), InvalidArgument);
  REQUIRE_THROWS_AS(ledger->report({}, "total", "colour"), InvalidArgument);
  for (int i = 1; i <= 100; ++i) {
    CallRecord k = cost("0");
    k.task_type = "chat";
    k.model_used = "m/q";
    k.completion_tokens = i;
    ledger->record(k);
  }
  REQUIRE(ledger->completion_quantile("chat", "m/q", 0.9, 1000) == 90);
  REQUIRE(ledger->completion_quantile("chat", "m/q", 0.5, 10) == 95);
  REQUIRE_FALSE(ledger->completion_quantile("chat", "m/none", 0.9, 1000).has_value());
  REQUIRE_THROWS_AS(ledger->record([] { CallRecord b; b.prompt_tokens = -1; return b; }()),
                    InvalidArgument);
}

TEST_CASE("redis: threads and processes reserving against one budget never overspend it",
          "[redis]") {
  auto ledger = fresh("hammer");
  if (!ledger) return;
  ledger->set_budget(spec("global", Window::kTotal, "1"));
  const std::string url = test::RedisServer::shared()->url("hammer");
  std::vector<pid_t> kids;
  for (int p = 0; p < 3; ++p) {
    const pid_t pid = orroute::test::fork_when_quiet();
    if (pid == 0) {
      int code = 0;
      try {
        RedisLedger mine(url);
        for (int i = 0; i < 60; ++i) {
          const auto r = mine.reserve(req("0.01"));
          if (r.status == ReserveStatus::kReserved) mine.settle(r.reservation_id, cost("0.009"));
        }
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
    kids.push_back(pid);
  }
  std::atomic<int> reserved{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 40; ++i) {
        const auto r = ledger->reserve(req("0.01"));
        if (r.status != ReserveStatus::kReserved) continue;
        ++reserved;
        ledger->settle(r.reservation_id, cost("0.009"));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  const auto state = ledger->budget_states({}, 0, false).at(0);
  REQUIRE(state.spent <= Money::dollars(1));
  REQUIRE(state.reserved.is_zero());
  const int64_t calls = static_cast<int64_t>(ledger->calls({}).size());
  REQUIRE(calls > reserved.load());  // the children spent too
  REQUIRE(state.spent == Money::parse("0.009") * calls);
  REQUIRE(ledger->total_cost({}) == state.spent);
  // 3*60 + 4*40 = 340 attempts of 0.01 against $1: the budget ends full, not over.
  REQUIRE(ledger->reserve(req("0.01")).status == ReserveStatus::kExceeded);
}

TEST_CASE("redis: a killed connection is reopened and nothing is applied twice", "[redis]") {
  auto ledger = fresh("reconnect");
  if (!ledger) return;
  ledger->set_budget(spec("global", Window::kTotal, "1"));
  const auto r = ledger->reserve(req("0.4"));
  REQUIRE(r.status == ReserveStatus::kReserved);
  REQUIRE(std::stoll(admin({"CLIENT", "KILL", "TYPE", "normal"})) >= 1);
  ledger->settle(r.reservation_id, cost("0.3"));
  admin({"CLIENT", "KILL", "TYPE", "normal"});
  REQUIRE(ledger->reserve(req("0.7")).status == ReserveStatus::kReserved);
  admin({"CLIENT", "KILL", "TYPE", "normal"});
  const auto st = ledger->budget_states({}, 0, false).at(0);
  REQUIRE(st.spent == Money::parse("0.3"));
  REQUIRE(st.reserved == Money::parse("0.7"));
  REQUIRE(ledger->calls({}).size() == 1);
}

TEST_CASE("redis: a password reaches the server but never an error message", "[redis]") {
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary");
    return;
  }
  admin({"ACL", "SETUSER", "orr", "on", ">right-pass-42", "~*", "+@all"});
  const std::string base = "127.0.0.1:" + std::to_string(server->port()) + "/0?prefix=pw:";
  RedisLedger ok("redis://orr:right-pass-42@" + base);
  REQUIRE(ok.url().find("right-pass-42") == std::string::npos);
  REQUIRE(ok.cutoff() == std::nullopt);
  try {
    RedisLedger bad("redis://orr:wrong-pass-17@" + base);
    FAIL("connected with a wrong password");
  } catch (const Error& e) {
    const std::string what = e.what();
    REQUIRE(what.find("wrong-pass-17") == std::string::npos);
    REQUIRE(what.find("authentication failed") != std::string::npos);
  }
  try {
    RedisLedger down("redis://:secret-9@127.0.0.1:1/0");
    FAIL("connected to port 1");
  } catch (const Error& e) {
    REQUIRE(std::string(e.what()).find("secret-9") == std::string::npos);
  }
  admin({"ACL", "DELUSER", "orr"});
}

#else

TEST_CASE("redis ledger", "[redis]") { WARN("skipped: built without hiredis (libhiredis-dev)"); }

#endif
