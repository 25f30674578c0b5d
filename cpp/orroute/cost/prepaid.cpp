#include "orroute/cost/prepaid.h"

#include <exception>

#include "orroute/error.h"

namespace orroute {

Prepaid::Prepaid(int runs) : runs_(runs) {
  if (runs < 1) throw InvalidArgument("a prepaid reservation is for one run or more");
}

void Prepaid::reserve_all(BudgetGuard& guard, const ReserveRequest& request, bool approved) {
  std::vector<int64_t> taken;
  auto release_taken = [&] {
    for (const int64_t id : taken) {
      try {
        guard.ledger().release(id);
      } catch (const std::exception&) {
        // left to the ledger's reclaim
      }
    }
  };
  try {
    for (int i = given_back_; i < runs_; ++i) {
      ReserveOutcome o = guard.reserve(request, approved);
      if (o.status != ReserveStatus::kReserved) {
        release_taken();
        state_ = State::kRefused;
        refusal_ = std::move(o);
        return;
      }
      taken.push_back(o.reservation_id);
    }
  } catch (...) {  // a refusing budget throws its refusal: every run gets it
    release_taken();
    state_ = State::kRefused;
    failure_ = std::current_exception();
    std::rethrow_exception(failure_);
  }
  state_ = State::kReserved;
  left_ = std::move(taken);
  model_ = request.model;
  amount_ = request.amount;
}

std::optional<ReserveOutcome> Prepaid::draw(BudgetGuard& guard, const ReserveRequest& request, bool approved) {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen) reserve_all(guard, request, approved);
  if (state_ == State::kRefused) {
    if (failure_) std::rethrow_exception(failure_);
    return refusal_;
  }
  if (request.model != model_ || request.amount > amount_ || left_.empty()) return std::nullopt;
  ReserveOutcome drawn;
  drawn.reservation_id = left_.back();
  left_.pop_back();
  return drawn;
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
  try {
    ledger.release(id);
  } catch (const std::exception&) {
    // left to the ledger's reclaim
  }
}

}  // namespace orroute
