#include "orroute/tokenizer/batch_threads.h"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <vector>

namespace orroute {
namespace {

// One call's units, queued once per helper asked to help with them.
struct Task {
  const std::function<void(size_t)>* unit;
  size_t n;
  std::atomic<size_t> cursor{0};     // the next unit to take
  std::atomic<unsigned> running{0};  // copies taken by helpers and not yet returned
  std::mutex mu;
  std::condition_variable done;

  // Runs units until none are left, or until `leave()`.
  template <class Leave>
  void take_units(Leave&& leave) {
    for (size_t i; !leave() && (i = cursor.fetch_add(1, std::memory_order_relaxed)) < n;) {
      (*unit)(i);
    }
  }
};

class Helpers {
 public:
  // The process's helpers: created while the library loads (below), before any thread of ours
  // exists, so a fork never finds it half built. Never destroyed: a thread still running a batch
  // during exit finds it (and runs its work alone once the helpers are stopped).
  static Helpers& get() {
    static Helpers* const helpers = new Helpers;
    return *helpers;
  }

  void run(size_t units, unsigned n, const std::function<void(size_t)>& unit) {
    Task task;
    task.unit = &unit;
    task.n = units;
    {
      std::lock_guard<std::mutex> lock(mu_);
      start_helpers(n);
      const size_t copies = std::min<size_t>(n, threads_.size());
      for (size_t i = 0; i < copies; ++i) queue_.push_back(&task);
    }
    wake_.notify_all();
    task.take_units([] { return false; });
    {
      std::lock_guard<std::mutex> lock(mu_);  // withdraw the copies no helper has taken
      std::erase(queue_, &task);
    }
    std::unique_lock<std::mutex> lock(task.mu);
    task.done.wait(lock, [&] { return task.running.load() == 0; });
  }

  unsigned count() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<unsigned>(threads_.size());
  }

  // The helpers leave (after the unit they are in) once their generation is over, so concurrent
  // stops each join their own, and a batch meanwhile starts new ones.
  void stop() {
    std::vector<pthread_t> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
      generation_.fetch_add(1, std::memory_order_relaxed);
    }
    wake_.notify_all();
    for (const pthread_t t : threads) pthread_join(t, nullptr);
  }

  // fork(): the parent holds mu_ across it, so the child's copy is in a consistent state (no
  // helper half started, no queue half changed) ...
  void before_fork() { mu_.lock(); }
  void after_fork_in_parent() { mu_.unlock(); }
  // ... and the child, which has only the thread that forked, forgets the helpers: their handles
  // name threads it does not have (never to be joined or detached: glibc may give their
  // descriptors to the child's new threads), and the queued tasks belong to callers it does not
  // have either. The lock and the condition variable are made anew (the old ones record the
  // parent's holder and waiters).
  void after_fork_in_child() {
    threads_.clear();
    queue_.clear();
    new (&wake_) std::condition_variable();
    new (&mu_) std::mutex();
  }

 private:
  Helpers() {
    pthread_atfork([] { get().before_fork(); }, [] { get().after_fork_in_parent(); },
                   [] { get().after_fork_in_child(); });
    std::atexit(stop_batch_helpers);
  }

  // Under mu_: helpers up to `n`, as many as the system gives (fewer, or none: the caller works
  // alone). pthreads rather than std::thread, which keeps a heap block per thread for as long as
  // it runs: in a forked child that block would belong to a thread that is not there.
  void start_helpers(unsigned n) {
    threads_.reserve(n);
    // The generation is the thread's argument: read under mu_ here, it cannot miss a stop.
    void* const generation = reinterpret_cast<void*>(generation_.load(std::memory_order_relaxed));
    while (threads_.size() < n) {
      pthread_t t;
      if (pthread_create(&t, nullptr, &Helpers::entry, generation) != 0) return;
      threads_.push_back(t);
    }
  }

  static void* entry(void* generation) {
    get().loop(reinterpret_cast<uintptr_t>(generation));
    return nullptr;
  }

  void loop(uintptr_t generation) {
    const auto over = [&] { return generation_.load(std::memory_order_relaxed) != generation; };
    for (;;) {
      Task* task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return over() || !queue_.empty(); });
        if (over()) return;
        task = queue_.front();
        queue_.pop_front();
        task->running.fetch_add(1);  // under mu_: the caller withdraws or counts this copy
      }
      task->take_units(over);
      std::lock_guard<std::mutex> lock(task->mu);
      if (task->running.fetch_sub(1) == 1) task->done.notify_all();
    }
  }

  std::mutex mu_;
  // Bumped by each stop(); a helper leaves once the generation it was started in is over. Atomic
  // so that a helper inside a batch sees a stop between two units without taking mu_.
  std::atomic<uintptr_t> generation_{0};
  std::condition_variable wake_;
  std::deque<Task*> queue_;
  std::vector<pthread_t> threads_;
};

// Built while the library loads (see Helpers::get).
[[maybe_unused]] const Helpers& loaded = Helpers::get();

}  // namespace

void run_units(size_t n, unsigned helpers, const std::function<void(size_t)>& unit) {
  Helpers::get().run(n, helpers, unit);
}

unsigned batch_helper_count() { return Helpers::get().count(); }

void stop_batch_helpers() { Helpers::get().stop(); }

}  // namespace orroute
