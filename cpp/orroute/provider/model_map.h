// Model identity across providers: OpenRouter's id for a model ("anthropic/claude-sonnet-4.5") is
// the router's name for it; each provider may call it something else ("claude-sonnet-4-5" at
// Anthropic, a deployment name at Azure). The table is derived from the catalog (id and
// canonical_slug) and the provider's price book, and config entries override it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "orroute/catalog/catalog.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/provider/provider.h"

namespace orroute {

// Build it, then share it read-only: const members are safe from any thread.
class ModelMap {
 public:
  // Sets (or overrides) the name of `model` at `provider`.
  void set(std::string_view model, std::string_view provider, std::string_view native);

  // Adds the catalog's models that `provider` (of `kind`) serves, under the provider's own names:
  //  - OpenRouter: every id as itself;
  //  - Anthropic / OpenAI / Azure / Gemini: models of the matching author (anthropic, openai,
  //    google) whose name is in `prices` as the id's name ("gpt-4o"), with dots as hyphens
  //    ("claude-sonnet-4-5"), or with the canonical slug's date ("claude-sonnet-4-5-20250929"),
  //    first match in that order;
  //  - other kinds: nothing (their model names are not derivable; use set()).
  // Variants (":free", ":batch") are OpenRouter's own and never mapped. Entries already set are kept
  // (overrides win whatever the order). Returns how many entries were added.
  size_t derive(const ModelCatalog& catalog, const ProviderPrices& prices, std::string_view provider,
                ProviderKind kind);

  // The provider's name for `model`, or nullopt if that provider is not known to serve it.
  std::optional<std::string> native(std::string_view model, std::string_view provider) const;
  // The router's id for a provider's model name (the first model mapped to it), or nullopt.
  std::optional<std::string> model_for(std::string_view provider, std::string_view native) const;
  size_t size() const { return forward_.size(); }

 private:
  using Key = std::pair<std::string, std::string>;  // (model or native, provider)
  std::map<Key, std::string> forward_;  // (model, provider) -> native
  std::map<Key, std::string> reverse_;  // (native, provider) -> model
};

}  // namespace orroute
