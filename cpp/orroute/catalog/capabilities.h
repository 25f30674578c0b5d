// Capabilities of a model, derived from its catalog entry by one documented rule each
// (docs/foundation.md has the table). Pure functions over ModelInfo; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

struct ModelInfo;

// One bit per capability; the name is the string users pass ("tools", "vision", ...).
enum class Capability : uint32_t {
  kText = 1u << 0,              // "text": text in and text out (a chat model)
  kTools = 1u << 1,             // "tools": supported_parameters has "tools"
  kStructuredOutputs = 1u << 2, // "structured_outputs": supported_parameters has "structured_outputs"
  kJsonMode = 1u << 3,          // "json_mode": supported_parameters has "response_format"
  kVision = 1u << 4,            // "vision": input_modalities has "image"
  kAudio = 1u << 5,             // "audio": input_modalities has "audio"
  kFileInput = 1u << 6,         // "file_input": input_modalities has "file"
  kVideo = 1u << 7,             // "video": input_modalities has "video"
  kReasoning = 1u << 8,         // "reasoning": supported_parameters has "reasoning" or the entry
                                //   has a `reasoning` object or an internal_reasoning price
  kLargeContext = 1u << 9,      // "large_context": context_length >= kLargeContextTokens
  kLongOutput = 1u << 10,       // "long_output": max_completion_tokens >= kLongOutputTokens
  kImageOutput = 1u << 11,      // "image_output": output_modalities has "image"
  kAudioOutput = 1u << 12,      // "audio_output": output_modalities has "audio"
  kEmbeddings = 1u << 13,       // "embeddings": output_modalities has "embeddings"
  kWebSearch = 1u << 14,        // "web_search": a web_search price or "web_search_options"
  kCaching = 1u << 15,          // "caching": an input_cache_read price is listed
  kSeed = 1u << 16,             // "seed": supported_parameters has "seed"
  kLogprobs = 1u << 17,         // "logprobs": supported_parameters has "logprobs"
};

inline constexpr int64_t kLargeContextTokens = 200'000;
inline constexpr int64_t kLongOutputTokens = 32'768;

// Bit set of every capability `model` has, by the rules above.
uint32_t derive_capabilities(const ModelInfo& model);

// Name of one capability ("tools"). Never fails.
std::string_view capability_name(Capability c);
// Capability by name; nullopt if unknown.
std::optional<Capability> capability_from_name(std::string_view name);
// Every capability name, in bit order.
const std::vector<std::string>& capability_names();
// Names of the capabilities in a bit set, in bit order.
std::vector<std::string> capability_list(uint32_t bits);
// Bit set for names; throws InvalidArgument naming an unknown capability and listing the known ones.
uint32_t capability_bits(const std::vector<std::string>& names);

}  // namespace orroute
