#include "orroute/select/learned_router.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <type_traits>
#include <utility>

#include "orroute/byte_io.h"
#include "orroute/error.h"
#include "orroute/linear_solve.h"

namespace orroute {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the router file format is written in host order; add byte swapping for big-endian");

constexpr char kMagic[8] = {'O', 'R', 'R', 'L', 'R', 'T', 'R', '\n'};
constexpr char kEndMagic[4] = {'E', 'N', 'D', '\n'};
constexpr double kEps = 1e-8;

double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

double logit_of(double p) {
  p = std::clamp(p, 1e-3, 1.0 - 1e-3);
  return std::log(p / (1.0 - p));
}

bool finite(double x) { return std::isfinite(x); }

using Writer = ByteWriter;

// Solves (A + ridge) x = b for a small symmetric positive semi-definite A; the ridge keeps it
// definite. `n` is the dimension.
std::vector<double> ridge_solve(std::vector<double> a, std::vector<double> b, size_t n,
                                double ridge) {
  for (size_t i = 1; i < n; ++i) a[i * n + i] += ridge;  // no ridge on the intercept
  a[0] += 1e-12;
  return cholesky_solve(std::move(a), std::move(b), n, 1e-18);
}

}  // namespace

void RouterConfig::validate() const {
  features.validate();
  if (epochs > 1000) throw InvalidArgument("epochs must be at most 1000");
  if (!(learning_rate > 0) || !finite(learning_rate)) {
    throw InvalidArgument("learning_rate must be positive");
  }
  if (!(l2 >= 0) || !(l2_shared >= 0) || !finite(l2) || !finite(l2_shared)) {
    throw InvalidArgument("l2 and l2_shared must be non-negative");
  }
  if (!(adagrad_init >= 0) || !finite(adagrad_init)) {
    throw InvalidArgument("adagrad_init must be non-negative");
  }
  if (!(prior_strength >= 0) || !finite(prior_strength)) {
    throw InvalidArgument("prior_strength must be non-negative");
  }
}

// ---- cost model ----

void LearnedRouter::ModelParams::add_cost(const std::vector<double>& d, double cost) {
  const size_t n = d.size();
  if (cost_xtx.empty()) cost_xtx.assign(n * n, 0.0), cost_xty.assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    cost_xty[i] += d[i] * cost;
    for (size_t j = 0; j < n; ++j) cost_xtx[i * n + j] += d[i] * d[j];
  }
  cost_min = cost_n == 0 ? cost : std::min(cost_min, cost);
  cost_max = cost_n == 0 ? cost : std::max(cost_max, cost);
  cost_n += 1;
}

void LearnedRouter::ModelParams::refit_cost() {
  if (cost_n == 0) {
    cost_beta.clear();
    return;
  }
  const size_t n = cost_xty.size();
  // Ridge relative to the row count: with few rows the fit is close to the mean cost.
  cost_beta = ridge_solve(cost_xtx, cost_xty, n, 1e-2 * cost_n + 1e-3);
}

double LearnedRouter::ModelParams::cost_for(const std::vector<double>& d) const {
  if (cost_beta.empty()) return std::numeric_limits<double>::quiet_NaN();
  double c = 0;
  for (size_t i = 0; i < d.size(); ++i) c += cost_beta[i] * d[i];
  if (!finite(c)) c = cost_xty[0] / cost_n;
  return std::clamp(c, cost_min, cost_max);
}

std::vector<double> LearnedRouter::cost_inputs(std::string_view prompt,
                                               const std::vector<SparseFeature>& x) {
  std::vector<double> d(kCostDims, 0.0);
  d[0] = 1.0;
  d[1] = static_cast<double>(prompt.size()) / 1000.0;
  for (const auto& f : x) {
    if (f.index >= PromptFeaturizer::kStructureFeatures) break;
    d[2 + f.index] = f.value;
  }
  return d;
}

// ---- training and prediction ----

LearnedRouter::LearnedRouter(const RouterConfig& config)
    : config_(config), featurizer_(config.features) {
  config_.validate();
}

namespace {

// Weight rows are read in feature order, i.e. scattered over a table of megabytes: ask for the row
// a few features ahead so that its cache lines arrive while this one is computed.
constexpr size_t kPrefetchAhead = 8;

void prefetch_row(const std::vector<float>& table, uint32_t feature, size_t n) {
#if defined(__GNUC__)
  const float* row = table.data() + static_cast<size_t>(feature) * n;
  __builtin_prefetch(row);
  __builtin_prefetch(row + n - 1);
#else
  (void)table, (void)feature, (void)n;
#endif
}

}  // namespace

double LearnedRouter::shared_dot(const std::vector<SparseFeature>& x) const {
  if (!config_.shared_component) return 0.0;
  double s = 0;
  for (const auto& f : x) s += static_cast<double>(v_[f.index]) * f.value;
  return s;
}

double LearnedRouter::logits(const std::vector<SparseFeature>& x, std::vector<double>& z) const {
  const size_t n = models_.size();
  const double shared = shared_dot(x);
  z.resize(n);
  for (size_t m = 0; m < n; ++m) z[m] = models_[m].bias + models_[m].scale * shared;
  for (size_t i = 0; i < x.size(); ++i) {
    const SparseFeature& f = x[i];
    if (i + kPrefetchAhead < x.size()) prefetch_row(w_, x[i + kPrefetchAhead].index, n);
    const float* w = &w_[static_cast<size_t>(f.index) * n];
    for (size_t m = 0; m < n; ++m) z[m] += static_cast<double>(w[m]) * f.value;
  }
  return shared;
}

void LearnedRouter::step(const std::vector<SparseFeature>& x, const std::vector<size_t>& models,
                         const std::vector<double>& targets) {
  const double lr = config_.learning_rate;
  const size_t n = models_.size();
  std::vector<double> z;
  const double shared = logits(x, z);
  // Gradient of the loss w.r.t. each model's logit; 0 for models without a row here.
  std::vector<double> g(n, 0.0);
  std::vector<uint8_t> active(n, 0);
  double shared_grad = 0;
  for (size_t k = 0; k < models.size(); ++k) {
    const size_t mi = models[k];
    ModelParams& m = models_[mi];
    g[mi] = sigmoid(z[mi]) - targets[k];
    active[mi] = 1;
    if (config_.shared_component) shared_grad += g[mi] * m.scale;

    const double pull = config_.prior_strength / static_cast<double>(std::max<int64_t>(m.rows, 1));
    const double gb = g[mi] + pull * (m.bias - m.bias_prior);
    m.bias_acc += gb * gb;
    m.bias -= lr * gb / (std::sqrt(m.bias_acc) + kEps);
    if (config_.shared_component) {
      const double ga = g[mi] * shared + config_.l2_shared * (m.scale - 1.0);
      m.scale_acc += ga * ga;
      m.scale -= lr * ga / (std::sqrt(m.scale_acc) + kEps);
    }
  }
  // Models with few rows get a stronger L2 (like the bias prior) so that a handful of outcomes
  // cannot swing their predictions far from the prior. Per-model factors in float, with a 0/1 mask
  // instead of a branch, so that the per-feature loop below is straight-line float arithmetic the
  // compiler vectorises (most of fit()'s time is here: ~1,000 features x every model per row).
  // For a model without a row here the mask makes the step exactly zero (acc += 0, w -= 0).
  std::vector<float> gf(n), l2f(n), mask(n);
  for (size_t m = 0; m < n; ++m) {
    gf[m] = static_cast<float>(g[m]);
    mask[m] = active[m] ? 1.0f : 0.0f;
    l2f[m] = static_cast<float>(
        config_.l2 *
        (1.0 + config_.prior_strength / static_cast<double>(std::max<int64_t>(models_[m].rows, 1))));
  }
  const auto lrf = static_cast<float>(lr);
  const auto epsf = static_cast<float>(kEps);
  for (size_t i = 0; i < x.size(); ++i) {
    const SparseFeature& f = x[i];
    if (i + kPrefetchAhead < x.size()) prefetch_row(w_acc_, x[i + kPrefetchAhead].index, n);
    float* __restrict w = &w_[static_cast<size_t>(f.index) * n];
    float* __restrict acc = &w_acc_[static_cast<size_t>(f.index) * n];
    const float fv = f.value;
    for (size_t m = 0; m < n; ++m) {
      const float gw = mask[m] * (gf[m] * fv + l2f[m] * w[m]);
      const float a = acc[m] + gw * gw;
      acc[m] = a;
      w[m] -= lrf * gw / (std::sqrt(a) + epsf);
    }
    if (config_.shared_component) {
      float& v = v_[f.index];
      float& va = v_acc_[f.index];
      const double gv = shared_grad * f.value + config_.l2_shared * v;
      va = static_cast<float>(va + gv * gv);
      v = static_cast<float>(v - lr * gv / (std::sqrt(static_cast<double>(va)) + kEps));
    }
  }
}

std::shared_ptr<LearnedRouter> LearnedRouter::fit(const OutcomeTable& table,
                                                  const RouterConfig& config) {
  const size_t n_models = table.models.size();
  const size_t n_prompts = table.prompts.size();
  if (n_models == 0) throw InvalidArgument("outcome table has no models");
  if (table.scores.size() != n_models) {
    throw InvalidArgument("outcome table needs one score column per model");
  }
  if (!table.costs.empty() && table.costs.size() != n_models) {
    throw InvalidArgument("outcome table needs one cost column per model (or none)");
  }
  for (size_t m = 0; m < n_models; ++m) {
    const std::string& name = table.models[m];
    if (name.empty()) throw InvalidArgument("model names must not be empty");
    if (std::count(table.models.begin(), table.models.end(), name) > 1) {
      throw InvalidArgument("model '" + name + "' appears twice");
    }
    if (table.scores[m].size() != n_prompts) {
      throw InvalidArgument("scores of model '" + name + "' do not match the number of prompts");
    }
    if (!table.costs.empty() && table.costs[m].size() != n_prompts) {
      throw InvalidArgument("costs of model '" + name + "' do not match the number of prompts");
    }
    for (const double s : table.scores[m]) {
      if (!std::isnan(s) && !(s >= 0.0 && s <= 1.0)) {
        throw InvalidArgument("scores of model '" + name + "' must be in [0, 1] (or missing)");
      }
    }
    if (!table.costs.empty()) {
      for (const double c : table.costs[m]) {
        if (!std::isnan(c) && !(c >= 0.0 && finite(c))) {
          throw InvalidArgument("costs of model '" + name + "' must be non-negative (or missing)");
        }
      }
    }
  }

  std::shared_ptr<LearnedRouter> r(new LearnedRouter(config));
  const uint32_t dim = r->featurizer_.dim();
  std::vector<std::vector<SparseFeature>> xs(n_prompts);
  for (size_t i = 0; i < n_prompts; ++i) xs[i] = r->featurizer_.features(table.prompts[i]);

  double total = 0;
  int64_t total_rows = 0;
  r->models_.resize(n_models);
  for (size_t m = 0; m < n_models; ++m) {
    ModelParams& p = r->models_[m];
    p.name = table.models[m];
    for (size_t i = 0; i < n_prompts; ++i) {
      const double s = table.scores[m][i];
      if (std::isnan(s)) continue;
      ++p.rows;
      p.score_sum += s;
      if (!table.costs.empty() && !std::isnan(table.costs[m][i])) {
        p.add_cost(cost_inputs(table.prompts[i], xs[i]), table.costs[m][i]);
      }
    }
    if (p.rows == 0) throw InvalidArgument("model '" + p.name + "' has no score");
    total += p.score_sum;
    total_rows += p.rows;
    p.refit_cost();
  }
  const double global = total / static_cast<double>(total_rows);
  const double k = config.prior_strength;
  for (auto& p : r->models_) {
    p.bias_prior = logit_of((p.score_sum + k * global) / (static_cast<double>(p.rows) + k));
    p.bias = p.bias_prior;
  }
  r->w_.assign(static_cast<size_t>(dim) * n_models, 0.0f);
  const auto acc0 = static_cast<float>(config.adagrad_init);
  r->w_acc_.assign(static_cast<size_t>(dim) * n_models, acc0);
  for (auto& p : r->models_) p.bias_acc = p.scale_acc = config.adagrad_init;
  if (config.shared_component) {
    r->v_.assign(dim, 0.0f);
    r->v_acc_.assign(dim, acc0);
  }

  std::vector<size_t> order(n_prompts);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(config.seed);
  std::vector<size_t> row_models;
  std::vector<double> row_targets;
  for (uint32_t epoch = 0; epoch < config.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (const size_t i : order) {
      row_models.clear();
      row_targets.clear();
      for (size_t m = 0; m < n_models; ++m) {
        const double s = table.scores[m][i];
        if (std::isnan(s)) continue;
        row_models.push_back(m);
        row_targets.push_back(s);
      }
      if (!row_models.empty()) r->step(xs[i], row_models, row_targets);
    }
  }
  return r;
}

std::vector<std::string> LearnedRouter::model_names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> names;
  names.reserve(models_.size());
  for (const auto& m : models_) names.push_back(m.name);
  return names;
}

void LearnedRouter::predict_with_costs(std::string_view prompt, std::vector<double>& probs,
                                       std::vector<double>& costs) const {
  const std::vector<SparseFeature> x = featurizer_.features(prompt);
  const std::vector<double> d = cost_inputs(prompt, x);
  std::shared_lock lock(mutex_);
  logits(x, probs);
  costs.resize(models_.size());
  for (size_t m = 0; m < models_.size(); ++m) {
    probs[m] = sigmoid(probs[m]);
    costs[m] = models_[m].cost_for(d);
  }
}

std::vector<double> LearnedRouter::predict(std::string_view prompt) const {
  std::vector<double> p, c;
  predict_with_costs(prompt, p, c);
  return p;
}

std::vector<double> LearnedRouter::expected_costs(std::string_view prompt) const {
  std::vector<double> p, c;
  predict_with_costs(prompt, p, c);
  return c;
}

void LearnedRouter::predict_many(const std::vector<std::string>& prompts,
                                 std::vector<double>& probs, std::vector<double>& costs) const {
  const size_t n = models_.size();
  probs.assign(prompts.size() * n, 0.0);
  costs.assign(prompts.size() * n, 0.0);
  std::vector<double> p, c;
  for (size_t i = 0; i < prompts.size(); ++i) {
    predict_with_costs(prompts[i], p, c);
    std::copy(p.begin(), p.end(), probs.begin() + static_cast<std::ptrdiff_t>(i * n));
    std::copy(c.begin(), c.end(), costs.begin() + static_cast<std::ptrdiff_t>(i * n));
  }
}

size_t LearnedRouter::choose(const std::vector<double>& p, const std::vector<double>& c,
                             double cost_weight) const {
  const bool any_cost = std::any_of(c.begin(), c.end(), [](double x) { return !std::isnan(x); });
  size_t best = 0;
  double best_u = -std::numeric_limits<double>::infinity();
  double best_c = std::numeric_limits<double>::infinity();
  for (size_t m = 0; m < p.size(); ++m) {
    double cost = c[m];
    if (std::isnan(cost)) {
      if (cost_weight > 0 && any_cost) continue;
      cost = 0;
    }
    const double u = p[m] - cost_weight * cost;
    if (u > best_u || (u == best_u && cost < best_c)) best = m, best_u = u, best_c = cost;
  }
  return best;
}

size_t LearnedRouter::route_index(std::string_view prompt, double cost_weight) const {
  if (!(cost_weight >= 0) || !finite(cost_weight)) {
    throw InvalidArgument("cost_weight must be a non-negative finite number");
  }
  std::vector<double> p, c;
  predict_with_costs(prompt, p, c);
  return choose(p, c, cost_weight);
}

const std::string& LearnedRouter::route(std::string_view prompt, double cost_weight) const {
  return models_[route_index(prompt, cost_weight)].name;
}

size_t LearnedRouter::route_threshold_index(std::string_view prompt, double threshold) const {
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    throw InvalidArgument("threshold must be in [0, 1]");
  }
  std::vector<double> p, c;
  predict_with_costs(prompt, p, c);
  size_t best = p.size();
  for (size_t m = 0; m < p.size(); ++m) {
    if (p[m] < threshold) continue;
    const double cm = std::isnan(c[m]) ? std::numeric_limits<double>::infinity() : c[m];
    const double cb = best == p.size() || std::isnan(c[best])
                          ? std::numeric_limits<double>::infinity()
                          : c[best];
    if (best == p.size() || cm < cb || (cm == cb && p[m] > p[best])) best = m;
  }
  if (best == p.size()) best = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
  return best;
}

const std::string& LearnedRouter::route_threshold(std::string_view prompt,
                                                  double threshold) const {
  return models_[route_threshold_index(prompt, threshold)].name;
}

void LearnedRouter::update(std::string_view prompt, std::string_view model, double score,
                           double cost) {
  if (!(score >= 0.0 && score <= 1.0)) throw InvalidArgument("score must be in [0, 1]");
  if (!std::isnan(cost) && !(cost >= 0.0 && finite(cost))) {
    throw InvalidArgument("cost must be non-negative");
  }
  const std::vector<SparseFeature> x = featurizer_.features(prompt);
  std::unique_lock lock(mutex_);
  const auto it = std::find_if(models_.begin(), models_.end(),
                               [&](const ModelParams& m) { return m.name == model; });
  if (it == models_.end()) {
    throw NotFound("model '" + std::string(model) + "' is not known to the router");
  }
  it->rows += 1;
  it->score_sum += score;
  if (!std::isnan(cost)) {
    it->add_cost(cost_inputs(prompt, x), cost);
    it->refit_cost();
  }
  step(x, {static_cast<size_t>(it - models_.begin())}, {score});
}

std::vector<int64_t> LearnedRouter::row_counts() const {
  std::shared_lock lock(mutex_);
  std::vector<int64_t> out;
  for (const auto& m : models_) out.push_back(m.rows);
  return out;
}

std::vector<double> LearnedRouter::mean_scores() const {
  std::shared_lock lock(mutex_);
  std::vector<double> out;
  for (const auto& m : models_) out.push_back(m.score_sum / static_cast<double>(m.rows));
  return out;
}

// ---- persistence ----

namespace {

// Non-zero entries (weight or accumulator) of column `col` of a feature-major [dim x stride] pair.
// Entries still at (0, acc0) are untouched and not written.
void put_sparse(Writer& w, const std::vector<float>& values, const std::vector<float>& acc,
                size_t stride, size_t col, float acc0) {
  const size_t dim = values.size() / stride;
  uint32_t nnz = 0;
  for (size_t i = 0; i < dim; ++i) {
    nnz += (values[i * stride + col] != 0.0f || acc[i * stride + col] != acc0);
  }
  w.raw<uint32_t>(nnz);
  for (size_t i = 0; i < dim; ++i) {
    const float v = values[i * stride + col];
    const float a = acc[i * stride + col];
    if (v == 0.0f && a == acc0) continue;
    w.raw<uint32_t>(static_cast<uint32_t>(i));
    w.raw<float>(v);
    w.raw<float>(a);
  }
}

void get_sparse(ByteReader& r, std::vector<float>& values, std::vector<float>& acc, size_t stride,
                size_t col) {
  const size_t dim = values.size() / stride;
  const auto nnz = r.raw<uint32_t>();
  if (nnz > dim) throw ParseError("learned router file is corrupt (too many weights)");
  for (uint32_t k = 0; k < nnz; ++k) {
    const auto i = r.raw<uint32_t>();
    if (i >= dim) throw ParseError("learned router file is corrupt (weight index out of range)");
    values[i * stride + col] = r.raw<float>();
    acc[i * stride + col] = r.raw<float>();
  }
}

}  // namespace

std::string LearnedRouter::to_bytes() const {
  std::shared_lock lock(mutex_);
  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.raw<uint32_t>(kFileVersion);
  const FeatureConfig& f = config_.features;
  w.raw<uint32_t>(f.hash_bits);
  w.raw<uint8_t>(f.word_unigrams);
  w.raw<uint8_t>(f.word_bigrams);
  w.raw<uint32_t>(f.char_ngram_min);
  w.raw<uint32_t>(f.char_ngram_max);
  w.raw<uint32_t>(f.char_window);
  w.raw<uint32_t>(f.word_window);  // since version 2
  w.raw<uint8_t>(f.structure);
  w.raw<uint32_t>(config_.epochs);
  w.raw<double>(config_.learning_rate);
  w.raw<double>(config_.l2);
  w.raw<double>(config_.l2_shared);
  w.raw<uint8_t>(config_.shared_component);
  w.raw<double>(config_.adagrad_init);
  w.raw<double>(config_.prior_strength);
  w.raw<uint64_t>(config_.seed);
  w.raw<uint32_t>(static_cast<uint32_t>(models_.size()));
  for (size_t mi = 0; mi < models_.size(); ++mi) {
    const ModelParams& m = models_[mi];
    w.str(m.name);
    for (const double v : {m.bias, m.bias_prior, m.bias_acc, m.scale, m.scale_acc}) w.raw(v);
    w.raw<int64_t>(m.rows);
    w.raw<double>(m.score_sum);
    w.raw<double>(m.cost_n);
    w.raw<double>(m.cost_min);
    w.raw<double>(m.cost_max);
    if (m.cost_n > 0) {
      for (const double v : m.cost_xtx) w.raw(v);
      for (const double v : m.cost_xty) w.raw(v);
    }
    put_sparse(w, w_, w_acc_, models_.size(), mi, static_cast<float>(config_.adagrad_init));
  }
  if (config_.shared_component) put_sparse(w, v_, v_acc_, 1, 0, static_cast<float>(config_.adagrad_init));
  w.bytes(kEndMagic, sizeof kEndMagic);
  return w.take();
}

std::shared_ptr<LearnedRouter> LearnedRouter::from_bytes(std::string_view bytes) {
  ByteReader r(bytes, "learned router file");
  if (bytes.size() < sizeof kMagic ||
      std::memcmp(r.bytes(sizeof kMagic).data(), kMagic, sizeof kMagic) != 0) {
    throw ParseError("not an orroute learned router file (bad magic)");
  }
  const auto version = r.raw<uint32_t>();
  if (version < kOldestFileVersion || version > kFileVersion) {
    throw ParseError("learned router file version " + std::to_string(version) +
                     " is not supported (this orroute reads versions " +
                     std::to_string(kOldestFileVersion) + " to " + std::to_string(kFileVersion) +
                     ")");
  }
  RouterConfig c;
  c.features.hash_bits = r.raw<uint32_t>();
  c.features.word_unigrams = r.raw<uint8_t>() != 0;
  c.features.word_bigrams = r.raw<uint8_t>() != 0;
  c.features.char_ngram_min = r.raw<uint32_t>();
  c.features.char_ngram_max = r.raw<uint32_t>();
  c.features.char_window = r.raw<uint32_t>();
  // Version 1 had no word window: its word features read the whole prompt.
  c.features.word_window = version >= 2 ? r.raw<uint32_t>() : 0;
  c.features.structure = r.raw<uint8_t>() != 0;
  c.epochs = r.raw<uint32_t>();
  c.learning_rate = r.raw<double>();
  c.l2 = r.raw<double>();
  c.l2_shared = r.raw<double>();
  c.shared_component = r.raw<uint8_t>() != 0;
  c.adagrad_init = r.raw<double>();
  c.prior_strength = r.raw<double>();
  c.seed = r.raw<uint64_t>();
  std::shared_ptr<LearnedRouter> router;
  try {
    router.reset(new LearnedRouter(c));
  } catch (const InvalidArgument& e) {
    throw ParseError(std::string("learned router file has an invalid configuration: ") + e.what());
  }
  const uint32_t dim = router->featurizer_.dim();
  const auto n_models = r.raw<uint32_t>();
  if (n_models == 0 || n_models > 100000) throw ParseError("learned router file is corrupt");
  router->models_.resize(n_models);
  router->w_.assign(static_cast<size_t>(dim) * n_models, 0.0f);
  const auto acc0 = static_cast<float>(c.adagrad_init);
  router->w_acc_.assign(static_cast<size_t>(dim) * n_models, acc0);
  for (size_t mi = 0; mi < n_models; ++mi) {
    ModelParams& m = router->models_[mi];
    m.name = r.str();
    m.bias = r.raw<double>();
    m.bias_prior = r.raw<double>();
    m.bias_acc = r.raw<double>();
    m.scale = r.raw<double>();
    m.scale_acc = r.raw<double>();
    m.rows = r.raw<int64_t>();
    m.score_sum = r.raw<double>();
    m.cost_n = r.raw<double>();
    m.cost_min = r.raw<double>();
    m.cost_max = r.raw<double>();
    if (m.cost_n > 0) {
      m.cost_xtx.resize(kCostDims * kCostDims);
      m.cost_xty.resize(kCostDims);
      for (double& v : m.cost_xtx) v = r.raw<double>();
      for (double& v : m.cost_xty) v = r.raw<double>();
    }
    m.refit_cost();
    get_sparse(r, router->w_, router->w_acc_, n_models, mi);
  }
  if (c.shared_component) {
    router->v_.assign(dim, 0.0f);
    router->v_acc_.assign(dim, acc0);
    get_sparse(r, router->v_, router->v_acc_, 1, 0);
  }
  if (std::memcmp(r.bytes(sizeof kEndMagic).data(), kEndMagic, sizeof kEndMagic) != 0 ||
      !r.at_end()) {
    throw ParseError("learned router file is corrupt (bad trailer)");
  }
  return router;
}

void LearnedRouter::save(const std::string& path) const {
  const std::string bytes = to_bytes();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot open '" + path + "' for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write '" + path + "'");
}

std::shared_ptr<LearnedRouter> LearnedRouter::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ParseError("cannot open learned router file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_bytes(ss.str());
}

}  // namespace orroute
