// One upstream that serves chat completions: its kind (which wire format and defaults), base URL,
// keys, headers, timeouts, and its place in failover (priority) and balancing (weight). A plain
// value; the ApiClient built from it does the I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/net/api_client.h"
#include "orroute/net/http.h"

namespace orroute {

enum class ProviderKind {
  kOpenRouter,
  kOpenAI,
  kAnthropic,         // native Messages API
  kGemini,            // Google's OpenAI-compatible endpoint
  kAzure,             // Azure OpenAI deployment URLs with api-version
  kGroq,
  kTogether,
  kOllama,
  kVllm,
  kOpenAICompatible,  // any other server speaking chat completions (base_url required)
};

enum class WireFormat { kChatCompletions, kAnthropicMessages };

struct ProviderConfig {
  std::string name;  // unique among the router's providers: "openrouter", "anthropic", "azure-eu"
  ProviderKind kind = ProviderKind::kOpenRouter;
  std::string base_url;                // "" = default_base_url(kind)
  std::vector<std::string> api_keys;   // rotated; local servers may have none
  Headers headers;                     // added to every request
  std::string api_version;             // Azure api-version / anthropic-version; "" = the default
  Timeouts timeouts{10'000, 0, 0, 600'000};
  Timeouts stream_timeouts = kDefaultStreamTimeouts;
  int32_t priority = 0;                // failover order: lower first
  int32_t weight = 1;                  // share when balancing deployments of one model (>= 0)
  int64_t default_max_tokens = 4096;   // sent to Anthropic when a request has none (it requires one)
  int32_t max_retries = 2;             // retries of one call at this provider before failing over
};

// "openrouter", "openai", "anthropic", "gemini", "azure", "groq", "together", "ollama", "vllm",
// "openai_compatible" (also "openai-compatible"). Throws InvalidArgument listing the names.
ProviderKind parse_provider_kind(std::string_view name);
const char* to_string(ProviderKind kind);
WireFormat wire_format(ProviderKind kind);
// The public endpoint of the kind ("https://api.anthropic.com/v1"); "" for kAzure and
// kOpenAICompatible, which have none.
std::string default_base_url(ProviderKind kind);
// LiteLLM's provider name for the kind's price list ("anthropic", "gemini", "together_ai");
// "" for kOpenAICompatible.
std::string litellm_provider(ProviderKind kind);

// Checks a config: a name, an http(s) base URL (after defaults), no CR/LF in keys or headers,
// weight >= 0, default_max_tokens > 0. Throws InvalidArgument naming the provider and field (keys
// are never shown).
void validate(const ProviderConfig& config);

// The ApiClient settings for the provider: base URL, keys, the kind's auth header (Bearer,
// x-api-key or api-key), anthropic-version, extra headers and timeouts. Throws like validate().
ClientConfig client_config(const ProviderConfig& config);

// The path of a chat call for `model` (the provider's own model name): "/chat/completions",
// "/messages" for Anthropic, "/openai/deployments/<model>/chat/completions?api-version=..." for
// Azure (the deployment name is URL-escaped). Pure.
std::string chat_path(const ProviderConfig& config, std::string_view model);

}  // namespace orroute
