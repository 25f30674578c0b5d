#include "orroute/engine/settle_worker.h"

#include <exception>
#include <utility>
#include <vector>

namespace orroute {

SettleWorker::~SettleWorker() {
  Queue* q = q_.made_here();  // null: the parent's, in a forked child that never settled
  if (q == nullptr) return;
  {
    std::lock_guard lock(q->mu);
    q->stopping = true;
  }
  q->cv.notify_one();
  if (q->thread.joinable()) q->thread.join();
}

bool SettleWorker::start() noexcept {
  Queue* q = nullptr;
  try {
    q = q_.get();
  } catch (...) {
    return false;  // a forked child could not make its queue
  }
  std::lock_guard lock(q->mu);
  if (q->thread.joinable()) return true;
  if (q->stopping) return false;
  try {
    // On first use: an engine that never batches has none.
    q->thread = std::thread([this, q] { loop(*q); });
  } catch (...) {
    return false;
  }
  return true;
}

void SettleWorker::post(int64_t id, CallRecord call, Done done) {
  Queue& q = *q_;
  {
    std::lock_guard lock(q.mu);
    q.items.push_back(Item{id, std::move(call), std::move(done)});
  }
  q.cv.notify_one();
}

SettleWorker::Stats SettleWorker::stats() const {
  const Queue& q = *q_;
  std::lock_guard lock(q.mu);
  return q.stats;
}

bool SettleWorker::idle() const {
  const Queue& q = *q_;
  std::lock_guard lock(q.mu);
  return q.items.empty() && !q.writing;
}

void SettleWorker::loop(Queue& q) noexcept {
  std::deque<Item> batch;
  while (true) {
    {
      std::unique_lock lock(q.mu);
      q.cv.wait(lock, [&q] { return q.stopping || !q.items.empty(); });
      if (q.items.empty()) return;  // stopping, and nothing left to write
      q.writing = true;
      // Everything queued while the previous batch was written goes in this one.
      if (q.items.size() <= max_batch_) {
        batch.swap(q.items);
      } else {
        for (size_t i = 0; i < max_batch_; ++i) {
          batch.push_back(std::move(q.items.front()));
          q.items.pop_front();
        }
      }
    }
    write(q, batch);
    batch.clear();
    std::lock_guard lock(q.mu);
    q.writing = false;
  }
}

void SettleWorker::write(Queue& q, std::deque<Item>& batch) noexcept {
  std::vector<BatchSettle> results;
  try {
    std::vector<SettleItem> items;
    items.reserve(batch.size());
    for (Item& it : batch) items.push_back(SettleItem{it.id, std::move(it.call)});
    results = ledger_.settle_batch(std::move(items));
  } catch (...) {
    results.clear();  // a backend that threw anyway (or no memory): nothing of it counts as written
  }
  results.resize(batch.size());  // a short answer: the missing settles count as failed
  {
    std::lock_guard lock(q.mu);
    ++q.stats.batches;
    q.stats.settles += static_cast<int64_t>(batch.size());
    if (batch.size() > q.stats.largest_batch) q.stats.largest_batch = batch.size();
  }
  // A settle that failed leaves its reservation held (until its TTL): the call was sent and
  // billed, so releasing it handed the money back to the budget, and with a ledger that cannot
  // write rows every later call found the budget untouched.
  for (size_t i = 0; i < batch.size(); ++i) {
    try {
      if (batch[i].done) batch[i].done(std::move(results[i].outcome));
    } catch (...) {
      // The caller's completion failed; the settle itself is done.
    }
  }
}

}  // namespace orroute
