// LearnedRouter: predicts each model's probability of answering a prompt well from the prompt's
// hashed features, and routes on predicted success per dollar.
//
// Model (per model m, prompt features x):
//   logit_m(x) = b_m + a_m * (v . x) + (w_m . x)
// v is shared by all models (a "difficulty" direction learned from every row), a_m scales it per
// model (a rank-1 shared component: strong models are hurt less by hard prompts), w_m is the
// model's own L2-regularised logistic weights. b_m starts at the logit of the model's smoothed
// success rate and is pulled back to it with strength prior_strength / rows(m), so models with few
// rows stay near their calibrated prior. Trained by AdaGrad over shuffled prompts; online update()
// takes the same AdaGrad step for one row.
// Expected cost per model: ridge regression of the observed USD cost on [1, chars/1000, structure
// block] (so code prompts that draw long answers cost more), clamped to the observed range. Its
// sufficient statistics are kept, so update() can fold in new costs exactly.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/select/features.h"
#include "orroute/select/quality_predictor.h"

namespace orroute {

// The router's feature defaults: 2^16 hashed dims, words + bigrams of the last 512 bytes,
// character 3..5-grams of the last 256 bytes (the question after any few-shot examples),
// structure block.
inline FeatureConfig default_features() {
  FeatureConfig f;
  f.hash_bits = 16;
  f.char_window = 256;
  f.word_window = 512;
  return f;
}

// Training hyper-parameters. Stored in the saved file (except the ones only fit() reads).
struct RouterConfig {
  FeatureConfig features = default_features();
  // Defaults chosen by 3-fold cross-validation on RouterBench (bench/routing_eval.py): strong
  // regularisation wins, because little of a model's success is predictable from the prompt
  // beyond its task.
  uint32_t epochs = 8;
  double learning_rate = 0.02;    // AdaGrad step size
  double l2 = 0.03;               // per-update L2 on each model's own weights w_m
  double l2_shared = 1e-3;        // per-update L2 on the shared weights v
  bool shared_component = true;   // use a_m * (v . x)
  // Starting value of every AdaGrad accumulator. > 0 damps the first steps of rare features (a
  // feature seen in one prompt then moves ~learning_rate * gradient, not ~learning_rate), so the
  // model learns from features many prompts share instead of memorising single prompts.
  double adagrad_init = 4.0;
  double prior_strength = 10.0;   // pseudo-rows pulling b_m to its prior; also smooths the prior
  uint64_t seed = 1;              // shuffling order of fit()

  // Throws InvalidArgument if a field is out of range.
  void validate() const;
};

// Training data: prompts x models. scores[m][i] in [0, 1] or NaN (missing); costs[m][i] in USD or
// NaN (unknown). Both outer vectors are parallel to `models`, inner ones to `prompts`.
struct OutcomeTable {
  std::vector<std::string> prompts;
  std::vector<std::string> models;
  std::vector<std::vector<double>> scores;
  std::vector<std::vector<double>> costs;
};

// A trained router. predict/route/expected_costs take a shared lock, update takes an exclusive
// one: safe to use from many threads while feedback arrives. Not copyable.
class LearnedRouter final : public QualityPredictor {
 public:
  // Version written by save(); load() reads kOldestFileVersion..kFileVersion (version 1 files
  // get word_window = 0, i.e. the features they were trained with).
  static constexpr uint32_t kFileVersion = 2;
  static constexpr uint32_t kOldestFileVersion = 1;

  // Trains on `table`. Throws InvalidArgument on ragged tables, scores outside [0, 1], negative
  // costs, duplicate model names, no models, or a model with no score at all.
  static std::shared_ptr<LearnedRouter> fit(const OutcomeTable& table, const RouterConfig& config);

  // Reads a file written by save(). Throws ParseError if the file is missing, not a router file,
  // of another version, or truncated.
  static std::shared_ptr<LearnedRouter> load(const std::string& path);
  static std::shared_ptr<LearnedRouter> from_bytes(std::string_view bytes);

  LearnedRouter(const LearnedRouter&) = delete;
  LearnedRouter& operator=(const LearnedRouter&) = delete;

  std::vector<std::string> model_names() const override;
  const RouterConfig& config() const noexcept { return config_; }
  size_t model_count() const noexcept { return models_.size(); }

  // Success probability per model (model_names() order).
  std::vector<double> predict(std::string_view prompt) const override;
  // Expected USD cost per model for this prompt (model_names() order); NaN if never observed.
  std::vector<double> expected_costs(std::string_view prompt) const;
  // Both at once, from one feature extraction.
  void predict_with_costs(std::string_view prompt, std::vector<double>& probs,
                          std::vector<double>& costs) const;
  // Row-major [prompts.size() x model_count()] probabilities and costs for many prompts.
  void predict_many(const std::vector<std::string>& prompts, std::vector<double>& probs,
                    std::vector<double>& costs) const;

  // Index of the model maximising p - cost_weight * expected cost (cost in USD; models with an
  // unknown cost count as free when cost_weight is 0 and are skipped otherwise unless no model has
  // a known cost). Ties go to the cheaper model. Throws InvalidArgument if cost_weight is negative
  // or not finite.
  size_t route_index(std::string_view prompt, double cost_weight) const;
  const std::string& route(std::string_view prompt, double cost_weight) const;
  // Cheapest model whose predicted success is at least `threshold`; the most likely model if none
  // reaches it. Throws InvalidArgument if threshold is outside [0, 1].
  size_t route_threshold_index(std::string_view prompt, double threshold) const;
  const std::string& route_threshold(std::string_view prompt, double threshold) const;

  // Folds in one observed outcome with one AdaGrad step (and the cost, if finite, into the cost
  // model). Throws NotFound for an unknown model, InvalidArgument for a score outside [0, 1] or a
  // negative cost.
  void update(std::string_view prompt, std::string_view model, double score,
              double cost = std::numeric_limits<double>::quiet_NaN());

  // Rows seen per model (fit + update) and their mean score.
  std::vector<int64_t> row_counts() const;
  std::vector<double> mean_scores() const;

  // Writes the versioned binary file (magic, version, config, per model parameters, non-zero
  // weights). Throws Error if the file cannot be written.
  void save(const std::string& path) const;
  std::string to_bytes() const;

 private:
  struct ModelParams {
    std::string name;
    double bias = 0, bias_prior = 0, bias_acc = 0;
    double scale = 1, scale_acc = 0;
    int64_t rows = 0;
    double score_sum = 0;
    // Cost model: sufficient statistics (XtX, Xty over kCostDims inputs), observed range, solution.
    double cost_n = 0, cost_min = 0, cost_max = 0;
    std::vector<double> cost_xtx, cost_xty, cost_beta;
    void add_cost(const std::vector<double>& d, double cost);
    void refit_cost();
    double cost_for(const std::vector<double>& d) const;
  };

  explicit LearnedRouter(const RouterConfig& config);
  // Fills z with every model's logit for features x; returns the shared component v . x.
  // Caller holds a lock.
  double logits(const std::vector<SparseFeature>& x, std::vector<double>& z) const;
  double shared_dot(const std::vector<SparseFeature>& x) const;
  // One AdaGrad step on rows (models[k], targets[k]) of one prompt. Caller holds the write lock.
  void step(const std::vector<SparseFeature>& x, const std::vector<size_t>& models,
            const std::vector<double>& targets);
  static constexpr size_t kCostDims = 2 + PromptFeaturizer::kStructureFeatures;
  // Cost-model inputs of a prompt: [1, chars / 1000, structure block].
  static std::vector<double> cost_inputs(std::string_view prompt,
                                         const std::vector<SparseFeature>& x);
  size_t choose(const std::vector<double>& p, const std::vector<double>& c,
                double cost_weight) const;

  RouterConfig config_;
  PromptFeaturizer featurizer_;
  std::vector<ModelParams> models_;
  // Per-model weights, feature-major: w_[j * models_.size() + m]. A prompt touches the same
  // features for every model, so this layout costs one cache miss per feature, not one per model.
  std::vector<float> w_, w_acc_;
  std::vector<float> v_, v_acc_;  // shared component, dim each
  mutable std::shared_mutex mutex_;
};

}  // namespace orroute
