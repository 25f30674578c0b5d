#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/ledger.h"
#include "orroute/cost/prepaid.h"
#include "orroute/engine/settle_worker.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/seconds.h"

namespace orroute {

// Reservations through the BudgetGuard (cutoff, approval hook, atomic check-and-reserve).
// settle() only records what to write; commit() writes it, on the settle worker when there is one
// (off the network thread, batched with other runs' settles), and then finishes the run.
// The gate holds its guard (and so the ledger, see BudgetGuard): a run may outlive its engine,
// and what it still holds is given back when its gate goes. `catalog` and `prices` are read only
// while the run runs.
class LedgerGate final : public BudgetGate, public std::enable_shared_from_this<LedgerGate> {
 public:
  LedgerGate(std::shared_ptr<BudgetGuard> guard, SpendScope scope, std::string task_id, std::string task_type,
             const ModelCatalog& catalog, const PriceBook& prices, int64_t prompt_tokens,
             int64_t max_tokens)
      : guard_(std::move(guard)), scope_(std::move(scope)), task_id_(std::move(task_id)),
        task_type_(std::move(task_type)), catalog_(catalog), prices_(prices),
        prompt_tokens_(prompt_tokens), max_tokens_(max_tokens), caller_(std::this_thread::get_id()) {}
  ~LedgerGate() override;

  Hold reserve(const std::string& model, Money worst_case) override;

  // An attempt may last `longest_ms` (its timeout or stream deadline): its reservation is held
  // that long plus the usual ttl (admission waits, settling), never reclaimed as expired while
  // the call may still run and spend. 0: no time limit, so it is held for kMaxSeconds (a dead
  // process's reservations are still reclaimed at once).
  void hold_for(int64_t longest_ms) {
    hold_us_ = ReserveRequest{}.ttl_us +
               (longest_ms > 0 ? longest_ms * 1000 : static_cast<int64_t>(kMaxSeconds) * 1'000'000);
  }

  // Several providers: the name of the engine's own endpoint, tagged on the calls it served.
  void set_routed_as(std::string provider) { routed_as_ = std::move(provider); }

  // The run's first reservation is its share of `prepaid` (null: none; cost/prepaid.h), settled
  // or released as any; a run that never draws its share gives it back when the gate goes.
  void set_prepaid(std::shared_ptr<Prepaid> prepaid) { prepaid_ = std::move(prepaid); }

  // Adds the tag "provider" = where a candidate runs (several providers only).
  void tag_provider(SpendScope& scope, const std::string& provider) const;

  // The model's author as the catalog names it ("openai" for "openai/gpt-4o"); "" if none.
  std::string author_of(const std::string& model) const;

  // Keeps the call's row for commit(); writes nothing yet. Must not throw (allocation aside).
  void settle(uint64_t id, Money actual, const CallInfo& info) override;

  // Writes the settles kept by settle() (through `worker`, or on this thread when it is null),
  // then runs `then` (on the worker's thread, or this one when there was nothing to write). A
  // settle that fails leaves its reservation held until its TTL (the call was billed).
  // take_alerts() then has what they crossed. The gate must be owned by a shared_ptr.
  void commit(SettleWorker* worker, std::function<void()> then);

  void release(uint64_t id) override;

  // The alerts settled calls crossed, once each.
  std::vector<Alert> take_alerts();

 private:
  std::shared_ptr<BudgetGuard> guard_;  // not null
  SpendScope scope_;
  std::string task_id_, task_type_;
  const ModelCatalog& catalog_;
  const PriceBook& prices_;
  int64_t prompt_tokens_, max_tokens_;
  // The approval hook may wait for a human: it is asked only on the thread that started the run,
  // never on the network thread (a retry or fallback), where it would stall every call in flight.
  std::thread::id caller_;
  // Touched by one run's steps, never concurrently:
  std::unordered_map<uint64_t, Money> estimates_;
  std::unordered_map<std::string, Money> approved_;  // the largest amount approved per model
  int64_t hold_us_ = ReserveRequest{}.ttl_us;  // each reservation's ttl (hold_for)
  std::shared_ptr<Prepaid> prepaid_;
  bool prepaid_tried_ = false;  // the run's first reservation asked prepaid_ (drew or gave back its share)
  std::mutex mu_;
  std::vector<Alert> alerts_;
  std::vector<SettleItem> pending_;  // kept by settle() for commit()
  std::string routed_as_;
};

}  // namespace orroute
