// Model prices as OpenRouter lists them (USD per token, per request, per image, per search) and the
// exact cost of one call. All amounts are orroute::Money; nothing here goes through double.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/money.h"

namespace orroute {

// One complete set of unit prices. `prompt` and `completion` are always present (USD per token);
// the others are nullopt when the catalog does not list them (which bills as "not charged" for
// per-unit items, and as the prompt/completion price for token kinds that fall back, see cost()).
// Plain value type.
struct PriceSet {
  Money prompt;                                // per prompt (input) token
  Money completion;                            // per completion (output) token
  std::optional<Money> request;                // per request
  std::optional<Money> image;                  // per input image
  std::optional<Money> web_search;             // per web search
  std::optional<Money> internal_reasoning;     // per reasoning token
  std::optional<Money> input_cache_read;       // per cached prompt token read
  std::optional<Money> input_cache_write;      // per prompt token written to cache (5-min TTL)
  std::optional<Money> input_cache_write_1h;   // per prompt token written to cache (1-hour TTL)
  std::optional<Money> audio;                  // per input audio token
  std::optional<Money> audio_output;           // per output audio token
  std::optional<Money> image_output;           // per output image token
  std::optional<Money> image_token;            // per input image token
  std::optional<Money> input_audio_cache;      // per cached input audio token

  friend bool operator==(const PriceSet&, const PriceSet&) = default;
};

// A conditional price set from `pricing.overrides[]`: it applies when every condition it has holds.
// `prices` is already merged (base prices with the override's fields on top), so it is complete.
struct PriceTier {
  std::optional<int64_t> min_prompt_tokens;  // applies when prompt_tokens >= this
  std::optional<int32_t> utc_start;          // HHMM, inclusive; window may wrap past midnight
  std::optional<int32_t> utc_end;            // HHMM, exclusive
  PriceSet prices;

  // True if this tier applies to a call with `prompt_tokens` at `utc_hhmm` (nullopt = time
  // unknown: time-windowed tiers never apply then). Pure.
  bool applies(int64_t prompt_tokens, std::optional<int32_t> utc_hhmm) const;

  friend bool operator==(const PriceTier&, const PriceTier&) = default;
};

// Every price of one model. Immutable after parsing.
struct Pricing {
  PriceSet base;
  std::vector<PriceTier> tiers;     // pricing.overrides, in catalog order
  bool dynamic = false;             // a router priced "-1": the price is only known after the call
  std::optional<std::string> discount;  // pricing.discount as listed (informational, never applied)

  // The price set that applies: among the tiers that apply, the one with the highest
  // min_prompt_tokens (the last listed on ties); the base prices if none applies. Pure.
  const PriceSet& for_call(int64_t prompt_tokens, std::optional<int32_t> utc_hhmm) const;
  // True if the prompt and completion prices are both zero (and not dynamic).
  bool is_zero() const;

  friend bool operator==(const Pricing&, const Pricing&) = default;
};

// Token and unit counts of one call, as OpenRouter reports them in `usage`.
// Inclusion rules (these follow OpenRouter's usage object, see docs/foundation.md):
//  - `cached_tokens`, `cache_write_tokens` and `audio_tokens` are PART OF `prompt_tokens`
//    (prompt_tokens_details.cached_tokens / .cache_write_tokens / .audio_tokens are breakdowns of
//    prompt_tokens);
//  - `reasoning_tokens`, `audio_output_tokens` and `image_output_tokens` are PART OF
//    `completion_tokens` (completion_tokens_details.reasoning_tokens / .audio_tokens /
//    .image_tokens are breakdowns of completion_tokens).
// So a call is never billed twice for the same token. The usage object has no count for the
// `image_token` (input image tokens) and `input_audio_cache` (cached input audio) prices: such
// tokens are billed as the prompt or cache-read tokens they are counted in.
struct UsageCounts {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;        // cache reads, included in prompt_tokens
  int64_t cache_write_tokens = 0;   // cache writes, included in prompt_tokens
  int64_t reasoning_tokens = 0;     // included in completion_tokens
  int64_t audio_tokens = 0;         // input audio, included in prompt_tokens
  int64_t audio_output_tokens = 0;  // output audio, included in completion_tokens
  int64_t image_output_tokens = 0;  // output images, included in completion_tokens
  int64_t requests = 1;
  int64_t images = 0;              // input images (billed per image when `image` is listed)
  int64_t web_searches = 0;
  bool cache_write_1h = false;     // writes used the 1-hour TTL (input_cache_write_1h price)
  std::optional<int32_t> utc_hhmm; // time of the call (HHMM, UTC) for time-windowed tiers
};

// Exact cost of a call under `pricing`:
//   tier  = pricing.for_call(prompt_tokens, utc_hhmm)
//   cost  = (prompt - cached - cache_write - audio) * tier.prompt
//         + cached      * (tier.input_cache_read  or tier.prompt)
//         + cache_write * (tier.input_cache_write[_1h] or tier.prompt)
//         + audio       * (tier.audio or tier.prompt)
//         + (completion - reasoning - audio_output - image_output) * tier.completion
//         + reasoning    * (tier.internal_reasoning or tier.completion)
//         + audio_output * (tier.audio_output or tier.completion)
//         + image_output * (tier.image_output or tier.completion)
//         + requests * request + images * image + web_searches * web_search   (when listed)
// Throws InvalidArgument if a count is negative, if cached + cache_write + audio > prompt or
// reasoning + audio_output + image_output > completion, or if the pricing is dynamic (`what`
// names the model in the message). Pure; thread-safe.
Money price_call(const Pricing& pricing, const UsageCounts& usage, std::string_view what);

// Worst-case cost of a call, for budget reservations: the highest price set that could apply to
// `prompt_tokens` at any time of day, then
//   prompt_tokens * prompt
//   + max_output_tokens * max(completion, internal_reasoning, audio_output, image_output)
//   + requests * request + images * image + web_searches * web_search.
// It never assumes cache discounts; with `may_write_cache` each prompt token is priced at the
// highest of the prompt and cache-write prices. Throws like price_call. Pure; thread-safe.
Money worst_case_cost(const Pricing& pricing, int64_t prompt_tokens, int64_t max_output_tokens,
                      int64_t requests, int64_t images, int64_t web_searches, bool may_write_cache,
                      std::string_view what);

}  // namespace orroute
