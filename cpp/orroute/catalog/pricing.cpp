#include "orroute/catalog/pricing.h"

#include <algorithm>

#include "orroute/error.h"
#include "orroute/utf8.h"

namespace orroute {
namespace {

void require_non_negative(int64_t v, const char* name) {
  if (v < 0) throw InvalidArgument(std::string(name) + " must be >= 0, got " + std::to_string(v));
}

void require_static(const Pricing& pricing, std::string_view what) {
  if (pricing.dynamic) {
    throw InvalidArgument("model '" + client_text(what) +
                          "' has a dynamic price (listed as \"-1\"): it routes to another model "
                          "and is billed at that model's price, so it cannot be priced in advance");
  }
}

Money per(int64_t n, const std::optional<Money>& price) { return price ? *price * n : Money(); }

}  // namespace

bool PriceTier::applies(int64_t prompt_tokens, std::optional<int32_t> utc_hhmm) const {
  if (min_prompt_tokens && prompt_tokens < *min_prompt_tokens) return false;
  if (utc_start || utc_end) {
    if (!utc_hhmm) return false;
    const int32_t start = utc_start.value_or(0);
    const int32_t end = utc_end.value_or(2400);
    const int32_t t = *utc_hhmm;
    // A window whose end is before its start wraps past midnight (e.g. 22:00-01:00).
    const bool inside = start <= end ? (t >= start && t < end) : (t >= start || t < end);
    if (!inside) return false;
  }
  return true;
}

const PriceSet& Pricing::for_call(int64_t prompt_tokens, std::optional<int32_t> utc_hhmm) const {
  const PriceSet* best = &base;
  int64_t best_min = -1;
  for (const PriceTier& tier : tiers) {
    if (!tier.applies(prompt_tokens, utc_hhmm)) continue;
    const int64_t m = tier.min_prompt_tokens.value_or(0);
    if (m >= best_min) {
      best = &tier.prices;
      best_min = m;
    }
  }
  return *best;
}

bool Pricing::is_zero() const {
  return !dynamic && base.prompt.is_zero() && base.completion.is_zero() &&
         (!base.request || base.request->is_zero());
}

Money price_call(const Pricing& pricing, const UsageCounts& u, std::string_view what) {
  require_non_negative(u.prompt_tokens, "prompt_tokens");
  require_non_negative(u.completion_tokens, "completion_tokens");
  require_non_negative(u.cached_tokens, "cached_tokens");
  require_non_negative(u.cache_write_tokens, "cache_write_tokens");
  require_non_negative(u.reasoning_tokens, "reasoning_tokens");
  require_non_negative(u.audio_tokens, "audio_tokens");
  require_non_negative(u.audio_output_tokens, "audio_output_tokens");
  require_non_negative(u.image_output_tokens, "image_output_tokens");
  require_non_negative(u.requests, "requests");
  require_non_negative(u.images, "images");
  require_non_negative(u.web_searches, "web_searches");
  // Each count is at most ~1e15 in practice; the sums cannot overflow int64.
  const int64_t prompt_parts = u.cached_tokens + u.cache_write_tokens + u.audio_tokens;
  if (prompt_parts > u.prompt_tokens) {
    throw InvalidArgument("cached_tokens + cache_write_tokens + audio_tokens (" +
                          std::to_string(prompt_parts) + ") exceed prompt_tokens (" +
                          std::to_string(u.prompt_tokens) +
                          "): cache reads, cache writes and input audio are part of the prompt "
                          "tokens");
  }
  const int64_t completion_parts =
      u.reasoning_tokens + u.audio_output_tokens + u.image_output_tokens;
  if (completion_parts > u.completion_tokens) {
    throw InvalidArgument("reasoning_tokens + audio_output_tokens + image_output_tokens (" +
                          std::to_string(completion_parts) + ") exceed completion_tokens (" +
                          std::to_string(u.completion_tokens) +
                          "): reasoning, audio and image output are part of the completion tokens");
  }
  require_static(pricing, what);
  const PriceSet& p = pricing.for_call(u.prompt_tokens, u.utc_hhmm);
  const Money write_price = u.cache_write_1h && p.input_cache_write_1h
                                ? *p.input_cache_write_1h
                                : p.input_cache_write.value_or(p.prompt);
  Money total = p.prompt * (u.prompt_tokens - prompt_parts);
  total += p.input_cache_read.value_or(p.prompt) * u.cached_tokens;
  total += write_price * u.cache_write_tokens;
  total += p.audio.value_or(p.prompt) * u.audio_tokens;
  total += p.completion * (u.completion_tokens - completion_parts);
  total += p.internal_reasoning.value_or(p.completion) * u.reasoning_tokens;
  total += p.audio_output.value_or(p.completion) * u.audio_output_tokens;
  total += p.image_output.value_or(p.completion) * u.image_output_tokens;
  total += per(u.requests, p.request);
  total += per(u.images, p.image);
  total += per(u.web_searches, p.web_search);
  return total;
}

Money worst_case_cost(const Pricing& pricing, int64_t prompt_tokens, int64_t max_output_tokens,
                      int64_t requests, int64_t images, int64_t web_searches, bool may_write_cache,
                      std::string_view what) {
  require_non_negative(prompt_tokens, "prompt_tokens");
  require_non_negative(max_output_tokens, "max_output_tokens");
  require_non_negative(requests, "requests");
  require_non_negative(images, "images");
  require_non_negative(web_searches, "web_searches");
  require_static(pricing, what);
  // The size tier is fixed by prompt_tokens; time windows are unknown in advance, so take the
  // dearest price set over every time-windowed tier that could apply at this size too.
  auto cost_under = [&](const PriceSet& p) {
    Money in = p.prompt;
    if (may_write_cache) {
      in = std::max({in, p.input_cache_write.value_or(in), p.input_cache_write_1h.value_or(in)});
    }
    // Any output token may be reasoning, audio or image: price them all at the dearest kind.
    const Money out = std::max({p.completion, p.internal_reasoning.value_or(p.completion),
                                p.audio_output.value_or(p.completion),
                                p.image_output.value_or(p.completion)});
    return in * prompt_tokens + out * max_output_tokens + per(requests, p.request) +
           per(images, p.image) + per(web_searches, p.web_search);
  };
  Money worst = std::max(Money(), cost_under(pricing.for_call(prompt_tokens, std::nullopt)));
  for (const PriceTier& tier : pricing.tiers) {
    if ((tier.utc_start || tier.utc_end) && tier.min_prompt_tokens.value_or(0) <= prompt_tokens) {
      worst = std::max(worst, cost_under(tier.prices));
    }
  }
  return worst;
}

}  // namespace orroute
