// ModelSelector: picks the model for a task from the catalog — filter by task type, constraints,
// context and budget, then rank by strategy over quality (priors, or a learned per-prompt
// prediction), estimated cost and measured speed/reliability.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/cost/prompt_bounds.h"
#include "orroute/error.h"
#include "orroute/select/quality_predictor.h"
#include "orroute/select/quality_priors.h"
#include "orroute/select/task_types.h"

namespace orroute {

// Nothing survived selection. The message names the constraint that removed the last candidates.
class NoModelAvailable : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kNoModelAvailable; }
};

// How candidates are ranked. Score = wq x quality + wc x cheapness + ws x speed, with
// (wq, wc, ws): cost_optimized (0.2, 0.8, 0), balanced (0.55, 0.4, 0.05),
// performance (0.5, 0.1, 0.4), quality_first (0.9, 0.1, 0).
enum class Strategy : int { kCostOptimized = 0, kBalanced, kPerformance, kQualityFirst };
std::string_view strategy_name(Strategy s);
// Throws InvalidArgument listing the strategies if unknown.
Strategy strategy_from_name(std::string_view name);

// Hard constraints; unset fields constrain nothing.
struct Constraints {
  uint32_t required_capabilities = 0;             // Capability bits
  std::vector<std::string> required_parameters;   // supported_parameters entries
  std::optional<Money> max_price_per_1k;          // blended (3:1) USD per 1000 tokens
  std::optional<Money> max_price_per_mtok;        // blended (3:1) USD per million tokens
  std::optional<int64_t> min_context;
  std::optional<int64_t> expected_output_tokens;  // overrides the task type's estimate
  std::vector<std::string> allowed_providers;     // empty = any
  std::vector<std::string> blocked_providers;
  std::vector<std::string> allowed_models;        // empty = any
  std::vector<std::string> blocked_models;
  bool free_only = false;
  bool paid_only = false;
  // Free models (":free" variants, zero-priced models) are rate-limited and may log prompts, so
  // they are candidates only when this is set or free_only is.
  bool allow_free = false;
  std::vector<Tier> tiers;                        // allowed tiers, empty = any
  std::optional<double> min_quality;              // effective quality in [0, 1]
};

// Measured behaviour of a model (fed by the router's metrics). All optional.
struct ModelMetrics {
  std::optional<double> success_rate;       // [0, 1]; multiplies quality
  std::optional<double> latency_ms;         // typical time to first token (or total), lower = better
  std::optional<double> tokens_per_second;  // typical throughput, higher = better
  bool available = true;                    // false: breaker open / rate-limited; never selected
};

// One selection query.
struct SelectionRequest {
  std::string task_type = "general";
  int64_t input_tokens = 0;
  std::optional<Money> budget;               // most the call may cost (estimate), USD
  std::optional<Strategy> strategy;          // nullopt = the selector's default
  std::optional<Constraints> constraints;    // nullopt = the selector's default constraints
  // Learned per-prompt quality: model id -> predicted probability of success in [0, 1]. When a
  // model has one it replaces (80%) the prior for this request.
  std::unordered_map<std::string, double> predicted_quality;
  bool explain = true;                       // fill Candidate::reasons
  size_t limit = 0;                          // rank(): keep only the best `limit` (0 = all)
  // The prompt, when known: with a quality predictor installed (set_quality_predictor), its
  // predictions for this prompt fill predicted_quality (entries given explicitly win).
  std::string prompt;
  // A floor on effective quality from the task's difficulty (the engine passes the complexity
  // analyzer's floor for its tier; see docs/router.md). Applied under every strategy after the
  // hard constraints: candidates below it are dropped. When none reaches it, the floor is
  // relaxed to the best quality among the candidates (the strongest models that fit the
  // constraints and budget stay), never to an empty ranking. `quality_floor_why` names its source
  // in the reasons ("complexity 0.93 -> frontier").
  std::optional<double> quality_floor;
  std::string quality_floor_why;
  // The prompt's image parts, not in input_tokens: each model's context holds them at its own
  // rule (image_context_tokens), checked per model.
  ImageParts images;
};

// A ranked candidate. `model` points into the selector's catalog.
struct Candidate {
  const ModelInfo* model = nullptr;
  double score = 0;            // [0, 1], higher is better
  double quality = 0;          // effective quality used in the score
  double cheapness = 0;        // [0, 1] among the candidates (log-scaled cost)
  double speed = 0.5;          // [0, 1] among the candidates, 0.5 when not measured
  Money estimated_cost;        // input_tokens x prompt + expected output x completion + fees
  Tier tier = Tier::kEconomy;
  std::string quality_source;  // where the quality number came from
  std::vector<std::string> reasons;
};

// Static description of one model as the selector sees it (the plan's `models[id]`).
struct ModelSpec {
  const ModelInfo* model = nullptr;
  std::vector<std::string> capabilities;  // task types it qualifies for + capability names
  Money cost_per_1k;                      // blended (3:1) USD per 1000 tokens
  int64_t context_window = 0;
  Tier tier = Tier::kEconomy;
  double quality = 0;                     // overall prior
  std::string quality_source;
};

// Thread-safe: selection is const and may run concurrently with set_metrics(); neither takes a
// lock shared with the other (selection is a lock-free scan, linear in the catalog).
class ModelSelector {
 public:
  // `catalog` must not be null. Precomputes per-model data; O(models x task types).
  ModelSelector(std::shared_ptr<const ModelCatalog> catalog, QualityPriors priors,
                Strategy default_strategy = Strategy::kBalanced, Constraints defaults = {});

  // The plan's call: id of the best model for `task_type` whose context fits the input (plus
  // the expected output) and whose estimated cost fits `budget`, by the default strategy and
  // constraints. Throws InvalidArgument (unknown task type, negative size) or NoModelAvailable.
  const std::string& select_model(std::string_view task_type, int64_t input_tokens,
                                  std::optional<Money> budget = std::nullopt) const;
  // Every surviving candidate, best first. Throws like select_model.
  std::vector<Candidate> rank(const SelectionRequest& request) const;

  // Records measured behaviour of a model (replaces the previous record). Throws NotFound.
  void set_metrics(std::string_view model_id, const ModelMetrics& metrics);
  void clear_metrics();
  // Installs (or, with nullptr, removes) the learned predictor consulted for requests that carry a
  // prompt. Thread-safe; predict() runs outside the selector's lock.
  void set_quality_predictor(std::shared_ptr<const CatalogQualityPredictor> predictor);

  // The plan's `models`: one spec per model that qualifies for at least one task type.
  std::vector<ModelSpec> specs() const;
  const ModelCatalog& catalog() const { return *catalog_; }
  Strategy default_strategy() const { return default_strategy_; }
  const Constraints& default_constraints() const { return defaults_; }

 private:
  struct Entry {
    const ModelInfo* model;
    uint32_t task_bits;  // bit i = qualifies for task_types()[i]
    uint32_t id_rank;    // position of model->id in id order: ties break on it without strcmp
    Tier tier;
    Money blended_per_mtok;
    std::array<double, kNumQualityCategories> quality;
    std::string quality_source;
    bool free;          // is_free(): ":free" variant or zero-priced
    bool free_variant;  // ":free" suffix (rate-limited reliability prior)
    bool router;        // dynamic price or an openrouter/* entry
    std::string_view provider;
    int64_t expires_day = INT64_MAX;  // days since 1970-01-01 of expiration_date
    // Fewest prompt tokens at which a price tier (pricing.overrides) can apply to a selection
    // estimate (time-windowed tiers never do: the estimate has no time); INT64_MAX if none can.
    int64_t tiers_from = INT64_MAX;
  };
  // Per-slot flags (SlotFlag bits) of a task table.
  enum SlotFlag : uint8_t {
    kRouterFlag = 1,       // never selected (dynamic price / openrouter/*)
    kFreeFlag = 2,         // excluded unless allow_free or free_only
    kFreeVariantFlag = 4,  // x0.9 reliability unless measured
    kTieredFlag = 8,       // cost through Pricing::for_call (rare)
    kExpiresFlag = 16,     // has an expiration_date (checked against today)
    kPromptLimitFlag = 32, // per_request_limits.prompt_tokens (checked on the entry)
  };
  // The candidates of one task type, column by column (structure of arrays), so the selection
  // scan reads ~45 bytes per model from consecutive memory and touches nothing else in the common
  // case. Prices are doubles (USD per token) for scoring; money decisions (budget, reported
  // cost) are exact, from the entry's Money prices (see exact_cost). Rows [0, simple_rows) carry
  // no router/free/expiry/prompt-limit flag, those with plain prices first, each part sorted by
  // context, largest first (order_rows); the rest follow in catalog order.
  struct TaskTable {
    std::vector<uint32_t> entry;
    std::vector<uint8_t> flags;
    std::vector<int64_t> context;
    std::vector<double> quality;  // prior weighted for this task type
    std::vector<double> prompt, completion, request;
    std::vector<int64_t> tiers_from;  // Entry::tiers_from
    size_t plain_price_rows = 0;  // simple rows [0, this) have no price tier and no request fee
    size_t simple_rows = 0;
  };
  // Measured behaviour of one entry, written by set_metrics and read without a lock by selection:
  // `state` (release/acquire) says which fields hold a value; writers of one entry serialise on
  // `writing`. A reader may combine fields of two consecutive records of one model (each a real
  // measurement); it never sees a field flagged before its value is stored.
  enum MetricsBit : uint8_t {
    kHasMetrics = 1,
    kUnavailable = 2,
    kHasSuccess = 4,
    kHasLatency = 8,
    kHasTps = 16,
  };
  struct LiveMetrics {
    std::atomic<bool> writing{false};
    std::atomic<double> success_rate{0}, latency_ms{0}, tokens_per_second{0};
  };
  std::vector<Candidate> run(const SelectionRequest& request, bool best_only) const;
  static void order_rows(TaskTable& table);
  size_t scan_simple(const TaskTable& table, size_t plain_fits, size_t other_end,
                     const SelectionRequest& req,
                     int64_t out_tokens, double budget_d, uint32_t* out_entry, double* out_cost,
                     double* out_quality, uint32_t* deferred, bool& any_speed) const;
  // input x prompt + output x completion + per-request fee, exactly (tiered prices included).
  Money exact_cost(const Entry& e, int64_t input_tokens, int64_t output_tokens) const;
  int full_stage(const Entry& e, const Constraints& c, int64_t need_context, int64_t input_tokens,
                 int64_t today, bool unavailable) const;

  std::shared_ptr<const ModelCatalog> catalog_;
  QualityPriors priors_;
  Strategy default_strategy_;
  Constraints defaults_;
  std::vector<Entry> entries_;
  std::vector<TaskTable> by_task_;  // task type index -> candidates
  // Parallel to entries_: MetricsBit state (read once per candidate) and the values.
  std::unique_ptr<std::atomic<uint8_t>[]> metrics_state_;
  std::unique_ptr<LiveMetrics[]> metrics_;
  mutable std::mutex predictor_mu_;  // guards predictor_ (the pointer, not the predictor)
  std::shared_ptr<const CatalogQualityPredictor> predictor_;
  std::unordered_map<std::string, size_t> entry_of_;
  // Parallel to entries_: Entry::id_rank packed (ties in score and cost read it, often on a
  // catalog with copies of one model).
  std::vector<uint32_t> id_rank_;
};

}  // namespace orroute
