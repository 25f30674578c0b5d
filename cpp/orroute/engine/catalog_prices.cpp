#include "orroute/engine/catalog_prices.h"

#include <utility>

#include "orroute/cost/prompt_bounds.h"
#include "orroute/cost/usage_audit.h"
#include "orroute/error.h"
#include "orroute/net/protocol.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

int64_t CatalogPrices::prompt_tokens(const std::string& model, int64_t counted) const {
  std::lock_guard lock(mu_);
  // The loop asks for the same model at the reservation and again at the settle: the answer for a
  // model is its tokenizer's entry, which never changes once made, so the last one is kept.
  if (last_model_ && *last_model_ == model) return last_count_;
  // The model a count was made for has that count (its tokenizer's entry): no tokenizer lookup.
  for (const PromptCount& c : counts_) {
    if (c.model == model) return c.tokens;
  }
  const std::string key = tokenizer_key(model);
  const auto remember = [&](int64_t n) {
    last_model_ = model;
    last_count_ = n;
    return n;
  };
  for (const PromptCount& c : counts_) {
    if (c.key == key) return remember(c.tokens);
  }
  int64_t n = counted;
  try {
    if (messages_) n = count_chat_tokens(model, *messages_, tools_, ImageCount::kPricedApart).tokens;
  } catch (const Error&) {
  }
  counts_.push_back(PromptCount{key, model, n});
  return n;
}

int64_t CatalogPrices::image_context_tokens(const std::string& model) const {
  return orroute::image_context_tokens(model, ImageParts{shape_.images, shape_.low_detail_images});
}

std::optional<Money> CatalogPrices::worst_case(const std::string& model, int64_t prompt_tokens,
                                               int64_t max_output_tokens) const {
  return pricer_.worst_case(model, shape_, prompt_tokens, max_output_tokens, nullptr);
}

std::string CatalogPrices::unpriced_reason(const std::string& model) const {
  std::string why;
  pricer_.worst_case(model, shape_, 0, 0, &why);
  return why.empty() ? PriceBook::unpriced_reason(model) : why;
}

Usage reported_usage(const AttemptResult& r) {
  Usage u;
  u.present = r.usage_present;
  u.prompt_tokens = r.input_tokens;
  u.completion_tokens = r.output_tokens;
  u.cached_tokens = r.cached_tokens;
  u.cache_write_tokens = r.cache_write_tokens;
  u.audio_tokens = r.audio_tokens;
  u.reasoning_tokens = r.reasoning_tokens;
  u.audio_output_tokens = r.audio_output_tokens;
  u.image_output_tokens = r.image_output_tokens;
  u.cost = r.reported_cost;
  u.cost_reported = r.cost_reported;
  u.cost_problem = r.cost_problem;
  u.token_problem = r.token_problem;
  return u;
}

int64_t CatalogPrices::counted_prompt(const std::string& model) const {
  try {
    return prompt_tokens(model, counted_);
  } catch (...) {
    return counted_;
  }
}

Charge CatalogPrices::actual(const std::string& model, const AttemptResult& r, Money reserved) const {
  const Usage u = reported_usage(r);
  ChargeInput in;
  in.requested = model;
  in.served = r.served_model;
  in.shape = &shape_;
  in.usage = &u;
  in.counted_prompt_tokens = counted_prompt(model);
  in.counted_completion_tokens = r.counted_output_tokens;
  in.context_length = context_length(model);
  in.metered = r.cut_at_reservation;
  in.reserved = reserved;
  in.output_bound = output_bound_;
  AuditedCharge a = audit_charge(pricer_, in);
  Charge c;
  c.cost = a.cost;
  c.source = std::move(a.source);
  c.problem = std::move(a.problem);
  c.counts = a.counts;
  return c;
}

Charge CatalogPrices::abandoned(const std::string& model, const AttemptResult& r, Money reserved) const {
  const AbandonedBasis basis = abandoned_basis(r.abandoned, r.streamed, r.provider);
  Charge c;
  c.cost = reserved;
  c.source = "reservation";
  if (basis == AbandonedBasis::kGenerated) {
    ChargeInput in;
    in.requested = model;
    in.served = r.served_model;
    in.shape = &shape_;
    in.counted_prompt_tokens = counted_prompt(model);
    in.counted_completion_tokens = r.counted_output_tokens;
    in.context_length = context_length(model);
    in.metered = true;  // our own count of what arrived, priced
    in.reserved = reserved;
    const AuditedCharge a = audit_charge(pricer_, in);
    c.cost = a.cost;
    c.source = a.source;
    c.counts = a.counts;
  }
  c.problem = abandoned_reason(r.abandoned, basis, r.streamed, r.provider, r.counted_output_tokens);
  return c;
}

std::optional<int64_t> CatalogPrices::context_length(const std::string& model) const {
  const ModelInfo* m = catalog_.find(model);
  if (!m || m->context_length <= 0) return std::nullopt;
  return m->context_length;
}

}  // namespace orroute
