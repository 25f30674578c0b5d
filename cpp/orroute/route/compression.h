// Prompt compression: when a conversation would exceed a token or cost threshold on the model it
// is about to be sent to, which messages are kept verbatim and which older ones are folded into a
// summary (or dropped). Only the decision lives here; the summary call is an ordinary call through
// the engine (python/orroute/_compress.py).
//
// The rule, in order:
//  1. The prompt is counted as the model counts it (count_chat_tokens_json, tools included) and
//     priced at the model's prompt price. It is over when tokens > max_prompt_tokens (if set) or
//     cost > max_prompt_cost (if set); with a cost threshold and no known price (model not in the
//     catalog, or a router priced "-1") it is over: money fails closed.
//  2. Messages are grouped into units: a tool result ("tool"/"function" role) belongs to the unit
//     of the message before it, so an assistant tool call and its results are never split.
//  3. Kept verbatim: every system/developer message (the system prompt), and the shortest run of
//     whole units at the end holding at least keep_last messages. If that run alone is still over
//     a threshold (with summary_tokens reserved for the summary), older units leave it one by one;
//     the last unit always stays.
//  4. Folded: every other (older, non-system) message, in order. The summary goes right after the
//     leading system messages. Nothing to fold means no compression.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/money.h"

namespace orroute {

class ModelCatalog;

// When to compress and what to keep. Throws InvalidArgument (from plan_compression) when
// max_prompt_tokens or summary_tokens is negative or keep_last < 1.
struct CompressionRule {
  int64_t max_prompt_tokens = 0;         // over when the prompt has more tokens (0: no limit)
  std::optional<Money> max_prompt_cost;  // over when the prompt costs more on the model (USD)
  int32_t keep_last = 6;                 // messages kept verbatim at the end (at least)
  int64_t summary_tokens = 0;            // room the summary will take, reserved in step 3
};

// The decision for one prompt on one model.
struct CompressionPlan {
  bool compress = false;
  std::string reason;                 // why (or why not), in words
  int64_t prompt_tokens = 0;          // the whole prompt on the model
  std::optional<Money> prompt_cost;   // prompt_tokens at the model's prompt price, if known
  int64_t kept_tokens = 0;            // the kept messages alone (no summary), same counting
  std::vector<int32_t> keep;          // indices kept verbatim, in order
  std::vector<int32_t> fold;          // indices folded into the summary (or dropped), in order
  int32_t summary_at = 0;             // position in `keep` the summary message is inserted at
};

// Decides for `messages_json` (an OpenAI "messages" array) sent to `model` with `tools_json` (the
// request's "tools" array, or empty). `catalog` prices the prompt (nullptr: no price known).
// Throws ParseError for malformed JSON, InvalidArgument for a bad rule.
CompressionPlan plan_compression(std::string_view model, std::string_view messages_json,
                                 const CompressionRule& rule, const ModelCatalog* catalog,
                                 std::string_view tools_json = {});

}  // namespace orroute
