#include "orroute/engine/routed_prices.h"

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
  UsageCounts u;
  u.prompt_tokens = r.input_tokens;
  u.completion_tokens = r.output_tokens;
  u.cached_tokens = r.cached_tokens;
  u.cache_write_tokens = r.cache_write_tokens;
  u.reasoning_tokens = r.reasoning_tokens;
  u.audio_tokens = r.audio_tokens;
  u.audio_output_tokens = r.audio_output_tokens;
  u.image_output_tokens = r.image_output_tokens;
  if (r.cut_at_reservation && r.counted_output_tokens > u.completion_tokens) {
    u.completion_tokens = r.counted_output_tokens;  // cut before its usage arrived: what we counted
  }
  try {
    c.cost = price_call(*p, u, candidate);
    c.source = "provider:" + provider;  // priced from that provider's own price list
    c.counts = u;
  } catch (const Error& e) {
    c.cost = reserved;
    c.source = "reservation";
    c.problem = e.what();
  }
  return c;
}

std::optional<int64_t> RoutedPrices::context_length(const std::string& candidate) const {
  return catalog_->context_length(ProviderRoutes::split(candidate).first);
}

}  // namespace orroute
