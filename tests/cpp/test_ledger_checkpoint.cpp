// The WAL checkpoint off the calls' path (SqliteLedgerOptions::wal_autocheckpoint): a commit that
// takes the WAL past the threshold wakes the ledger's own thread, which checkpoints on its own
// connection; a commit checkpoints itself only past 4 times the threshold, so the WAL stays
// bounded when the thread cannot keep up. A small threshold (20 pages; a record writes ~5) makes
// a few dozen calls cross it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fork_util.h"
#include "orroute/cost/sqlite_ledger.h"

#include "ledger_test_util.h"

using namespace orroute;
using namespace orroute::test;

namespace {

constexpr int32_t kThreshold = 20;
constexpr int64_t kHardLimit = 4 * kThreshold;

SqliteLedgerOptions small_wal() {
  SqliteLedgerOptions o;
  o.wal_autocheckpoint = kThreshold;
  return o;
}

// Waits (up to a minute: the machine may be loaded; never part of what is asserted) until
// `done` holds.
template <class F>
bool eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST_CASE("the WAL is checkpointed by the ledger's thread, never by a commit",
          "[ledger][sqlite][checkpoint]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path, small_wal());
  for (int round = 0; round < 5; ++round) {
    // Calls until one commit takes the WAL past the threshold: it wakes the thread and returns.
    const int64_t before = ledger.wal_stats().background_checkpoints;
    int guard = 0;
    while (ledger.wal_stats().wal_frames < kThreshold) {
      ledger.record(cost("0.001"));
      REQUIRE(++guard < 1000);
    }
    REQUIRE(eventually([&] { return ledger.wal_stats().background_checkpoints > before; }));
    // Every frame was copied to the database: the next commit starts the WAL over.
    ledger.record(cost("0.001"));
    REQUIRE(ledger.wal_stats().wal_frames < kThreshold);
  }
  const SqliteLedger::WalStats s = ledger.wal_stats();
  REQUIRE(s.commit_checkpoints == 0);
  REQUIRE(s.background_checkpoints >= 5);
  REQUIRE(ledger.calls({}).size() >= 5 * kThreshold / 10);
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") ==
          static_cast<int64_t>(ledger.calls({}).size()));
}

TEST_CASE("a commit past the hard limit checkpoints itself", "[ledger][sqlite][checkpoint]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path, small_wal());
  ledger.record(cost("0.001"));
  REQUIRE(ledger.wal_stats().wal_frames < kThreshold);  // the thread has not been woken
  // One transaction of 2,400 calls (~100 pages of rows): its commit takes the WAL from under the
  // threshold to past the hard limit at once, and checkpoints (the WAL starts over at the next
  // commit).
  std::vector<SettleItem> items(2400);
  for (SettleItem& item : items) item.call = cost("0.001");
  for (const BatchSettle& b : ledger.settle_batch(std::move(items))) {
    INFO(b.error);
    REQUIRE(b.error.empty());
  }
  REQUIRE(ledger.wal_stats().wal_frames >= kHardLimit);
  REQUIRE(ledger.wal_stats().commit_checkpoints == 1);
  ledger.record(cost("0.001"));
  REQUIRE(ledger.wal_stats().wal_frames < kThreshold);
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") == 2402);
}

TEST_CASE("a commit past the hard limit waits for a checkpoint in flight: the WAL stays bounded",
          "[ledger][sqlite][checkpoint]") {
  // Another checkpoint of the file in flight (this process's thread, stalled in a sync; another
  // process's) holds SQLite's checkpoint lock, and a checkpoint that finds it taken returns
  // SQLITE_BUSY at once: commits past the hard limit that went on grew the WAL for as long as
  // that checkpoint lasted (to 165 MB under SCHED_FIFO). Here the lock is held from outside
  // SQLite (an open-file-description lock on its byte of the -shm file, which conflicts with
  // SQLite's own fcntl locks in this process too) until the writer has crossed the limit, and a
  // while after.
  TempLedgerFile file;
  SqliteLedgerOptions o = small_wal();
  o.busy_timeout_ms = 600'000;  // never reached: the lock is released
  SqliteLedger ledger(file.path, o);
  ledger.record(cost("0.001"));
  const int fd = ::open((file.path + "-shm").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 120 + 1;  // the unix VFS's shm lock bytes start at 120; the checkpoint's is 1
  lock.l_len = 1;
  REQUIRE(::fcntl(fd, F_OFD_SETLK, &lock) == 0);
  std::thread holder([&] {
    eventually([&] { return ledger.wal_stats().wal_frames >= kHardLimit; });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // commits could go on meanwhile
    lock.l_type = F_UNLCK;
    (void)::fcntl(fd, F_OFD_SETLK, &lock);
  });
  int64_t most = 0;
  for (int i = 0; i < 200; ++i) {
    ledger.record(cost("0.001"));
    most = std::max(most, ledger.wal_stats().wal_frames);
  }
  holder.join();
  ::close(fd);
  // A record writes ~5 frames: the commit that crossed the limit is the last one past it.
  INFO("the WAL's most frames " << most << ", hard limit " << kHardLimit);
  REQUIRE(most < kHardLimit + kThreshold);
  REQUIRE(ledger.wal_stats().commit_checkpoints >= 1);
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") == 201);
}

TEST_CASE("a checkpoint in flight that does not end is waited for once, not by every commit",
          "[ledger][sqlite][checkpoint]") {
  // Another process stopped in its checkpoint (SIGSTOP, a debugger, a frozen container) holds
  // SQLite's checkpoint lock for as long as it stays stopped: a commit past the hard limit waits
  // for it up to busy_timeout_ms, and the commits after it try once and go on (the WAL grows, as
  // before the wait) until a checkpoint runs again; then a commit waits again. Held here as in
  // the test above (an open-file-description lock on the -shm file's checkpoint byte).
  TempLedgerFile file;
  SqliteLedgerOptions o = small_wal();
  o.busy_timeout_ms = 100;
  SqliteLedger ledger(file.path, o);
  ledger.record(cost("0.001"));
  const int fd = ::open((file.path + "-shm").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct flock lock {};
  lock.l_whence = SEEK_SET;
  lock.l_start = 120 + 1;
  lock.l_len = 1;
  const auto hold = [&](short type) {
    lock.l_type = type;
    REQUIRE(::fcntl(fd, F_OFD_SETLK, &lock) == 0);
  };
  hold(F_WRLCK);
  int guard = 0;
  while (ledger.wal_stats().wal_frames < kHardLimit && ++guard < 1000) ledger.record(cost("0.001"));
  for (int i = 0; i < 20; ++i) ledger.record(cost("0.001"));  // each past the hard limit
  REQUIRE(ledger.wal_stats().wal_frames >= kHardLimit + 20);  // nothing copied meanwhile
  REQUIRE(ledger.wal_stats().commit_waits_given_up == 1);
  // The lock let go: a checkpoint runs (the next commit's or the thread's), the WAL starts over.
  hold(F_UNLCK);
  REQUIRE(eventually([&] {
    ledger.record(cost("0.001"));
    return ledger.wal_stats().wal_frames < kHardLimit;
  }));
  // Held again: a commit past the hard limit waits again (once).
  hold(F_WRLCK);
  guard = 0;
  while (ledger.wal_stats().wal_frames < kHardLimit && ++guard < 1000) ledger.record(cost("0.001"));
  for (int i = 0; i < 20; ++i) ledger.record(cost("0.001"));
  hold(F_UNLCK);
  ::close(fd);
  REQUIRE(ledger.wal_stats().commit_waits_given_up == 2);
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") == static_cast<int64_t>(ledger.calls({}).size()));
}

TEST_CASE("a reader of the database file stalls no commit past the hard limit",
          "[ledger][sqlite][checkpoint]") {
  // A reader that began when every frame was copied reads the database file only: no checkpoint
  // may copy a frame into it while it reads (SQLITE_BUSY, not from another checkpoint). The WAL
  // grows meanwhile, as with SQLite's own checkpoint; a commit past the hard limit must not wait
  // for that reader (up to busy_timeout_ms).
  TempLedgerFile file;
  SqliteLedgerOptions o = small_wal();
  o.busy_timeout_ms = 600'000;
  SqliteLedger ledger(file.path, o);
  ledger.record(cost("0.001"));
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(file.path.c_str(), &reader, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "PRAGMA wal_checkpoint(PASSIVE)", nullptr, nullptr, nullptr) ==
          SQLITE_OK);  // every frame copied: the reader below reads the database file
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT COUNT(*) FROM calls", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  bool went_on = false, closed = false;
  std::thread closer([&] {
    // A writer that waited for the reader would not get here (until busy_timeout_ms).
    went_on = eventually([&] { return ledger.wal_stats().wal_frames > kHardLimit + kThreshold; });
    closed = sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
  });
  // Until the WAL is past the limit the closer waits for (2-3 frames a call: as many as it takes).
  int recorded = 1;
  for (; ledger.wal_stats().wal_frames <= kHardLimit + kThreshold && recorded < 1000; ++recorded) {
    ledger.record(cost("0.001"));
  }
  closer.join();
  sqlite3_close(reader);
  REQUIRE(went_on);
  REQUIRE(closed);
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") == recorded);
}

TEST_CASE("the WAL starts over once a reader that held back the checkpoints is gone",
          "[ledger][sqlite][checkpoint]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path, small_wal());
  ledger.record(cost("0.001"));
  // Another program reading: its snapshot keeps every frame after it in the WAL.
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(file.path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT COUNT(*) FROM calls", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  int recorded = 1;
  for (; ledger.wal_stats().wal_frames <= kHardLimit && recorded < 1000; ++recorded) {
    ledger.record(cost("0.001"));
  }
  REQUIRE(ledger.wal_stats().wal_frames > kHardLimit);  // nothing could be copied: it grew
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(reader);
  // The reader gone, a checkpoint (the thread's, or a commit's past the hard limit) copies
  // everything and a later commit starts the WAL over.
  int guard = 0;
  while (ledger.wal_stats().wal_frames >= kThreshold) {
    ledger.record(cost("0.001"));
    REQUIRE(++guard < 5000);
  }
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") == recorded + guard);
}

TEST_CASE("two connections on one file each checkpoint, a busy checkpoint is not an error",
          "[ledger][sqlite][checkpoint]") {
  TempLedgerFile file;
  SqliteLedger a(file.path, small_wal()), b(file.path, small_wal());
  std::thread other([&] {
    for (int i = 0; i < 300; ++i) b.record(cost("0.001"));
  });
  for (int i = 0; i < 300; ++i) a.record(cost("0.001"));
  other.join();
  REQUIRE(a.calls({}).size() == 600);
  REQUIRE(a.wal_stats().background_checkpoints + b.wal_stats().background_checkpoints +
              a.wal_stats().commit_checkpoints + b.wal_stats().commit_checkpoints >
          0);
}

TEST_CASE("a forked child's ledger checkpoints on its own thread", "[ledger][sqlite][checkpoint]") {
  TempLedgerFile file;
  SqliteLedger ledger(file.path, small_wal());
  ledger.record(cost("0.001"));  // the parent's connection and thread are made
  const pid_t child = orroute::test::fork_when_quiet();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 0;
    try {
      // The first call reopens the file: this object's counts are the child's own.
      ledger.record(cost("0.001"));
      if (ledger.wal_stats().background_checkpoints != 0) code = 2;
      int guard = 0;
      while (code == 0 && ledger.wal_stats().background_checkpoints == 0) {
        ledger.record(cost("0.001"));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (++guard > 20000) code = 3;
      }
    } catch (...) {
      code = 4;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  ledger.record(cost("0.001"));  // the parent's ledger still works
  REQUIRE(int_on_file(file.path, "SELECT COUNT(*) FROM calls") >= 4);
}

TEST_CASE("a sustained writer's checkpoints are paced: one a threshold's worth of new frames",
          "[ledger][sqlite][checkpoint]") {
  // A reader's snapshot keeps the WAL from starting over (as commits arriving while the thread
  // syncs do under a sustained rate): every commit past the threshold finds the WAL past it.
  // The thread runs one pass per threshold's worth of frames written since its last pass, not
  // one per commit. The writer pauses between commits so that a thread woken by every commit
  // would run (the count below is an upper bound, whatever the thread's timing).
  constexpr int32_t kPaced = 200;
  TempLedgerFile file;
  SqliteLedgerOptions o;
  o.wal_autocheckpoint = kPaced;
  SqliteLedger ledger(file.path, o);
  ledger.record(cost("0.001"));
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(file.path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT COUNT(*) FROM calls", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  int commits = 0;
  // Up to 3.5 x the threshold: under the hard limit (4 x), no commit checkpoints.
  while (ledger.wal_stats().wal_frames < kPaced * 7 / 2) {
    ledger.record(cost("0.001"));
    ++commits;
    REQUIRE(commits < 5000);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const int64_t frames = ledger.wal_stats().wal_frames;
  REQUIRE(eventually([&] { return ledger.wal_stats().background_checkpoints >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a late pass is counted too
  const SqliteLedger::WalStats s = ledger.wal_stats();
  INFO("commits " << commits << ", frames " << frames << ", passes " << s.background_checkpoints);
  REQUIRE(commits >= 50);  // most of them past the threshold
  REQUIRE(s.background_checkpoints <= frames / kPaced);
  REQUIRE(s.commit_checkpoints == 0);
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(reader);
}
