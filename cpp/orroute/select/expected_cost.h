// The cost a call is expected to have, as opposed to its worst case. The ledger records it on the
// call row (CallRecord::estimated_cost) so that estimates can be compared fairly with actual costs:
// the reservation (worst case: every allowed output token) is a bound, not a forecast.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"

namespace orroute {

// prompt_tokens at the model's prompt price plus the expected completion at its completion price
// (and the request fee): the task type's expected output length (task_types.h; "general" for an
// unknown type), at most `max_tokens` when that is > 0. nullopt when the model is not in `catalog`
// or has a dynamic price. Pure, thread-safe.
std::optional<Money> expected_cost(const ModelCatalog& catalog, std::string_view model,
                                   std::string_view task_type, int64_t prompt_tokens,
                                   int64_t max_tokens);

}  // namespace orroute
