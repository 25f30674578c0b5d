// parse_usage for a reader that found a `usage` object's members without a document.
#pragma once

#include <rapidjson/document.h>

#include <array>
#include <string_view>

#include "orroute/net/protocol.h"

namespace orroute {

// The members of a `usage` object parse_usage reads, by name, in these orders.
inline constexpr std::array<std::string_view, 6> kUsageMembers = {
    "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details", "cost"};
inline constexpr std::array<std::string_view, 3> kPromptDetailMembers = {"cached_tokens", "cache_write_tokens",
                                                                        "audio_tokens"};
inline constexpr std::array<std::string_view, 3> kCompletionDetailMembers = {"reasoning_tokens", "audio_tokens",
                                                                            "image_tokens"};

// A `usage` object's members as a reader found them: the first of each name in kUsageMembers'
// order (those of the two details objects, when the first member of each name is an object, in
// `prompt_details` and `completion_details`; `top[3]` and `top[4]` are not read); null when
// absent. `cost_text` is the cost's own decimal digits when it is a number (read exactly instead
// of through a double), else empty.
struct UsageMembers {
  std::array<const rapidjson::Value*, 6> top{};
  std::array<const rapidjson::Value*, 3> prompt_details{};
  std::array<const rapidjson::Value*, 3> completion_details{};
  std::string_view cost_text;
};

// parse_usage of an object whose members are `m`. Never throws.
Usage parse_usage(const UsageMembers& m) noexcept;

}  // namespace orroute
