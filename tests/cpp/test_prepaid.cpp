// Prepaid: the n reservations of the gateway's n choices, all or none, one drawn per run.
#include <catch2/catch.hpp>

#include "orroute/cost/budget_guard.h"
#include "orroute/cost/prepaid.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

ReserveRequest at_provider(const char* amount, const char* provider) {
  ReserveRequest r = req(amount, "p");
  r.model = "m/a";
  r.scope.tags = {{"provider", provider}};
  return r;
}

}  // namespace

TEST_CASE("a run in another scope than the first run's draws no share and gives its own back at once",
          "[prepaid]") {
  SqliteLedger ledger(":memory:");
  BudgetGuard guard(ledger);
  Prepaid prepaid(2);
  const auto first = prepaid.draw(guard, at_provider("1", "openrouter"), false);
  REQUIRE(first);
  REQUIRE(first->status == ReserveStatus::kReserved);
  REQUIRE(ledger.live_reservations().first == 2);
  // Balanced to another provider: the share reserved under "openrouter" would book its call
  // there (a settle keeps its reservation's scope).
  REQUIRE_FALSE(prepaid.draw(guard, at_provider("1", "anthropic"), false));
  REQUIRE(ledger.live_reservations().first == 1);  // not held beside the run's own reservation
  REQUIRE(ledger.release(first->reservation_id));  // the one left is the first run's
}
