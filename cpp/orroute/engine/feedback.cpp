// Quality feedback: recorded scores (kept in a store when one is set) feed the selector's means.
#include <mutex>

#include "orroute/engine/engine.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/error.h"

namespace orroute {

void Engine::record_feedback(const std::string& model, const std::string& task_type, double score,
                             const std::string& source, const std::string& result_id) {
  if (!(score >= 0.0 && score <= 1.0)) throw InvalidArgument("feedback score must be in [0, 1]");
  std::shared_ptr<FeedbackStore> store;
  {
    std::lock_guard lock(impl_->feedback_mu);
    store = impl_->feedback_store;
  }
  // Durable first (a failed write changes nothing), and not under the lock plan() takes.
  if (store) {
    FeedbackEntry e;
    e.model = model;
    e.task_type = task_type;
    e.score = score;
    e.source = source;
    e.result_id = result_id;
    store->add(e);
  }
  std::lock_guard lock(impl_->feedback_mu);
  auto& v = impl_->feedback[{model, task_type}];
  v.first += score;
  v.second += 1;
}

void Engine::set_feedback_store(std::shared_ptr<FeedbackStore> store) {
  const std::vector<FeedbackSummary> kept =
      store ? store->summary() : std::vector<FeedbackSummary>{};
  std::lock_guard lock(impl_->feedback_mu);
  impl_->feedback_store = std::move(store);
  for (const FeedbackSummary& s : kept) {
    auto& v = impl_->feedback[{s.model, s.task_type}];
    v.first += s.sum;
    v.second += s.count;
  }
}

}  // namespace orroute
