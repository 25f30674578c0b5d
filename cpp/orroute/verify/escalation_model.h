// The learned "will the strong model do better" score: an L2-regularised logistic regression on
// dense features (escalation_features(): prompt statistics, the cheap answer's signals, the
// arithmetic re-check, verifier outcomes and router probabilities). Small (tens of features), fitted
// by Newton's method with backtracking on standardised features. Immutable after fit; predict is
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace orroute {

class EscalationModel {
 public:
  // Fits P(y = 1 | x). `x` is rows x features (every row the same length), `y` in [0, 1] (soft
  // labels allowed), `weights` per row (empty = all 1). The intercept is added internally and not
  // penalised; `l2` applies to the standardised weights. Throws InvalidArgument on empty input,
  // ragged rows, non-finite values or l2 < 0.
  static EscalationModel fit(const std::vector<std::vector<double>>& x,
                             const std::vector<double>& y, const std::vector<double>& weights = {},
                             double l2 = 1.0, int32_t max_iterations = 50);

  // From saved parameters: `mean`, `scale` and `weights` have one entry per feature (scale > 0);
  // throws InvalidArgument otherwise.
  EscalationModel(std::vector<double> mean, std::vector<double> scale, std::vector<double> weights,
                  double intercept);

  // P(y = 1) for one row. Throws InvalidArgument if the row's length differs from features().
  double predict(const std::vector<double>& x) const;
  std::vector<double> predict_many(const std::vector<std::vector<double>>& x) const;

  size_t features() const noexcept { return weights_.size(); }
  const std::vector<double>& mean() const noexcept { return mean_; }
  const std::vector<double>& scale() const noexcept { return scale_; }
  const std::vector<double>& weights() const noexcept { return weights_; }
  double intercept() const noexcept { return intercept_; }

 private:
  std::vector<double> mean_, scale_, weights_;
  double intercept_ = 0.0;
};

}  // namespace orroute
