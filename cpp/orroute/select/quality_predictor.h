// The seam between a learned success predictor and the ModelSelector: QualityPredictor gives, for a
// prompt, one success probability per model it knows (in its own names); CatalogQualityPredictor
// renames those to catalog ids so the selector's quality_first / balanced strategies can look up
// the predicted quality of a candidate by its catalog id.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orroute {

// Predicts, for a prompt, the probability that each known model answers it well. Implementations
// must make predict() safe to call from several threads at once.
class QualityPredictor {
 public:
  virtual ~QualityPredictor() = default;
  // The predictor's model names; predict() returns probabilities in this order.
  virtual std::vector<std::string> model_names() const = 0;
  // One probability in [0, 1] per model_names() entry. Never throws except std::bad_alloc.
  virtual std::vector<double> predict(std::string_view prompt) const = 0;
};

// A QualityPredictor seen through a mapping {predictor model name -> catalog id}. Models of the
// predictor that are not in the mapping are ignored. Immutable; thread-safe if the predictor is.
class CatalogQualityPredictor {
 public:
  // Throws NotFound if a mapping key is not one of predictor->model_names(), InvalidArgument if
  // `predictor` is null or a catalog id appears twice.
  CatalogQualityPredictor(std::shared_ptr<const QualityPredictor> predictor,
                          const std::vector<std::pair<std::string, std::string>>& mapping);

  // Catalog ids this predictor can score, in mapping order.
  const std::vector<std::string>& catalog_ids() const noexcept { return catalog_ids_; }
  bool covers(std::string_view catalog_id) const;

  // catalog id -> predicted success probability, for every mapped model.
  std::unordered_map<std::string, double> predict(std::string_view prompt) const;
  // The probability for one catalog id; nullopt if the id is not mapped. Computes every model's
  // prediction: call predict() once when scoring several candidates.
  std::optional<double> predict_one(std::string_view prompt, std::string_view catalog_id) const;

  const std::shared_ptr<const QualityPredictor>& predictor() const noexcept { return predictor_; }

 private:
  std::shared_ptr<const QualityPredictor> predictor_;
  std::vector<std::string> catalog_ids_;  // parallel to source_index_
  std::vector<size_t> source_index_;      // index into predictor_->predict()
};

}  // namespace orroute
