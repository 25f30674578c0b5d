#include "orroute/select/selector.h"
#include "orroute/fixed_text.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <mutex>

#include "orroute/catalog/capabilities.h"
#include "orroute/select/fast_log2.h"

namespace orroute {
namespace {

struct Weights {
  double quality, cheap, speed;
};

constexpr std::array<Weights, 4> kWeights{{
    {0.2, 0.8, 0.0},    // cost_optimized
    {0.55, 0.4, 0.05},  // balanced
    {0.5, 0.1, 0.4},    // performance
    {0.9, 0.1, 0.0},    // quality_first
}};
constexpr std::array<std::string_view, 4> kStrategyNames{"cost_optimized", "balanced",
                                                         "performance", "quality_first"};

// Filter stages, in the order they are applied; the error names the one that removed the last.
enum Stage : int {
  kTask = 0,
  kDynamic,
  kExpired,
  kModels,
  kProviders,
  kFreePaid,
  kTiers,
  kCapabilities,
  kParameters,
  kPrice,
  kMinContext,
  kContext,
  kAvailable,
  kQuality,
  kBudget,
  kPassed,
};

// Days since 1970-01-01 of an ISO date ("YYYY-MM-DD", anything after the day ignored); nullopt if
// `text` is not a valid date.
std::optional<int64_t> iso_day(std::string_view text) {
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int parts[3] = {0, 0, 0};
  const size_t starts[3] = {0, 5, 8}, lens[3] = {4, 2, 2};
  for (int k = 0; k < 3; ++k) {
    for (size_t i = starts[k]; i < starts[k] + lens[k]; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      parts[k] = parts[k] * 10 + (text[i] - '0');
    }
  }
  const std::chrono::year_month_day ymd{std::chrono::year{parts[0]},
                                        std::chrono::month{static_cast<unsigned>(parts[1])},
                                        std::chrono::day{static_cast<unsigned>(parts[2])}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days{ymd}.time_since_epoch().count();
}

int64_t today_utc() {
  return std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())
      .time_since_epoch()
      .count();
}

// Candidates this close to their expiration_date say so in their reasons.
constexpr int64_t kExpiryWarningDays = 30;

constexpr double kFreeVariantReliability = 0.9;  // :free variants are rate-limited
constexpr double kPredictedWeight = 0.8;         // learned prediction vs prior
constexpr double kCostFloorUsd = 1e-6;           // so free models have a finite log cost

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string usd(Money m) { return "$" + m.to_string(); }

std::string fmt(double v, int digits = 2) { return fixed_text(v, digits); }

// Exact money to double for scoring only, without the int128 divisions of Money::to_double.
double approx_usd(Money m) { return static_cast<double>(m.units()) * 1e-18; }

// The columns scan_simple's main loop reads.
struct SimpleColumns {
  const uint32_t* entry;
  const double* quality;
  const double* prompt;
  const double* completion;
  const double* request;
  const int64_t* tiers_from;
  const std::atomic<uint8_t>* state;  // the selector's metrics state, by entry
};

// scan_simple's main loop, alone in a function with no call so that its pointers and figures all
// stay in registers (a call anywhere in the loop's function spilled them). A row with metrics
// (its state is read again, with acquire, by the caller), a price tier that applies, or an
// estimate within rounding of the budget goes to `deferred`: rare, and survivor order does not
// matter. Survivors are written unconditionally and kept by advancing the count.
// With kPlainPrice (rows with no price tier and no request fee) the cost skips those two columns:
// adding a request fee of 0.0 to a non-negative cost changes no bit.
template <bool kPlainPrice>
size_t simple_kernel(const SimpleColumns& col, size_t begin, size_t end, int64_t input,
                     double in_d, double out_d, bool has_min_quality, double min_quality,
                     bool has_budget, double budget_d, uint32_t* __restrict out_entry,
                     double* __restrict out_cost, double* __restrict out_quality,
                     uint32_t* __restrict deferred, size_t& n_deferred) {
  const uint32_t* const entry = col.entry;
  const double* const quality = col.quality;
  const double* const prompt = col.prompt;
  const double* const completion = col.completion;
  const double* const request = col.request;
  const int64_t* const tiers = col.tiers_from;
  const std::atomic<uint8_t>* const state = col.state;
  size_t n = 0, nd = n_deferred;
  for (size_t row = begin; row < end; ++row) {
    const uint32_t idx = entry[row];
    bool defer = state[idx].load(std::memory_order_relaxed) != 0;
    if constexpr (!kPlainPrice) {
      const int64_t tiers_from = tiers[row];  // INT64_MAX: no price tier
      defer |= tiers_from != INT64_MAX && input >= tiers_from;
    }
    if (defer) {
      deferred[nd++] = static_cast<uint32_t>(row);
      continue;
    }
    const double q = quality[row];
    double cost;
    if constexpr (kPlainPrice) {
      cost = prompt[row] * in_d + completion[row] * out_d;
    } else {
      cost = prompt[row] * in_d + completion[row] * out_d + request[row];
    }
    out_entry[n] = idx;
    out_cost[n] = cost;
    out_quality[n] = q;
    bool keep = !(has_min_quality && q < min_quality);
    if (has_budget) {  // as scan_row's over_budget; the exact test, when needed, is deferred
      const double margin = 1e-9 * (std::fabs(cost) + std::fabs(budget_d)) + 1e-15;
      if (std::fabs(cost - budget_d) > margin) {
        keep &= !(cost > budget_d);
      } else {
        keep = false;
        deferred[nd++] = static_cast<uint32_t>(row);
      }
    }
    n += keep ? 1 : 0;
  }
  n_deferred = nd;
  return n;
}

// est[i] = wq x quality[i] + scale x (top - log_cost[i]) + add (or wq x quality[i] + add when not
// `scaled`), and the greatest of them: two lanes at a time where SSE2 is there. An estimate of the
// score only (the division replaced by `scale`); never a decision by itself.
double estimate_scores(const double* quality, const double* log_cost, size_t n, double wq,
                       double scale, double top, double add, bool scaled, double* est) {
  double best = -1e300;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128d vq = _mm_set1_pd(wq), vs = _mm_set1_pd(scaled ? scale : 0.0),
                vt = _mm_set1_pd(top), va = _mm_set1_pd(add);
  __m128d vbest = _mm_set1_pd(-1e300);
  for (; i + 2 <= n; i += 2) {
    const __m128d e = _mm_add_pd(
        _mm_add_pd(_mm_mul_pd(vq, _mm_loadu_pd(quality + i)),
                   _mm_mul_pd(vs, _mm_sub_pd(vt, _mm_loadu_pd(log_cost + i)))),
        va);
    _mm_storeu_pd(est + i, e);
    vbest = _mm_max_pd(vbest, e);
  }
  best = std::max(_mm_cvtsd_f64(vbest), _mm_cvtsd_f64(_mm_unpackhi_pd(vbest, vbest)));
#endif
  for (; i < n; ++i) {
    est[i] = wq * quality[i] + (scaled ? scale * (top - log_cost[i]) : 0.0) + add;
    best = std::max(best, est[i]);
  }
  return best;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string_view strategy_name(Strategy s) { return kStrategyNames[static_cast<size_t>(s)]; }

Strategy strategy_from_name(std::string_view name) {
  for (size_t i = 0; i < kStrategyNames.size(); ++i) {
    if (kStrategyNames[i] == name) return static_cast<Strategy>(i);
  }
  throw InvalidArgument("unknown strategy '" + std::string(name) +
                        "'; known strategies: cost_optimized, balanced, performance, quality_first");
}

ModelSelector::ModelSelector(std::shared_ptr<const ModelCatalog> catalog, QualityPriors priors,
                             Strategy default_strategy, Constraints defaults)
    : catalog_(std::move(catalog)),
      priors_(std::move(priors)),
      default_strategy_(default_strategy),
      defaults_(std::move(defaults)) {
  if (!catalog_) throw InvalidArgument("ModelSelector needs a catalog");
  const auto& types = task_types();
  by_task_.resize(types.size());
  for (const ModelInfo& m : catalog_->models()) {
    uint32_t bits = 0;
    for (size_t t = 0; t < types.size(); ++t) {
      if (qualifies(m, types[t])) bits |= 1u << t;
    }
    if (bits == 0) continue;
    Entry e{&m,
            bits,
            0,
            tier_of(m.pricing),
            blended_price_per_mtok(m.pricing),
            {},
            {},
            m.is_free(),
            m.variant() == "free",
            m.pricing.dynamic || m.provider() == "openrouter",
            m.provider()};
    // OpenRouter removes a model on its expiration_date: from that day on it is never selected.
    if (m.expiration_date) e.expires_day = iso_day(*m.expiration_date).value_or(INT64_MAX);
    for (const PriceTier& tier : m.pricing.tiers) {
      if (!tier.utc_start && !tier.utc_end) {
        e.tiers_from = std::min(e.tiers_from, tier.min_prompt_tokens.value_or(0));
      }
    }
    // Quality: the model's own prior, else its family's, else its price tier's default.
    std::optional<QualityScores> q = priors_.lookup(m.id);
    if (!q) {
      q = priors_.tier_default(tier_name(e.tier));
      if (q) q->source = "default for the " + std::string(tier_name(e.tier)) + " tier (unrated)";
    }
    for (int c = 0; c < kNumQualityCategories; ++c) {
      e.quality[static_cast<size_t>(c)] =
          q ? q->get(static_cast<QualityCategory>(c)).value_or(0.5) : 0.5;
    }
    e.quality_source = q ? q->source : "no prior (0.5)";
    const size_t idx = entries_.size();
    entry_of_.emplace(m.id, idx);
    for (size_t t = 0; t < types.size(); ++t) {
      if (!(bits & (1u << t))) continue;
      double weighted = 0;
      for (size_t k = 0; k < e.quality.size(); ++k) {
        weighted += types[t].weights[k] * e.quality[k];
      }
      const PriceSet& p = m.pricing.base;
      TaskTable& tt = by_task_[t];
      tt.entry.push_back(static_cast<uint32_t>(idx));
      tt.flags.push_back(static_cast<uint8_t>(
          (e.router ? kRouterFlag : 0) | (e.free ? kFreeFlag : 0) |
          (e.free_variant ? kFreeVariantFlag : 0) | (e.tiers_from != INT64_MAX ? kTieredFlag : 0) |
          (e.expires_day != INT64_MAX ? kExpiresFlag : 0) |
          (m.per_request_prompt_tokens ? kPromptLimitFlag : 0)));
      tt.context.push_back(m.context_length);
      tt.quality.push_back(weighted);
      tt.prompt.push_back(approx_usd(p.prompt));
      tt.completion.push_back(approx_usd(p.completion));
      tt.request.push_back(approx_usd(p.request.value_or(Money())));
      tt.tiers_from.push_back(e.tiers_from);
    }
    entries_.push_back(std::move(e));
  }
  for (TaskTable& tt : by_task_) order_rows(tt);
  // Ties in score and cost break on the id: rank ids once here, compare integers per selection.
  std::vector<uint32_t> by_id(entries_.size());
  for (uint32_t i = 0; i < by_id.size(); ++i) by_id[i] = i;
  std::sort(by_id.begin(), by_id.end(),
            [&](uint32_t a, uint32_t b) { return entries_[a].model->id < entries_[b].model->id; });
  id_rank_.resize(entries_.size());
  for (uint32_t r = 0; r < by_id.size(); ++r) {
    entries_[by_id[r]].id_rank = r;
    id_rank_[by_id[r]] = r;
  }
  metrics_state_ = std::make_unique<std::atomic<uint8_t>[]>(entries_.size());
  metrics_ = std::make_unique<LiveMetrics[]>(entries_.size());
}

// Puts a table's simple rows (see scan_simple) first, in two parts (plain prices, then the rest),
// each largest context first, so that the rows a selection's context fits are a prefix of each
// part; the other rows follow in catalog order.
void ModelSelector::order_rows(TaskTable& t) {
  constexpr uint8_t kNotSimple = kRouterFlag | kFreeFlag | kExpiresFlag | kPromptLimitFlag;
  std::vector<uint32_t> perm(t.entry.size());
  for (uint32_t i = 0; i < perm.size(); ++i) perm[i] = i;
  const auto is_simple = [&](uint32_t r) { return (t.flags[r] & kNotSimple) == 0; };
  // Among the simple rows, those with plain prices (no price tier, no request fee) first: their
  // cost is prompt x input + completion x output, without the two other columns.
  const auto plain_price = [&](uint32_t r) {
    return t.tiers_from[r] == INT64_MAX && t.request[r] == 0.0;
  };
  const auto by_context = [&](uint32_t a, uint32_t b) { return t.context[a] > t.context[b]; };
  const auto split = std::stable_partition(perm.begin(), perm.end(), is_simple);
  const auto priced = std::stable_partition(perm.begin(), split, plain_price);
  std::stable_sort(perm.begin(), priced, by_context);
  std::stable_sort(priced, split, by_context);
  t.plain_price_rows = static_cast<size_t>(priced - perm.begin());
  t.simple_rows = static_cast<size_t>(split - perm.begin());
  const auto apply = [&](auto& column) {
    auto old = column;
    for (size_t i = 0; i < perm.size(); ++i) column[i] = old[perm[i]];
  };
  apply(t.entry);
  apply(t.flags);
  apply(t.context);
  apply(t.quality);
  apply(t.prompt);
  apply(t.completion);
  apply(t.request);
  apply(t.tiers_from);
}

void ModelSelector::set_metrics(std::string_view model_id, const ModelMetrics& metrics) {
  const auto it = entry_of_.find(std::string(model_id));
  if (it == entry_of_.end()) {
    catalog_->at(model_id);  // throws NotFound with suggestions if the id is unknown
    return;                  // known but never selectable: nothing to record
  }
  LiveMetrics& live = metrics_[it->second];
  while (live.writing.exchange(true, std::memory_order_acquire)) {
  }
  uint8_t state = kHasMetrics;
  if (!metrics.available) state |= kUnavailable;
  if (metrics.success_rate) {
    live.success_rate.store(*metrics.success_rate, std::memory_order_relaxed);
    state |= kHasSuccess;
  }
  if (metrics.latency_ms) {
    live.latency_ms.store(*metrics.latency_ms, std::memory_order_relaxed);
    state |= kHasLatency;
  }
  if (metrics.tokens_per_second) {
    live.tokens_per_second.store(*metrics.tokens_per_second, std::memory_order_relaxed);
    state |= kHasTps;
  }
  metrics_state_[it->second].store(state, std::memory_order_release);
  live.writing.store(false, std::memory_order_release);
}

void ModelSelector::set_quality_predictor(
    std::shared_ptr<const CatalogQualityPredictor> predictor) {
  std::lock_guard lock(predictor_mu_);
  predictor_ = std::move(predictor);
}

void ModelSelector::clear_metrics() {
  for (size_t i = 0; i < entries_.size(); ++i) {
    metrics_state_[i].store(0, std::memory_order_release);
  }
}

Money ModelSelector::exact_cost(const Entry& e, int64_t input_tokens, int64_t output_tokens) const {
  const PriceSet& p = e.model->pricing.tiers.empty()
                          ? e.model->pricing.base
                          : e.model->pricing.for_call(input_tokens, std::nullopt);
  return p.prompt * input_tokens + p.completion * output_tokens +
         (p.request ? *p.request : Money());
}

std::vector<ModelSpec> ModelSelector::specs() const {
  std::vector<ModelSpec> out;
  out.reserve(entries_.size());
  const auto& types = task_types();
  for (const Entry& e : entries_) {
    ModelSpec s;
    s.model = e.model;
    for (size_t t = 0; t < types.size(); ++t) {
      if (e.task_bits & (1u << t)) s.capabilities.push_back(types[t].name);
    }
    for (auto& c : capability_list(e.model->capabilities)) {
      if (!contains(s.capabilities, c)) s.capabilities.push_back(std::move(c));
    }
    s.cost_per_1k = scale(e.blended_per_mtok, 1, 1000);
    s.context_window = e.model->context_length;
    s.tier = e.tier;
    s.quality = e.quality[0];
    s.quality_source = e.quality_source;
    out.push_back(std::move(s));
  }
  return out;
}

const std::string& ModelSelector::select_model(std::string_view task_type, int64_t input_tokens,
                                               std::optional<Money> budget) const {
  SelectionRequest r;
  r.task_type = std::string(task_type);
  r.input_tokens = input_tokens;
  r.budget = budget;
  r.explain = false;
  return run(r, true).front().model->id;
}

std::vector<Candidate> ModelSelector::rank(const SelectionRequest& request) const {
  return run(request, false);
}

// The full per-model check for constraints beyond the plain ones (kept out of the scan loop so the
// common case stays small): the first Stage that removes the model, or kPassed.
int ModelSelector::full_stage(const Entry& e, const Constraints& c, int64_t need_context,
                              int64_t input_tokens, int64_t today, bool unavailable) const {
  const ModelInfo& m = *e.model;
  Stage st = kPassed;
  if (e.router) {
    st = kDynamic;
  } else if (e.expires_day <= today) {
    st = kExpired;
  } else if ((!c.allowed_models.empty() && !contains(c.allowed_models, m.id)) ||
             contains(c.blocked_models, m.id)) {
    st = kModels;
  } else if ((!c.allowed_providers.empty() && !contains(c.allowed_providers, e.provider)) ||
             contains(c.blocked_providers, e.provider)) {
    st = kProviders;
  } else if ((c.free_only && !e.free) || (c.paid_only && e.free) ||
             (e.free && !c.free_only && !c.allow_free)) {
    st = kFreePaid;
  } else if (!c.tiers.empty() &&
             std::find(c.tiers.begin(), c.tiers.end(), e.tier) == c.tiers.end()) {
    st = kTiers;
  } else if ((m.capabilities & c.required_capabilities) != c.required_capabilities) {
    st = kCapabilities;
  } else if (std::any_of(c.required_parameters.begin(), c.required_parameters.end(),
                         [&](const std::string& p) { return !m.supports_parameter(p); })) {
    st = kParameters;
  } else if ((c.max_price_per_mtok && e.blended_per_mtok > *c.max_price_per_mtok) ||
             (c.max_price_per_1k &&
              scale(e.blended_per_mtok, 1, 1000) > *c.max_price_per_1k)) {
    st = kPrice;
  } else if (c.min_context && m.context_length < *c.min_context) {
    st = kMinContext;
  } else if (m.context_length < need_context ||
             (m.per_request_prompt_tokens && *m.per_request_prompt_tokens < input_tokens)) {
    st = kContext;
  } else if (unavailable) {
    st = kAvailable;
  }
  return st;
}

// The simple rows [0, plain_fits) and [plain_price_rows, other_end) of a table (the rows of each
// part that fit the context) under plain constraints and no predictions: every one fits
// the context and none is a router, free, expiring or prompt-limited model, so only metrics,
// min_quality and the budget can remove it. Same arithmetic as scan_row, so the same survivors with
// the same figures. Writes survivors from the start of the out columns; returns how many.
// `deferred` (room for every simple row) holds the rows the main loops leave to a second one.
size_t ModelSelector::scan_simple(const TaskTable& table, size_t plain_fits, size_t other_end,
                                  const SelectionRequest& req,
                                  int64_t out_tokens, double budget_d, uint32_t* out_entry,
                                  double* out_cost, double* out_quality, uint32_t* deferred,
                                  bool& any_speed) const {
  const Constraints& c = req.constraints ? *req.constraints : defaults_;
  const uint32_t* const col_entry = table.entry.data();
  const double* const col_quality = table.quality.data();
  const double* const col_prompt = table.prompt.data();
  const double* const col_completion = table.completion.data();
  const double* const col_request = table.request.data();
  const int64_t* const col_tiers_from = table.tiers_from.data();
  const std::atomic<uint8_t>* const state = metrics_state_.get();
  const double in_d = static_cast<double>(req.input_tokens);
  const double out_d = static_cast<double>(out_tokens);
  const int64_t input = req.input_tokens;
  const bool has_min_quality = c.min_quality.has_value();
  const double min_quality = c.min_quality.value_or(0);
  const bool has_budget = req.budget.has_value();
  const SimpleColumns cols{col_entry,   col_quality,    col_prompt, col_completion,
                           col_request, col_tiers_from, state};
  size_t n_deferred = 0;
  size_t n = simple_kernel<true>(cols, 0, plain_fits, input, in_d, out_d, has_min_quality,
                                 min_quality, has_budget, budget_d, out_entry, out_cost,
                                 out_quality, deferred, n_deferred);
  n += simple_kernel<false>(cols, table.plain_price_rows, other_end, input, in_d, out_d,
                            has_min_quality, min_quality, has_budget, budget_d, out_entry + n,
                            out_cost + n, out_quality + n, deferred, n_deferred);
  bool speed = false;
  for (size_t k = 0; k < n_deferred; ++k) {
    const size_t row = deferred[k];
    const uint32_t idx = col_entry[row];
    const uint8_t mstate = state[idx].load(std::memory_order_acquire);
    double q = col_quality[row];
    if (mstate & kUnavailable) continue;
    if (mstate & kHasSuccess) q *= metrics_[idx].success_rate.load(std::memory_order_relaxed);
    if (has_min_quality && q < min_quality) continue;
    const int64_t tiers_from = col_tiers_from[row];
    const double cost =
        tiers_from != INT64_MAX && input >= tiers_from
            ? approx_usd(exact_cost(entries_[idx], input, out_tokens))
            : col_prompt[row] * in_d + col_completion[row] * out_d + col_request[row];
    if (has_budget) {
      const double margin = 1e-9 * (std::fabs(cost) + std::fabs(budget_d)) + 1e-15;
      const bool over = std::fabs(cost - budget_d) > margin
                            ? cost > budget_d
                            : exact_cost(entries_[idx], input, out_tokens) > *req.budget;
      if (over) continue;
    }
    speed |= (mstate & (kHasLatency | kHasTps)) != 0;
    out_entry[n] = idx;
    out_cost[n] = cost;
    out_quality[n] = q;
    ++n;
  }
  any_speed |= speed;
  return n;
}

std::vector<Candidate> ModelSelector::run(const SelectionRequest& req, bool best_only) const {
  const auto& types = task_types();
  const TaskType& type = task_type(req.task_type);
  const size_t type_idx = static_cast<size_t>(&type - types.data());
  const Constraints& c = req.constraints ? *req.constraints : defaults_;
  const Strategy strategy = req.strategy.value_or(default_strategy_);
  if (req.input_tokens < 0) {
    throw InvalidArgument("input_size must be >= 0, got " + std::to_string(req.input_tokens));
  }
  if (c.free_only && c.paid_only) throw InvalidArgument("free_only and paid_only exclude each other");
  if (req.budget && req.budget->is_negative()) throw InvalidArgument("budget must be >= 0");
  const int64_t out_tokens = c.expected_output_tokens.value_or(type.expected_output_tokens);
  if (out_tokens < 0) throw InvalidArgument("expected_output_tokens must be >= 0");
  // Constraints that only the full per-model check can evaluate.
  const bool plain = c.required_capabilities == 0 && c.required_parameters.empty() &&
                     !c.max_price_per_1k && !c.max_price_per_mtok && !c.min_context &&
                     c.allowed_providers.empty() && c.blocked_providers.empty() &&
                     c.allowed_models.empty() && c.blocked_models.empty() && !c.free_only &&
                     !c.paid_only && c.tiers.empty();
  const int64_t need_context = req.input_tokens + out_tokens;
  const bool has_images = req.images.images > 0;
  const int64_t today = today_utc();
  const double in_d = static_cast<double>(req.input_tokens);
  const double out_d = static_cast<double>(out_tokens);
  const double budget_d = req.budget ? approx_usd(*req.budget) : 0.0;

  // Learned predictions for this prompt (computed outside any lock); explicit entries win.
  std::unordered_map<std::string, double> from_predictor;
  if (!req.prompt.empty()) {
    std::shared_ptr<const CatalogQualityPredictor> predictor;
    {
      std::lock_guard plock(predictor_mu_);
      predictor = predictor_;
    }
    if (predictor) {
      from_predictor = predictor->predict(req.prompt);
      for (const auto& [id, p] : req.predicted_quality) from_predictor[id] = p;
    }
  }
  const std::unordered_map<std::string, double>& predicted =
      from_predictor.empty() ? req.predicted_quality : from_predictor;
  // Predictions by entry index, sorted: the scan (in entry order) merges with them instead of
  // hashing every candidate's id.
  std::vector<std::pair<uint32_t, double>> predicted_by_entry;
  for (const auto& [id, p] : predicted) {
    if (const auto it = entry_of_.find(id); it != entry_of_.end()) {
      predicted_by_entry.emplace_back(static_cast<uint32_t>(it->second), p);
    }
  }
  std::sort(predicted_by_entry.begin(), predicted_by_entry.end());

  const TaskTable& table = by_task_[type_idx];
  const size_t rows = table.entry.size();
  std::array<int64_t, kPassed + 1> removed{};
  removed[kTask] = static_cast<int64_t>(catalog_->size() - rows);
  constexpr uint32_t kNone = UINT32_MAX;
  uint32_t cheapest_over_budget = kNone;
  double cheapest_over_budget_d = 0;

  // Survivors, column by column, in buffers this thread reuses (no allocation per selection once
  // warm; a fresh 26k-model vector would be an mmap and page faults on every call).
  struct Scratch {
    std::vector<uint32_t> entry;
    std::vector<double> cost, quality, log_cost, score;
    std::vector<uint32_t> order;
  };
  thread_local Scratch scratch;
  Scratch& sc = scratch;
  sc.entry.resize(rows);
  sc.cost.resize(rows);
  sc.quality.resize(rows);
  sc.log_cost.resize(rows);
  size_t n = 0;
  bool any_speed = false;

  // The scan. Columns and survivor buffers are read through local pointers (a store into a survivor
  // column could otherwise alias a vector's internals and force reloads, and the thread_local
  // scratch would be looked up again per row).
  const uint32_t* const col_entry = table.entry.data();
  const uint8_t* const col_flags = table.flags.data();
  const int64_t* const col_context = table.context.data();
  const double* const col_quality = table.quality.data();
  const double* const col_prompt = table.prompt.data();
  const double* const col_completion = table.completion.data();
  const double* const col_request = table.request.data();
  uint32_t* const out_entry = sc.entry.data();
  double* const out_cost = sc.cost.data();
  double* const out_quality = sc.quality.data();
  const bool has_predictions = !predicted_by_entry.empty();
  // Budget test of one estimate: the double decides unless it is within rounding of the budget,
  // then the exact Money cost does.
  const auto over_budget = [&](double cost, uint32_t idx) {
    const double margin = 1e-9 * (std::fabs(cost) + std::fabs(budget_d)) + 1e-15;
    return std::fabs(cost - budget_d) > margin
               ? cost > budget_d
               : exact_cost(entries_[idx], req.input_tokens, out_tokens) > *req.budget;
  };
  // Every check, in stage order, counting what removes each model: any row, any constraints.
  const auto scan_row = [&](size_t row) {
    const uint32_t idx = col_entry[row];
    const uint8_t flags = col_flags[row];
    const uint8_t mstate = metrics_state_[idx].load(std::memory_order_acquire);
    Stage st = kPassed;
    // The prompt this model's context must hold: the text and, with images, this model's bound
    // for them.
    const int64_t images = has_images ? image_context_tokens(entries_[idx].model->id, req.images) : 0;
    const int64_t input = req.input_tokens + images;
    if (plain) {
      if (flags & kRouterFlag) {
        st = kDynamic;
      } else if ((flags & kExpiresFlag) && entries_[idx].expires_day <= today) {
        st = kExpired;
      } else if ((flags & kFreeFlag) && !c.allow_free) {
        st = kFreePaid;
      } else if (col_context[row] < need_context + images ||
                 ((flags & kPromptLimitFlag) && *entries_[idx].model->per_request_prompt_tokens < input)) {
        st = kContext;
      } else if (mstate & kUnavailable) {
        st = kAvailable;
      }
    } else {
      st = static_cast<Stage>(full_stage(entries_[idx], c, need_context + images, input, today,
                                         (mstate & kUnavailable) != 0));
    }
    if (st != kPassed) {
      ++removed[st];
      return;
    }
    // Effective quality: prior for this task type, learned prediction, measured reliability.
    double q = col_quality[row];
    if (has_predictions) {
      const auto it = std::lower_bound(predicted_by_entry.begin(), predicted_by_entry.end(),
                                       std::pair<uint32_t, double>(idx, -1e300));
      if (it != predicted_by_entry.end() && it->first == idx) {
        q = kPredictedWeight * it->second + (1 - kPredictedWeight) * q;
      }
    }
    if (mstate & kHasSuccess) {
      q *= metrics_[idx].success_rate.load(std::memory_order_relaxed);
    } else if (flags & kFreeVariantFlag) {
      q *= kFreeVariantReliability;
    }
    if (c.min_quality && q < *c.min_quality) {
      ++removed[kQuality];
      return;
    }
    // Estimated cost in double for ranking; the budget decision stays exact (over_budget).
    double cost;
    if ((flags & kTieredFlag) && req.input_tokens >= entries_[idx].tiers_from) {
      cost = approx_usd(exact_cost(entries_[idx], req.input_tokens, out_tokens));
    } else {
      cost = col_prompt[row] * in_d + col_completion[row] * out_d + col_request[row];
    }
    if (req.budget && over_budget(cost, idx)) {
      ++removed[kBudget];
      // The cheapest, ties to the first in catalog order (rows are not scanned in that order).
      if (cheapest_over_budget == kNone || cost < cheapest_over_budget_d ||
          (cost == cheapest_over_budget_d && idx < cheapest_over_budget)) {
        cheapest_over_budget = idx;
        cheapest_over_budget_d = cost;
      }
      return;
    }
    any_speed |= (mstate & (kHasLatency | kHasTps)) != 0;
    out_entry[n] = idx;
    out_cost[n] = cost;
    out_quality[n] = q;
    ++n;
  };

  // With plain constraints and no predictions, the table's simple rows (no router, free, expiry
  // or prompt-limit flag; two parts sorted by context, largest first) need no stage check but
  // context, availability, quality floor and budget, and the context check is a binary search:
  // the rows past it are not read at all. The other rows take scan_row. Survivor order does not
  // matter (every ordering below ends on id rank), and counts per stage only matter when nothing
  // survives: then every row is scanned again by scan_row, which counts.
  // (Images: each model's own need, so no search over one need.)
  const bool simple = plain && !has_predictions && !has_images;
  if (simple) {
    const auto fits = [&](int64_t x) { return x >= need_context; };
    const auto fits_until = [&](size_t begin, size_t end) {  // first row of [begin, end) too small
      return static_cast<size_t>(
          std::partition_point(col_context + begin, col_context + end, fits) - col_context);
    };
    sc.order.resize(table.simple_rows);
    n = scan_simple(table, fits_until(0, table.plain_price_rows),
                    fits_until(table.plain_price_rows, table.simple_rows), req, out_tokens,
                    budget_d, sc.entry.data(), sc.cost.data(), sc.quality.data(), sc.order.data(),
                    any_speed);
    for (size_t row = table.simple_rows; row < rows; ++row) scan_row(row);
  } else {
    for (size_t row = 0; row < rows; ++row) scan_row(row);
  }
  if (n == 0 && simple) {
    for (size_t row = 0; row < table.simple_rows; ++row) scan_row(row);
  }
  // Log costs, two at a time (the polynomial is most of a survivor's arithmetic), and their range
  // on two chains per end (min and max are exact: the split does not change them).
  double lmin = 1e300, lmax = -1e300;
  {
    const double* const cost = sc.cost.data();
    double* const log_cost = sc.log_cost.data();
    double lo0 = 1e300, lo1 = 1e300, hi0 = -1e300, hi1 = -1e300;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
      double l0, l1;
      fast_log2_x2(cost[i] + kCostFloorUsd, cost[i + 1] + kCostFloorUsd, l0, l1);
      log_cost[i] = l0;
      log_cost[i + 1] = l1;
      lo0 = std::min(lo0, l0);
      hi0 = std::max(hi0, l0);
      lo1 = std::min(lo1, l1);
      hi1 = std::max(hi1, l1);
    }
    if (i < n) {
      log_cost[i] = fast_log2(cost[i] + kCostFloorUsd);
      lo0 = std::min(lo0, log_cost[i]);
      hi0 = std::max(hi0, log_cost[i]);
    }
    lmin = std::min(lo0, lo1);
    lmax = std::max(hi0, hi1);
  }

  if (n == 0) {
    const std::array<std::string, kPassed> what{
        "task type '" + type.name + "' (" + type.rule + ")",
        "router entries (price and model chosen by OpenRouter)",
        "expiration_date reached (retired by OpenRouter)",
        "allowed/blocked models",
        "allowed/blocked providers",
        c.free_only  ? std::string("free_only")
        : c.paid_only ? std::string("paid_only")
                      : std::string("free models excluded (rate-limited; set allow_free)"),
        "allowed tiers",
        "required capabilities [" + join(capability_list(c.required_capabilities)) + "]",
        "required parameters [" + join(c.required_parameters) + "]",
        "max price" + (c.max_price_per_mtok ? " " + usd(*c.max_price_per_mtok) + "/M" : "") +
            (c.max_price_per_1k ? " " + usd(*c.max_price_per_1k) + "/1k" : "") + " (blended)",
        "min_context " + std::to_string(c.min_context.value_or(0)),
        "context window (input " + std::to_string(req.input_tokens) +
            (has_images ? " + " + std::to_string(req.images.images) + " images at each model's bound" : std::string()) +
            " + expected output " + std::to_string(out_tokens) + " tokens)",
        "availability (marked unavailable by metrics)",
        "min_quality " + fmt(c.min_quality.value_or(0)),
        "budget " + (req.budget ? usd(*req.budget) : std::string()),
    };
    int last = kTask;
    for (int s = 0; s < kPassed; ++s) {
      if (removed[static_cast<size_t>(s)] > 0) last = s;
    }
    std::string msg = "no model available for task '" + type.name + "' (input " +
                      std::to_string(req.input_tokens) + " tokens" +
                      (req.budget ? ", budget " + usd(*req.budget) : "") + "): " +
                      what[static_cast<size_t>(last)] + " removed the last " +
                      std::to_string(removed[static_cast<size_t>(last)]) + " candidates";
    if (last == kBudget && cheapest_over_budget != kNone) {
      const Entry& e = entries_[cheapest_over_budget];
      msg += " (cheapest estimate " + usd(exact_cost(e, req.input_tokens, out_tokens)) + " for " +
             e.model->id + ")";
    }
    std::string before;
    for (int s = 0; s < last; ++s) {
      if (removed[static_cast<size_t>(s)] > 0) {
        before += (before.empty() ? "" : ", ") + what[static_cast<size_t>(s)] + ": " +
                  std::to_string(removed[static_cast<size_t>(s)]);
      }
    }
    if (!before.empty()) msg += "; removed before that: " + before;
    throw NoModelAvailable(msg);
  }

  // The difficulty floor: soft, after the hard constraints, so it orders what the caller allowed
  // instead of refusing a task the constraints and budget can serve.
  std::string floor_reason;
  if (req.quality_floor) {
    const double floor = *req.quality_floor;
    double best_q = 0;
    for (size_t i = 0; i < n; ++i) best_q = std::max(best_q, sc.quality[i]);
    const size_t before = n;
    const double applied = best_q >= floor ? floor : best_q;
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      if (sc.quality[i] < applied) continue;
      sc.entry[kept] = sc.entry[i];
      sc.cost[kept] = sc.cost[i];
      sc.quality[kept] = sc.quality[i];
      sc.log_cost[kept] = sc.log_cost[i];
      ++kept;
    }
    n = kept;
    lmin = 1e300;  // the range is over the candidates kept
    lmax = -1e300;
    for (size_t i = 0; i < n; ++i) {
      lmin = std::min(lmin, sc.log_cost[i]);
      lmax = std::max(lmax, sc.log_cost[i]);
    }
    const std::string why = req.quality_floor_why.empty() ? std::string("task difficulty")
                                                           : req.quality_floor_why;
    floor_reason = best_q >= floor
        ? "quality floor " + fmt(floor) + " from " + why + ": kept " + std::to_string(n) +
              " of " + std::to_string(before) + " candidates"
        : "quality floor " + fmt(floor) + " from " + why + " relaxed to " + fmt(best_q) +
              ", the best quality within the constraints (kept " + std::to_string(n) + " of " +
              std::to_string(before) + ")";
  }

  // Normalise cost (log scale, computed above) and speed over the survivors, then score.
  sc.score.resize(n);
  double tps_max = 0, lat_min = 1e300;
  const auto speed_state = [&](uint32_t idx) {
    return metrics_state_[idx].load(std::memory_order_acquire);
  };
  if (any_speed) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t ms = speed_state(sc.entry[i]);
      const LiveMetrics& mt = metrics_[sc.entry[i]];
      if (ms & kHasTps) {
        const double v = mt.tokens_per_second.load(std::memory_order_relaxed);
        if (v > 0) tps_max = std::max(tps_max, v);
      }
      if (ms & kHasLatency) {
        const double v = mt.latency_ms.load(std::memory_order_relaxed);
        if (v > 0) lat_min = std::min(lat_min, v);
      }
    }
  }
  const Weights sw = kWeights[static_cast<size_t>(strategy)];
  const auto speed_of = [&](uint32_t idx) {
    if (!any_speed) return 0.5;
    const uint8_t ms = speed_state(idx);
    if (!(ms & kHasMetrics)) return 0.5;
    const LiveMetrics& mt = metrics_[idx];
    double sum = 0;
    int k = 0;
    if (ms & kHasTps) {
      const double v = mt.tokens_per_second.load(std::memory_order_relaxed);
      if (v > 0 && tps_max > 0) {
        sum += v / tps_max;
        ++k;
      }
    }
    if (ms & kHasLatency) {
      const double v = mt.latency_ms.load(std::memory_order_relaxed);
      if (v > 0 && lat_min < 1e300) {
        sum += lat_min / v;
        ++k;
      }
    }
    return k ? sum / k : 0.5;
  };
  const double span = lmax - lmin;
  const auto cheap_of = [&](double log_cost) { return span > 0 ? (lmax - log_cost) / span : 1.0; };
  const bool fused = !any_speed && (best_only || req.limit == 1);
  if (fused) {
    // scored in the pass that picks the best, below
  } else if (any_speed) {
    for (size_t i = 0; i < n; ++i) {
      sc.score[i] = sw.quality * sc.quality[i] + sw.cheap * cheap_of(sc.log_cost[i]) +
                    sw.speed * speed_of(sc.entry[i]);
    }
  } else {
    const double speed_term = sw.speed * 0.5;
    const double* const quality = sc.quality.data();
    const double* const log_cost = sc.log_cost.data();
    double* const score = sc.score.data();
    for (size_t i = 0; i < n; ++i) {
      score[i] = sw.quality * quality[i] + sw.cheap * cheap_of(log_cost[i]) + speed_term;
    }
  }
  // Best first: higher score, then cheaper, then id order.
  const auto better = [&](uint32_t a, uint32_t b) {
    if (sc.score[a] != sc.score[b]) return sc.score[a] > sc.score[b];
    if (sc.cost[a] != sc.cost[b]) return sc.cost[a] < sc.cost[b];
    return id_rank_[sc.entry[a]] < id_rank_[sc.entry[b]];
  };

  const auto make = [&](uint32_t i) {
    const Entry& e = entries_[sc.entry[i]];
    Candidate cand;
    cand.model = e.model;
    cand.score = sc.score[i];
    cand.quality = sc.quality[i];
    cand.cheapness = cheap_of(sc.log_cost[i]);
    cand.speed = speed_of(sc.entry[i]);
    cand.estimated_cost = exact_cost(e, req.input_tokens, out_tokens);
    cand.tier = e.tier;
    cand.quality_source = e.quality_source;
    if (req.explain) {
      const uint8_t ms = speed_state(sc.entry[i]);
      auto& r = cand.reasons;
      r.push_back("qualifies for '" + type.name + "': " + type.rule);
      std::string qs = "quality " + fmt(cand.quality) + " for " + type.name + " (prior: " +
                       e.quality_source + ")";
      if (predicted.count(e.model->id)) qs += ", blended with the learned prediction";
      if (ms & kHasSuccess) {
        qs += ", x measured success rate " +
              fmt(metrics_[sc.entry[i]].success_rate.load(std::memory_order_relaxed));
      } else if (e.free_variant) {
        qs += ", x " + fmt(kFreeVariantReliability) + " for a rate-limited :free variant";
      }
      r.push_back(qs);
      r.push_back("estimated cost " + usd(cand.estimated_cost) + " for " +
                  std::to_string(req.input_tokens) + " input + " + std::to_string(out_tokens) +
                  " output tokens" + (req.budget ? " (budget " + usd(*req.budget) + ")" : ""));
      r.push_back("tier " + std::string(tier_name(e.tier)) + " (" + usd(e.blended_per_mtok) +
                  "/M tokens blended 3:1)");
      r.push_back("context window " + std::to_string(e.model->context_length) + " tokens fits " +
                  std::to_string(req.input_tokens + image_context_tokens(e.model->id, req.images) + out_tokens));
      if (e.expires_day - today <= kExpiryWarningDays) {
        r.push_back("expires on " + *e.model->expiration_date + " (in " +
                    std::to_string(e.expires_day - today) + " days)");
      }
      if (!floor_reason.empty()) r.push_back(floor_reason);
      r.push_back("score " + fmt(cand.score, 3) + " = " + fmt(sw.quality) + " x quality " +
                  fmt(cand.quality) + " + " + fmt(sw.cheap) + " x cheapness " +
                  fmt(cand.cheapness) + " + " + fmt(sw.speed) + " x speed " + fmt(cand.speed) +
                  " (" + std::string(strategy_name(strategy)) + ")");
    }
    return cand;
  };

  if (fused) {
    // The best only, without speed figures: scored exactly only where it can matter. Same
    // formula as below and the same order as `better`: higher score, then cheaper, then id rank.
    const double wq = sw.quality, wc = sw.cheap, speed_term = sw.speed * 0.5;
    const double top = lmax, width = span;
    const double* const quality = sc.quality.data();
    const double* const log_cost = sc.log_cost.data();
    const double* const cost = sc.cost.data();
    const auto score_at = [=](size_t i) {
      return wq * quality[i] + wc * (width > 0 ? (top - log_cost[i]) / width : 1.0) + speed_term;
    };
    // Two passes. The first estimates every score with a multiplication instead of the division
    // (within a few ulps of the exact score) and takes the greatest estimate, two lanes at a time,
    // no branch. A candidate whose estimate is below that by far more than rounding (1e-9
    // relative) scores below the candidate that has it, so it is not the best: the second pass
    // scores exactly only the others (and candidate 0, where the exact loop starts), in the exact
    // loop's order and tests.
    const double inv_width = width > 0 ? 1.0 / width : 0.0;
    const double cheap_scale = width > 0 ? wc * inv_width : 0.0;
    const double cheap_const = width > 0 ? 0.0 : wc;  // cheapness 1 when the span is 0
    double* const estimate = sc.score.data();
    const double est_max = estimate_scores(quality, log_cost, n, wq, cheap_scale, top,
                                           cheap_const + speed_term, width > 0, estimate);
    const double threshold = est_max - 1e-9 * (1 + std::fabs(est_max));
    uint32_t best = 0;
    double best_score = score_at(0);
    for (uint32_t i = 1; i < n; ++i) {
      if (estimate[i] < threshold) continue;
      const double si = score_at(i);
      if (si < best_score) continue;  // the common case, without the tie-breaks
      if (si != best_score
              ? si > best_score
              : cost[i] != cost[best]
                    ? cost[i] < cost[best]
                    : id_rank_[sc.entry[i]] < id_rank_[sc.entry[best]]) {
        best = i;
        best_score = si;
      }
    }
    sc.score[best] = best_score;
    return {make(best)};
  }
  if (best_only || req.limit == 1) {
    uint32_t best = 0;
    const double* const score = sc.score.data();
    double best_score = score[0];
    for (uint32_t i = 1; i < n; ++i) {
      if (score[i] < best_score) continue;  // the common case, without the tie-breaks
      if (better(i, best)) {
        best = i;
        best_score = score[i];
      }
    }
    return {make(best)};
  }
  // rank(limit=k): partial selection, O(n log k); the whole list only when asked for.
  sc.order.resize(n);
  for (uint32_t i = 0; i < n; ++i) sc.order[i] = i;
  const size_t keep = req.limit > 0 && req.limit < n ? req.limit : n;
  if (keep < n) {
    std::partial_sort(sc.order.begin(), sc.order.begin() + static_cast<std::ptrdiff_t>(keep),
                      sc.order.end(), better);
  } else {
    std::sort(sc.order.begin(), sc.order.end(), better);
  }
  std::vector<Candidate> out;
  out.reserve(keep);
  for (size_t k = 0; k < keep; ++k) out.push_back(make(sc.order[k]));
  return out;
}

}  // namespace orroute
