// Maps keyed by a name a client or an upstream chooses (a requested model, a breaker or limit
// scope built from one) must not grow with what they send: the first `cap` distinct names keep an
// entry of their own, every later one shares kOtherName's, so such a map holds at most cap + 1
// entries (the rule ProviderMemory applies to provider names).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace orroute {

inline constexpr std::string_view kOtherName = "(other)";

// The entry of `map` (a std::unordered_map or std::map from std::string) for `name`: its own while
// `map` holds fewer than `cap` names or holds `name` already, else kOtherName's. A missing entry is
// made with `make(key)`, key being the name it is filed under. The caller synchronises.
template <class Map, class Make>
typename Map::mapped_type& capped_entry(Map& map, std::string_view name, size_t cap, Make make) {
  std::string key(name);
  if (auto it = map.find(key); it != map.end()) return it->second;
  if (map.size() >= cap) {
    key = std::string(kOtherName);
    if (auto it = map.find(key); it != map.end()) return it->second;
  }
  auto value = make(key);
  return map.emplace(std::move(key), std::move(value)).first->second;
}

}  // namespace orroute
