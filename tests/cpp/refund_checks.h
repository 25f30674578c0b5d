// The refund rule, checked on any Ledger (test_ledger_late_settle.cpp for SQLite,
// test_redis_ledger.cpp for Redis): both backends apply the core's refund_of.
#pragma once

#include <catch2/catch.hpp>

#include <vector>

#include "ledger_test_util.h"
#include "orroute/cost/ledger.h"

namespace orroute::test {

// A provider refunds a call: a refund names the recorded call, gives back at most what it cost
// less its earlier refunds, and is booked at its time and scope (the windows its cost went to).
// Until session 27 a refund was bounded only by what each budget it matched had spent in its
// window: one in a project without a budget of its own reopened the global budget by what other
// projects spent. `ledger` is empty.
inline void check_refunds_name_their_call(Ledger& ledger) {
  ledger.set_budget(spec("global", Window::kTotal, "1"));
  CallRecord b_call = call("m/a", "0.5");
  b_call.scope.project = "b";
  const int64_t b = ledger.record(b_call).call_id;
  CallRecord a_call = call("m/a", "0.1");
  a_call.scope.project = "a";
  a_call.task_id = "t-a";
  const int64_t a = ledger.record(a_call).call_id;
  auto spent = [&] { return ledger.budget_states({}, 0, false).at(0).spent; };
  REQUIRE(spent() == Money::parse("0.6"));
  // Project a's call cost 0.1: a refund of 0.4 for it would reopen what project b spent.
  REQUIRE_THROWS_WITH(record_refund(ledger, a, call("", "0.4")), Catch::Contains("left to give back"));
  CHECK(ledger.calls({}).size() == 2);  // nothing written
  const SettleOutcome first = record_refund(ledger, a, call("", "0.06"));
  CHECK(spent() == Money::parse("0.54"));
  CHECK_THROWS_WITH(record_refund(ledger, a, call("", "0.05")), Catch::Contains("$0.04"));  // what is left
  record_refund(ledger, a, call("", "0.04"));
  CHECK(spent() == Money::parse("0.5"));
  const std::vector<CallRecord> rows = ledger.calls({});
  REQUIRE(rows.size() == 4);
  const CallRecord& refund = rows[2];  // booked as its call was: time, scope, model, task
  CHECK(refund.id == first.call_id);
  CHECK(refund.outcome == kRefundOutcome);
  CHECK(refund.cost == Money::parse("-0.06"));
  CHECK(refund.at == rows[1].at);
  CHECK(refund.scope.project == "a");
  CHECK(refund.model_used == "m/a");
  CHECK(refund.task_id == "t-a");
  CHECK_THROWS_AS(record_refund(ledger, first.call_id, call("", "0.01")), InvalidArgument);  // a refund
  CHECK_THROWS_AS(record_refund(ledger, 999'999, call("", "0.01")), InvalidArgument);  // no such call
  CallRecord elsewhere = call("", "0.01");
  elsewhere.scope.project = "c";
  CHECK_THROWS_AS(record_refund(ledger, b, elsewhere), InvalidArgument);  // the call's scope
  CHECK_THROWS_AS(record_refund(ledger, b, call("", "0")), InvalidArgument);  // an amount, > 0
  CallRecord as_refund = call("m", "-0.1");
  as_refund.outcome = std::string(kRefundOutcome);
  CHECK_THROWS_AS(ledger.record(as_refund), InvalidArgument);  // only record_refund books one
  CHECK(spent() == Money::parse("0.5"));
  CHECK(ledger.total_cost({}) == Money::parse("0.5"));
}

}  // namespace orroute::test
