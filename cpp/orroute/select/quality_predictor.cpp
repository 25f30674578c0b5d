#include "orroute/select/quality_predictor.h"

#include <algorithm>

#include "orroute/error.h"

namespace orroute {

CatalogQualityPredictor::CatalogQualityPredictor(
    std::shared_ptr<const QualityPredictor> predictor,
    const std::vector<std::pair<std::string, std::string>>& mapping)
    : predictor_(std::move(predictor)) {
  if (!predictor_) throw InvalidArgument("quality predictor is null");
  const std::vector<std::string> names = predictor_->model_names();
  for (const auto& [name, catalog_id] : mapping) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      throw NotFound("router model '" + name + "' is not known to the quality predictor");
    }
    if (std::find(catalog_ids_.begin(), catalog_ids_.end(), catalog_id) != catalog_ids_.end()) {
      throw InvalidArgument("catalog id '" + catalog_id + "' is mapped twice");
    }
    catalog_ids_.push_back(catalog_id);
    source_index_.push_back(static_cast<size_t>(it - names.begin()));
  }
}

bool CatalogQualityPredictor::covers(std::string_view catalog_id) const {
  return std::find(catalog_ids_.begin(), catalog_ids_.end(), catalog_id) != catalog_ids_.end();
}

std::unordered_map<std::string, double> CatalogQualityPredictor::predict(
    std::string_view prompt) const {
  const std::vector<double> p = predictor_->predict(prompt);
  std::unordered_map<std::string, double> out;
  for (size_t i = 0; i < catalog_ids_.size(); ++i) out[catalog_ids_[i]] = p[source_index_[i]];
  return out;
}

std::optional<double> CatalogQualityPredictor::predict_one(std::string_view prompt,
                                                           std::string_view catalog_id) const {
  const auto it = std::find(catalog_ids_.begin(), catalog_ids_.end(), catalog_id);
  if (it == catalog_ids_.end()) return std::nullopt;
  return predictor_->predict(prompt)[source_index_[static_cast<size_t>(it - catalog_ids_.begin())]];
}

}  // namespace orroute
