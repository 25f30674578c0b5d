// The ledger reservations of several runs made at once (the gateway's n choices), so that either
// the budgets hold all of them before any is sent or none is sent: the first run to reserve
// reserves one reservation per run, all or none, and every run then draws one of them. Each is a
// reservation like any, settled (or released) the usual way by the run that drew it, so a budget
// counts each call once; a run that ends without drawing one releases one.
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/ledger.h"

namespace orroute {

// Thread-safe (the runs drawing from it run concurrently).
class Prepaid {
 public:
  // For `runs` runs (>= 1; throws InvalidArgument otherwise).
  explicit Prepaid(int runs);

  // A run's first reservation. The first run to ask reserves `runs` times `request` through
  // `guard` (all or none: on a refusal those taken are released, and every run gets that
  // refusal, told for the n together: see asked()). Then: a reservation drawn for this run, or nullopt when it must reserve as usual
  // (none is left, or `request` is for another model, another scope or a larger amount than the
  // first run's: this run's share is then released at once). The scope counts: a settle books
  // the call under its reservation's scope, so a run balanced to another provider (another
  // "provider" tag) must not draw a share reserved under the first run's. A run calls draw() at
  // most once, and then never give_back().
  // What `guard` throws (a refusing budget's refusal) every run throws (nothing is left reserved).
  std::optional<ReserveOutcome> draw(BudgetGuard& guard, const ReserveRequest& request, bool approved);
  // A run that ends without having called draw(): one reservation is released (or, before the first
  // draw, one fewer will be made). Never throws: a release that fails is left to the ledger's
  // reclaim.
  void give_back(Ledger& ledger) noexcept;
  int runs() const { return runs_; }
  // What a refusal names: "<runs> completions reserved together (all or none, up to $<each>
  // each)", and their total, `runs` x `each`.
  std::string asked(Money each) const;
  Money total(Money each) const;

 private:
  enum class State { kOpen, kReserved, kRefused };
  void reserve_all(BudgetGuard& guard, const ReserveRequest& request, bool approved);

  const int runs_;
  mutable std::mutex mu_;
  State state_ = State::kOpen;
  int given_back_ = 0;         // runs that ended before the first draw
  std::vector<int64_t> left_;  // reservations no run has drawn
  std::string model_;
  SpendScope scope_;
  Money amount_;
  ReserveOutcome refusal_;      // kRefused: the refusal every run gets,
  std::exception_ptr failure_;  // or what `guard` threw, which every run throws
};

}  // namespace orroute
