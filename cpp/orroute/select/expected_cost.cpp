#include "orroute/select/expected_cost.h"

#include <algorithm>

#include "orroute/error.h"
#include "orroute/select/task_types.h"

namespace orroute {

std::optional<Money> expected_cost(const ModelCatalog& catalog, std::string_view model,
                                   std::string_view task_type, int64_t prompt_tokens,
                                   int64_t max_tokens) {
  if (!catalog.find(model)) return std::nullopt;
  const TaskType* type = find_task_type(task_type);
  if (!type) type = find_task_type("general");
  int64_t out = type ? type->expected_output_tokens : 0;
  if (max_tokens > 0) out = std::min(out, max_tokens);
  try {
    // The same formula as the reservation, with the expected output instead of the allowed one.
    return catalog.worst_case(model, std::max<int64_t>(prompt_tokens, 0), out);
  } catch (const Error&) {
    return std::nullopt;  // dynamic price
  }
}

}  // namespace orroute
