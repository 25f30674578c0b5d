#include "orroute/verify/escalation_model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "orroute/error.h"
#include "orroute/linear_solve.h"

namespace orroute {

namespace {

double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// log(1 + exp(z)) without overflow.
double softplus(double z) { return z > 30 ? z : std::log1p(std::exp(z)); }

}  // namespace

EscalationModel::EscalationModel(std::vector<double> mean, std::vector<double> scale,
                                 std::vector<double> weights, double intercept)
    : mean_(std::move(mean)), scale_(std::move(scale)), weights_(std::move(weights)),
      intercept_(intercept) {
  if (mean_.size() != weights_.size() || scale_.size() != weights_.size()) {
    throw InvalidArgument("escalation model: mean, scale and weights differ in length");
  }
  for (size_t j = 0; j < weights_.size(); ++j) {
    if (!(scale_[j] > 0) || !std::isfinite(scale_[j]) || !std::isfinite(mean_[j]) ||
        !std::isfinite(weights_[j])) {
      throw InvalidArgument("escalation model: non-finite parameter or non-positive scale");
    }
  }
  if (!std::isfinite(intercept_)) throw InvalidArgument("escalation model: non-finite intercept");
}

EscalationModel EscalationModel::fit(const std::vector<std::vector<double>>& x,
                                     const std::vector<double>& y,
                                     const std::vector<double>& weights, double l2,
                                     int32_t max_iterations) {
  const size_t n = x.size();
  if (n == 0 || y.size() != n || (!weights.empty() && weights.size() != n)) {
    throw InvalidArgument("escalation model: x, y (and weights) need the same non-zero length");
  }
  if (!(l2 >= 0) || !std::isfinite(l2)) throw InvalidArgument("escalation model: l2 must be >= 0");
  const size_t d = x[0].size();
  std::vector<double> mean(d, 0.0), scale(d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    if (x[i].size() != d) throw InvalidArgument("escalation model: rows differ in length");
    if (!std::isfinite(y[i]) || y[i] < 0 || y[i] > 1) {
      throw InvalidArgument("escalation model: labels must be in [0, 1]");
    }
    if (!weights.empty() && (!std::isfinite(weights[i]) || weights[i] < 0)) {
      throw InvalidArgument("escalation model: weights must be finite and >= 0");
    }
    for (size_t j = 0; j < d; ++j) {
      if (!std::isfinite(x[i][j])) throw InvalidArgument("escalation model: non-finite feature");
      mean[j] += x[i][j];
    }
  }
  for (auto& m : mean) m /= static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) scale[j] += (x[i][j] - mean[j]) * (x[i][j] - mean[j]);
  }
  // A constant column carries no information: scale 1 maps it to 0 everywhere.
  for (auto& s : scale) s = s > 1e-24 ? std::sqrt(s / static_cast<double>(n)) : 1.0;

  // Parameters: theta[0] = intercept, theta[1..d] = weights on standardised features.
  const size_t p = d + 1;
  std::vector<double> z(n * p);
  for (size_t i = 0; i < n; ++i) {
    z[i * p] = 1.0;
    for (size_t j = 0; j < d; ++j) z[i * p + j + 1] = (x[i][j] - mean[j]) / scale[j];
  }
  auto w_of = [&](size_t i) { return weights.empty() ? 1.0 : weights[i]; };
  auto loss = [&](const std::vector<double>& t) {
    double l = 0;
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (size_t k = 0; k < p; ++k) s += z[i * p + k] * t[k];
      l += w_of(i) * (softplus(s) - y[i] * s);
    }
    for (size_t k = 1; k < p; ++k) l += 0.5 * l2 * t[k] * t[k];
    return l;
  };
  std::vector<double> theta(p, 0.0);
  double current = loss(theta);
  for (int32_t it = 0; it < max_iterations; ++it) {
    std::vector<double> grad(p, 0.0), hess(p * p, 0.0);
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (size_t k = 0; k < p; ++k) s += z[i * p + k] * theta[k];
      const double q = sigmoid(s);
      const double r = w_of(i) * (q - y[i]);
      const double h = w_of(i) * q * (1 - q);
      for (size_t a = 0; a < p; ++a) {
        grad[a] += r * z[i * p + a];
        for (size_t b = 0; b <= a; ++b) hess[a * p + b] += h * z[i * p + a] * z[i * p + b];
      }
    }
    for (size_t a = 0; a < p; ++a) {
      for (size_t b = 0; b < a; ++b) hess[b * p + a] = hess[a * p + b];
      hess[a * p + a] += a == 0 ? 1e-9 : l2 + 1e-9;
      if (a > 0) grad[a] += l2 * theta[a];
    }
    // The Hessian of an L2-regularised logistic loss (plus a tiny ridge on the intercept): positive
    // definite.
    const std::vector<double> step = cholesky_solve(hess, grad, p, 1e-12);
    double t = 1.0;
    std::vector<double> next(p);
    double next_loss = current;
    for (int halvings = 0; halvings < 30; ++halvings, t *= 0.5) {
      for (size_t k = 0; k < p; ++k) next[k] = theta[k] - t * step[k];
      next_loss = loss(next);
      if (next_loss <= current) break;
    }
    if (!(next_loss <= current)) break;
    theta = next;
    const bool converged = current - next_loss < 1e-10 * (1.0 + std::abs(current));
    current = next_loss;
    if (converged) break;
  }
  return EscalationModel(std::move(mean), std::move(scale),
                         std::vector<double>(theta.begin() + 1, theta.end()), theta[0]);
}

double EscalationModel::predict(const std::vector<double>& x) const {
  if (x.size() != weights_.size()) {
    throw InvalidArgument("escalation model: expected " + std::to_string(weights_.size()) +
                          " features, got " + std::to_string(x.size()));
  }
  double s = intercept_;
  for (size_t j = 0; j < x.size(); ++j) {
    const double v = std::isfinite(x[j]) ? x[j] : mean_[j];
    s += weights_[j] * (v - mean_[j]) / scale_[j];
  }
  return sigmoid(s);
}

std::vector<double> EscalationModel::predict_many(const std::vector<std::vector<double>>& x) const {
  std::vector<double> out;
  out.reserve(x.size());
  for (const auto& row : x) out.push_back(predict(row));
  return out;
}

}  // namespace orroute
