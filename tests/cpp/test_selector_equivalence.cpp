// ModelSelector's scan (reordered rows, a fast path for plain constraints, fused passes) decides
// exactly as a straightforward reference scan: every model of the catalog in order, every rule
// written out once, exact Money for the budget. Random catalogs (ties in price and quality on
// purpose, free/router/expiring/prompt-limited/tiered models), random metrics, predictions,
// constraints, budgets (some equal to a model's exact cost), strategies, floors and limits.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "orroute/select/fast_log2.h"
#include "orroute/select/selector.h"

using orroute::Constraints;
using orroute::Money;
using orroute::ModelInfo;
using orroute::ModelMetrics;
using orroute::ModelSelector;
using orroute::SelectionRequest;
using orroute::Strategy;

namespace {

struct Rng {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(s >> 33);
  }
  size_t below(size_t n) { return next() % n; }
  bool chance(int percent) { return static_cast<int>(below(100)) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

// Few distinct prices, contexts and qualities, so that ties in cost, quality and score happen.
const std::vector<std::string> kPrices{"0", "0.0000001", "0.0000002", "0.000001", "0.000003",
                                       "0.00001", "0.00003", "0.0000000123"};
const std::vector<int64_t> kContexts{0, 4096, 8192, 32000, 128000, 200000, 1000000};
const std::vector<std::string> kParams{"tools", "reasoning", "response_format", "temperature"};
const std::vector<std::string> kProviders{"acme", "beta", "gamma", "delta", "openrouter"};
const std::vector<double> kQualities{0.3, 0.5, 0.7, 0.8, 0.9, 0.95};

std::string random_model(Rng& r, size_t i) {
  const std::string provider = r.chance(4) ? "openrouter" : r.pick(kProviders);
  std::string id = provider + "/m" + std::to_string(i);
  const bool free_variant = r.chance(8);
  if (free_variant) id += ":free";
  const bool router_price = r.chance(3);
  const auto price = [&] {
    return router_price ? std::string("-1") : free_variant ? std::string("0") : r.pick(kPrices);
  };
  std::string json = "{\"id\":\"" + id + "\",\"context_length\":" +
                     std::to_string(r.pick(kContexts)) +
                     ",\"architecture\":{\"input_modalities\":[\"text\"" +
                     (r.chance(30) ? ",\"image\"" : "") + "],\"output_modalities\":[\"text\"]}";
  json += ",\"pricing\":{\"prompt\":\"" + price() + "\",\"completion\":\"" + price() + "\"";
  if (r.chance(20)) json += ",\"request\":\"" + price() + "\"";
  if (r.chance(15)) {  // a price tier from a prompt size (and sometimes a time-windowed one)
    json += ",\"overrides\":[{\"min_prompt_tokens\":" + std::to_string(r.pick(kContexts) / 2) +
            ",\"prompt\":\"" + price() + "\",\"completion\":\"" + price() + "\"}";
    if (r.chance(30)) json += ",{\"utc_start\":100,\"utc_end\":500,\"prompt\":\"0\"}";
    json += "]";
  }
  json += "},\"supported_parameters\":[";
  bool first = true;
  for (const std::string& p : kParams) {
    if (r.chance(60)) {
      json += std::string(first ? "" : ",") + "\"" + p + "\"";
      first = false;
    }
  }
  json += "]";
  if (r.chance(10)) {
    json += ",\"expiration_date\":\"" +
            std::string(r.chance(50) ? "2000-01-01" : "2999-01-01") + "\"";
  }
  if (r.chance(8)) {
    json += ",\"per_request_limits\":{\"prompt_tokens\":" + std::to_string(r.pick(kContexts)) + "}";
  }
  return json + "}";
}

std::string random_priors(Rng& r, size_t models) {
  std::string json = "{\"models\":{";
  bool first = true;
  for (size_t i = 0; i < models; ++i) {
    if (!r.chance(60)) continue;
    for (const std::string& provider : kProviders) {
      for (const char* suffix : {"", ":free"}) {
        json += std::string(first ? "" : ",") + "\"" + provider + "/m" + std::to_string(i) +
                suffix + "\":{\"overall\":" + std::to_string(r.pick(kQualities)) +
                (r.chance(50) ? ",\"coding\":" + std::to_string(r.pick(kQualities)) : "") +
                (r.chance(50) ? ",\"math\":" + std::to_string(r.pick(kQualities)) : "") +
                ",\"source\":\"t\"}";
        first = false;
      }
    }
  }
  return json +
         "},\"tier_defaults\":{\"premium\":{\"overall\":0.75},"
         "\"economy\":{\"overall\":0.45}}}";
}

double approx_usd(Money m) { return static_cast<double>(m.units()) * 1e-18; }

// The reference: one pass over the catalog in order, each rule as the selector documents it.
struct RefCandidate {
  const ModelInfo* m;
  double q, cost, log_cost, score = 0;
};

using MetricsById = std::unordered_map<std::string, ModelMetrics>;

std::vector<std::string> reference_rank(const orroute::ModelCatalog& cat,
                                        const orroute::QualityPriors& priors,
                                        const MetricsById& metrics, const SelectionRequest& req,
                                        Strategy strategy, const Constraints& c) {
  const orroute::TaskType& type = orroute::task_type(req.task_type);
  const int64_t out = c.expected_output_tokens.value_or(type.expected_output_tokens);
  const int64_t in = req.input_tokens;
  std::vector<RefCandidate> kept;
  for (const ModelInfo& m : cat.models()) {
    if (!orroute::qualifies(m, type)) continue;
    const bool free = m.is_free();
    const std::string_view provider = m.provider();
    const auto mt = metrics.find(m.id);
    const bool unavailable = mt != metrics.end() && !mt->second.available;
    const orroute::Tier tier = orroute::tier_of(m.pricing);
    const Money blended = orroute::blended_price_per_mtok(m.pricing);
    const auto has = [](const std::vector<std::string>& v, std::string_view s) {
      return std::find(v.begin(), v.end(), s) != v.end();
    };
    if (m.pricing.dynamic || provider == "openrouter") continue;
    if (m.expiration_date && *m.expiration_date == "2000-01-01") continue;
    if ((!c.allowed_models.empty() && !has(c.allowed_models, m.id)) ||
        has(c.blocked_models, m.id)) {
      continue;
    }
    if ((!c.allowed_providers.empty() && !has(c.allowed_providers, provider)) ||
        has(c.blocked_providers, provider)) {
      continue;
    }
    if ((c.free_only && !free) || (c.paid_only && free) ||
        (free && !c.free_only && !c.allow_free)) {
      continue;
    }
    if (!c.tiers.empty() && std::find(c.tiers.begin(), c.tiers.end(), tier) == c.tiers.end()) {
      continue;
    }
    if ((m.capabilities & c.required_capabilities) != c.required_capabilities) continue;
    if (std::any_of(c.required_parameters.begin(), c.required_parameters.end(),
                    [&](const std::string& p) { return !m.supports_parameter(p); })) {
      continue;
    }
    if (c.max_price_per_mtok && blended > *c.max_price_per_mtok) continue;
    if (c.min_context && m.context_length < *c.min_context) continue;
    if (m.context_length < in + out) continue;
    if (m.per_request_prompt_tokens && *m.per_request_prompt_tokens < in) continue;
    if (unavailable) continue;
    // Quality: the model's prior, else its tier's default, else 0.5; weighted for the task type.
    std::optional<orroute::QualityScores> qs = priors.lookup(m.id);
    if (!qs) qs = priors.tier_default(orroute::tier_name(tier));
    double q = 0;
    for (size_t k = 0; k < type.weights.size(); ++k) {
      const double v = qs ? qs->get(static_cast<orroute::QualityCategory>(k)).value_or(0.5) : 0.5;
      q += type.weights[k] * v;
    }
    if (const auto p = req.predicted_quality.find(m.id); p != req.predicted_quality.end()) {
      q = 0.8 * p->second + (1 - 0.8) * q;
    }
    if (mt != metrics.end() && mt->second.success_rate) {
      q *= *mt->second.success_rate;
    } else if (m.variant() == "free") {
      q *= 0.9;
    }
    if (c.min_quality && q < *c.min_quality) continue;
    // Cost: the exact Money decides the budget; the double (from the per-token prices, or from the
    // exact cost when a price tier can apply) ranks.
    const orroute::PriceSet& p =
        m.pricing.tiers.empty() ? m.pricing.base : m.pricing.for_call(in, std::nullopt);
    const Money exact = p.prompt * in + p.completion * out + (p.request ? *p.request : Money());
    if (req.budget && exact > *req.budget) continue;
    int64_t tiers_from = INT64_MAX;
    for (const orroute::PriceTier& t : m.pricing.tiers) {
      if (!t.utc_start && !t.utc_end) {
        tiers_from = std::min(tiers_from, t.min_prompt_tokens.value_or(0));
      }
    }
    const orroute::PriceSet& b = m.pricing.base;
    const double cost = tiers_from != INT64_MAX && in >= tiers_from
                            ? approx_usd(exact)
                            : approx_usd(b.prompt) * static_cast<double>(in) +
                                  approx_usd(b.completion) * static_cast<double>(out) +
                                  approx_usd(b.request.value_or(Money()));
    kept.push_back({&m, q, cost, orroute::fast_log2(cost + 1e-6)});
  }
  if (req.quality_floor && !kept.empty()) {
    double best_q = 0;
    for (const RefCandidate& k : kept) best_q = std::max(best_q, k.q);
    const double applied = best_q >= *req.quality_floor ? *req.quality_floor : best_q;
    kept.erase(std::remove_if(kept.begin(), kept.end(),
                              [&](const RefCandidate& k) { return k.q < applied; }),
               kept.end());
  }
  double lmin = 1e300, lmax = -1e300, tps_max = 0, lat_min = 1e300;
  bool any_speed = false;
  for (const RefCandidate& k : kept) {
    lmin = std::min(lmin, k.log_cost);
    lmax = std::max(lmax, k.log_cost);
    if (const auto mt = metrics.find(k.m->id); mt != metrics.end()) {
      const ModelMetrics& x = mt->second;
      any_speed |= x.latency_ms.has_value() || x.tokens_per_second.has_value();
      if (x.tokens_per_second && *x.tokens_per_second > 0) {
        tps_max = std::max(tps_max, *x.tokens_per_second);
      }
      if (x.latency_ms && *x.latency_ms > 0) lat_min = std::min(lat_min, *x.latency_ms);
    }
  }
  const double w[4][3] = {{0.2, 0.8, 0.0}, {0.55, 0.4, 0.05}, {0.5, 0.1, 0.4}, {0.9, 0.1, 0.0}};
  const double* sw = w[static_cast<int>(strategy)];
  const double span = lmax - lmin;
  for (RefCandidate& k : kept) {
    double speed = 0.5;
    if (const auto mt = metrics.find(k.m->id); any_speed && mt != metrics.end()) {
      const ModelMetrics& x = mt->second;
      double sum = 0;
      int n = 0;
      if (x.tokens_per_second && *x.tokens_per_second > 0 && tps_max > 0) {
        sum += *x.tokens_per_second / tps_max;
        ++n;
      }
      if (x.latency_ms && *x.latency_ms > 0 && lat_min < 1e300) {
        sum += lat_min / *x.latency_ms;
        ++n;
      }
      speed = n ? sum / n : 0.5;
    }
    const double cheap = span > 0 ? (lmax - k.log_cost) / span : 1.0;
    k.score = sw[0] * k.q + sw[1] * cheap + sw[2] * speed;
  }
  std::sort(kept.begin(), kept.end(), [](const RefCandidate& a, const RefCandidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.cost != b.cost) return a.cost < b.cost;
    return a.m->id < b.m->id;
  });
  std::vector<std::string> ids;
  for (const RefCandidate& k : kept) ids.push_back(k.m->id);
  return ids;
}

Constraints random_constraints(Rng& r, const orroute::ModelCatalog& cat) {
  Constraints c;
  c.allow_free = r.chance(30);
  if (r.chance(20)) c.min_quality = r.pick(kQualities) - 0.05;
  if (r.chance(20)) c.expected_output_tokens = static_cast<int64_t>(r.below(5000));
  if (r.chance(30)) {  // beyond the plain constraints: the full per-model check
    if (r.chance(30)) c.blocked_models.push_back(cat.models()[r.below(cat.size())].id);
    if (r.chance(30)) c.allowed_providers = {r.pick(kProviders), r.pick(kProviders)};
    if (r.chance(30)) c.required_parameters.push_back(r.pick(kParams));
    if (r.chance(20)) c.min_context = r.pick(kContexts);
    if (r.chance(20)) c.max_price_per_mtok = Money::parse(r.chance(50) ? "1" : "10");
    if (r.chance(10)) c.free_only = true;
    else if (r.chance(10)) c.paid_only = true;
    if (r.chance(15)) c.tiers = {orroute::Tier::kEconomy, orroute::Tier::kStandard};
    if (r.chance(15)) c.required_capabilities = static_cast<uint32_t>(orroute::Capability::kVision);
  }
  return c;
}

}  // namespace

TEST_CASE("select_model and rank decide exactly as the reference scan on random catalogs",
          "[select][equivalence]") {
  Rng r{20261204};
  const std::vector<int64_t> sizes{0, 1, 100, 500, 2000, 16000, 64000, 100000, 150000, 300000};
  int compared = 0, refused = 0;
  for (int catalog = 0; catalog < 60; ++catalog) {
    const size_t n_models = 1 + r.below(catalog < 10 ? 8 : 250);
    std::string json = "{\"data\":[";
    for (size_t i = 0; i < n_models; ++i) json += (i ? "," : "") + random_model(r, i);
    json += "]}";
    auto cat =
        std::make_shared<const orroute::ModelCatalog>(orroute::ModelCatalog::from_json(json));
    REQUIRE(cat->warnings().empty());
    const orroute::QualityPriors priors =
        orroute::QualityPriors::from_json(random_priors(r, n_models));
    const Strategy default_strategy = static_cast<Strategy>(r.below(4));
    ModelSelector sel(cat, priors, default_strategy);
    MetricsById metrics;
    for (int query = 0; query < 150; ++query) {
      if (query % 25 == 0) {  // live metrics change between queries
        sel.clear_metrics();
        metrics.clear();
        for (const ModelInfo& m : cat->models()) {
          if (!r.chance(catalog % 3 == 0 ? 40 : 5)) continue;
          ModelMetrics x;
          if (r.chance(70)) x.success_rate = r.pick(kQualities);
          if (r.chance(40)) x.latency_ms = static_cast<double>(100 + r.below(3) * 200);
          if (r.chance(40)) x.tokens_per_second = static_cast<double>(r.below(3) * 50);
          x.available = !r.chance(15);
          sel.set_metrics(m.id, x);
          metrics[m.id] = x;
        }
      }
      SelectionRequest req;
      req.task_type = r.pick(orroute::task_types()).name;
      req.input_tokens = r.chance(80) ? r.pick(sizes) : static_cast<int64_t>(r.below(400000));
      req.explain = false;
      const ModelInfo& some = cat->models()[r.below(cat->size())];
      const int64_t out_default = orroute::task_type(req.task_type).expected_output_tokens;
      if (r.chance(50)) {
        if (r.chance(40) && !some.pricing.dynamic) {  // a model's exact cost: exact rule decides
          const orroute::PriceSet& p = some.pricing.tiers.empty()
                                           ? some.pricing.base
                                           : some.pricing.for_call(req.input_tokens, std::nullopt);
          req.budget = p.prompt * req.input_tokens + p.completion * out_default +
                       (p.request ? *p.request : Money());
        } else {
          req.budget = Money::parse(
              r.pick(std::vector<std::string>{"0", "0.0001", "0.001", "0.01", "0.05", "1"}));
        }
      }
      const bool use_request_fields = r.chance(50);
      if (use_request_fields) {
        if (r.chance(50)) req.strategy = static_cast<Strategy>(r.below(4));
        if (r.chance(60)) req.constraints = random_constraints(r, *cat);
        if (r.chance(20)) {
          for (const ModelInfo& m : cat->models()) {
            if (r.chance(20)) req.predicted_quality[m.id] = r.pick(kQualities);
          }
        }
        if (r.chance(25)) req.quality_floor = r.pick(kQualities);
        req.limit = r.below(5);
      }
      const Strategy strategy = req.strategy.value_or(default_strategy);
      const Constraints& c = req.constraints ? *req.constraints : sel.default_constraints();
      const std::vector<std::string> want = reference_rank(*cat, priors, metrics, req, strategy, c);
      INFO("catalog " << catalog << " query " << query << " task " << req.task_type << " input "
                      << req.input_tokens << " budget "
                      << (req.budget ? req.budget->to_string() : std::string("none")));
      if (want.empty()) {
        CHECK_THROWS_AS(sel.rank(req), orroute::NoModelAvailable);
        if (!use_request_fields) {
          CHECK_THROWS_AS(sel.select_model(req.task_type, req.input_tokens, req.budget),
                          orroute::NoModelAvailable);
        }
        ++refused;
        continue;
      }
      std::vector<std::string> got;
      for (const orroute::Candidate& cand : sel.rank(req)) got.push_back(cand.model->id);
      const size_t k = req.limit > 0 ? std::min(req.limit, want.size()) : want.size();
      REQUIRE(got == std::vector<std::string>(
                         want.begin(), want.begin() + static_cast<std::ptrdiff_t>(k)));
      if (!use_request_fields) {
        CHECK(sel.select_model(req.task_type, req.input_tokens, req.budget) == want.front());
      }
      ++compared;
    }
  }
  // Both outcomes were exercised, many times.
  CHECK(compared > 3000);
  CHECK(refused > 300);
}

TEST_CASE("fast_log2_x2 gives fast_log2's results bit for bit", "[select][equivalence]") {
  Rng r{7};
  for (int i = 0; i < 200000; ++i) {
    // Costs as the selector sees them: 1e-6 (the floor) up to thousands of dollars, and a few
    // values outside that (negative, huge) where the two must still agree.
    const auto draw = [&] {
      const double mant = 1.0 + static_cast<double>(r.next()) / 4294967296.0;
      const int exp = static_cast<int>(r.below(80)) - 40;
      return (r.chance(2) ? -1.0 : 1.0) * std::ldexp(mant, exp);
    };
    const double a = draw(), b = draw();
    double la = 0, lb = 0;
    orroute::fast_log2_x2(a, b, la, lb);
    REQUIRE(la == orroute::fast_log2(a));
    REQUIRE(lb == orroute::fast_log2(b));
  }
}
