// See wal_gather_vfs.h. What SQLite does that this relies on (wal.c, sqlite3WalFrames):
// - a WAL frame is written as a 24-byte header then the page, at consecutive offsets; bytes 4-7
//   of the header (big-endian) are nonzero only in a commit frame;
// - a transaction's frames are all written before it updates the wal-index and publishes the new
//   header (walIndexWriteHdr), and all of it happens while this connection holds the WAL write
//   lock (shm lock 0 of the database file), released after.
// - a transaction that spilled and then changed a spilled page again rewrites checksums at commit
//   (walRewriteChecksums): it reads each frame from the first changed one on (the header and the
//   page, at the frame's start) and writes its header back there, the commit frame's last.
// So gathered frames are written at the latest when the commit frame's page arrives (before the
// commit can be seen, and with the error reported to SQLite by that write). A header written
// where the connection just read a frame is such a rewrite: it goes to the file at once (held
// back, it would wait for xShmBarrier, which cannot report a failed write). Frames still gathered
// when the write lock is released belong to a transaction that did not commit (rolled back, or a
// write failed): they are dropped, never written later over frames another writer appended.
#include "orroute/cost/sqlite/wal_gather_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

namespace orroute::sqlite {
namespace {

constexpr int kFrameHeader = 24;
constexpr size_t kMaxGathered = 1 << 20;  // a big transaction is written in 1 MiB runs
// SQLite's unix VFS writes at most 0x1ffff bytes a call (os_unix.c: seekAndWriteFd masks the
// length, asserting it fits). Handed more, it writes the low bits' worth, then nothing, and says
// SQLITE_FULL. A run goes to it in pieces of this size (a commit under 64 KiB in one write).
constexpr size_t kMaxWrite = 1 << 16;
constexpr int kWalWriteLock = 0;          // WAL_WRITE_LOCK in wal.c

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs{};

struct File {
  sqlite3_file base;  // first: SQLite sees a File as a sqlite3_file
  sqlite3_file* real = nullptr;
  const char* name = nullptr;  // as passed to xOpen (the key of a database in g_dbs)
  bool is_wal = false;
  // Database <-> its WAL file: both belong to one connection, so only the thread using that
  // connection reads them; linked and unlinked under g_mu (with the g_dbs entry).
  File* peer = nullptr;
  // WAL only: the gathered run, and what the last gathered write was.
  std::string run;
  sqlite3_int64 run_start = 0;
  bool after_header = false;  // the next write at the run's end is a frame's page
  bool commit_page = false;   // ... and it ends a commit
  sqlite3_int64 read_at = -1;  // offset of the last read, if no write came after it
};

std::mutex g_mu;  // links between databases and their WAL files
std::unordered_map<const char*, File*>& g_dbs() {
  static auto* m = new std::unordered_map<const char*, File*>;  // never destroyed
  return *m;
}

File* as(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
sqlite3_file* real(sqlite3_file* f) { return as(f)->real; }

int write_run(File* f) {
  if (f->run.empty()) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (size_t at = 0; at < f->run.size() && rc == SQLITE_OK; at += kMaxWrite) {
    const size_t n = std::min(kMaxWrite, f->run.size() - at);
    rc = f->real->pMethods->xWrite(f->real, f->run.data() + at, static_cast<int>(n),
                                   f->run_start + static_cast<sqlite3_int64>(at));
  }
  f->run.clear();
  f->after_header = f->commit_page = false;
  return rc;
}

void drop_run(File* f) {
  f->run.clear();
  f->after_header = f->commit_page = false;
}

// ---- io methods ----

int x_close(sqlite3_file* pf) {
  File* f = as(pf);
  int rc = f->is_wal ? write_run(f) : SQLITE_OK;
  {
    std::lock_guard lk(g_mu);
    if (f->peer) f->peer->peer = nullptr;
    if (!f->is_wal && f->name) {
      auto it = g_dbs().find(f->name);
      if (it != g_dbs().end() && it->second == f) g_dbs().erase(it);
    }
  }
  const int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  f->~File();
  return rc != SQLITE_OK ? rc : rc2;
}

int x_read(sqlite3_file* pf, void* out, int amt, sqlite3_int64 off) {
  File* f = as(pf);
  if (f->is_wal) {
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
    f->read_at = off;
  }
  return f->real->pMethods->xRead(f->real, out, amt, off);
}

int x_write(sqlite3_file* pf, const void* data, int amt, sqlite3_int64 off) {
  File* f = as(pf);
  if (!f->is_wal) return f->real->pMethods->xWrite(f->real, data, amt, off);
  const bool rewrite = off == f->read_at;  // a checksum rewrite (see the top)
  f->read_at = -1;
  const bool continues = !f->run.empty() && off == f->run_start + static_cast<sqlite3_int64>(f->run.size());
  const bool page = continues && f->after_header;
  const bool header = amt == kFrameHeader && !rewrite && (f->run.empty() || (continues && !f->after_header));
  if (!page && !header) {  // not part of an appended run of frames: in order, as SQLite asked
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, data, amt, off);
  }
  if (f->run.empty()) f->run_start = off;
  f->run.append(static_cast<const char*>(data), static_cast<size_t>(amt));
  if (header) {
    const auto* h = static_cast<const unsigned char*>(data);
    f->after_header = true;
    f->commit_page = (h[4] | h[5] | h[6] | h[7]) != 0;
    return SQLITE_OK;
  }
  f->after_header = false;
  if (f->commit_page || f->run.size() >= kMaxGathered) return write_run(f);
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* pf, sqlite3_int64 size) {
  File* f = as(pf);
  if (f->is_wal) {
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xTruncate(f->real, size);
}

int x_sync(sqlite3_file* pf, int flags) {
  File* f = as(pf);
  if (f->is_wal) {
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xSync(f->real, flags);
}

int x_file_size(sqlite3_file* pf, sqlite3_int64* size) {
  File* f = as(pf);
  if (f->is_wal) {
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xFileSize(f->real, size);
}

int x_lock(sqlite3_file* pf, int lock) { return real(pf)->pMethods->xLock(real(pf), lock); }
int x_unlock(sqlite3_file* pf, int lock) { return real(pf)->pMethods->xUnlock(real(pf), lock); }
int x_check_reserved(sqlite3_file* pf, int* out) {
  return real(pf)->pMethods->xCheckReservedLock(real(pf), out);
}
int x_file_control(sqlite3_file* pf, int op, void* arg) {
  File* f = as(pf);
  if (f->is_wal) {
    if (const int rc = write_run(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xFileControl(f->real, op, arg);
}
int x_sector_size(sqlite3_file* pf) { return real(pf)->pMethods->xSectorSize(real(pf)); }
int x_device_characteristics(sqlite3_file* pf) {
  return real(pf)->pMethods->xDeviceCharacteristics(real(pf));
}

// The shared-memory methods are called on the database file; they act on its WAL's run.
int x_shm_map(sqlite3_file* pf, int page, int size, int extend, void volatile** out) {
  return real(pf)->pMethods->xShmMap(real(pf), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* pf, int offset, int n, int flags) {
  File* f = as(pf);
  if ((flags & SQLITE_SHM_UNLOCK) && offset <= kWalWriteLock && kWalWriteLock < offset + n &&
      f->peer) {
    drop_run(f->peer);  // a transaction that did not commit (see the top)
  }
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* pf) {
  File* f = as(pf);
  // Never has work: a commit's frames were written with its last page, and a rewritten header at
  // once. Kept so that a header is never published over frames still in memory should SQLite
  // ever write otherwise (a failed write here cannot be reported).
  if (f->peer) (void)write_run(f->peer);
  f->real->pMethods->xShmBarrier(f->real);
}
int x_shm_unmap(sqlite3_file* pf, int del) { return real(pf)->pMethods->xShmUnmap(real(pf), del); }
int x_fetch(sqlite3_file* pf, sqlite3_int64 off, int amt, void** out) {
  return real(pf)->pMethods->xFetch(real(pf), off, amt, out);
}
int x_unfetch(sqlite3_file* pf, sqlite3_int64 off, void* p) {
  return real(pf)->pMethods->xUnfetch(real(pf), off, p);
}

sqlite3_io_methods make_methods(int version) {
  sqlite3_io_methods m{};
  m.iVersion = version;
  m.xClose = x_close;
  m.xRead = x_read;
  m.xWrite = x_write;
  m.xTruncate = x_truncate;
  m.xSync = x_sync;
  m.xFileSize = x_file_size;
  m.xLock = x_lock;
  m.xUnlock = x_unlock;
  m.xCheckReservedLock = x_check_reserved;
  m.xFileControl = x_file_control;
  m.xSectorSize = x_sector_size;
  m.xDeviceCharacteristics = x_device_characteristics;
  if (version >= 2) {
    m.xShmMap = x_shm_map;
    m.xShmLock = x_shm_lock;
    m.xShmBarrier = x_shm_barrier;
    m.xShmUnmap = x_shm_unmap;
  }
  if (version >= 3) {
    m.xFetch = x_fetch;
    m.xUnfetch = x_unfetch;
  }
  return m;
}

// One table per io-methods version the real VFS hands out (the unix VFS: 3, or 1 without shm).
const sqlite3_io_methods* methods_for(int version) {
  static const sqlite3_io_methods v1 = make_methods(1), v2 = make_methods(2), v3 = make_methods(3);
  return version >= 3 ? &v3 : version == 2 ? &v2 : &v1;
}

constexpr size_t kRealOffset = (sizeof(File) + 15) & ~size_t{15};

// ---- vfs methods ----

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* pf, int flags, int* out_flags) {
  auto* f = new (pf) File;
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(pf) + kRealOffset);
  std::memset(f->real, 0, static_cast<size_t>(g_real->szOsFile));
  const int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || !f->real->pMethods) {
    if (f->real->pMethods) f->real->pMethods->xClose(f->real);
    f->~File();
    pf->pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  f->name = name;
  if (name && (flags & SQLITE_OPEN_MAIN_DB)) {
    std::lock_guard lk(g_mu);
    g_dbs()[name] = f;
  } else if (name && (flags & SQLITE_OPEN_WAL)) {
    std::lock_guard lk(g_mu);
    auto it = g_dbs().find(sqlite3_filename_database(name));
    if (it != g_dbs().end() && !it->second->peer) {  // else: not gathered, written as asked
      f->is_wal = true;
      f->peer = it->second;
      it->second->peer = f;
      f->run.reserve(64 * 1024);
    }
  }
  f->base.pMethods = methods_for(f->real->pMethods->iVersion);
  return SQLITE_OK;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) { return g_real->xDlSym(g_real, h, sym); }
void x_dl_close(sqlite3_vfs*, void* h) { g_real->xDlClose(g_real, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int x_current_time(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError ? g_real->xGetLastError(g_real, n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

const char* register_vfs() {
  g_real = sqlite3_vfs_find(nullptr);
  if (!g_real || g_real->iVersion < 2 || !g_real->xCurrentTimeInt64) return nullptr;
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(kRealOffset) + g_real->szOsFile;
  g_vfs.mxPathname = g_real->mxPathname;
  g_vfs.zName = "orroute-wal-gather";
  g_vfs.xOpen = x_open;
  g_vfs.xDelete = x_delete;
  g_vfs.xAccess = x_access;
  g_vfs.xFullPathname = x_full_pathname;
  g_vfs.xDlOpen = x_dl_open;
  g_vfs.xDlError = x_dl_error;
  g_vfs.xDlSym = x_dl_sym;
  g_vfs.xDlClose = x_dl_close;
  g_vfs.xRandomness = x_randomness;
  g_vfs.xSleep = x_sleep;
  g_vfs.xCurrentTime = x_current_time;
  g_vfs.xGetLastError = x_get_last_error;
  g_vfs.xCurrentTimeInt64 = x_current_time_int64;
  if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) return nullptr;
  return g_vfs.zName;
}

}  // namespace

const char* wal_gather_vfs() {
  static const char* const name = register_vfs();
  return name;
}

}  // namespace orroute::sqlite
