#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/ledger.h"
#include "orroute/route/attempt_loop.h"

namespace orroute {

// Reservations through the BudgetGuard (cutoff, approval hook, atomic check-and-reserve).
class LedgerGate final : public BudgetGate {
 public:
  LedgerGate(BudgetGuard& guard, SpendScope scope, std::string task_id, std::string task_type,
             const ModelCatalog& catalog, const PriceBook& prices, int64_t prompt_tokens,
             int64_t max_tokens)
      : guard_(guard), scope_(std::move(scope)), task_id_(std::move(task_id)),
        task_type_(std::move(task_type)), catalog_(catalog), prices_(prices),
        prompt_tokens_(prompt_tokens), max_tokens_(max_tokens) {}

  Hold reserve(const std::string& model, Money worst_case) override;

  // Several providers: the name of the engine's own endpoint, tagged on the calls it served.
  void set_routed_as(std::string provider) { routed_as_ = std::move(provider); }

  // Adds the tag "provider" = where a candidate runs (several providers only).
  void tag_provider(SpendScope& scope, const std::string& provider) const;

  // The model's author as the catalog names it ("openai" for "openai/gpt-4o"); "" if none.
  std::string author_of(const std::string& model) const;

  void settle(uint64_t id, Money actual, const CallInfo& info) override;

  void release(uint64_t id) override;

  // The alerts settled calls crossed, once each.
  std::vector<Alert> take_alerts();

 private:
  BudgetGuard& guard_;
  SpendScope scope_;
  std::string task_id_, task_type_;
  const ModelCatalog& catalog_;
  const PriceBook& prices_;
  int64_t prompt_tokens_, max_tokens_;
  std::unordered_map<uint64_t, Money> estimates_;  // touched by one run's steps, never concurrently
  std::mutex mu_;
  std::vector<Alert> alerts_;
  std::string routed_as_;
};

}  // namespace orroute
