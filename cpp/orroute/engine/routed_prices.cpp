#include "orroute/engine/routed_prices.h"

#include "orroute/cost/usage_audit.h"
#include "orroute/error.h"
#include "orroute/utf8.h"

namespace orroute {

const Pricing* RoutedPrices::pricing(const std::string& candidate) const {
  const ProviderRoute* r = routes_.route(candidate);
  if (r == nullptr || r->provider == nullptr) return nullptr;
  return r->provider->prices.find(routes_.native(candidate));
}

int64_t RoutedPrices::prompt_tokens(const std::string& candidate, int64_t counted) const {
  return catalog_->prompt_tokens(ProviderRoutes::split(candidate).first, counted);
}

int64_t RoutedPrices::image_context_tokens(const std::string& candidate) const {
  return catalog_->image_context_tokens(ProviderRoutes::split(candidate).first);
}

std::optional<Money> RoutedPrices::worst_case(const std::string& candidate, int64_t prompt_tokens,
                                              int64_t max_output_tokens) const {
  const auto [model, provider] = ProviderRoutes::split(candidate);
  if (provider.empty()) return catalog_->worst_case(model, prompt_tokens, max_output_tokens);
  const Pricing* p = pricing(candidate);
  if (p == nullptr) return std::nullopt;
  // The request's shape binds at every provider (n outputs, images, parts only the upstream can
  // size, tools it bills per use); never assumes cache discounts.
  return shaped_worst_case(*p, catalog_->shape(), prompt_tokens, max_output_tokens,
                           catalog_->context_length(model).value_or(0), candidate, nullptr);
}

std::string RoutedPrices::unpriced_reason(const std::string& candidate) const {
  const auto [model, provider] = ProviderRoutes::split(candidate);
  if (provider.empty()) return catalog_->unpriced_reason(model);
  return "model '" + client_text(model) + "' has no price at provider '" + provider + "' (as '" +
         client_text(routes_.native(candidate)) +
         "'): set its prices or leave it to the other providers";
}

bool RoutedPrices::priced_only(const std::string& candidate) const {
  return !ProviderRoutes::split(candidate).second.empty();
}

Charge RoutedPrices::actual(const std::string& candidate, const AttemptResult& r, Money reserved) const {
  const auto [model, provider] = ProviderRoutes::split(candidate);
  if (provider.empty()) return catalog_->actual(model, r, reserved);
  Charge c;
  const Pricing* p = pricing(candidate);
  if (p == nullptr || !r.usage_present || !r.token_problem.empty()) {
    c.cost = reserved;
    c.source = "reservation";
    c.problem = p == nullptr ? "no price at " + provider : "the reply's usage is missing or malformed";
    return c;
  }
  // Its counts are held to the catalog path's rules (usage_audit.h): under a quarter of our
  // count, past the context window, or broken down past their totals, they are not believed (a
  // provider reporting 1 token for a 2,000-token prompt was charged for 1).
  Usage reported = reported_usage(r);
  if (r.cut_at_reservation && r.counted_output_tokens > reported.completion_tokens) {
    reported.completion_tokens = r.counted_output_tokens;  // cut before its usage arrived: what we counted
  }
  ChargeInput in;
  in.requested = model;
  in.served = r.served_model;
  in.shape = &catalog_->shape();
  in.usage = &reported;
  in.counted_prompt_tokens = catalog_->counted_prompt(model);
  in.counted_completion_tokens = r.counted_output_tokens;
  in.context_length = catalog_->context_length(model);
  in.reserved = reserved;
  in.output_bound = catalog_->output_bound();
  try {
    const AuditedCharge a = audit_tokens(in);
    c.problem = a.problem;
    if (a.source == "reservation") {
      c.cost = a.cost;
      c.source = a.source;
      return c;
    }
    c.cost = price_call(*p, a.counts, candidate);
    c.source = a.source.empty() ? "provider:" + provider : a.source;  // priced from that provider's own price list
    c.counts = a.counts;
  } catch (const Error& e) {
    c.cost = reserved;
    c.source = "reservation";
    c.problem = e.what();
  }
  return c;
}

Charge RoutedPrices::abandoned(const std::string& candidate, const AttemptResult& r, Money reserved) const {
  const auto [model, provider] = ProviderRoutes::split(candidate);
  if (provider.empty()) return catalog_->abandoned(model, r, reserved);
  return reserved_charge(reserved);
}

std::optional<int64_t> RoutedPrices::context_length(const std::string& candidate) const {
  return catalog_->context_length(ProviderRoutes::split(candidate).first);
}

}  // namespace orroute
