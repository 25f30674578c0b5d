#include "orroute/select/selector.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <mutex>

#include "orroute/catalog/capabilities.h"

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

std::string fmt(double v, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// log2 to about 1e-4, much cheaper than std::log: only used to rank (never for money), and the
// same function serves select_model and rank so both order candidates identically.
double fast_log2(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;  // mantissa in [1, 2)
  double m;
  std::memcpy(&m, &bits, sizeof m);
  // Least-squares quintic for log2(1 + t) on t in [0, 1): max error 5e-5.
  const double t = m - 1.0;
  return exponent +
         t * (1.44127084 + t * (-0.705719485 + t * (0.40874967 + t * (-0.187743999 + t * 0.0434343352))));
}

// Exact money to double for scoring only, without the int128 divisions of Money::to_double.
double approx_usd(Money m) { return static_cast<double>(m.units()) * 1e-18; }

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
      by_task_[t].push_back({static_cast<uint32_t>(idx), e.router, e.free, e.free_variant,
                             !m.pricing.tiers.empty(), e.expires_day, m.context_length,
                             m.per_request_prompt_tokens.value_or(INT64_MAX), p.prompt,
                             p.completion, p.request.value_or(Money()), weighted});
    }
    entries_.push_back(std::move(e));
  }
  metrics_.resize(entries_.size());
}

void ModelSelector::set_metrics(std::string_view model_id, const ModelMetrics& metrics) {
  const auto it = entry_of_.find(std::string(model_id));
  if (it == entry_of_.end()) {
    catalog_->at(model_id);  // throws NotFound with suggestions if the id is unknown
    return;                  // known but never selectable: nothing to record
  }
  std::unique_lock lock(metrics_mu_);
  metrics_[it->second] = metrics;
}

void ModelSelector::set_quality_predictor(
    std::shared_ptr<const CatalogQualityPredictor> predictor) {
  std::unique_lock lock(metrics_mu_);
  predictor_ = std::move(predictor);
}

void ModelSelector::clear_metrics() {
  std::unique_lock lock(metrics_mu_);
  std::fill(metrics_.begin(), metrics_.end(), std::nullopt);
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
  const int64_t today = today_utc();

  // Learned predictions for this prompt, computed outside the lock; explicit entries win.
  std::unordered_map<std::string, double> from_predictor;
  if (!req.prompt.empty()) {
    std::shared_ptr<const CatalogQualityPredictor> predictor;
    {
      std::shared_lock plock(metrics_mu_);
      predictor = predictor_;
    }
    if (predictor) {
      from_predictor = predictor->predict(req.prompt);
      for (const auto& [id, p] : req.predicted_quality) from_predictor[id] = p;
    }
  }
  const std::unordered_map<std::string, double>& predicted =
      from_predictor.empty() ? req.predicted_quality : from_predictor;

  std::array<int64_t, kPassed + 1> removed{};
  removed[kTask] = static_cast<int64_t>(catalog_->size() - by_task_[type_idx].size());
  std::optional<Money> cheapest_over_budget;
  const ModelInfo* cheapest_over_budget_model = nullptr;
  std::vector<Scored> pass;
  pass.reserve(by_task_[type_idx].size());

  std::shared_lock lock(metrics_mu_);
  for (const Slot& slot : by_task_[type_idx]) {
    const uint32_t idx = slot.entry;
    const auto& metrics = metrics_[idx];
    // Fast path: with plain constraints only these stages can remove a model.
    const auto quick = [&]() -> Stage {
      if (slot.router) return kDynamic;
      if (slot.expires_day <= today) return kExpired;
      if (slot.free && !c.allow_free) return kFreePaid;
      if (slot.context < need_context || slot.max_prompt < req.input_tokens) return kContext;
      if (metrics && !metrics->available) return kAvailable;
      return kPassed;
    };
    const auto stage = [&]() -> Stage {
      const Entry& e = entries_[idx];
      const ModelInfo& m = *e.model;
      if (e.router) return kDynamic;
      if (e.expires_day <= today) return kExpired;
      if ((!c.allowed_models.empty() && !contains(c.allowed_models, m.id)) ||
          contains(c.blocked_models, m.id)) {
        return kModels;
      }
      if ((!c.allowed_providers.empty() && !contains(c.allowed_providers, e.provider)) ||
          contains(c.blocked_providers, e.provider)) {
        return kProviders;
      }
      if ((c.free_only && !e.free) || (c.paid_only && e.free) ||
          (e.free && !c.free_only && !c.allow_free)) {
        return kFreePaid;
      }
      if (!c.tiers.empty() && std::find(c.tiers.begin(), c.tiers.end(), e.tier) == c.tiers.end()) {
        return kTiers;
      }
      if ((m.capabilities & c.required_capabilities) != c.required_capabilities) return kCapabilities;
      for (const auto& p : c.required_parameters) {
        if (!m.supports_parameter(p)) return kParameters;
      }
      if ((c.max_price_per_mtok && e.blended_per_mtok > *c.max_price_per_mtok) ||
          (c.max_price_per_1k && scale(e.blended_per_mtok, 1, 1000) > *c.max_price_per_1k)) {
        return kPrice;
      }
      if (c.min_context && m.context_length < *c.min_context) return kMinContext;
      if (m.context_length < req.input_tokens + out_tokens ||
          (m.per_request_prompt_tokens && *m.per_request_prompt_tokens < req.input_tokens)) {
        return kContext;
      }
      if (metrics && !metrics->available) return kAvailable;
      return kPassed;
    };
    const Stage st = plain ? quick() : stage();
    if (st != kPassed) {
      ++removed[st];
      continue;
    }
    // Effective quality: prior for this task type, learned prediction, measured reliability.
    double q = slot.quality;
    if (!predicted.empty()) {
      const ModelInfo& m = *entries_[idx].model;
      if (const auto it = predicted.find(m.id); it != predicted.end()) {
        q = kPredictedWeight * it->second + (1 - kPredictedWeight) * q;
      }
    }
    if (metrics && metrics->success_rate) {
      q *= *metrics->success_rate;
    } else if (slot.free_variant) {
      q *= kFreeVariantReliability;
    }
    if (c.min_quality && q < *c.min_quality) {
      ++removed[kQuality];
      continue;
    }
    // Same as price_call() for plain prompt/completion counts, without its per-call checks.
    Money cost;
    if (slot.tiered) {
      const PriceSet& p = entries_[idx].model->pricing.for_call(req.input_tokens, std::nullopt);
      cost = p.prompt * req.input_tokens + p.completion * out_tokens +
             (p.request ? *p.request : Money());
    } else {
      cost = slot.prompt * req.input_tokens + slot.completion * out_tokens + slot.request;
    }
    if (req.budget && cost > *req.budget) {
      ++removed[kBudget];
      if (!cheapest_over_budget || cost < *cheapest_over_budget) {
        cheapest_over_budget = cost;
        cheapest_over_budget_model = entries_[idx].model;
      }
      continue;
    }
    pass.push_back({idx, cost, fast_log2(approx_usd(cost) + kCostFloorUsd), q});
  }

  if (pass.empty()) {
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
        "context window (input " + std::to_string(req.input_tokens) + " + expected output " +
            std::to_string(out_tokens) + " tokens)",
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
    if (last == kBudget && cheapest_over_budget_model != nullptr) {
      msg += " (cheapest estimate " + usd(*cheapest_over_budget) + " for " +
             cheapest_over_budget_model->id + ")";
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
    for (const Scored& s : pass) best_q = std::max(best_q, s.quality);
    const size_t before = pass.size();
    const double applied = best_q >= floor ? floor : best_q;
    std::erase_if(pass, [&](const Scored& s) { return s.quality < applied; });
    const std::string why = req.quality_floor_why.empty() ? std::string("task difficulty")
                                                           : req.quality_floor_why;
    floor_reason = best_q >= floor
        ? "quality floor " + fmt(floor) + " from " + why + ": kept " +
              std::to_string(pass.size()) + " of " + std::to_string(before) + " candidates"
        : "quality floor " + fmt(floor) + " from " + why + " relaxed to " + fmt(best_q) +
              ", the best quality within the constraints (kept " + std::to_string(pass.size()) +
              " of " + std::to_string(before) + ")";
  }

  // Normalise cost (log scale) and speed over the survivors, then score.
  double lmin = 1e300, lmax = -1e300, tps_max = 0, lat_min = 1e300;
  for (const Scored& s : pass) {
    const double l = s.cost_d;
    lmin = std::min(lmin, l);
    lmax = std::max(lmax, l);
    if (const auto& mt = metrics_[s.entry]) {
      if (mt->tokens_per_second && *mt->tokens_per_second > 0) tps_max = std::max(tps_max, *mt->tokens_per_second);
      if (mt->latency_ms && *mt->latency_ms > 0) lat_min = std::min(lat_min, *mt->latency_ms);
    }
  }
  const Weights sw = kWeights[static_cast<size_t>(strategy)];
  const auto speed_of = [&](size_t idx) {
    const auto& mt = metrics_[idx];
    if (!mt) return 0.5;
    double sum = 0;
    int n = 0;
    if (mt->tokens_per_second && *mt->tokens_per_second > 0 && tps_max > 0) {
      sum += *mt->tokens_per_second / tps_max;
      ++n;
    }
    if (mt->latency_ms && *mt->latency_ms > 0 && lat_min < 1e300) {
      sum += lat_min / *mt->latency_ms;
      ++n;
    }
    return n ? sum / n : 0.5;
  };
  const auto cheap_of = [&](double log_cost) {
    return lmax > lmin ? (lmax - log_cost) / (lmax - lmin) : 1.0;
  };
  const auto score_of = [&](const Scored& s) {
    return sw.quality * s.quality + sw.cheap * cheap_of(s.cost_d) + sw.speed * speed_of(s.entry);
  };
  const auto better = [&](const Scored& a, double sa, const Scored& b, double sb) {
    if (sa != sb) return sa > sb;
    if (a.cost != b.cost) return a.cost < b.cost;
    return entries_[a.entry].model->id < entries_[b.entry].model->id;
  };

  const auto make = [&](const Scored& s, double score) {
    const Entry& e = entries_[s.entry];
    Candidate cand;
    cand.model = e.model;
    cand.score = score;
    cand.quality = s.quality;
    cand.cheapness = cheap_of(s.cost_d);
    cand.speed = speed_of(s.entry);
    cand.estimated_cost = s.cost;
    cand.tier = e.tier;
    cand.quality_source = e.quality_source;
    if (req.explain) {
      const auto& mt = metrics_[s.entry];
      auto& r = cand.reasons;
      r.push_back("qualifies for '" + type.name + "': " + type.rule);
      std::string qs = "quality " + fmt(s.quality) + " for " + type.name + " (prior: " +
                       e.quality_source + ")";
      if (predicted.count(e.model->id)) qs += ", blended with the learned prediction";
      if (mt && mt->success_rate) {
        qs += ", x measured success rate " + fmt(*mt->success_rate);
      } else if (e.free_variant) {
        qs += ", x " + fmt(kFreeVariantReliability) + " for a rate-limited :free variant";
      }
      r.push_back(qs);
      r.push_back("estimated cost " + usd(s.cost) + " for " + std::to_string(req.input_tokens) +
                  " input + " + std::to_string(out_tokens) + " output tokens" +
                  (req.budget ? " (budget " + usd(*req.budget) + ")" : ""));
      r.push_back("tier " + std::string(tier_name(e.tier)) + " (" + usd(e.blended_per_mtok) +
                  "/M tokens blended 3:1)");
      r.push_back("context window " + std::to_string(e.model->context_length) + " tokens fits " +
                  std::to_string(req.input_tokens + out_tokens));
      if (e.expires_day - today <= kExpiryWarningDays) {
        r.push_back("expires on " + *e.model->expiration_date + " (in " +
                    std::to_string(e.expires_day - today) + " days)");
      }
      if (!floor_reason.empty()) r.push_back(floor_reason);
      r.push_back("score " + fmt(score, 3) + " = " + fmt(sw.quality) + " x quality " +
                  fmt(s.quality) + " + " + fmt(sw.cheap) + " x cheapness " + fmt(cand.cheapness) +
                  " + " + fmt(sw.speed) + " x speed " + fmt(cand.speed) + " (" +
                  std::string(strategy_name(strategy)) + ")");
    }
    return cand;
  };

  if (best_only) {
    size_t best = 0;
    double best_score = score_of(pass[0]);
    for (size_t i = 1; i < pass.size(); ++i) {
      const double sc = score_of(pass[i]);
      if (better(pass[i], sc, pass[best], best_score)) {
        best = i;
        best_score = sc;
      }
    }
    return {make(pass[best], best_score)};
  }
  std::vector<std::pair<double, size_t>> order;
  order.reserve(pass.size());
  for (size_t i = 0; i < pass.size(); ++i) order.emplace_back(score_of(pass[i]), i);
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return better(pass[a.second], a.first, pass[b.second], b.first);
  });
  if (req.limit > 0 && order.size() > req.limit) order.resize(req.limit);
  std::vector<Candidate> out;
  out.reserve(order.size());
  for (const auto& [sc, i] : order) out.push_back(make(pass[i], sc));
  return out;
}

}  // namespace orroute
