#include "orroute/cost/prepaid.h"

namespace orroute {

bool Prepaid::take(const std::string& model, Money worst_case) {
  if (model != model_) return false;
  std::lock_guard lock(mu_);
  if (worst_case > left_) return false;
  left_ -= worst_case;
  return true;
}

void Prepaid::give(Money amount) {
  std::lock_guard lock(mu_);
  left_ += amount;
}

Money Prepaid::left() const {
  std::lock_guard lock(mu_);
  return left_;
}

}  // namespace orroute
