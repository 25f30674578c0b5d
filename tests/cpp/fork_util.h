// fork() for tests whose subject is the child, not a fork that lands in another thread's work.
#pragma once

#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <dirent.h>
#include <sys/syscall.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#endif

namespace orroute::test {

#if defined(__SANITIZE_ADDRESS__)
// True when every thread of this process but the caller sleeps (state S: waiting on a lock, a
// condition, a socket), none running or runnable.
inline bool other_threads_asleep() {
  const long self = ::syscall(SYS_gettid);
  DIR* tasks = ::opendir("/proc/self/task");
  if (!tasks) return true;  // nothing to read: fork as a plain fork would
  bool asleep = true;
  while (const dirent* e = ::readdir(tasks)) {
    const long tid = std::strtol(e->d_name, nullptr, 10);
    if (tid <= 0 || tid == self) continue;
    std::ifstream stat(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'S') {
      asleep = false;  // running, runnable, or gone while read (then the next scan agrees)
      break;
    }
  }
  ::closedir(tasks);
  return asleep;
}
#endif

// GCC's libasan takes no lock of its own across fork(): a child forked while another thread of
// the parent is inside ASan's allocator or thread registry (a malloc, a thread just made, such
// as a SQLite ledger's checkpointer started by its constructor) waits for ever on a lock that
// nobody in the child holds. Under ASan this forks once every other thread has been asleep for
// two scans in a row (up to 5 s, then forks anyway: the child's alarm then tells a hang); in
// other builds, where glibc's malloc is fork-safe, it is fork(). Tests whose subject is a fork
// in the middle of other threads' work call fork() and skip under ASan instead.
inline pid_t fork_when_quiet() {
#if defined(__SANITIZE_ADDRESS__)
  using namespace std::chrono_literals;
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  int quiet_scans = 0;
  while (quiet_scans < 2 && std::chrono::steady_clock::now() < give_up) {
    quiet_scans = other_threads_asleep() ? quiet_scans + 1 : 0;
    std::this_thread::sleep_for(1ms);
  }
#endif
  return ::fork();
}

}  // namespace orroute::test
