// The policy layer over a Ledger that the router engine calls before every request: emergency
// cutoff, the approval hook for expensive calls, then the atomic check-and-reserve. Refusals the
// caller cannot route around become exceptions; "downgrade" refusals stay values so the selector
// can pick a cheaper model that fits ReserveOutcome::remaining.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "orroute/cost/ledger.h"

namespace orroute {

// What the approval hook is asked about.
struct ApprovalRequest {
  Money estimate;
  SpendScope scope;
  std::string model;
  std::string task_id;
};
// Returns true to allow the call. May throw; the exception propagates out of reserve().
using ApprovalHook = std::function<bool(const ApprovalRequest&)>;

// Thread-safe. The hook is called without any lock held.
class BudgetGuard {
 public:
  // `ledger` must outlive the guard.
  explicit BudgetGuard(Ledger& ledger) : ledger_(ledger) {}
  // A guard that keeps `ledger` (not null) alive: the engine's, which the runs it starts hold
  // and may outlive it (a run gives back what it holds through the guard when it goes).
  explicit BudgetGuard(std::shared_ptr<Ledger> ledger) : owned_(std::move(ledger)), ledger_(*owned_) {}

  // Calls estimated strictly above `above` need `hook` to return true. nullopt removes the hook.
  void set_approval(std::optional<Money> above, ApprovalHook hook);
  std::optional<Money> approval_threshold() const;
  // Whether a call estimated at `amount` needs the hook's approval.
  bool needs_approval(Money amount) const;

  // kReserved: go ahead (settle or release reservation_id afterwards).
  // kExceeded (returned only for downgrade budgets): pick a model costing at most `remaining`.
  // Throws EmergencyCutoff, ApprovalDenied, or BudgetExceeded (refuse budgets).
  // `approved`: the hook already allowed this call (a retry of an approved call) and is not asked.
  ReserveOutcome reserve(const ReserveRequest& request, bool approved = false);
  // reserve() when it can be decided without waiting (no approval needed and the ledger can
  // answer locally, see Ledger::try_reserve_local); nullopt otherwise. Same results and throws.
  std::optional<ReserveOutcome> try_reserve_local(const ReserveRequest& request);

  Ledger& ledger() { return ledger_; }

 private:
  std::shared_ptr<Ledger> owned_;  // null for a guard over a ledger owned elsewhere
  Ledger& ledger_;
  mutable std::mutex mu_;
  std::optional<Money> approval_above_;
  ApprovalHook hook_;
};

}  // namespace orroute
