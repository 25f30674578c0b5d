// The members of a JSON object found by name in one pass (instead of a FindMember per name).
#pragma once

#include <rapidjson/document.h>

#include <array>
#include <cstddef>
#include <string_view>

namespace orroute {

// The members of `obj` named in `names`, in that order: the first of each name (as FindMember
// finds it), null when absent or when `obj` is not an object. One pass over the members instead
// of a lookup per name.
template <std::size_t N>
std::array<const rapidjson::Value*, N> members_named(const rapidjson::Value& obj,
                                                    const std::array<std::string_view, N>& names) {
  std::array<const rapidjson::Value*, N> out{};
  if (!obj.IsObject()) return out;
  for (const auto& m : obj.GetObject()) {
    const std::string_view name(m.name.GetString(), m.name.GetStringLength());
    for (std::size_t i = 0; i < N; ++i) {
      if (out[i] == nullptr && name == names[i]) {
        out[i] = &m.value;
        break;
      }
    }
  }
  return out;
}

}  // namespace orroute
