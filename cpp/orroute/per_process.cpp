#include "orroute/per_process.h"

#include <pthread.h>

namespace orroute::detail {

std::atomic<uint64_t> g_fork_generation{0};

std::mutex& renew_mutex() noexcept {
  static auto* mu = new std::mutex;  // never destroyed: a fork may come during exit
  return *mu;
}

uint64_t counted_fork_generation() noexcept {
  static const bool registered = [] {
    pthread_atfork([] { renew_mutex().lock(); }, [] { renew_mutex().unlock(); },
                   [] {
                     renew_mutex().unlock();  // the forking thread's: the child's only one
                     g_fork_generation.fetch_add(1, std::memory_order_relaxed);
                   });
    return true;
  }();
  (void)registered;
  return fork_generation();
}

}  // namespace orroute::detail
