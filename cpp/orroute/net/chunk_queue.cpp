#include "orroute/net/chunk_queue.h"

#include <utility>

#include "orroute/error.h"

namespace orroute {

ChunkQueue::ChunkQueue(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) throw InvalidArgument("chunk queue: capacity must be >= 1");
}

void ChunkQueue::wake(std::unique_lock<std::mutex>& lock) {
  // One-shot: the consumer re-arms after each wake-up, so a burst of chunks costs one notify.
  std::shared_ptr<Notifier> n = std::move(notifier_);
  notifier_.reset();
  const uint64_t token = token_;
  lock.unlock();
  if (n) n->notify(token);
}

ChunkAction ChunkQueue::push(std::string chunk) {
  std::unique_lock lock(mu_);
  if (closed_) return ChunkAction::kCancel;
  items_.push_back(std::move(chunk));
  ChunkAction action = ChunkAction::kContinue;
  if (items_.size() >= capacity_ && !paused_) {  // one kPause per resume: the producer counts
    paused_ = true;
    ++pauses_;
    action = ChunkAction::kPause;
  }
  wake(lock);
  return action;
}

void ChunkQueue::finish() {
  std::unique_lock lock(mu_);
  finished_ = true;
  resume_ = nullptr;  // nothing left to resume; drops what the function holds
  wake(lock);
}

void ChunkQueue::set_resume(std::function<void()> resume) {
  std::unique_lock lock(mu_);
  if (finished_ || closed_) return;
  if (paused_ && items_.size() < capacity_) {  // drained before the function arrived
    paused_ = false;
    resume_ = resume;
    lock.unlock();
    resume();
    return;
  }
  resume_ = std::move(resume);
}

void ChunkQueue::arm(std::shared_ptr<Notifier> notifier, uint64_t token) {
  std::unique_lock lock(mu_);
  if (!items_.empty() || finished_) {
    lock.unlock();
    notifier->notify(token);
    return;
  }
  notifier_ = std::move(notifier);
  token_ = token;
}

template <typename Fn>
void ChunkQueue::drain(Fn&& fn) {
  std::function<void()> resume;
  {
    std::lock_guard lock(mu_);
    for (std::string& s : items_) fn(s);
    items_.clear();
    if (paused_ && resume_) {
      paused_ = false;
      resume = resume_;
    }
  }
  if (resume) resume();
}

std::vector<std::string> ChunkQueue::take() {
  std::vector<std::string> out;
  drain([&](std::string& s) { out.push_back(std::move(s)); });
  return out;
}

std::string ChunkQueue::take_sse() {
  std::string out;
  drain([&](const std::string& s) {
    out.append("data: ");
    out.append(s);
    out.append("\n\n");
  });
  return out;
}

bool ChunkQueue::finished() const {
  std::lock_guard lock(mu_);
  return finished_ && items_.empty();
}

void ChunkQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  items_.clear();
  resume_ = nullptr;
  notifier_.reset();
}

size_t ChunkQueue::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

int64_t ChunkQueue::pauses() const {
  std::lock_guard lock(mu_);
  return pauses_;
}

}  // namespace orroute
