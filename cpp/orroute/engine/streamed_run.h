#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "orroute/engine/engine.h"
#include "orroute/net/chunk_queue.h"

namespace orroute {

// A streamed task whose chunks go to a bounded ChunkQueue, for a consumer on another thread (an
// asyncio loop woken through the queue's Notifier). The transport thread never blocks on the
// consumer: a full queue pauses the upstream transfer until the consumer takes the chunks.
// Thread-safe.
class StreamedRun {
 public:
  // Submits `task` (stream forced on) with `plan`. Throws InvalidArgument if `capacity` is 0.
  static std::shared_ptr<StreamedRun> start(Engine& engine, EngineTask task, EnginePlan plan,
                                            size_t capacity);
  // The chunks; finished() once the run ended and every chunk was taken.
  ChunkQueue& queue() { return queue_; }
  // The outcome, once queue().finished() (nullopt before).
  std::optional<EngineResult> result() const;
  // Drops the queued chunks and cancels the run (the reservation is released). Idempotent.
  void cancel();
  // See EngineRun::progress().
  std::pair<std::string, int> progress() const;

  explicit StreamedRun(size_t capacity) : queue_(capacity) {}

 private:
  ChunkQueue queue_;
  mutable std::mutex mu_;
  std::optional<EngineResult> result_;
  std::shared_ptr<EngineRun> run_;
};

}  // namespace orroute
