#include "orroute/cost/prepaid.h"

#include <exception>

#include "orroute/error.h"

namespace orroute {

namespace {

bool same_scope(const SpendScope& a, const SpendScope& b) {
  return a.project == b.project && a.conversation == b.conversation && a.tags == b.tags;
}

void release_quietly(Ledger& ledger, int64_t id) noexcept {
  try {
    ledger.release(id);
  } catch (const std::exception&) {
    // left to the ledger's reclaim
  }
}

}  // namespace

Prepaid::Prepaid(int runs) : runs_(runs) {
  if (runs < 1) throw InvalidArgument("a prepaid reservation is for one run or more");
}

std::string Prepaid::asked(Money each) const {
  return std::to_string(runs_) + " completions reserved together (all or none, up to $" + each.to_string() + " each)";
}

Money Prepaid::total(Money each) const { return each * runs_; }

void Prepaid::reserve_all(BudgetGuard& guard, const ReserveRequest& request, bool approved) {
  std::vector<int64_t> taken;
  // A refusal is told as the budgets stood before any of the n (not with those taken counted
  // as spent room), for the n's total: a call that alone fits is not what was refused.
  auto release_taken = [&] {
    for (const int64_t id : taken) release_quietly(guard.ledger(), id);
    return request.amount * static_cast<int64_t>(taken.size());
  };
  try {
    for (int i = given_back_; i < runs_; ++i) {
      ReserveOutcome o = guard.reserve(request, approved);
      if (o.status != ReserveStatus::kReserved) {
        const Money held = release_taken();
        if (o.remaining) *o.remaining += held;
        if (o.blocking) o.blocking->reserved -= held;
        state_ = State::kRefused;
        refusal_ = std::move(o);
        return;
      }
      taken.push_back(o.reservation_id);
    }
  } catch (const BudgetExceeded& e) {
    const Money held = release_taken();
    state_ = State::kRefused;
    failure_ = std::make_exception_ptr(e.together(total(request.amount), held, asked(request.amount)));
    std::rethrow_exception(failure_);
  } catch (...) {  // a cutoff, a denied approval: every run gets it
    release_taken();
    state_ = State::kRefused;
    failure_ = std::current_exception();
    std::rethrow_exception(failure_);
  }
  state_ = State::kReserved;
  left_ = std::move(taken);
  model_ = request.model;
  scope_ = request.scope;
  amount_ = request.amount;
}

std::optional<ReserveOutcome> Prepaid::draw(BudgetGuard& guard, const ReserveRequest& request, bool approved) {
  int64_t unused = 0;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kOpen) reserve_all(guard, request, approved);
    if (state_ == State::kRefused) {
      if (failure_) std::rethrow_exception(failure_);
      return refusal_;
    }
    if (left_.empty()) return std::nullopt;
    const int64_t id = left_.back();
    left_.pop_back();
    if (request.model == model_ && same_scope(request.scope, scope_) && request.amount <= amount_) {
      ReserveOutcome drawn;
      drawn.reservation_id = id;
      return drawn;
    }
    unused = id;
  }
  // This run reserves as usual: its share goes back now, not when the run ends (held until
  // then, it would count twice beside the run's own reservation).
  release_quietly(guard.ledger(), unused);
  return std::nullopt;
}

void Prepaid::give_back(Ledger& ledger) noexcept {
  int64_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kOpen) ++given_back_;
    if (state_ != State::kReserved || left_.empty()) return;
    id = left_.back();
    left_.pop_back();
  }
  release_quietly(ledger, id);
}

}  // namespace orroute
