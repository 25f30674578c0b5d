// Maps keyed by a name a client or an upstream chooses (a requested model, a breaker or limit
// scope built from one) must not grow with what they send: the first `cap` distinct names keep an
// entry of their own, every later one shares kOtherName's, so such a map holds at most cap + 1
// entries (the rule ProviderMemory applies to provider names).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace orroute {

inline constexpr std::string_view kOtherName = "(other)";

// Hashes a name as std::hash<std::string> does, from any string type: a NameMap is searched with a
// std::string_view, without a std::string made (and for a name past the short-string buffer,
// allocated) for every lookup.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
};

template <class Value>
using NameMap = std::unordered_map<std::string, Value, NameHash, std::equal_to<>>;

// The entry of `map` (a NameMap, or a std::map with std::less<>) for `name`: its own while `map`
// holds fewer than `cap` names or holds `name` already, else kOtherName's. A missing entry is made
// with `make(key)`, key being the name it is filed under. The caller synchronises.
template <class Map, class Make>
typename Map::mapped_type& capped_entry(Map& map, std::string_view name, size_t cap, Make make) {
  if (auto it = map.find(name); it != map.end()) return it->second;
  std::string key(name);
  if (map.size() >= cap) {
    key = std::string(kOtherName);
    if (auto it = map.find(key); it != map.end()) return it->second;
  }
  auto value = make(key);
  return map.emplace(std::move(key), std::move(value)).first->second;
}

}  // namespace orroute
