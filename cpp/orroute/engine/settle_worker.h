// The settle worker: writes successful calls to the ledger off the network thread.
//
// A settle is a ledger transaction (SQLite: a write under the database lock; Redis: a round trip);
// on the network thread it stalls every other transfer of the engine for its duration. The worker
// takes every settle queued while it wrote the previous batch and hands them to
// Ledger::settle_batch at once (a backend may commit them in one transaction), then runs each
// call's completion, so a caller hears of its call only once its row is written and its alerts
// are known. Money rules are unchanged: a settle that fails leaves its reservation held (the call
// was billed; the ledger reclaims it at its TTL).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "orroute/cost/ledger.h"
#include "orroute/per_process.h"

namespace orroute {

class SettleWorker {
 public:
  // Runs once the settle was written (its outcome) or failed (nullopt; the reservation stays
  // held until its TTL). Called on the worker thread; what it throws is dropped.
  using Done = std::function<void(std::optional<SettleOutcome>)>;

  // How many batches and settles were written, and the largest batch (for tests and benches).
  struct Stats {
    int64_t batches = 0;
    int64_t settles = 0;
    size_t largest_batch = 0;
  };

  // `ledger` must outlive the worker. At most `max_batch` settles go to one settle_batch().
  explicit SettleWorker(Ledger& ledger, size_t max_batch = 256)
      : ledger_(ledger), max_batch_(max_batch), q_([] { return std::make_shared<Queue>(); }) {}
  // Writes every settle still queued and runs its completion, then joins the thread.
  ~SettleWorker();
  SettleWorker(const SettleWorker&) = delete;
  SettleWorker& operator=(const SettleWorker&) = delete;

  // Starts the thread if it is not running. False when it cannot be started (the system refused
  // a thread) or the worker is stopping: then write the settle yourself. Thread-safe.
  bool start() noexcept;

  // Queues a settle of reservation `id`; `done` runs after its batch. Call after start() returned
  // true. Thread-safe; throws only what allocating the queue entry throws.
  void post(int64_t id, CallRecord call, Done done);

  Stats stats() const;

  // True when nothing is queued and no batch is being written: a settle made elsewhere now
  // (on the network thread, when no other transfer is in flight) waits for nothing the worker
  // would have done better. Thread-safe; a snapshot.
  bool idle() const;

 private:
  struct Item {
    int64_t id = 0;
    CallRecord call;
    Done done;
  };
  // The queue and its thread. One per process: a forked child's first use makes its own, and
  // the parent's (its queued settles, its lock, perhaps held at the fork, its thread, not in the
  // child) is left to the parent, whose calls they are.
  struct Queue {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> items;
    bool stopping = false;
    bool writing = false;  // a batch taken from the queue is being written
    Stats stats;
    std::thread thread;
  };
  void loop(Queue& q) noexcept;
  void write(Queue& q, std::deque<Item>& batch) noexcept;

  Ledger& ledger_;
  const size_t max_batch_;
  PerProcess<Queue> q_;
};

}  // namespace orroute
