#include "orroute/engine/settle_worker.h"

#include <exception>
#include <utility>
#include <vector>

namespace orroute {

SettleWorker::~SettleWorker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool SettleWorker::start() noexcept {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return true;
  if (stopping_) return false;
  try {
    thread_ = std::thread([this] { loop(); });  // on first use: an engine that never batches has none
  } catch (...) {
    return false;
  }
  return true;
}

void SettleWorker::post(int64_t id, CallRecord call, Done done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Item{id, std::move(call), std::move(done)});
  }
  cv_.notify_one();
}

SettleWorker::Stats SettleWorker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool SettleWorker::idle() const {
  std::lock_guard lock(mu_);
  return queue_.empty() && !writing_;
}

void SettleWorker::loop() noexcept {
  std::deque<Item> batch;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      writing_ = true;
      // Everything queued while the previous batch was written goes in this one.
      if (queue_.size() <= max_batch_) {
        batch.swap(queue_);
      } else {
        for (size_t i = 0; i < max_batch_; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    write(batch);
    batch.clear();
    std::lock_guard lock(mu_);
    writing_ = false;
  }
}

void SettleWorker::write(std::deque<Item>& batch) noexcept {
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
    std::lock_guard lock(mu_);
    ++stats_.batches;
    stats_.settles += static_cast<int64_t>(batch.size());
    if (batch.size() > stats_.largest_batch) stats_.largest_batch = batch.size();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results[i].outcome) {
      // The call succeeded but its row could not be written (storage failure): give the
      // reservation back now rather than leave it held until it expires.
      try {
        ledger_.release(batch[i].id);
      } catch (...) {
        // Storage still failing: the ledger reclaims the reservation by its TTL.
      }
    }
    try {
      if (batch[i].done) batch[i].done(std::move(results[i].outcome));
    } catch (...) {
      // The caller's completion failed; the settle itself is done.
    }
  }
}

}  // namespace orroute
