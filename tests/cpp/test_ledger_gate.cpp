// LedgerGate: one run's reservations through the engine's budget guard.
#include <catch2/catch.hpp>

#include <memory>

#include "orroute/catalog/catalog.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/prepaid.h"
#include "orroute/cost/sqlite_ledger.h"
#include "orroute/cost/window.h"
#include "orroute/engine/ledger_gate.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

// Every model at $1 a call.
class DollarPrices final : public PriceBook {
 public:
  std::optional<Money> worst_case(const std::string&, int64_t, int64_t) const override {
    return Money::dollars(1);
  }
  Charge actual(const std::string&, const AttemptResult&, Money reserved) const override {
    return reserved_charge(reserved);
  }
  std::optional<int64_t> context_length(const std::string&) const override { return std::nullopt; }
};

}  // namespace

TEST_CASE("a run that outlives its engine gives its share back through the ledger it keeps",
          "[ledger_gate]") {
  TempLedgerFile file;
  const ModelCatalog catalog = ModelCatalog::from_json(R"({"data": []})");
  const DollarPrices prices;
  auto prepaid = std::make_shared<Prepaid>(2);
  std::shared_ptr<LedgerGate> late;
  std::weak_ptr<Ledger> watch;
  {
    // The engine's part: its ledger and guard (made as Engine makes them), dropped when it goes.
    auto ledger = std::make_shared<SqliteLedger>(file.path);
    watch = ledger;
    auto guard = std::make_shared<BudgetGuard>(ledger);
    auto gate = [&] {
      return std::make_shared<LedgerGate>(guard, SpendScope{"p", "", {}}, "task", "chat", catalog, prices, 10, 10);
    };
    auto first = gate();
    first->set_prepaid(prepaid);
    const BudgetGate::Hold hold = first->reserve("m/a", Money::dollars(1));  // reserves both shares
    REQUIRE(hold.ok);
    first->release(hold.id);
    late = gate();  // its run never reserves before the engine goes
    late->set_prepaid(prepaid);
  }
  REQUIRE_FALSE(watch.expired());  // the run keeps what it gives its share back through
  late.reset();                    // gives the second share back
  CHECK(watch.expired());
  SqliteLedger reopened(file.path);
  CHECK(reopened.live_reservations().first == 0);
}

TEST_CASE("an attempt with no time limit keeps its reservation until it ends", "[ledger_gate]") {
  // A timeout of "no limit" (the manager's timeout=inf: total_ms 0) made hold_for(0) hold the
  // reservation for the usual 15 minutes only: an upstream answering after that found it
  // reclaimed as expired, and its room already spent by other calls.
  const bool leases = GENERATE(false, true);
  TempLedgerFile file;  // leases need a file's sidecar
  auto ledger = std::make_shared<SqliteLedger>(file.path, SqliteLedgerOptions{.leases = leases});
  ledger->set_budget(spec("global", Window::kTotal, "1.5"));
  auto guard = std::make_shared<BudgetGuard>(ledger);
  const ModelCatalog catalog = ModelCatalog::from_json(R"({"data": []})");
  const DollarPrices prices;
  LedgerGate gate(guard, SpendScope{}, "task", "chat", catalog, prices, 10, 10);
  gate.hold_for(0);
  const BudgetGate::Hold hold = gate.reserve("m/a", Money::dollars(1));
  REQUIRE(hold.ok);
  const TimeUs a_day_later = now_us() + 24LL * 3600 * kSec;  // the attempt still running
  CHECK(ledger->reclaim(a_day_later) == 0);
  CHECK(ledger->reserve(req("1", "", a_day_later)).status == ReserveStatus::kExceeded);
}
