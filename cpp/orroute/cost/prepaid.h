// Money a caller reserved in the ledger for several runs at once (the gateway's n choices: one
// reservation sized for n), that those runs draw their worst cases from instead of each reserving
// its own: between the reservation and the runs, nobody else can take the room they need. The
// caller keeps its reservation until every run has ended, then releases it; the runs' calls are
// recorded as they settle (so while both stand, a budget counts them twice: never less).
#pragma once

#include <mutex>
#include <string>

#include "orroute/catalog/money.h"

namespace orroute {

// Thread-safe (the runs drawing from one allowance run concurrently).
class Prepaid {
 public:
  // `amount` reserved for calls to `model` (a run falling back to another model reserves as usual:
  // that model's budgets were not asked).
  Prepaid(Money amount, std::string model) : left_(amount), model_(std::move(model)) {}

  // Takes `worst_case` for a call to `model` if that much is left for it; false otherwise.
  bool take(const std::string& model, Money worst_case);
  // Gives back what a call took and did not spend (all of it for a call released unsent).
  void give(Money amount);
  Money left() const;

 private:
  mutable std::mutex mu_;
  Money left_;
  std::string model_;
};

}  // namespace orroute
