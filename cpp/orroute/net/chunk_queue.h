// The bounded hand-off of a streamed answer's chunks from the transport thread to one consumer (an
// asyncio loop, a blocking reader). The producer never blocks and never takes the GIL: when the
// queue is full it answers kPause, the engine pauses the transfer (libcurl keeps the bytes) and the
// consumer's next take() resumes it. The consumer is woken through a Notifier (eventfd) once per
// batch, and takes every queued chunk at once, so a fast upstream costs one wake-up per batch
// rather than one per chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "orroute/net/api_client.h"

namespace orroute {

// What a chunk consumer answers the producer.
enum class ChunkAction {
  kContinue,  // taken; send more
  kPause,     // taken, but the consumer is now behind: read no more until resumed. Every kPause
              // is answered by exactly one call of the resume function, which may come before
              // the producer acted on the kPause (count them rather than keep a flag)
  kCancel,    // the consumer is gone: stop the request
};

// Thread-safe: one producer thread and any consumer threads; every method takes a short lock and
// none waits for the other side. Callbacks (resume, notify) run outside the lock.
class ChunkQueue {
 public:
  // Throws InvalidArgument if `capacity` is 0.
  explicit ChunkQueue(size_t capacity = 64);
  ChunkQueue(const ChunkQueue&) = delete;
  ChunkQueue& operator=(const ChunkQueue&) = delete;

  // Producer: queues `chunk`. kPause when the queue just reached `capacity` chunks (the producer
  // should stop reading; it may still push what it already read: those answer kContinue until
  // the resume), kCancel after close().
  ChunkAction push(std::string chunk);
  // Producer: no more chunks; the consumer sees finished() once it took the queued ones.
  void finish();
  // Producer side: how to resume after a kPause. Called (outside the lock) by the take() that
  // empties the queue, or at once here if that take() already happened.
  void set_resume(std::function<void()> resume);

  // Consumer: `notifier` gets `token` once, as soon as a chunk is queued or the producer finished
  // (at once if that is already so). Arm again after each wake-up.
  void arm(std::shared_ptr<Notifier> notifier, uint64_t token);
  // Consumer: every queued chunk, oldest first (empty if none); resumes a paused producer.
  std::vector<std::string> take();
  // Consumer: like take(), each chunk framed as a server-sent event: "data: <chunk>\n\n".
  std::string take_sse();
  // Consumer: the producer finished and every chunk was taken.
  bool finished() const;
  // Consumer: gone. Drops the queued chunks; the producer's next push answers kCancel.
  void close();

  size_t size() const;
  size_t capacity() const { return capacity_; }
  // Times the producer was told to pause (for tests and metrics).
  int64_t pauses() const;

 private:
  template <typename Fn>
  void drain(Fn&& fn);
  void wake(std::unique_lock<std::mutex>& lock);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<std::string> items_;
  bool finished_ = false;
  bool closed_ = false;
  bool paused_ = false;
  int64_t pauses_ = 0;
  std::function<void()> resume_;
  std::shared_ptr<Notifier> notifier_;
  uint64_t token_ = 0;
};

}  // namespace orroute
