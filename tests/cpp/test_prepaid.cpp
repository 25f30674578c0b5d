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

TEST_CASE("a refusal of the n is told for the n together, as the budget stood before any of them",
          "[prepaid]") {
  SqliteLedger ledger(":memory:");
  BudgetGuard guard(ledger);
  SECTION("a refusing budget: its error names the n, each one's worst case and their total") {
    ledger.set_budget(spec("project:p", Window::kTotal, "2.5"));
    Prepaid prepaid(3);
    try {
      prepaid.draw(guard, at_provider("1", "openrouter"), false);
      FAIL("no throw");
    } catch (const BudgetExceeded& e) {
      CHECK(e.estimate == Money::dollars(3));
      CHECK(e.reserved == Money());  // not the two taken before the third was refused
      CHECK(e.remaining == Money::parse("2.5"));
      CHECK(std::string(e.what()).find("3 completions reserved together (all or none, up to $1 each) up to $3") !=
            std::string::npos);
    }
  }
  SECTION("a downgrading budget: what remains before any of them") {
    ledger.set_budget(spec("project:p", Window::kTotal, "2.5", Policy::kDowngrade));
    Prepaid prepaid(3);
    const auto refused = prepaid.draw(guard, at_provider("1", "openrouter"), false);
    REQUIRE(refused);
    CHECK(refused->status == ReserveStatus::kExceeded);
    CHECK(*refused->remaining == Money::parse("2.5"));
    CHECK(refused->blocking->reserved == Money());
  }
  CHECK(ledger.live_reservations().first == 0);
}
