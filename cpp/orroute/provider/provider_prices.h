// One provider's own prices, by the provider's model names, read exactly from LiteLLM's price table
// (model_prices_and_context_window.json; USD per token) or set by hand. Numbers are read as their
// decimal text, never through double.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/pricing.h"

namespace orroute {

// Immutable after building; const members are safe from any thread.
class ProviderPrices {
 public:
  ProviderPrices() = default;

  // The chat models of `litellm_provider` ("anthropic", "openai", "gemini", "azure", "groq",
  // "together_ai", ...) in LiteLLM's table. Keys lose their "<provider>/" prefix ("gemini/gemini-2.5-
  // flash" -> "gemini-2.5-flash"). Mapped fields: input/output_cost_per_token (required),
  // cache_read_input_token_cost, cache_creation_input_token_cost(_above_1hr),
  // output_cost_per_reasoning_token, input_cost_per_audio_token, and every "<field>_above_<N>k_tokens"
  // as a tier from N*1000+1 prompt tokens. An entry whose price is not a decimal is skipped and
  // named in warnings(). Throws ParseError if `json` is not a JSON object.
  static ProviderPrices from_litellm_json(std::string_view json, std::string_view litellm_provider);

  // Adds or replaces one model's prices (config overrides).
  void set(std::string model, Pricing pricing);
  // The prices of `model` (the provider's name for it), or nullptr.
  const Pricing* find(std::string_view model) const;
  size_t size() const { return prices_.size(); }
  const std::map<std::string, Pricing, std::less<>>& all() const { return prices_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::map<std::string, Pricing, std::less<>> prices_;
  std::vector<std::string> warnings_;
};

}  // namespace orroute
