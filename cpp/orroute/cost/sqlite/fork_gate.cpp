// The ledger's fork gate (fork_gate.h). Counters, not a reader-writer lock: glibc's rwlock
// remembers its writer by thread id, which a forked child's thread does not have, and a condition
// variable's waiters (threads not in the child) would be waited for by a notify there.
#include "orroute/cost/sqlite/fork_gate.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "orroute/per_process.h"

namespace orroute::sqlite {

namespace {

struct Gate {
  std::atomic<int64_t> inside{0};  // threads holding a ForkGate
  std::atomic<bool> forking{false};
  std::mutex forks;  // held by the forking thread from the prepare handler until fork() returns
};

Gate& gate() {
  static auto* g = new Gate;  // never destroyed: a fork may come during exit
  return *g;
}

thread_local int t_depth = 0;  // ForkGates this thread holds

void before_fork() {
  Gate& g = gate();
  g.forks.lock();
  g.forking.store(true);  // seq_cst, as enter's increment and load: one of the two sees the other
  const int64_t mine = t_depth > 0 ? 1 : 0;
  for (int n = 0; g.inside.load() > mine; ++n) {
    // The calls in flight take microseconds (a write lock another process holds: up to
    // busy_timeout_ms); a fork is rare.
    std::this_thread::sleep_for(std::chrono::microseconds(n < 20 ? 20 : 500));
  }
}

void after_fork_in_parent() {
  Gate& g = gate();
  g.forking.store(false);
  g.forks.unlock();
}

void after_fork_in_child() {
  Gate& g = gate();
  g.inside.store(t_depth > 0 ? 1 : 0);  // the child's only thread
  g.forking.store(false);
  g.forks.unlock();  // a plain mutex: the forking thread's lock is undone in the child
}

void enter() {
  // After PerProcess's handler: prepare handlers run last-registered first, so a fork waits for
  // the gate before it takes the renew mutex, the order of a renewal (PerProcess's Guard).
  static const int registered = (detail::counted_fork_generation(),
                                 pthread_atfork(before_fork, after_fork_in_parent,
                                                after_fork_in_child));
  (void)registered;
  Gate& g = gate();
  for (;;) {
    g.inside.fetch_add(1);
    if (!g.forking.load()) return;
    g.inside.fetch_sub(1);  // a fork is waiting for the threads inside: not one more
    std::lock_guard wait(g.forks);  // until fork() has returned
  }
}

}  // namespace

ForkGate::ForkGate() noexcept {
  if (t_depth++ == 0) enter();
}

ForkGate::~ForkGate() {
  if (--t_depth == 0) gate().inside.fetch_sub(1);
}

}  // namespace orroute::sqlite
