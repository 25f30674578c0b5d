#include "orroute/catalog/capabilities.h"

#include <array>
#include <utility>

#include "orroute/catalog/model_info.h"
#include "orroute/error.h"
#include "orroute/no_destructor.h"

namespace orroute {
namespace {

constexpr std::array<std::pair<Capability, std::string_view>, 18> kNames{{
    {Capability::kText, "text"},
    {Capability::kTools, "tools"},
    {Capability::kStructuredOutputs, "structured_outputs"},
    {Capability::kJsonMode, "json_mode"},
    {Capability::kVision, "vision"},
    {Capability::kAudio, "audio"},
    {Capability::kFileInput, "file_input"},
    {Capability::kVideo, "video"},
    {Capability::kReasoning, "reasoning"},
    {Capability::kLargeContext, "large_context"},
    {Capability::kLongOutput, "long_output"},
    {Capability::kImageOutput, "image_output"},
    {Capability::kAudioOutput, "audio_output"},
    {Capability::kEmbeddings, "embeddings"},
    {Capability::kWebSearch, "web_search"},
    {Capability::kCaching, "caching"},
    {Capability::kSeed, "seed"},
    {Capability::kLogprobs, "logprobs"},
}};

constexpr uint32_t bit(Capability c) { return static_cast<uint32_t>(c); }

}  // namespace

uint32_t derive_capabilities(const ModelInfo& m) {
  uint32_t b = 0;
  const auto set = [&b](Capability c, bool on) {
    if (on) b |= bit(c);
  };
  const PriceSet& p = m.pricing.base;
  set(Capability::kText, m.has_input("text") && m.has_output("text"));
  set(Capability::kTools, m.supports_parameter("tools"));
  set(Capability::kStructuredOutputs, m.supports_parameter("structured_outputs"));
  set(Capability::kJsonMode, m.supports_parameter("response_format"));
  set(Capability::kVision, m.has_input("image"));
  set(Capability::kAudio, m.has_input("audio"));
  set(Capability::kFileInput, m.has_input("file"));
  set(Capability::kVideo, m.has_input("video"));
  set(Capability::kReasoning, m.supports_parameter("reasoning") || m.reasoning.has_value() ||
                                  p.internal_reasoning.has_value());
  set(Capability::kLargeContext, m.context_length >= kLargeContextTokens);
  set(Capability::kLongOutput, m.max_completion_tokens.value_or(0) >= kLongOutputTokens);
  set(Capability::kImageOutput, m.has_output("image"));
  set(Capability::kAudioOutput, m.has_output("audio"));
  set(Capability::kEmbeddings, m.has_output("embeddings"));
  set(Capability::kWebSearch, p.web_search.has_value() || m.supports_parameter("web_search_options"));
  set(Capability::kCaching, p.input_cache_read.has_value());
  set(Capability::kSeed, m.supports_parameter("seed"));
  set(Capability::kLogprobs, m.supports_parameter("logprobs"));
  return b;
}

std::string_view capability_name(Capability c) {
  for (const auto& [cap, name] : kNames) {
    if (cap == c) return name;
  }
  return "unknown";
}

std::optional<Capability> capability_from_name(std::string_view name) {
  for (const auto& [cap, n] : kNames) {
    if (n == name) return cap;
  }
  return std::nullopt;
}

const std::vector<std::string>& capability_names() {
  static const NoDestructor<std::vector<std::string>> names([] {
    std::vector<std::string> v;
    for (const auto& [cap, name] : kNames) v.emplace_back(name);
    return v;
  }());
  return *names;
}

std::vector<std::string> capability_list(uint32_t bits) {
  std::vector<std::string> out;
  for (const auto& [cap, name] : kNames) {
    if (bits & bit(cap)) out.emplace_back(name);
  }
  return out;
}

uint32_t capability_bits(const std::vector<std::string>& names) {
  uint32_t b = 0;
  for (const std::string& n : names) {
    const auto c = capability_from_name(n);
    if (!c) {
      std::string known;
      for (const auto& k : capability_names()) known += (known.empty() ? "" : ", ") + k;
      throw InvalidArgument("unknown capability '" + n + "'; known capabilities: " + known);
    }
    b |= bit(*c);
  }
  return b;
}

}  // namespace orroute
