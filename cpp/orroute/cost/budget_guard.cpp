#include "orroute/cost/budget_guard.h"

namespace orroute {

void BudgetGuard::set_approval(std::optional<Money> above, ApprovalHook hook) {
  if (above && above->is_negative()) throw InvalidArgument("approval threshold must be >= 0");
  std::lock_guard lock(mu_);
  approval_above_ = above;
  hook_ = above ? std::move(hook) : ApprovalHook();
}

std::optional<Money> BudgetGuard::approval_threshold() const {
  std::lock_guard lock(mu_);
  return approval_above_;
}

bool BudgetGuard::needs_approval(Money amount) const {
  std::lock_guard lock(mu_);
  return approval_above_ && amount > *approval_above_;
}

std::optional<ReserveOutcome> BudgetGuard::try_reserve_local(const ReserveRequest& request) {
  if (needs_approval(request.amount)) return std::nullopt;
  std::optional<ReserveOutcome> out = ledger_.try_reserve_local(request);
  if (out && out->status == ReserveStatus::kCutoff) {
    throw EmergencyCutoff("emergency cutoff engaged: " + out->cutoff_reason);
  }
  if (out && out->status == ReserveStatus::kExceeded) return std::nullopt;  // let reserve() decide
  return out;
}

ReserveOutcome BudgetGuard::reserve(const ReserveRequest& request, bool approved) {
  // A cutoff wins over everything: don't bother a human for a call that cannot run anyway.
  if (auto reason = ledger_.cutoff()) throw EmergencyCutoff("emergency cutoff engaged: " + *reason);
  ApprovalHook hook;
  {
    std::lock_guard lock(mu_);
    if (!approved && approval_above_ && request.amount > *approval_above_) {
      hook = hook_;
      if (!hook) throw ApprovalDenied("no approval hook for a call above the approval amount");
    }
  }
  if (hook && !hook(ApprovalRequest{request.amount, request.scope, request.model, request.task_id})) {
    throw ApprovalDenied("approval hook refused a call estimated at $" + request.amount.to_string() +
                         " (above $" + approval_threshold().value_or(Money()).to_string() + ")");
  }
  ReserveOutcome out = ledger_.reserve(request);
  if (out.status == ReserveStatus::kCutoff) {
    throw EmergencyCutoff("emergency cutoff engaged: " + out.cutoff_reason);
  }
  if (out.status == ReserveStatus::kExceeded && out.blocking->budget.policy == Policy::kRefuse) {
    throw BudgetExceeded(*out.blocking, request.amount, Policy::kRefuse,
                         out.remaining.value_or(Money()));
  }
  return out;
}

}  // namespace orroute
