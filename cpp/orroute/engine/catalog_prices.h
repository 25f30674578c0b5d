#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

// Prices through the CallPricer (variants, routers, `models` lists, unknown ids); prompt tokens
// per model family, counted once per tokenizer; charges checked by audit_charge.
// `messages` (the request's, as count_chat_tokens reads them) may be null: a model whose count
// was not seeded then gets `counted`.
class CatalogPrices final : public PriceBook {
 public:
  CatalogPrices(const CallPricer& pricer, std::shared_ptr<const std::vector<ChatMessage>> messages,
                std::string tools_json, RequestShape shape, int64_t counted)
      : pricer_(pricer), catalog_(pricer.catalog()), messages_(std::move(messages)),
        tools_(std::move(tools_json)), shape_(std::move(shape)), counted_(counted) {}

  // A count already made for this request under tokenizer `key` (tokenizer_key()): not redone.
  void seed(const std::string& key, int64_t tokens) { counts_.emplace(key, tokens); }

  int64_t prompt_tokens(const std::string& model, int64_t counted) const override;
  std::optional<Money> worst_case(const std::string& model, int64_t prompt_tokens,
                                  int64_t max_output_tokens) const override;
  std::string unpriced_reason(const std::string& model) const override;
  Charge actual(const std::string& model, const AttemptResult& r, Money reserved) const override;
  Charge abandoned(const std::string& model, const AttemptResult& r, Money reserved) const override;
  std::optional<int64_t> context_length(const std::string& model) const override;

  // The request's shape: what a direct provider's prices are held to too (RoutedPrices).
  const RequestShape& shape() const { return shape_; }

 private:
  const CallPricer& pricer_;
  const ModelCatalog& catalog_;
  std::shared_ptr<const std::vector<ChatMessage>> messages_;
  std::string tools_;
  RequestShape shape_;
  int64_t counted_ = 0;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, int64_t> counts_;
};

}  // namespace orroute
