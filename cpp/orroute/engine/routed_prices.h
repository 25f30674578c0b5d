// Prices of (model, provider) candidates: the engine's own endpoint through the catalog
// (CatalogPrices, with its usage.cost checks), every other provider at its own prices, exactly
// (ProviderPrices, by the provider's name for the model). A candidate whose provider has no price
// for it cannot be priced: under a budget it is refused before anything is sent.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "orroute/engine/catalog_prices.h"
#include "orroute/engine/provider_routes.h"

namespace orroute {

class RoutedPrices final : public PriceBook {
 public:
  RoutedPrices(std::shared_ptr<CatalogPrices> catalog, const ProviderRoutes& routes)
      : catalog_(std::move(catalog)), routes_(routes) {}

  int64_t prompt_tokens(const std::string& candidate, int64_t counted) const override;
  int64_t image_context_tokens(const std::string& candidate) const override;
  std::optional<Money> worst_case(const std::string& candidate, int64_t prompt_tokens,
                                  int64_t max_output_tokens) const override;
  std::string unpriced_reason(const std::string& candidate) const override;
  // Every other provider's candidate: its reply has no usage.cost to charge.
  bool priced_only(const std::string& candidate) const override;
  // A provider's reply is charged from its usage at its prices; without a usable usage object
  // the whole reservation is charged (money fails closed).
  Charge actual(const std::string& candidate, const AttemptResult& r, Money reserved) const override;
  // A cut call at the engine's own endpoint as without providers (CatalogPrices::abandoned: what
  // arrived, where its provider stops billing); at any other provider, the reservation.
  Charge abandoned(const std::string& candidate, const AttemptResult& r, Money reserved) const override;
  std::optional<int64_t> context_length(const std::string& candidate) const override;

 private:
  // The provider's prices for the candidate; null at the own endpoint or when it has none.
  const Pricing* pricing(const std::string& candidate) const;

  std::shared_ptr<CatalogPrices> catalog_;
  const ProviderRoutes& routes_;
};

}  // namespace orroute
