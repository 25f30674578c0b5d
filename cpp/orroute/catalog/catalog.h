// OpenRouter's model catalog: parsing GET /api/v1/models, lookup, filtering and exact pricing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/capabilities.h"
#include "orroute/catalog/model_info.h"
#include "orroute/catalog/money.h"
#include "orroute/catalog/pricing.h"

namespace orroute {

// Criteria for ModelCatalog::filter. Every set field must hold; unset fields match everything.
struct ModelFilter {
  uint32_t capabilities = 0;                       // all these Capability bits
  std::optional<Money> max_prompt_price_per_mtok;  // USD per million prompt tokens (base price)
  std::optional<Money> max_completion_price_per_mtok;
  std::optional<int64_t> min_context;              // context_length >= this
  std::vector<std::string> providers;              // provider() is one of these (if non-empty)
  std::optional<bool> free;                        // is_free() == this
  bool include_dynamic = true;                     // keep "-1"-priced routers
};

// An immutable catalog of models. Build it once (from_json / from_file) and share it (e.g. as
// std::shared_ptr<const ModelCatalog>); every const member is safe to call from any thread.
class ModelCatalog {
 public:
  ModelCatalog() = default;

  // Parses a models response: {"data": [Model, ...], ...} (or a bare JSON array of models).
  // A bad entry (missing id, a price that is not a decimal string, a field of the wrong type) is
  // skipped and described in warnings() with its model id and field; duplicate ids keep the first.
  // Unknown fields are ignored. Throws ParseError if the text is not JSON or not a models response.
  static ModelCatalog from_json(std::string_view json);
  // Reads and parses a file. Throws InvalidArgument if it cannot be read, ParseError as from_json.
  static ModelCatalog from_file(const std::string& path);

  // The model with this exact id, or nullptr. O(log n).
  const ModelInfo* find(std::string_view id) const;
  // Like find, but throws NotFound naming the id (and close ids, if any).
  const ModelInfo& at(std::string_view id) const;
  // Up to `n` ids close to `id` (for "did you mean"): ids containing the part of `id` after the
  // provider first, else the nearest by edit distance within half the query's length. Empty if
  // nothing is close. O(catalog size x id length).
  std::vector<std::string> nearest_ids(std::string_view id, size_t n = 3) const;
  // Every model, in catalog order. References stay valid for the catalog's lifetime.
  const std::vector<ModelInfo>& models() const { return models_; }
  size_t size() const { return models_.size(); }
  auto begin() const { return models_.begin(); }
  auto end() const { return models_.end(); }
  // One line per skipped entry or field: "model 'x/y': pricing.prompt: not a decimal string".
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Models matching `filter`, in catalog order.
  std::vector<const ModelInfo*> filter(const ModelFilter& filter) const;

  // Exact cost of a call to `model_id` (see price_call in pricing.h for the formula and the rules
  // on cached/reasoning tokens). Throws NotFound for an unknown id, InvalidArgument for bad counts
  // or a dynamic ("-1") price.
  Money cost(std::string_view model_id, const UsageCounts& usage) const;
  // Worst-case cost for a budget reservation: prompt_tokens x prompt price + max output x
  // completion price (or internal_reasoning, if dearer) + request fee (see worst_case_cost).
  // `max_output_tokens` nullopt means the model's cap: max_completion_tokens, else
  // context_length - prompt_tokens. Throws like cost().
  Money worst_case(std::string_view model_id, int64_t prompt_tokens,
                   std::optional<int64_t> max_output_tokens = std::nullopt,
                   int64_t requests = 1, bool may_write_cache = false) const;

 private:
  static ModelCatalog from_text(std::string json);
  // The snapshot loader builds a catalog from its parts (catalog_snapshot.h).
  friend ModelCatalog read_catalog_snapshot(std::string_view, std::optional<uint64_t>);
  friend ModelCatalog load_bundled_catalog(const std::string&, const std::string&);

  std::vector<ModelInfo> models_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::string> warnings_;
};

}  // namespace orroute
