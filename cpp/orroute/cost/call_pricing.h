// What a call may cost before it is sent, and what it did cost once it answered, for any model id a
// caller can write: catalog ids, variants (`:free`, `:online`, `:nitro`, `:floor`, ...), routers
// priced "-1" (`openrouter/auto`), a request's `models` fallback list, and ids the catalog does not
// know. Money fails closed: an id that cannot be bounded is refused, never sent unmetered.
//
// The rules (docs/cost.md has the table):
//  - a catalog id with static prices: its prices;
//  - `<base>:free`: free (OpenRouter bills free variants nothing);
//  - `<base>:online`: the base prices plus the web plugin's fee per request;
//  - any other suffix (`:nitro`, `:floor`, `:thinking`, ...): may reach the base model's priority or
//    flex endpoints, so the base prices times `PricingPolicy::endpoint_markup_pct`;
//  - a router (catalog price "-1", e.g. `openrouter/auto`): the dearest price of every kind over the
//    models it may choose (all static catalog models, or those its `auto-router` plugin's
//    `allowed_models` patterns admit);
//  - an id neither listed nor derivable: `PricingPolicy::unpriced_model_price` when set, else refused
//    with a message naming the id and the setting.
// A request's `models` list is bounded by its dearest member; the `web` plugin adds its fee.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/catalog/pricing.h"

namespace orroute {

struct PricingPolicy {
  // Prices for ids the catalog cannot price (USD per token). nullopt: such calls are refused.
  std::optional<PriceSet> unpriced_model_price;
  // Variants that may reach priority/flex endpoints are bounded at this percentage of the base
  // model's listed prices (OpenAI's priority tier is 1.7-2x its standard price).
  int64_t endpoint_markup_pct = 200;
  // Worst-case fee of the web plugin (`:online`, plugins: [{"id": "web"}]) per request of five
  // results at $4 per 1000 (the default engine), unless the model lists a dearer web_search price;
  // a request asking for more results (`max_results`) pays it once per five.
  Money web_search_fee = Money::parse("0.02");
  // An upstream `usage.cost` above this multiple of the catalog price of the reported tokens, or
  // below its inverse, is not believed (the catalog price is recorded instead).
  int64_t cost_check_multiple = 2;
};

// How the request is shaped, as far as its price goes.
struct RequestShape {
  std::vector<std::string> models;         // the body's `models` fallback list
  bool web_plugin = false;                 // plugins has {"id": "web"} (or web_search_options)
  int64_t web_results = kWebResultsPerFee; // the web plugin's max_results (billed per result)
  int64_t images = 0;                      // image parts in the messages (billed per image where
                                           // a model lists an `image` price)
  int64_t low_detail_images = 0;           // those at detail "low" (cost/prompt_bounds.h)
  // UTF-8 bytes of the messages' text (content, tool call arguments): what bounds the prompt of a
  // vocabulary with byte fallback (TextBound::kUtf8Bytes).
  int64_t text_bytes = 0;
  // Bytes of the `prediction` text (OpenAI's predicted outputs): predicted tokens the model
  // rejects are billed as output on top of max_tokens, at most one token per byte.
  int64_t prediction_bytes = 0;
  // `reasoning.max_tokens` (a thinking budget): counted on top of max_tokens, as an upstream
  // that raises max_tokens to fit the budget would bill it (whether OpenRouter does is not
  // documented, so the reservation assumes it may).
  int64_t reasoning_tokens = 0;
  // `n`: the completions the upstream writes, each billed its output (the prompt once).
  int64_t choices = 1;
  // Parts whose tokens only the upstream can tell (a file: a PDF's text is extracted there; a
  // video; audio; an image at detail "original"): the prompt is reserved at the model's context window.
  int64_t unsized_parts = 0;
  // What our count of the prompt sizes only in part, so it does not bound the prompt tokens an
  // upstream reports (usage_audit's cap): the tools' schemas, which each provider renders its own
  // way (we count OpenAI's formula, a nested schema's top level alone), and the reasoning an
  // assistant message carries back (`reasoning`, `reasoning_details`: billed as input, not counted).
  int64_t tools = 0;
  int64_t replayed_reasoning = 0;
  int64_t files = 0;        // file parts (PDFs): OpenRouter's file-parser plugin may parse them
  // Audio parts (`input_audio`): their tokens are billed at the model's `audio` price (up to
  // 1,000x its text price) and, like a video's, known only upstream (a codec's bytes per second
  // vary by orders of magnitude): the prompt is reserved at the window, at the audio price.
  int64_t audio_parts = 0;
  std::string pdf_engine;   // the file-parser plugin's pdf.engine, "" when none is named
  std::vector<std::string> allowed_models; // auto-router plugin's allowed_models patterns
  // Why the request's cost cannot be bounded, "" when it can: a tool the upstream runs and bills
  // per use (a server tool such as `openrouter:web_search`), or a web plugin whose max_results is
  // not a whole number. Such a request is refused, never sent unmetered.
  std::string unbounded;

  // Why a file in this request may be billed a fee no reservation bounds at OpenRouter (its
  // file-parser plugin OCRs a PDF per page unless the request names a free engine or the model
  // takes files natively), "" when it cannot: see CallPricer::worst_case.
  std::string file_fee_refusal(const ModelInfo* model, std::string_view id) const;

  // Results one web_search_fee pays for (OpenRouter's default max_results).
  static constexpr int64_t kWebResultsPerFee = 5;
  // The most results a request may ask the web plugin for (its fee grows with them).
  static constexpr int64_t kMaxWebResults = 1000;
};

// The output tokens a request shaped `shape` may be billed with `max_output_tokens` per completion:
// each of its `n` completions, plus a prediction's rejected tokens and a reasoning budget
// (saturating). What a reservation covers, and where a metered stream is cut. Pure.
int64_t reserved_output_tokens(int64_t max_output_tokens, const RequestShape& shape) noexcept;

// Reads the price-relevant fields of a chat request body (never throws; junk is ignored).
RequestShape request_shape(std::string_view request_json) noexcept;
// The same, from a body already parsed (the engine's plan has it: no second parse).
RequestShape request_shape_of(const rapidjson::Value& body) noexcept;

// The prices a call to one id is bounded by, or why it cannot be.
struct PriceBound {
  const Pricing* listed = nullptr;  // prices held by the catalog or the pricer (no copy per call)
  std::optional<Pricing> derived;   // prices worked out for this id (variants, unpriced ids)
  std::string refusal;              // neither: names the id and the setting

  // The bounding prices; nullptr when refused.
  const Pricing* pricing() const { return listed ? listed : derived ? &*derived : nullptr; }
};

// Immutable after construction; thread-safe. `catalog` must outlive it.
class CallPricer {
 public:
  CallPricer(const ModelCatalog& catalog, PricingPolicy policy);

  // The prices that bound a call to `model_id` (see the rules above). Never throws.
  PriceBound bound(std::string_view model_id, const RequestShape& shape = {}) const;

  // Worst-case cost of sending the request to `model_id`: the dearest of `model_id` and every id in
  // shape.models, for `prompt_tokens` in and `max_output_tokens` out, plus the web fee when asked.
  // nullopt with `refusal` set when any of them cannot be priced, or the request's own cost cannot
  // be bounded (shape.unbounded). Never throws.
  std::optional<Money> worst_case(std::string_view model_id, const RequestShape& shape,
                                  int64_t prompt_tokens, int64_t max_output_tokens,
                                  std::string* refusal) const;

  // Price of the reported (already validated) token counts of a call that asked for `requested`
  // and was served by `served` ("" = unknown): the served model's catalog price when it is one the
  // request could reach (priced_id), else the requested id's bound. nullopt when neither can be
  // priced. Never throws.
  std::optional<Money> price(std::string_view requested, std::string_view served,
                             const RequestShape& shape, const UsageCounts& usage) const;
  // The id a reply's tokens are priced on: `served` when the request could reach it as itself (a
  // member of shape.models; a router's pick, router_may_pick), else `requested`. Never throws.
  std::string_view priced_id(std::string_view requested, std::string_view served,
                             const RequestShape& shape) const;
  // Whether `id` is a router priced "-1" (openrouter/auto, ...): its price is its pick's.
  bool is_router(std::string_view id) const;
  // Whether a router asked with `shape` may have picked `served`: a static-priced, paid catalog
  // model (no ":free" variant, no free model) its auto-router `allowed_models` globs admit.
  bool router_may_pick(std::string_view served, const RequestShape& shape) const;

  const PricingPolicy& policy() const { return policy_; }
  const ModelCatalog& catalog() const { return catalog_; }
  // The context length the catalog lists for `id` (or its base model), 0 when unknown.
  int64_t context_window(std::string_view id) const;

 private:
  std::optional<Pricing> router_pricing(const std::vector<std::string>& patterns) const;
  // The catalog entry of `id`, or of its base model for a variant (":free", ...); nullptr if none.
  const ModelInfo* model_or_base(std::string_view id) const;
  // `bound` as the request is charged: plus the web plugin's fee when it asks for it (then built
  // in `scratch`).
  const Pricing& charged(const Pricing& bound, const RequestShape& shape,
                         std::optional<Pricing>& scratch) const;

  const ModelCatalog& catalog_;
  PricingPolicy policy_;
  std::optional<Pricing> any_router_;  // dearest over the whole catalog, computed once
};

// Worst-case cost of a request shaped `shape` at `pricing` (the shape's own rules: refused when
// unbounded, the prompt at `context_window` for parts only the upstream can size, n outputs and a
// prediction, images at the image price; no web fee: CallPricer adds it where the upstream runs the
// plugin). nullopt with `refusal` set when it cannot be bounded. Never throws. What a direct
// provider's prices are held to, as CallPricer::worst_case holds the catalog's.
std::optional<Money> shaped_worst_case(const Pricing& pricing, const RequestShape& shape,
                                       int64_t prompt_tokens, int64_t max_output_tokens,
                                       int64_t context_window, std::string_view id,
                                       std::string* refusal) noexcept;

// True if `id` matches a glob pattern of OpenRouter's allowed_models ("anthropic/*"). Pure.
bool model_pattern_matches(std::string_view pattern, std::string_view id);

}  // namespace orroute
