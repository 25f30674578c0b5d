// The ledger's fork gate: fork() waits until no thread of this process is inside SQLite for a
// ledger (see docs/cost.md, "Fork").
#pragma once

#include <mutex>

namespace orroute::sqlite {

// Held by a thread while it uses a ledger's SQLite connection (a call under the connection's
// mutex, an open, a close). fork() (a pthread_atfork prepare handler, registered on first use)
// waits until none is held by another thread, and a thread that comes to one during a fork waits
// until fork() has returned in the parent. So a forked child never starts with SQLite's locks
// held by a thread that is not there: neither its mutexes (the memory allocator's, the unix VFS's,
// a file's inode and shared-memory mutexes: a child's open waited on them for ever) nor a
// transaction's file locks, which SQLite tracks per process (a child's connection to the same file
// believed the parent's write lock its own: BEGIN was busy for busy_timeout_ms, and a read saw a
// half-written WAL index as "database disk image is malformed"). A thread may hold several (calls
// nest); a fork from a thread holding one (a callback inside a call) waits only for the others.
// The wait lasts as long as the calls in flight: at most busy_timeout_ms when one waits for
// another process's write lock. Never destroyed; noexcept.
class ForkGate {
 public:
  ForkGate() noexcept;
  ~ForkGate();
  ForkGate(const ForkGate&) = delete;
  ForkGate& operator=(const ForkGate&) = delete;
};

// A connection's mutex taken inside the fork gate (the gate first, given back last): for every
// SQLite connection of the core, not the ledger's only (the response cache's, the feedback
// store's). SQLite's process-wide mutexes (its allocator's, taken by every sqlite3_malloc; the
// VFS's) are held by whichever thread is inside any connection, so a fork during a response cache
// lookup left the child's first ledger open waiting for ever on the allocator's mutex.
class GatedLock {
 public:
  explicit GatedLock(std::mutex& mu) : lock_(mu) {}
  GatedLock(const GatedLock&) = delete;
  GatedLock& operator=(const GatedLock&) = delete;

 private:
  ForkGate gate_;  // first in, last out
  std::lock_guard<std::mutex> lock_;
};

}  // namespace orroute::sqlite
