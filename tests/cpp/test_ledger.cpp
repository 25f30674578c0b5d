#include <catch2/catch.hpp>

#include <atomic>
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
  for (int i = 1; i <= 5000; ++i) {
    CallRecord c = call("m/a", "0");
    c.cost = price * i;
    expected += c.cost;
    ledger.record(c);
  }
  CallRecord neg = call("m/b", "-0.000000000000000007");  // a refund below one nano-dollar
  neg.outcome = std::string(kRefundOutcome);
  ledger.record(neg);
  expected += neg.cost;
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

// A negative cost lowers a budget's spend: only a row named a refund may carry one, on every
// path that writes a call (record, settle of a reservation or of a lease's, a batch).
TEST_CASE("a negative cost is refused unless the row is a refund", "[ledger]") {
  for (const bool leases : {false, true}) {
    SqliteLedger ledger(":memory:", SqliteLedgerOptions{.leases = leases});
    BudgetSpec budget;
    budget.limit = Money::parse("1");
    ledger.set_budget(budget);
    ledger.record(call("m", "0.5"));
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
    ledger.record(negative);
    REQUIRE(ledger.budget_states({}, 0, false).at(0).spent == Money::parse("0.1"));
  }
}

TEST_CASE("ledger file survives reopening and records its schema version", "[ledger]") {
  TempLedgerFile file;
  {
    SqliteLedger ledger(file.path);
    REQUIRE(ledger.schema_version() == 4);
    ledger.record(call("m", "0.5"));
  }
  SqliteLedger again(file.path);
  REQUIRE(again.schema_version() == 4);
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
  REQUIRE(orroute::test::exec_on_file(file.path, "ALTER TABLE state DROP COLUMN last_budget_id; "
                                                 "DELETE FROM schema_version WHERE version = 4") ==
          SQLITE_OK);
  SqliteLedger ledger(file.path);
  REQUIRE(ledger.schema_version() == 4);
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
