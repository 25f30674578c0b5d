// Turns an upstream's usage report into the charge the ledger records. Nothing the upstream says
// is believed as is: token counts must be whole, non-negative, fit the model's context and not
// fall far below our own count of what was sent and received; the reported `cost` must be a
// finite, non-negative decimal within PricingPolicy::cost_check_multiple times (either way) the
// catalog price of those tokens. What fails is replaced (tokens by
// the tokenizer's count of the prompt and the answer, the cost by the catalog price) and named in
// `source` and `problem`, so the call row says where its cost came from. Counts far above ours
// (prompt tokens past twice our count and 512; completion tokens past the request's max_tokens)
// are charged at that bound.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "orroute/catalog/money.h"
#include "orroute/catalog/pricing.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/net/protocol.h"

namespace orroute {

// What is known about one answered call.
// Read during audit_charge only: the texts and the shape it points to are the caller's, borrowed
// (the charge of every call is audited: a copy of the shape's model list was an allocation each).
struct ChargeInput {
  std::string_view requested;        // the model id the attempt asked for
  std::string_view served;           // the reply's "model" ("" = not said)
  const RequestShape* shape = nullptr;  // the request's shape; null = a plain one (RequestShape{})
  const Usage* usage = nullptr;      // the reply's usage; null = the reply had none
  int64_t counted_prompt_tokens = 0;      // our tokenizer's count of the prompt
  int64_t counted_completion_tokens = 0;  // our tokenizer's count of the answer received
  std::optional<int64_t> context_length;  // of the requested model, when known
  bool metered = false;              // a stream cut at its reservation: no usage will come
  Money reserved;                    // the reservation; charged when nothing else can be priced
  // The output tokens the reservation covers and the request carried (reserved_output_tokens of
  // its max_tokens); 0 = none (no ledger). The upstream enforces max_tokens with its own
  // tokenizer, so a report above it is not an honest count: it is charged at this bound.
  int64_t output_bound = 0;
};

struct AuditedCharge {
  Money cost;              // >= 0, always
  // "upstream": the reported cost, checked; "catalog": the catalog price (the cost was missing or
  // refused, see problem); "tokenizer": tokens counted by us (usage missing or refused);
  // "metered": a stream cut at its reservation; "reservation": nothing could be priced.
  std::string source;
  std::string problem;     // why the upstream's figure was replaced ("" = nothing replaced)
  UsageCounts counts;      // the token counts charged
  // The upstream's completion tokens were above ChargeInput::output_bound, or its prompt tokens
  // far above our count of the prompt (twice it, and 512), and are charged at that bound (its
  // cost, which priced the excess, is not believed: the catalog price is booked).
  bool counts_capped = false;
};

// The charge of one answered call. Never throws.
AuditedCharge audit_charge(const CallPricer& pricer, const ChargeInput& in) noexcept;

// The token counts audit_charge prices, checked by its rules (no cost yet): `source` "" and the
// upstream's counts when they stand (`problem` says if their breakdowns were dropped);
// "tokenizer" or "metered" and our count (a prompt with parts only the upstream can size: the
// whole window) when they do not; `counts_capped` with the prompt or completion tokens cut to
// their bound when the upstream reported more; "reservation" with `cost` = the reservation when nothing can
// stand in. For a provider priced from its own list (engine/routed_prices.h): its reply's counts
// are held to the same rules. Throws only on allocation failure.
AuditedCharge audit_tokens(const ChargeInput& in);

// The charge of a call the engine did not make (the gateway's /v1/embeddings): the upstream's
// `usage` (none when its reply has none) for a prompt of `counted_prompt_tokens` to `model`,
// audited by audit_charge under `policy` (the engine's, so its cost_check_multiple). Never
// throws but for allocation.
AuditedCharge audit_usage(const ModelCatalog& catalog, const PricingPolicy& policy, const std::string& model,
                          const Usage& usage, int64_t counted_prompt_tokens, Money reserved);

}  // namespace orroute
