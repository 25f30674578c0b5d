#include "orroute/engine/streamed_run.h"

namespace orroute {

std::shared_ptr<StreamedRun> StreamedRun::start(Engine& engine, EngineTask task, EnginePlan plan,
                                                size_t capacity) {
  auto self = std::make_shared<StreamedRun>(capacity);
  task.stream = true;
  std::weak_ptr<StreamedRun> weak = self;
  // The callbacks hold the run weakly: a consumer that drops it cancels nothing by accident but
  // frees the queue; the engine's own handle keeps the request alive until it ends.
  auto run = engine.submit(
      task, std::move(plan),
      [weak](const std::string& chunk) {
        auto s = weak.lock();
        return s ? s->queue_.push(chunk) : ChunkAction::kCancel;
      },
      [weak](std::unique_ptr<EngineResult> r) {
        if (auto s = weak.lock()) {
          {
            std::lock_guard lock(s->mu_);
            s->result_ = std::move(*r);
          }
          s->queue_.finish();  // after the result: finished() implies result() is set
        }
      });
  {
    std::lock_guard lock(self->mu_);
    self->run_ = run;
  }
  self->queue_.set_resume([weak_run = std::weak_ptr<EngineRun>(run)] {
    if (auto r = weak_run.lock()) r->resume();
  });
  return self;
}

std::optional<EngineResult> StreamedRun::result() const {
  std::lock_guard lock(mu_);
  return result_;
}

void StreamedRun::cancel() {
  queue_.close();
  std::shared_ptr<EngineRun> run;
  {
    std::lock_guard lock(mu_);
    run = run_;
  }
  if (run) run->cancel();
}

std::pair<std::string, int> StreamedRun::progress() const {
  std::shared_ptr<EngineRun> run;
  {
    std::lock_guard lock(mu_);
    run = run_;
  }
  return run ? run->progress() : std::pair<std::string, int>{"", 0};
}

}  // namespace orroute
