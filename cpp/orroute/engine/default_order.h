#pragma once

#include <string>
#include <vector>

namespace orroute {

// The integration guide's default order, as ids of the bundled catalog: the engine's last resort
// when the selector has nothing, and what `orroute config init` suggests (one list, here).
const std::vector<std::string>& default_fallback_order();

}  // namespace orroute
