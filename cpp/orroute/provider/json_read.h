// Defensive reading of upstream JSON for the provider adapters: a nesting-depth guard run before
// RapidJSON (whose parser and writer recurse), and typed member look-ups that never throw and never
// convert an out-of-range number with undefined behaviour.
#pragma once

#include <rapidjson/document.h>

#include "orroute/json.h"
#include "orroute/utf8.h"  // utf8_prefix

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orroute {

// Parses `text` into `doc` with the shared guard (orroute/json.h: size, depth, iterative parse)
// and UTF-8 validation. False (doc null) if too large, too deep, not JSON, or not valid UTF-8.
// Never throws.
bool parse_json(std::string_view text, rapidjson::Document& doc);

// The member `name` of `obj`, or nullptr if `obj` is not an object or has no such member.
const rapidjson::Value* json_member(const rapidjson::Value& obj, const char* name);

// The string member, or nullopt if absent or not a string.
std::optional<std::string_view> json_string(const rapidjson::Value& obj, const char* name);

// A non-negative integer member that fits in int64 (an integral double is accepted), or nullopt.
std::optional<int64_t> json_count(const rapidjson::Value& obj, const char* name);

}  // namespace orroute
