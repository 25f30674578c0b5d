// The WAL-gathering VFS (cpp/orroute/cost/sqlite/wal_gather_vfs.*): a commit is one write(), what
// it writes is what SQLite would have written (other connections, the default VFS and a reopened
// file read the same rows), and frames of a transaction that did not commit are never written
// over frames another connection committed after it.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fork_util.h"
#include "orroute/cost/sqlite/wal_gather_vfs.h"

#include "ledger_test_util.h"

using orroute::test::TempLedgerFile;

namespace {

struct Db {
  sqlite3* db = nullptr;
  Db(const std::string& path, const char* vfs) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) ==
            SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
  }
  ~Db() { sqlite3_close_v2(db); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const std::string& sql) const {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    INFO(sql << ": " << msg);
    REQUIRE(rc == SQLITE_OK);
  }
  std::string text(const std::string& sql) const {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
};

const char* gather() {
  const char* name = orroute::sqlite::wal_gather_vfs();
  REQUIRE(name != nullptr);
  return name;
}

// Inserts rows [from, to) of 300-byte payloads tagged `who`, in one transaction.
void insert(const Db& d, int from, int to, const std::string& who) {
  d.exec("BEGIN IMMEDIATE");
  for (int i = from; i < to; ++i) {
    d.exec("INSERT INTO t(k, who, v) VALUES (" + std::to_string(i) + ", '" + who +
           "', randomblob(300))");
  }
  d.exec("COMMIT");
}

}  // namespace

TEST_CASE("commits through the gathering VFS read back the same everywhere", "[ledger][wal_gather]") {
  // Both synchronous modes the ledger uses (NORMAL; FULL with durable_fsync), and checkpoints
  // every 50 pages, so the WAL restarts from its start and is truncated many times.
  const char* sync = GENERATE("NORMAL", "FULL");
  TempLedgerFile f;
  {
    Db a(f.path, gather());
    a.exec(std::string("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=") + sync +
           "; PRAGMA wal_autocheckpoint=50; PRAGMA journal_size_limit=65536");
    a.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, who TEXT, v BLOB); CREATE INDEX t_who ON t(who, k)");
    Db b(f.path, gather());
    b.exec(std::string("PRAGMA synchronous=") + sync + "; PRAGMA wal_autocheckpoint=50");
    Db plain(f.path, nullptr);  // SQLite's own VFS on the same file, in the same process
    for (int round = 0; round < 20; ++round) {
      insert(a, round * 100, round * 100 + 50, "a");
      insert(b, round * 100 + 50, round * 100 + 100, "b");
      REQUIRE(plain.text("SELECT count(*) FROM t") == std::to_string((round + 1) * 100));
      REQUIRE(a.text("SELECT count(*) FROM t WHERE who = 'b'") == std::to_string((round + 1) * 50));
    }
    REQUIRE(b.text("PRAGMA integrity_check") == "ok");
  }
  Db reopened(f.path, nullptr);  // after close (the WAL checkpointed) and with the default VFS
  REQUIRE(reopened.text("SELECT count(*) FROM t") == "2000");
  REQUIRE(reopened.text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("frames of a rolled-back transaction never overwrite frames committed after it",
          "[ledger][wal_gather]") {
  TempLedgerFile f;
  Db a(f.path, gather());
  a.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
  a.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, who TEXT, v BLOB)");
  a.exec("PRAGMA cache_size=8");  // a transaction larger than the cache spills frames to the WAL
  Db b(f.path, gather());
  for (int round = 0; round < 5; ++round) {
    // a: spills (non-commit frames, gathered in memory), then rolls back.
    a.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 60; ++i) {
      a.exec("INSERT INTO t(k, who, v) VALUES (" + std::to_string(100000 + round * 1000 + i) +
             ", 'gone', randomblob(300))");
    }
    a.exec("ROLLBACK");
    // b commits frames where a's would have gone; then a writes again at the WAL's end.
    insert(b, round * 100, round * 100 + 40, "b");
    insert(a, round * 100 + 40, round * 100 + 50, "a");
    REQUIRE(b.text("PRAGMA integrity_check") == "ok");
    REQUIRE(b.text("SELECT count(*) FROM t") == std::to_string((round + 1) * 50));
    REQUIRE(b.text("SELECT count(*) FROM t WHERE who = 'gone'") == "0");
  }
  Db plain(f.path, nullptr);
  REQUIRE(plain.text("PRAGMA integrity_check") == "ok");
  REQUIRE(plain.text("SELECT count(*) FROM t WHERE who = 'b'") == "200");
}

TEST_CASE("a spilled transaction that rewrites its own frames commits whole through a crash",
          "[ledger][wal_gather]") {
  // A transaction larger than the cache spills frames, then changes a spilled page again: SQLite
  // overwrites that frame in place and, at commit, rewrites the checksums of every frame from it
  // on (walRewriteChecksums), the commit frame's header last, after the commit frame was written.
  // That header reaches the file only when the new wal-index header is published (xShmBarrier):
  // a process that dies right after its commit must still leave a WAL whose recovery keeps it.
  TempLedgerFile f;
  {
    Db init(f.path, gather());
    init.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
    init.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, who TEXT, v BLOB)");
    insert(init, 0, 10, "before");
  }
  const pid_t pid = orroute::test::fork_when_quiet();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    sqlite3* db = nullptr;
    int code = sqlite3_open_v2(f.path.c_str(), &db, SQLITE_OPEN_READWRITE,
                               orroute::sqlite::wal_gather_vfs()) != SQLITE_OK;
    // synchronous=NORMAL as the ledger: no WAL sync at commit (which would write it first)
    std::string sql = "PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=NORMAL; PRAGMA cache_size=8; BEGIN IMMEDIATE;";
    for (int i = 10; i < 70; ++i) {
      sql += "INSERT INTO t(k, who, v) VALUES (" + std::to_string(i) + ", 'tx', randomblob(300));";
    }
    sql += "UPDATE t SET v = randomblob(300) WHERE k < 40; UPDATE t SET who = 'done' WHERE k >= 10;";
    sql += "COMMIT;";
    code |= sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK;
    ::_exit(code);  // no close: no checkpoint, the WAL stays as the commit left it
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  Db plain(f.path, nullptr);  // recovers the wal-index from the WAL file alone (no process left)
  REQUIRE(plain.text("PRAGMA integrity_check") == "ok");
  CHECK(plain.text("SELECT count(*) FROM t WHERE who = 'done'") == "60");
}

TEST_CASE("processes committing through the gathering VFS keep the file whole",
          "[ledger][wal_gather]") {
  TempLedgerFile f;
  {
    Db init(f.path, gather());
    init.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL");
    init.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, who TEXT, v BLOB); CREATE INDEX t_who ON t(who, k)");
  }
  constexpr int kProcs = 4, kTxns = 150, kRows = 3;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = orroute::test::fork_when_quiet();
    if (pid == 0) {
      int code = 0;
      {
        sqlite3* db = nullptr;
        code |= sqlite3_open_v2(f.path.c_str(), &db, SQLITE_OPEN_READWRITE,
                                orroute::sqlite::wal_gather_vfs()) != SQLITE_OK;
        sqlite3_busy_timeout(db, 10000);
        for (int t = 0; t < kTxns && code == 0; ++t) {
          std::string sql = "BEGIN IMMEDIATE;";
          for (int r = 0; r < kRows; ++r) {
            sql += "INSERT INTO t(who, v) VALUES ('p" + std::to_string(p) + "', randomblob(200));";
          }
          sql += "COMMIT;";
          code |= sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK;
        }
        sqlite3_close_v2(db);
      }
      ::_exit(code);
    }
    kids.push_back(pid);
  }
  for (const pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  Db plain(f.path, nullptr);
  REQUIRE(plain.text("PRAGMA integrity_check") == "ok");
  REQUIRE(plain.text("SELECT count(*) FROM t") == std::to_string(kProcs * kTxns * kRows));
  REQUIRE(plain.text("SELECT count(DISTINCT who) FROM t") == std::to_string(kProcs));
}

namespace {

// A database and its WAL file opened through the VFS directly (as SQLite's pager does), so the
// test sees which bytes reach the WAL file and when.
struct RawPair {
  sqlite3_vfs* vfs = sqlite3_vfs_find(gather());
  sqlite3_filename name;
  std::string wal_path;
  std::vector<char> db_mem, wal_mem;
  sqlite3_file* db;
  sqlite3_file* wal;
  explicit RawPair(const std::string& path)
      : name(sqlite3_create_filename(path.c_str(), (path + "-journal").c_str(),
                                     (path + "-wal").c_str(), 0, nullptr)),
        wal_path(path + "-wal"),
        db_mem(static_cast<size_t>(vfs->szOsFile)),
        wal_mem(static_cast<size_t>(vfs->szOsFile)),
        db(reinterpret_cast<sqlite3_file*>(db_mem.data())),
        wal(reinterpret_cast<sqlite3_file*>(wal_mem.data())) {
    int out = 0;
    REQUIRE(vfs->xOpen(vfs, name, db, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out) == SQLITE_OK);
    REQUIRE(vfs->xOpen(vfs, sqlite3_filename_wal(name), wal,
                       SQLITE_OPEN_WAL | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out) == SQLITE_OK);
    void volatile* shm = nullptr;
    REQUIRE(db->pMethods->xShmMap(db, 0, 32768, 1, &shm) == SQLITE_OK);
  }
  ~RawPair() {
    wal->pMethods->xClose(wal);
    db->pMethods->xShmUnmap(db, 1);
    db->pMethods->xClose(db);
    sqlite3_free_filename(name);
  }
  RawPair(const RawPair&) = delete;
  RawPair& operator=(const RawPair&) = delete;
  // The WAL file's size as the file system has it (not through the VFS, which would write first).
  int64_t on_disk() const { return static_cast<int64_t>(std::filesystem::file_size(wal_path)); }
  int frame(int64_t index, bool commit) const {  // a frame of a 1024-byte page at `index`
    unsigned char header[24] = {0, 0, 0, 2};
    if (commit) header[7] = 9;  // the database's size in pages after the commit
    const std::string page(1024, static_cast<char>('a' + index % 26));
    const int64_t off = 32 + index * (24 + 1024);
    const int rc = wal->pMethods->xWrite(wal, header, 24, off);
    return rc != SQLITE_OK ? rc : wal->pMethods->xWrite(wal, page.data(), 1024, off + 24);
  }
  int write_lock(int flags) const { return db->pMethods->xShmLock(db, 0, 1, flags | SQLITE_SHM_EXCLUSIVE); }
};

}  // namespace

TEST_CASE("a commit's frames reach the WAL file in one write, when its commit frame is written",
          "[ledger][wal_gather]") {
  TempLedgerFile f;
  RawPair p(f.path);
  REQUIRE(p.write_lock(SQLITE_SHM_LOCK) == SQLITE_OK);
  REQUIRE(p.frame(0, false) == SQLITE_OK);
  REQUIRE(p.frame(1, false) == SQLITE_OK);
  CHECK(p.on_disk() == 0);  // gathered
  REQUIRE(p.frame(2, true) == SQLITE_OK);
  CHECK(p.on_disk() == 32 + 3 * 1048);  // written with the commit frame, before it is published
  REQUIRE(p.write_lock(SQLITE_SHM_UNLOCK) == SQLITE_OK);
  // A read of gathered frames writes them first.
  REQUIRE(p.write_lock(SQLITE_SHM_LOCK) == SQLITE_OK);
  REQUIRE(p.frame(3, false) == SQLITE_OK);
  char page[1024];
  REQUIRE(p.wal->pMethods->xRead(p.wal, page, 1024, 32 + 3 * 1048 + 24) == SQLITE_OK);
  CHECK(page[0] == 'd');
  CHECK(p.on_disk() == 32 + 4 * 1048);
  REQUIRE(p.write_lock(SQLITE_SHM_UNLOCK) == SQLITE_OK);
}

TEST_CASE("frames still gathered when the write lock is released are dropped, never written later",
          "[ledger][wal_gather]") {
  TempLedgerFile f;
  RawPair p(f.path);
  REQUIRE(p.write_lock(SQLITE_SHM_LOCK) == SQLITE_OK);
  REQUIRE(p.frame(0, true) == SQLITE_OK);  // a committed transaction
  REQUIRE(p.frame(1, false) == SQLITE_OK);  // one that does not commit (rolled back)
  REQUIRE(p.write_lock(SQLITE_SHM_UNLOCK) == SQLITE_OK);
  // Another writer now appends its frames at index 1; this connection later writes at the end.
  sqlite3_int64 size = 0;
  REQUIRE(p.wal->pMethods->xFileSize(p.wal, &size) == SQLITE_OK);
  CHECK(size == 32 + 1048);  // the rolled-back frame never reached the file
  REQUIRE(p.wal->pMethods->xSync(p.wal, SQLITE_SYNC_NORMAL) == SQLITE_OK);
  CHECK(p.on_disk() == 32 + 1048);
}

TEST_CASE("a frame header rewritten in place reaches the file at once, its error reported",
          "[ledger][wal_gather]") {
  // walRewriteChecksums reads each frame of the transaction and writes its header back with a
  // new checksum, the commit frame's last. Gathered, that header would wait for xShmBarrier,
  // which cannot report a failed write: the commit would be published over a stale checksum
  // (recovery would then drop it and every later transaction).
  TempLedgerFile f;
  RawPair p(f.path);
  REQUIRE(p.write_lock(SQLITE_SHM_LOCK) == SQLITE_OK);
  REQUIRE(p.frame(0, false) == SQLITE_OK);
  REQUIRE(p.frame(1, true) == SQLITE_OK);
  CHECK(p.on_disk() == 32 + 2 * 1048);
  const int64_t off = 32 + 1048;  // frame 1, the commit frame
  std::vector<char> frame(1048);
  REQUIRE(p.wal->pMethods->xRead(p.wal, frame.data(), 1048, off) == SQLITE_OK);
  unsigned char header[24] = {0, 0, 0, 2, 0, 0, 0, 9};
  header[16] = 0x5A;  // a new checksum
  REQUIRE(p.wal->pMethods->xWrite(p.wal, header, 24, off) == SQLITE_OK);
  std::ifstream in(p.wal_path, std::ios::binary);
  in.seekg(off + 16);
  CHECK(in.get() == 0x5A);  // on disk before anything else touches the file
  REQUIRE(p.write_lock(SQLITE_SHM_UNLOCK) == SQLITE_OK);
}

TEST_CASE("a commit of more than 128 KiB of frames is written whole", "[ledger][wal_gather]") {
  // SQLite's unix VFS writes at most 0x1ffff bytes a call (os_unix.c, seekAndWriteFd masks the
  // length): handed a longer run, it wrote the low bits' worth and then nothing, and reported
  // SQLITE_FULL ("database or disk is full") for any transaction of ~126 1 KiB pages or two
  // 64 KiB pages. Both page sizes, a transaction of ~400 KiB, nothing spilled before the commit.
  const int page_size = GENERATE(1024, 65536);
  INFO("page_size " << page_size);
  TempLedgerFile f;
  {
    Db a(f.path, gather());
    a.exec("PRAGMA page_size=" + std::to_string(page_size) +
           "; PRAGMA journal_mode=WAL; PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=0");
    a.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, who TEXT, v BLOB); CREATE INDEX t_who ON t(who, k)");
    insert(a, 0, 1200, "a");
    Db plain(f.path, nullptr);
    REQUIRE(plain.text("SELECT count(*) FROM t") == "1200");
    insert(a, 1200, 1300, "a");  // and the WAL goes on after it
    REQUIRE(plain.text("SELECT count(*) FROM t") == "1300");
  }
  Db reopened(f.path, nullptr);
  REQUIRE(reopened.text("SELECT count(*) FROM t") == "1300");
  REQUIRE(reopened.text("PRAGMA integrity_check") == "ok");
}
