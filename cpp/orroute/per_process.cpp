#include "orroute/per_process.h"

#include <pthread.h>

namespace orroute {

namespace {

std::atomic<uint64_t> g_generation{0};

}  // namespace

std::mutex& detail::renew_mutex() noexcept {
  static auto* mu = new std::mutex;  // never destroyed: a fork may come during exit
  return *mu;
}

uint64_t fork_generation() noexcept {
  static const bool registered = [] {
    pthread_atfork([] { detail::renew_mutex().lock(); }, [] { detail::renew_mutex().unlock(); },
                   [] {
                     detail::renew_mutex().unlock();  // the forking thread's: the child's only one
                     g_generation.fetch_add(1, std::memory_order_relaxed);
                   });
    return true;
  }();
  (void)registered;
  return g_generation.load(std::memory_order_relaxed);
}

}  // namespace orroute
