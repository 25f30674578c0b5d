#include "orroute/verify/operating_point.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "orroute/error.h"

namespace orroute {

namespace {

// Deterministic resampling (the interval must not change between runs of the same calibration).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

void check_inputs(size_t n, const std::vector<const std::vector<double>*>& columns,
                  double share, double level) {
  if (n == 0) throw InvalidArgument("operating point: the calibration set is empty");
  for (const auto* c : columns) {
    if (c->size() != n) throw InvalidArgument("operating point: columns differ in length");
    for (const double v : *c) {
      if (!std::isfinite(v)) throw InvalidArgument("operating point: non-finite value");
    }
  }
  if (!(share > 0 && share <= 1)) throw InvalidArgument("operating point: share must be in (0, 1]");
  if (!(level > 0 && level < 1)) throw InvalidArgument("operating point: level must be in (0, 1)");
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Picks among candidate shares (in any order) by the mode; returns the candidate's index.
size_t pick(const std::vector<double>& shares, double target, ShareMode mode, bool* met) {
  size_t best = 0;
  *met = true;
  if (mode == ShareMode::kTarget) {
    for (size_t k = 1; k < shares.size(); ++k) {
      if (std::abs(shares[k] - target) < std::abs(shares[best] - target) - 1e-15) best = k;
    }
    return best;
  }
  bool any = false;
  for (size_t k = 0; k < shares.size(); ++k) {
    if (shares[k] <= target + 1e-12 && (!any || shares[k] > shares[best])) {
      best = k;
      any = true;
    }
  }
  if (!any) {  // nothing fits: the cheapest setting, flagged
    *met = false;
    best = static_cast<size_t>(std::min_element(shares.begin(), shares.end()) - shares.begin());
  }
  return best;
}

}  // namespace

double cost_share_at(const std::vector<double>& score, const std::vector<double>& base,
                     const std::vector<double>& escalated, const std::vector<double>& reference,
                     double threshold) {
  check_inputs(score.size(), {&base, &escalated, &reference}, 1.0, 0.5);
  double cost = 0, ref = 0;
  for (size_t i = 0; i < score.size(); ++i) {
    cost += score[i] >= threshold ? escalated[i] : base[i];
    ref += reference[i];
  }
  if (!(ref > 0)) throw InvalidArgument("operating point: the reference cost must be positive");
  return cost / ref;
}

OperatingPoint choose_operating_point(const std::vector<double>& score,
                                      const std::vector<double>& base,
                                      const std::vector<double>& escalated,
                                      const std::vector<double>& reference, double share,
                                      ShareMode mode, int32_t bootstrap, uint64_t seed,
                                      double level) {
  const size_t n = score.size();
  check_inputs(n, {&base, &escalated, &reference}, share, level);
  const double ref = std::accumulate(reference.begin(), reference.end(), 0.0);
  if (!(ref > 0)) throw InvalidArgument("operating point: the reference cost must be positive");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] > score[b]; });
  // Candidates: escalate the top k prompts, for every k that falls between two distinct scores.
  std::vector<size_t> ks = {0};
  std::vector<double> shares = {std::accumulate(base.begin(), base.end(), 0.0) / ref};
  double cost = shares[0] * ref;
  for (size_t k = 1; k <= n; ++k) {
    cost += escalated[order[k - 1]] - base[order[k - 1]];
    if (k < n && score[order[k]] == score[order[k - 1]]) continue;
    ks.push_back(k);
    shares.push_back(cost / ref);
  }
  OperatingPoint op;
  const size_t chosen = pick(shares, share, mode, &op.met);
  const size_t k = ks[chosen];
  if (k == 0) {
    op.threshold = std::numeric_limits<double>::infinity();
  } else if (k == n) {
    op.threshold = -std::numeric_limits<double>::infinity();
  } else {
    op.threshold = 0.5 * (score[order[k - 1]] + score[order[k]]);
  }
  op.share = shares[chosen];
  op.escalated = static_cast<double>(k) / static_cast<double>(n);
  op.rows = static_cast<int32_t>(std::min<size_t>(n, INT32_MAX));
  op.share_lo = op.share_hi = op.share;
  if (bootstrap > 0) {
    SplitMix64 rng{seed};
    std::vector<double> sampled;
    sampled.reserve(static_cast<size_t>(bootstrap));
    for (int32_t b = 0; b < bootstrap; ++b) {
      double c = 0, r = 0;
      for (size_t j = 0; j < n; ++j) {
        const size_t i = rng.below(n);
        c += score[i] >= op.threshold ? escalated[i] : base[i];
        r += reference[i];
      }
      if (r > 0) sampled.push_back(c / r);
    }
    if (!sampled.empty()) {
      op.share_lo = quantile(sampled, (1 - level) / 2);
      op.share_hi = quantile(sampled, (1 + level) / 2);
    }
  }
  return op;
}

size_t choose_grid_point(const std::vector<std::vector<double>>& cost,
                         const std::vector<double>& reference, double share, ShareMode mode,
                         OperatingPoint* point, int32_t bootstrap, uint64_t seed, double level) {
  const size_t n = reference.size();
  if (cost.empty()) throw InvalidArgument("operating point: no settings to choose from");
  std::vector<const std::vector<double>*> columns;
  for (const auto& c : cost) columns.push_back(&c);
  check_inputs(n, columns, share, level);
  check_inputs(n, {&reference}, share, level);
  const double ref = std::accumulate(reference.begin(), reference.end(), 0.0);
  if (!(ref > 0)) throw InvalidArgument("operating point: the reference cost must be positive");
  std::vector<double> shares;
  for (const auto& c : cost) shares.push_back(std::accumulate(c.begin(), c.end(), 0.0) / ref);
  OperatingPoint op;
  const size_t chosen = pick(shares, share, mode, &op.met);
  op.threshold = static_cast<double>(chosen);
  op.share = op.share_lo = op.share_hi = shares[chosen];
  op.rows = static_cast<int32_t>(std::min<size_t>(n, INT32_MAX));
  op.escalated = 0.0;
  if (bootstrap > 0) {
    SplitMix64 rng{seed};
    std::vector<double> sampled;
    for (int32_t b = 0; b < bootstrap; ++b) {
      double c = 0, r = 0;
      for (size_t j = 0; j < n; ++j) {
        const size_t i = rng.below(n);
        c += cost[chosen][i];
        r += reference[i];
      }
      if (r > 0) sampled.push_back(c / r);
    }
    if (!sampled.empty()) {
      op.share_lo = quantile(sampled, (1 - level) / 2);
      op.share_hi = quantile(sampled, (1 + level) / 2);
    }
  }
  if (point) *point = op;
  return chosen;
}

}  // namespace orroute
