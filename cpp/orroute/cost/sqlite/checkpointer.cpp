// The WAL checkpointer: the checkpoint off the calls' path (see the "WAL checkpointer" part of
// impl.h, and docs/cost.md).
#include <pthread.h>


#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/wal_gather_vfs.h"

namespace orroute {

using namespace sqlite;

namespace {

// Held by a checkpointer while it is inside SQLite (so this process's checkpointers take turns);
// fork() takes it first, so a child never starts with SQLite's file and shm mutexes held by a
// checkpointer thread that is not there (the child opens the file again on its first call). A
// plain mutex: glibc's rwlock, write-locked by the parent's thread, cannot be unlocked in the
// child (another thread id).
std::mutex& fork_gate() {
  static auto* gate = new std::mutex;  // never destroyed
  return *gate;
}

void register_fork_gate() {
  static const int once = pthread_atfork([] { fork_gate().lock(); },
                                         [] { fork_gate().unlock(); },
                                         [] { fork_gate().unlock(); });
  (void)once;
}

}  // namespace

int SqliteLedger::Impl::wal_committed(void* self, sqlite3* db, const char* name, int frames) {
  auto& impl = *static_cast<Impl*>(self);
  impl.wal_frames.store(frames, std::memory_order_relaxed);
  int mark = impl.ckpt_mark.load(std::memory_order_relaxed);
  if (frames < mark) {  // the WAL started over since the last checkpoint
    mark = 0;
    impl.ckpt_mark.store(0, std::memory_order_relaxed);
  }
  if (frames >= int64_t{impl.ckpt_threshold} * kHardLimitFactor) {
    // The WAL is too big (the thread fell behind; readers; another process's checkpoint; or a
    // sustained rate, under which only a checkpoint between two commits lets it start over):
    // bound it here, as SQLite's own hook would. PASSIVE: a reader only holds back what it
    // copies (never waited for). It is busy only when another checkpoint is in flight (this
    // process's thread, another process's) and holds SQLite's checkpoint lock, which a
    // checkpoint never waits for: wait for it as a call waits for the write lock (busy_wait:
    // polled, up to busy_timeout_ms), then copy what it left. Going on instead let the WAL grow
    // for as long as that checkpoint lasted (a pass of the thread took 0.7 s under SCHED_FIFO:
    // 230 MB). Past busy_timeout_ms the commit goes on, and the commits after it do not wait
    // again until a checkpoint has run (here or on the thread): a checkpoint that outlasts
    // busy_timeout_ms is one that does not end (its process stopped in it: SIGSTOP, a debugger, a
    // frozen container), and waiting for it again made every commit of every other process take
    // busy_timeout_ms (30 s from Python), for as long as it stayed stopped.
    const bool wait = !impl.ckpt_wait_futile.load(std::memory_order_relaxed);
    int log = 0, done = 0;
    int rc = SQLITE_BUSY;
    for (int n = 0;; ++n) {
      rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
      if (rc != SQLITE_BUSY) break;
      if (!wait) break;
      if (!busy_wait(&impl, n)) {
        impl.ckpt_wait_futile.store(true, std::memory_order_relaxed);
        impl.ckpt_waits_given_up.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    if (rc == SQLITE_OK) {
      impl.ckpt_wait_futile.store(false, std::memory_order_relaxed);
      impl.ckpt_on_commit.fetch_add(1, std::memory_order_relaxed);
      if (log > 0) impl.ckpt_mark.store(log, std::memory_order_relaxed);
    }
  } else if (int64_t{frames} - mark >= impl.ckpt_threshold) {
    std::lock_guard lk(impl.cmu);
    if (!impl.ckpt_wanted) {
      impl.ckpt_wanted = true;
      impl.ccv.notify_one();
    }
  }
  return SQLITE_OK;  // an error here would fail a statement whose commit happened
}

void SqliteLedger::Impl::start_checkpointer() {
  ckpt_threshold = options.wal_autocheckpoint > 0 ? options.wal_autocheckpoint : 1000;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &ckpt_db, flags, wal_gather_vfs()) != SQLITE_OK) {
    const std::string msg = ckpt_db ? sqlite3_errmsg(ckpt_db) : "out of memory";
    throw Error("ledger: cannot open '" + path + "' for its checkpoints: " + msg);
  }
  sqlite3_busy_timeout(ckpt_db, options.busy_timeout_ms);  // the read below, in a WAL recovery
  // The checkpoint syncs as the calls' connection would (none with synchronous=OFF, which the
  // ledger never sets); the read opens the WAL, so that a checkpoint finds it.
  const char* setup = options.durable_fsync
                          ? "PRAGMA synchronous=FULL; SELECT 1 FROM sqlite_master LIMIT 1"
                          : "PRAGMA synchronous=NORMAL; SELECT 1 FROM sqlite_master LIMIT 1";
  char* err = nullptr;
  if (sqlite3_exec(ckpt_db, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw Error("ledger: cannot open '" + path + "' for its checkpoints: " + msg);
  }
  register_fork_gate();
  std::lock_guard lk(cmu);
  if (!checkpointer && !ckpt_stop) checkpointer = new std::thread([this] { checkpointer_loop(); });
  // From here a commit wakes the thread instead of checkpointing (SQLite's automatic checkpoint
  // is this hook, replaced).
  sqlite3_wal_hook(db, &Impl::wal_committed, this);
}

void SqliteLedger::Impl::checkpointer_loop() {
  try {
    std::unique_lock lk(cmu);
    while (!ckpt_stop) {
      if (!ckpt_wanted) {
        ccv.wait(lk);
        continue;
      }
      ckpt_wanted = false;
      lk.unlock();
      {
        std::lock_guard gate(fork_gate());
        int log = -1, done = -1;
        const int woken_at = wal_frames.load(std::memory_order_relaxed);
        // Commits during this pass measure from here (else they would wake the thread again
        // for a pass right after this one).
        ckpt_mark.store(woken_at, std::memory_order_relaxed);
        // PASSIVE: copies what no reader still needs, takes no write lock, never waits. Busy
        // (another connection, maybe another process, is checkpointing) is not an error: the
        // WAL's next threshold's worth of frames wakes this thread again.
        if (sqlite3_wal_checkpoint_v2(ckpt_db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
            SQLITE_OK) {
          ckpt_wait_futile.store(false, std::memory_order_relaxed);  // a commit may wait again
          ckpt_background.fetch_add(1, std::memory_order_relaxed);
        }
        // The next pass once the WAL has grown by the threshold past what this one saw (a
        // reader's snapshot may have held the copy back: passes sooner would copy no more).
        ckpt_mark.store(log > 0 ? log : woken_at, std::memory_order_relaxed);
      }
      lk.lock();
    }
  } catch (...) {  // a lock that failed: commits past the hard limit still checkpoint
  }
}

void SqliteLedger::Impl::stop_checkpointer() {
  std::thread* t = nullptr;
  {
    std::lock_guard lk(cmu);
    ckpt_stop = true;
    std::swap(t, checkpointer);
    ccv.notify_all();
  }
  if (t) {
    t->join();
    delete t;
  }
}

SqliteLedger::WalStats SqliteLedger::wal_stats() const {
  const Impl& impl = *impl_;
  return {impl.ckpt_background.load(std::memory_order_relaxed),
          impl.ckpt_on_commit.load(std::memory_order_relaxed),
          impl.wal_frames.load(std::memory_order_relaxed),
          impl.ckpt_waits_given_up.load(std::memory_order_relaxed)};
}

}  // namespace orroute
