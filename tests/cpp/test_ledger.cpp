#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using orroute::BatchSettle;
using orroute::BudgetSpec;
using orroute::CallQuery;
using orroute::CallRecord;
using orroute::kRefundOutcome;
using orroute::Money;
using orroute::ReserveRequest;
using orroute::SqliteLedger;
using orroute::SqliteLedgerOptions;

using orroute::test::call;
using orroute::test::TempLedgerFile;

TEST_CASE("ledger sums costs exactly over many rows", "[ledger]") {
  SqliteLedger ledger(":memory:");
  // A per-token price with 18 decimals, times odd token counts: not representable in nano-dollars.
  const Money price = Money::parse("0.000000020833333333");
  Money expected;
  int64_t last = 0;
  for (int i = 1; i <= 5000; ++i) {
    CallRecord c = call("m/a", "0");
    c.cost = price * i;
    expected += c.cost;
    last = ledger.record(c).call_id;
  }
  record_refund(ledger, last, call("m/b", "0.000000000000000007"));  // a refund below one nano-dollar
  expected -= Money::parse("0.000000000000000007");
  REQUIRE(ledger.total_cost({}) == expected);
  REQUIRE(ledger.total_cost({}).to_string() == expected.to_string());
  CallQuery only_b;
  only_b.model = "m/b";
  REQUIRE(ledger.total_cost(only_b) == Money::parse("-0.000000000000000007"));
  const auto rows = ledger.report({}, "total", "model");
  REQUIRE(rows.size() == 2);
  REQUIRE(rows[0].key == "m/a");
  REQUIRE(rows[0].calls == 5000);
  REQUIRE(rows[0].cost + rows[1].cost == expected);
}

TEST_CASE("ledger stores every column of a call and its tags", "[ledger]") {
  SqliteLedger ledger(":memory:");
  CallRecord c = call("anthropic/claude-3.5-sonnet", "0.0123456789012345678");
  c.at = 1'700'000'000'000'000;
  c.scope = {"proj", "conv-1", {{"user", "alice"}, {"team", "core"}}};
  c.task_id = "t1";
  c.task_type = "coding";
  c.model_requested = "openai/gpt-4o";
  c.provider = "Anthropic";
  c.generation_id = "gen-1";
  c.prompt_tokens = 100;
  c.completion_tokens = 50;
  c.cached_tokens = 10;
  c.cache_write_tokens = 5;
  c.reasoning_tokens = 7;
  c.estimated_cost = Money::parse("0.02");
  c.latency_us = 1234;
  c.ttft_us = 200;
  c.outcome = "error";
  c.error_class = "RateLimitError";
  c.attempts = 3;
  ledger.record(c);
  const auto rows = ledger.calls({});
  REQUIRE(rows.size() == 1);
  const auto& r = rows[0];
  REQUIRE(r.at == c.at);
  REQUIRE(r.scope.project == "proj");
  REQUIRE(r.scope.conversation == "conv-1");
  REQUIRE(r.scope.tags == std::vector<std::pair<std::string, std::string>>{{"team", "core"}, {"user", "alice"}});
  REQUIRE(r.model_requested == "openai/gpt-4o");
  REQUIRE(r.model_used == "anthropic/claude-3.5-sonnet");
  REQUIRE(r.provider == "Anthropic");
  REQUIRE(r.generation_id == "gen-1");
  REQUIRE(r.prompt_tokens == 100);
  REQUIRE(r.completion_tokens == 50);
  REQUIRE(r.cached_tokens == 10);
  REQUIRE(r.cache_write_tokens == 5);
  REQUIRE(r.reasoning_tokens == 7);
  REQUIRE(r.cost == Money::parse("0.012345678901234568"));  // 18 decimals kept
  REQUIRE(r.estimated_cost == Money::parse("0.02"));
  REQUIRE(r.latency_us == 1234);
  REQUIRE(r.ttft_us == 200);
  REQUIRE(r.outcome == "error");
  REQUIRE(r.error_class == "RateLimitError");
  REQUIRE(r.attempts == 3);
  CallQuery by_tag;
  by_tag.tag_key = "user";
  by_tag.tag_value = "alice";
  REQUIRE(ledger.calls(by_tag).size() == 1);
  by_tag.tag_value = "bob";
  REQUIRE(ledger.calls(by_tag).empty());
  const auto rep = ledger.report({}, "day", "tag:team");
  REQUIRE(rep.size() == 1);
  REQUIRE(rep[0].period == "2023-11-14");
  REQUIRE(rep[0].key == "core");
  REQUIRE(rep[0].errors == 1);
  REQUIRE(rep[0].estimated == Money::parse("0.02"));
}

TEST_CASE("a call's empty columns stay empty after a call that had them", "[ledger]") {
  // The row's statement is reused: what the call before bound must not stay bound.
  SqliteLedger ledger(":memory:");
  CallRecord full = call("m", "1");
  full.scope.project = "p";
  full.scope.conversation = "c";
  full.task_id = "t";
  full.task_type = "coding";
  full.provider = "v";
  full.generation_id = "g";
  full.estimated_cost = Money::parse("2");
  full.latency_us = 5;
  full.ttft_us = 3;
  full.error_class = "e";
  ledger.record(full);
  ledger.record(call("", "1"));
  const auto rows = ledger.calls({});
  REQUIRE(rows.size() == 2);
  const CallRecord& empty = rows[1];
  CHECK(empty.scope.project.empty());
  CHECK(empty.scope.conversation.empty());
  CHECK(empty.task_id.empty());
  CHECK(empty.task_type.empty());
  CHECK(empty.model_used.empty());
  CHECK(empty.provider.empty());
  CHECK(empty.generation_id.empty());
  CHECK_FALSE(empty.estimated_cost.has_value());
  CHECK(empty.latency_us == -1);
  CHECK(empty.ttft_us == -1);
  CHECK(empty.error_class.empty());
  CallQuery no_project;
  no_project.project = "p";
  CHECK(ledger.calls(no_project).size() == 1);
}

TEST_CASE("ledger rejects bad input before writing", "[ledger]") {
  SqliteLedger ledger(":memory:");
  CallRecord c = call("m", "1");
  c.prompt_tokens = -1;
  REQUIRE_THROWS_AS(ledger.record(c), orroute::InvalidArgument);
  c.prompt_tokens = 0;
  c.scope.tags = {{"a=b", "x"}};
  REQUIRE_THROWS_AS(ledger.record(c), orroute::InvalidArgument);
  REQUIRE(ledger.calls({}).empty());
  REQUIRE_THROWS_AS(ledger.report({}, "fortnight", ""), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(ledger.report({}, "day", "cost; DROP TABLE calls"), orroute::InvalidArgument);
}

// A negative cost lowers a budget's spend: only a refund of a recorded call (record_refund) may
// carry one; every path that writes a call (record, settle of a reservation or of a lease's, a
// batch) refuses it.
TEST_CASE("a negative cost is refused unless the row is a refund", "[ledger]") {
  for (const bool leases : {false, true}) {
    SqliteLedger ledger(":memory:", SqliteLedgerOptions{.leases = leases});
    BudgetSpec budget;
    budget.limit = Money::parse("1");
    ledger.set_budget(budget);
    const int64_t first = ledger.record(call("m", "0.5")).call_id;
    CallRecord negative = call("m", "-0.4");
    REQUIRE_THROWS_AS(ledger.record(negative), orroute::InvalidArgument);
    ReserveRequest r;
    r.amount = Money::parse("0.1");
    const int64_t id = ledger.reserve(r).reservation_id;
    REQUIRE_THROWS_AS(ledger.settle(id, negative), orroute::InvalidArgument);
    const std::vector<BatchSettle> batch = ledger.settle_batch({{id, negative}, {id, negative}});
    REQUIRE((!batch[0].outcome && !batch[1].outcome));
    REQUIRE(ledger.calls({}).size() == 1);
    REQUIRE(ledger.budget_states({}, 0, false).at(0).spent == Money::parse("0.5"));
    REQUIRE(ledger.release(id));  // still held: nothing was written
    negative.outcome = std::string(kRefundOutcome);
    REQUIRE_THROWS_AS(ledger.record(negative), orroute::InvalidArgument);  // record_refund's alone
    record_refund(ledger, first, call("m", "0.4"));
    REQUIRE(ledger.budget_states({}, 0, false).at(0).spent == Money::parse("0.1"));
  }
}

namespace {

// A file of this build's schema made as schema version 4 left it (what orroute wrote from
// session 16 to 25): the calls' indexes on (ts) and (task_type, model_used, id), no
// ok_completions, calls_blocks or calls_spans (and no abandoned, schema 6's, nor refunds, 7's).
const char* const kUndoSchema5 =
    "DROP TABLE refunds; DELETE FROM schema_version WHERE version = 7; "
    "DROP TABLE abandoned; DELETE FROM schema_version WHERE version = 6; DROP TABLE ok_completions; ALTER TABLE state DROP COLUMN completions_through; "
    "DROP VIEW calls_spans; DROP TABLE calls_blocks; CREATE INDEX calls_ts ON calls(ts); "
    "CREATE INDEX calls_type_model ON calls(task_type, model_used, id); "
    "DELETE FROM schema_version WHERE version = 5";

}  // namespace

TEST_CASE("ledger file survives reopening and records its schema version", "[ledger]") {
  TempLedgerFile file;
  {
    SqliteLedger ledger(file.path);
    REQUIRE(ledger.schema_version() == 7);
    ledger.record(call("m", "0.5"));
  }
  SqliteLedger again(file.path);
  REQUIRE(again.schema_version() == 7);
  REQUIRE(again.total_cost({}) == Money::parse("0.5"));
}

TEST_CASE("a file from before budget ids were kept unique gives new budgets unused ids", "[ledger]") {
  TempLedgerFile file;
  int64_t removed = 0;
  {
    SqliteLedger ledger(file.path);
    removed = ledger.set_budget(orroute::test::spec("project:a", orroute::Window::kTotal, "1"));
    CallRecord c = call("m", "0.6");
    c.scope.project = "a";
    REQUIRE(ledger.record(c).alerts.size() == 1);  // its 50% alert stays in the file
    REQUIRE(ledger.remove_budget(orroute::parse_scope("project:a"), orroute::Window::kTotal));
  }
  // The file as schema version 3 left it: no last_budget_id.
  REQUIRE(orroute::test::exec_on_file(file.path, kUndoSchema5) == SQLITE_OK);
  REQUIRE(orroute::test::exec_on_file(file.path, "ALTER TABLE state DROP COLUMN last_budget_id; "
                                                 "DELETE FROM schema_version WHERE version = 4") ==
          SQLITE_OK);
  SqliteLedger ledger(file.path);
  REQUIRE(ledger.schema_version() == 7);
  CHECK(ledger.set_budget(orroute::test::spec("project:b", orroute::Window::kTotal, "1")) > removed);
  CallRecord c = call("m", "0.6");
  c.scope.project = "b";
  CHECK(ledger.record(c).alerts.size() == 1);
}

TEST_CASE("learned completion expectation is a high percentile of past completions", "[ledger]") {
  SqliteLedger ledger(":memory:");
  REQUIRE_FALSE(ledger.completion_quantile("coding", "m", 0.9, 100).has_value());
  for (int i = 1; i <= 100; ++i) {
    CallRecord c = call("m", "0");
    c.task_type = "coding";
    c.completion_tokens = i * 10;
    ledger.record(c);
  }
  REQUIRE(ledger.completion_quantile("coding", "m", 0.9, 1000) == 900);
  REQUIRE(ledger.completion_quantile("coding", "m", 1.0, 1000) == 1000);
  REQUIRE(ledger.completion_quantile("coding", "m", 0.5, 10) == 950);  // last 10 only
  REQUIRE_FALSE(ledger.completion_quantile("chat", "m", 0.9, 100).has_value());
}

namespace {

// Every column of a call as text, one line (tags included): rows compare whole.
std::string row_text(const CallRecord& c) {
  std::string tags;
  for (const auto& [k, v] : c.scope.tags) tags += k + "=" + v + ";";
  return std::to_string(c.id) + "|" + std::to_string(c.at) + "|" + c.scope.project + "|" +
         c.scope.conversation + "|" + tags + "|" + c.task_id + "|" + c.task_type + "|" +
         c.model_requested + "|" + c.model_used + "|" + c.provider + "|" + c.generation_id + "|" +
         std::to_string(c.prompt_tokens) + "|" + std::to_string(c.completion_tokens) + "|" +
         std::to_string(c.cached_tokens) + "|" + std::to_string(c.cache_write_tokens) + "|" +
         std::to_string(c.reasoning_tokens) + "|" +
         (c.estimated_cost ? c.estimated_cost->to_string() : "-") + "|" + c.cost.to_string() + "|" +
         std::to_string(c.latency_us) + "|" + std::to_string(c.ttft_us) + "|" + c.outcome + "|" +
         c.error_class + "|" + std::to_string(c.attempts) + "|" + c.cost_source;
}

std::vector<std::string> rows_of(SqliteLedger& ledger) {
  std::vector<std::string> out;
  for (const CallRecord& c : ledger.calls({})) out.push_back(row_text(c));
  return out;
}

// The nearest-rank quantile `q` of the last `last_n` completions of the 'ok' calls of
// (task_type, model) among `calls` (in id order), as completion_quantile defines it. An empty
// type or model is stored as NULL, which no type or model asked for matches.
std::optional<int64_t> quantile_of(const std::vector<CallRecord>& calls, const std::string& task_type,
                                   const std::string& model, double q, size_t last_n) {
  if (task_type.empty() || model.empty()) return std::nullopt;
  std::vector<int64_t> v;
  for (auto it = calls.rbegin(); it != calls.rend() && v.size() < last_n; ++it) {
    if (it->task_type == task_type && it->model_used == model && it->outcome == "ok") {
      v.push_back(it->completion_tokens);
    }
  }
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[rank == 0 ? 0 : std::min(rank, v.size()) - 1];
}

// Call i of a mixed history: two models, three task types (one empty: stored as NULL), one call
// in seven failed, tags and projects on some.
CallRecord mixed_call(int i) {
  CallRecord c = call(i % 3 == 0 ? "m/b" : "m/a", i % 2 ? "0.000123456789012345" : "0.001");
  c.task_type = i % 5 == 0 ? "" : (i % 5 == 1 ? "chat" : "coding");
  c.outcome = i % 7 == 0 ? "error" : "ok";
  c.completion_tokens = (i * 37) % 1000;
  c.prompt_tokens = i;
  if (i % 4 == 0) c.scope.project = "p";
  if (i % 6 == 0) c.scope.tags = {{"user", "u" + std::to_string(i % 12)}};
  return c;
}

}  // namespace

namespace {

// What calls(cq) must give, from every call: the ids in range and filter, in id order.
std::vector<int64_t> ids_in(const std::vector<CallRecord>& all, const CallQuery& cq) {
  std::vector<int64_t> out;
  for (const CallRecord& c : all) {
    const bool tagged = cq.tag_key.empty() ||
                        std::find(c.scope.tags.begin(), c.scope.tags.end(),
                                  std::pair{cq.tag_key, cq.tag_value}) != c.scope.tags.end();
    if (c.at >= cq.from && (cq.to == 0 || c.at < cq.to) &&
        (cq.project.empty() || c.scope.project == cq.project) && tagged) {
      out.push_back(c.id);
    }
  }
  return out;
}

// Checks calls(), total_cost() and report() of `ledger` for `cq` against `all` (every call).
void check_query(SqliteLedger& ledger, const std::vector<CallRecord>& all, const CallQuery& cq) {
  const std::vector<int64_t> want = ids_in(all, cq);
  std::vector<int64_t> got;
  for (const CallRecord& c : ledger.calls(cq)) got.push_back(c.id);
  INFO("from " << cq.from << " to " << cq.to << " project " << cq.project << " tag " << cq.tag_key);
  REQUIRE(got == want);
  Money cost;
  for (const CallRecord& c : all) {
    if (std::find(want.begin(), want.end(), c.id) != want.end()) cost += c.cost;
  }
  REQUIRE(ledger.total_cost(cq) == cost);
  int64_t reported = 0;
  for (const orroute::ReportRow& r : ledger.report(cq, "total", "")) reported += r.calls;
  REQUIRE(reported == static_cast<int64_t>(want.size()));
}

// Checks the time filters of `ledger` against every call read without one: from or to each of
// the times of one call in 29 and of the newest 70 (and a microsecond after), and ranges between
// some of them, some for a project or a tag. (One call in 7 and a range for one pair in 15 took
// 678 s under the sanitizers on a loaded machine; the calls' times are spread by their
// index, so a sparser sample still falls on every block edge and out-of-order kind.)
void check_time_filters(SqliteLedger& ledger, orroute::TimeUs base) {
  const std::vector<CallRecord> all = ledger.calls({});
  std::vector<orroute::TimeUs> times{0, 1, base, base + 50 * orroute::test::kSec};
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 29 == 0 || i + 70 >= all.size()) {
      times.push_back(all[i].at);
      times.push_back(all[i].at + 1);
    }
  }
  for (const orroute::TimeUs t : times) {
    CallQuery from, to;
    from.from = t;
    to.to = t;
    check_query(ledger, all, from);
    if (t > 0) check_query(ledger, all, to);
  }
  for (size_t a = 0; a < times.size(); a += 5) {
    for (size_t b = 1; b < times.size(); b += 7) {
      CallQuery cq;
      cq.from = times[a];
      cq.to = times[b];
      if (b % 2) cq.project = "p";
      if (a % 4 == 0) cq.tag_key = "user", cq.tag_value = "u0";
      check_query(ledger, all, cq);
    }
  }
}

// Call i of a history whose times go mostly forward: each up to a minute before the one before
// it (a reservation settled late), one in 17 from long before, one in 23 from after the rest,
// and the last of each block of 64 ids (id i + 1 in a fresh ledger) later still.
CallRecord call_at(int i, orroute::TimeUs base) {
  CallRecord c = call("m", "0.001");
  c.at = base + i * orroute::test::kSec / 10 - (i * 7919 % 600) * orroute::test::kSec / 10;
  if (i % 17 == 0) c.at = base - 86'400 * orroute::test::kSec + i;
  if (i % 23 == 0) c.at = base + 86'400 * orroute::test::kSec + i;
  if (i % 64 == 62) c.at = base + 2 * 86'400 * orroute::test::kSec + i;
  if (i % 3 == 0) c.scope.project = "p";
  if (i % 5 == 0) c.scope.tags = {{"user", "u" + std::to_string(i % 2)}};
  return c;
}

}  // namespace

TEST_CASE("a schema version 4 file migrates with every call, budget and counter kept", "[ledger]") {
  using orroute::Window;
  using orroute::test::spec;
  TempLedgerFile file;
  std::vector<std::string> rows_before;
  std::vector<orroute::BudgetState> states_before;
  orroute::SpendScope in_p;
  in_p.project = "p";
  {
    SqliteLedger ledger(file.path);
    ledger.set_budget(spec("project:p", Window::kTotal, "100"));
    ledger.set_budget(spec("global", Window::kMonthly, "1000"));
    for (int i = 0; i < 400; ++i) {
      CallRecord c = mixed_call(i);
      if (i % 10 == 0) {  // some through a reservation (a lease's), as the engine books them
        const auto r = ledger.reserve(orroute::test::req("0.01", c.scope.project.c_str()));
        REQUIRE(r.status == orroute::ReserveStatus::kReserved);
        ledger.settle(r.reservation_id, c);
      } else {
        ledger.record(c);
      }
    }
    rows_before = rows_of(ledger);
    states_before = ledger.budget_states(in_p, 0, true);
  }
  REQUIRE(orroute::test::exec_on_file(file.path, kUndoSchema5) == SQLITE_OK);
  const char* const has_old_index =
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'";
  REQUIRE(orroute::test::int_on_file(file.path, "SELECT MAX(version) FROM schema_version") == 4);
  REQUIRE(orroute::test::int_on_file(file.path, has_old_index) == 2);

  SqliteLedger ledger(file.path);
  REQUIRE(ledger.schema_version() == 7);
  CHECK(orroute::test::int_on_file(file.path, has_old_index) == 0);
  CHECK(rows_of(ledger) == rows_before);
  const auto states = ledger.budget_states(in_p, 0, true);
  REQUIRE(states.size() == states_before.size());
  for (size_t i = 0; i < states.size(); ++i) {
    CHECK(states[i].budget.id == states_before[i].budget.id);
    CHECK(states[i].budget.limit == states_before[i].budget.limit);
    CHECK(states[i].spent == states_before[i].spent);
    CHECK(states[i].reserved == states_before[i].reserved);
  }
  // The completions table is left to its first reader (not built under the migration's lock),
  // which indexes every 'ok' call with a type and a model.
  CHECK(orroute::test::int_on_file(file.path, "SELECT completions_through FROM state") == 0);
  auto calls = ledger.calls({});
  for (const char* type : {"chat", "coding", ""}) {
    for (const char* model : {"m/a", "m/b"}) {
      for (const double q : {0.0, 0.5, 0.9, 1.0}) {
        CHECK(ledger.completion_quantile(type, model, q, 25) == quantile_of(calls, type, model, q, 25));
        CHECK(ledger.completion_quantile(type, model, q, 1000) == quantile_of(calls, type, model, q, 1000));
      }
    }
  }
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM ok_completions") ==
        orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls WHERE outcome = 'ok' AND "
                                              "task_type IS NOT NULL AND model_used IS NOT NULL"));
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks") == 401 / 64);
  check_time_filters(ledger, 0);
  // And the file goes on: new calls are booked against the kept counters and read back.
  CallRecord more = mixed_call(1);
  more.scope.project = "p";
  ledger.record(more);
  const auto after = ledger.budget_states(in_p, 0, true);
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].spent == states_before[i].spent + more.cost);
  calls = ledger.calls({});
  CHECK(ledger.completion_quantile("chat", "m/a", 1.0, 1) == quantile_of(calls, "chat", "m/a", 1.0, 1));
}

TEST_CASE("a schema version 4 file's blocks are its complete blocks of 64 ids that hold calls",
          "[ledger]") {
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  const auto [calls, deleted, blocks] = GENERATE(table<int, const char*, int64_t>({
      {0, "", 0}, {62, "", 0}, {63, "", 1}, {200, "", 3},  // ids from 1: block 0 holds 63
      {200, "DELETE FROM calls WHERE id BETWEEN 64 AND 127", 2}}));
  TempLedgerFile file;
  {
    SqliteLedger ledger(file.path);
    for (int i = 0; i < calls; ++i) ledger.record(call_at(i, base));
  }
  REQUIRE(orroute::test::exec_on_file(file.path, kUndoSchema5) == SQLITE_OK);
  if (*deleted) REQUIRE(orroute::test::exec_on_file(file.path, deleted) == SQLITE_OK);
  SqliteLedger ledger(file.path);
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks") == blocks);
  check_time_filters(ledger, base);
}

TEST_CASE("a schema version 4 file's blocks are built a batch a transaction, and resumed after a stop",
          "[ledger]") {
  using orroute::test::exec_on_file;
  using orroute::test::int_on_file;
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  TempLedgerFile file;
  {
    SqliteLedger ledger(file.path);
    for (int i = 0; i < 3000; ++i) ledger.record(call_at(i, base));  // ids 1-3000: blocks 0-45
  }
  REQUIRE(exec_on_file(file.path, kUndoSchema5) == SQLITE_OK);
  // Blocks 30-39 emptied by hand: more than a batch for the build to skip.
  REQUIRE(exec_on_file(file.path, "DELETE FROM calls WHERE id BETWEEN 30 * 64 AND 40 * 64 - 1") ==
          SQLITE_OK);
  // The transaction that reaches block 20 fails: the migration stops there.
  REQUIRE(exec_on_file(file.path,
                       "CREATE TABLE calls_blocks_building(block INTEGER PRIMARY KEY, first_id INTEGER "
                       "NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL); "
                       "CREATE TRIGGER stop AFTER INSERT ON calls_blocks_building WHEN NEW.block = 20 "
                       "BEGIN SELECT RAISE(ABORT, 'stopped at block 20'); END") == SQLITE_OK);
  orroute::SqliteLedgerOptions options;
  options.migration_batch_calls = 4 * 64;
  REQUIRE_THROWS_WITH(SqliteLedger(file.path, options), Catch::Contains("stopped at block 20"));
  // The five batches before it stay, each committed; the file is still schema 4's, whose
  // indexes an older orroute reads, and which it writes: 200 calls more, blocks 46-49.
  CHECK(int_on_file(file.path, "SELECT MAX(version) FROM schema_version") == 4);
  CHECK(int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks_building") == 20);
  REQUIRE(exec_on_file(file.path,
                       "DROP TRIGGER stop; INSERT INTO calls(ts, prompt_tokens, completion_tokens, "
                       "cached_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, cost_attos, "
                       "outcome, attempts) SELECT ts + 1, 1, 1, 0, 0, 0, 1000, 0, 'ok', 1 FROM calls "
                       "WHERE id <= 200") == SQLITE_OK);

  SqliteLedger ledger(file.path, options);
  REQUIRE(ledger.schema_version() == 7);
  CHECK(int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks") == 50 - 10);
  CHECK(int_on_file(file.path,
                    "SELECT COUNT(*) FROM calls_blocks b WHERE "
                    "first_id != (SELECT MIN(id) FROM calls WHERE id >> 6 = b.block) OR "
                    "min_ts != (SELECT MIN(ts) FROM calls WHERE id >> 6 = b.block) OR "
                    "max_ts != (SELECT MAX(ts) FROM calls WHERE id >> 6 = b.block)") == 0);
  check_time_filters(ledger, base);
}

TEST_CASE("opening a file another process is migrating waits for its lock past the busy timeout",
          "[ledger]") {
  TempLedgerFile file;
  {
    SqliteLedger ledger(file.path);
    for (int i = 0; i < 200; ++i) ledger.record(call("m", "0.001"));
  }
  REQUIRE(orroute::test::exec_on_file(file.path, kUndoSchema5) == SQLITE_OK);
  // Another process's first batch committed, and the lock held as its index drop holds it:
  // 300 ms here, six times the opener's busy timeout.
  REQUIRE(orroute::test::exec_on_file(
              file.path, "CREATE TABLE calls_blocks_building(block INTEGER PRIMARY KEY, first_id "
                         "INTEGER NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL)") ==
          SQLITE_OK);
  sqlite3* migrator = nullptr;
  REQUIRE(sqlite3_open_v2(file.path.c_str(), &migrator, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(migrator, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  std::thread release([migrator] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(migrator, "COMMIT", nullptr, nullptr, nullptr);
  });
  orroute::SqliteLedgerOptions options;
  options.busy_timeout_ms = 50;
  std::optional<SqliteLedger> opened;
  CHECK_NOTHROW(opened.emplace(file.path, options));
  release.join();
  REQUIRE(opened.has_value());
  CHECK(opened->schema_version() == 7);
  CHECK(opened->calls({}).size() == 200);
  // Once the file is migrated, its writes wait for the busy timeout again.
  REQUIRE(sqlite3_exec(migrator, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK_THROWS_WITH(opened->record(call("m", "0.001")), Catch::Contains("locked"));
  sqlite3_exec(migrator, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(migrator);
}

TEST_CASE("the completion quantile reads every call recorded before it, by any connection", "[ledger]") {
  TempLedgerFile file;
  SqliteLedger writer(file.path);
  SqliteLedger reader(file.path);
  std::vector<CallRecord> written;
  int i = 0;
  const auto record = [&](int n) {
    for (int end = i + n; i < end; ++i) {
      CallRecord c = mixed_call(i);
      writer.record(c);
      written.push_back(c);
    }
  };
  const auto check_all = [&] {
    for (const char* type : {"chat", "coding"}) {
      for (const char* model : {"m/a", "m/b"}) {
        for (const double q : {0.0, 0.5, 1.0}) {
          CHECK(reader.completion_quantile(type, model, q, 100000) ==
                quantile_of(written, type, model, q, 100000));
          CHECK(reader.completion_quantile(type, model, q, 3) == quantile_of(written, type, model, q, 3));
        }
      }
    }
  };
  REQUIRE_FALSE(reader.completion_quantile("chat", "m/a", 0.5, 10).has_value());
  record(1);
  check_all();
  // More calls than one catch-up transaction takes (kCompletionsPerTxn, 10,000): read in two.
  record(10'050);
  check_all();
  record(7);
  check_all();
  CHECK(orroute::test::int_on_file(file.path, "SELECT completions_through FROM state") ==
        orroute::test::int_on_file(file.path, "SELECT MAX(id) FROM calls"));
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM ok_completions") ==
        orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls WHERE outcome = 'ok' AND "
                                              "task_type IS NOT NULL"));
}

TEST_CASE("time filters find every call in range whatever the order of the calls' times", "[ledger]") {
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  // 300 calls: four blocks of 64 ids complete, the rest after them.
  for (int i = 0; i < 300; ++i) ledger.record(call_at(i, base));
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks") == 4);
  check_time_filters(ledger, base);
  // Calls that came in without their blocks written (an older orroute on the file, or SQL):
  // the next call to complete a block writes every block before it.
  REQUIRE(orroute::test::exec_on_file(
              file.path,
              "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) "
              "INSERT INTO calls(ts, prompt_tokens, completion_tokens, cached_tokens, "
              "cache_write_tokens, reasoning_tokens, cost_nanos, cost_attos, outcome, attempts) "
              "SELECT 1706745540000000 - (i % 13) * 40000000000, 0, 0, 0, 0, 0, 1000000, 0, 'ok', 1 "
              "FROM n") == SQLITE_OK);
  check_time_filters(ledger, base);  // 400 calls, the last 144 after the last block
  for (int i = 400; i < 520; ++i) ledger.record(call_at(i, base));
  // Block 6 (ids 384-447) spans every id after block 3, read from the rows; block 7 is this
  // connection's calls alone.
  CHECK(orroute::test::int_on_file(file.path, "SELECT COUNT(*) FROM calls_blocks") == 6);
  CHECK(orroute::test::int_on_file(file.path, "SELECT first_id FROM calls_blocks WHERE block = 6") == 256);
  CHECK(orroute::test::int_on_file(file.path, "SELECT first_id FROM calls_blocks WHERE block = 7") == 448);
  check_time_filters(ledger, base);
}

TEST_CASE("calls deleted by hand leave their ids unused: time filters and the quantile stay exact",
          "[ledger]") {
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  TempLedgerFile file;
  SqliteLedger ledger(file.path);
  std::vector<CallRecord> kept;
  const auto record = [&](SqliteLedger& by, int i, orroute::TimeUs at) {
    CallRecord c = mixed_call(i);
    c.at = at;
    c.id = by.record(c).call_id;
    kept.push_back(c);
    return c.id;
  };
  for (int i = 0; i < 200; ++i) record(ledger, i, call_at(i, base).at);  // ids 1-200, blocks 0-2
  REQUIRE(ledger.completion_quantile("chat", "m/a", 0.5, 1000).has_value());  // indexed to 200
  // The newest calls deleted by hand, their tags left: ids 151-191 were in block 2, whose span
  // of times was theirs, and the quantile's index names them.
  REQUIRE(orroute::test::exec_on_file(file.path, "DELETE FROM calls WHERE id > 150") == SQLITE_OK);
  kept.resize(150);
  SqliteLedger other(file.path);
  for (int i = 200; i < 330; ++i) {  // after every earlier call, by two connections in turn
    const orroute::TimeUs at = base + 10 * 86'400 * orroute::test::kSec + i * orroute::test::kSec;
    // before: ids 151, 152..., outside block 2's span, and its insert failed at id 191
    CHECK(record(i % 40 < 20 ? ledger : other, i, at) > 200);
  }
  REQUIRE(ledger.calls({}).size() == kept.size());
  check_time_filters(ledger, base);
  CallQuery newest;
  newest.from = base + 10 * 86'400 * orroute::test::kSec;
  CHECK(ledger.calls(newest).size() == 130);
  for (const char* type : {"chat", "coding"}) {
    for (const char* model : {"m/a", "m/b"}) {
      for (const double q : {0.0, 0.5, 1.0}) {
        CHECK(other.completion_quantile(type, model, q, 1000) == quantile_of(kept, type, model, q, 1000));
        CHECK(other.completion_quantile(type, model, q, 20) == quantile_of(kept, type, model, q, 20));
      }
    }
  }
}

TEST_CASE("time filters stay exact with connections taking turns and transactions rolled back",
          "[ledger]") {
  using orroute::test::kSec;
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  TempLedgerFile file;
  SqliteLedger a(file.path), b(file.path);
  int i = 0;
  // Turns of 1 to 70 calls: a block of 64 ids is one connection's calls, or both's.
  for (int turn = 0; turn < 40; ++turn) {
    SqliteLedger& by = turn % 2 ? b : a;
    for (int k = 0; k < (turn * 11) % 70 + 1; ++k) by.record(call_at(i++, base));
  }
  check_time_filters(a, base);
  // A call whose transaction rolls back after its row went in (the alert it fires cannot be
  // written), the first of a block: the next call, the other connection's, is given its id;
  // then this connection's calls complete the block.
  const auto complete_block = [&](SqliteLedger& by) {
    while (orroute::test::int_on_file(file.path, "SELECT MAX(id) FROM calls") % 64 != 63) {
      by.record(call_at(i++, base));
    }
  };
  complete_block(a);
  REQUIRE(orroute::test::exec_on_file(file.path, "CREATE TRIGGER no_alerts BEFORE INSERT ON alerts "
                                                 "BEGIN SELECT RAISE(ABORT, 'no alerts'); END") ==
          SQLITE_OK);
  a.set_budget(orroute::test::spec("global", orroute::Window::kTotal, "1"));
  const int64_t next_id = orroute::test::int_on_file(file.path, "SELECT MAX(id) + 1 FROM calls");
  CallRecord crossing = call_at(i, base);
  crossing.cost = Money::parse("2");
  REQUIRE_THROWS(a.record(crossing));
  REQUIRE(orroute::test::exec_on_file(file.path, "DROP TRIGGER no_alerts") == SQLITE_OK);
  CallRecord late = call_at(i++, base);
  late.at = base + 3 * 86'400 * kSec;  // after every other call
  REQUIRE(b.record(late).call_id == next_id);
  complete_block(a);
  check_time_filters(a, base);
}

TEST_CASE("a budget window made after its calls counts every call in it", "[ledger][budget]") {
  using orroute::Window;
  const orroute::TimeUs base = orroute::test::kJan31_2359;
  SqliteLedger ledger(":memory:");
  for (int i = 0; i < 1000; ++i) ledger.record(call_at(i, base));
  const std::vector<CallRecord> all = ledger.calls({});
  // Daily windows of a budget set now: each is counted from the rows when first read.
  ledger.set_budget(orroute::test::spec("project:p", Window::kDaily, "1000"));
  for (const orroute::TimeUs at : {base - 86'400 * orroute::test::kSec, base, base + 60 * orroute::test::kSec,
                                   base + 86'400 * orroute::test::kSec}) {
    orroute::SpendScope p;
    p.project = "p";
    const auto states = ledger.budget_states(p, at, false);
    REQUIRE(states.size() == 1);
    Money want;
    for (const CallRecord& c : all) {
      if (c.scope.project == "p" && c.at >= states[0].window_start && c.at < states[0].window_end) {
        want += c.cost;
      }
    }
    INFO("window " << states[0].window_start);
    CHECK(states[0].spent == want);
  }
}

TEST_CASE("a failing call in a group-committed batch rolls back alone", "[ledger]") {
  SqliteLedger ledger(":memory:");
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        CallRecord c = call("m", "0.001");
        c.task_id = std::to_string(t);
        if (i % 10 == 0) c.completion_tokens = -1;  // rejected inside the batch
        try {
          ledger.record(c);
        } catch (const orroute::InvalidArgument&) {
          ++failed;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(failed == 6 * 20);
  REQUIRE(ledger.calls({}).size() == 6 * 180);
  REQUIRE(ledger.total_cost({}) == Money::parse("0.001") * (6 * 180));
}
