#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/net/protocol.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

// A request's prompt counted for one tokenizer (`key`: tokenizer_key()), and the model it was
// counted for: a later question about that model is answered without its tokenizer found again.
struct PromptCount {
  std::string key;
  std::string model;
  int64_t tokens = 0;
};

// The usage an attempt read from its reply, as audit_charge takes it.
Usage reported_usage(const AttemptResult& r);

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

  // The counts already made for this request, by tokenizer key (tokenizer_key()): not redone.
  // Before the run starts (not thread-safe against prompt_tokens()).
  void seed(std::vector<PromptCount> counts) {
    counts_ = std::move(counts);
    last_model_.reset();
  }

  // The output tokens the request carries and its reservation covers (0: none, no ledger): a
  // reply's usage above it is charged at it (ChargeInput::output_bound). Before the run starts.
  void set_output_bound(int64_t tokens) { output_bound_ = tokens; }
  int64_t output_bound() const { return output_bound_; }

  int64_t prompt_tokens(const std::string& model, int64_t counted) const override;
  int64_t image_context_tokens(const std::string& model) const override;
  std::optional<Money> worst_case(const std::string& model, int64_t prompt_tokens,
                                  int64_t max_output_tokens) const override;
  std::string unpriced_reason(const std::string& model) const override;
  Charge actual(const std::string& model, const AttemptResult& r, Money reserved) const override;
  Charge abandoned(const std::string& model, const AttemptResult& r, Money reserved) const override;
  std::optional<int64_t> context_length(const std::string& model) const override;

  // The request's shape: what a direct provider's prices are held to too (RoutedPrices).
  const RequestShape& shape() const { return shape_; }
  // Our count of the request's prompt with `model`'s tokenizer (what a reply's usage is checked
  // against); the count the request came with if that tokenizer fails.
  int64_t counted_prompt(const std::string& model) const;

 private:
  const CallPricer& pricer_;
  const ModelCatalog& catalog_;
  std::shared_ptr<const std::vector<ChatMessage>> messages_;
  std::string tools_;
  RequestShape shape_;
  int64_t counted_ = 0;
  int64_t output_bound_ = 0;
  mutable std::mutex mu_;
  // By tokenizer key: a few at most (one per encoding and factor), so a scan beats hashing, and
  // plan()'s list is taken over as it is (no allocation a call).
  mutable std::vector<PromptCount> counts_;
  // The model last asked for and its answer (its tokenizer's entry in counts_).
  mutable std::optional<std::string> last_model_;
  mutable int64_t last_count_ = 0;
};

}  // namespace orroute
