#include "orroute/cost/sqlite_ledger.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace orroute {
namespace {

constexpr Int128 kAttosPerNano = 1'000'000'000;

// ---- money <-> (nanos, attos) ------------------------------------------------------------------

std::pair<int64_t, int64_t> split(Money m) {
  Int128 n = m.units() / kAttosPerNano;
  Int128 r = m.units() % kAttosPerNano;
  if (r < 0) {
    r += kAttosPerNano;
    n -= 1;
  }
  if (n > std::numeric_limits<int64_t>::max() || n < std::numeric_limits<int64_t>::min()) {
    throw InvalidArgument("amount too large for the ledger: $" + m.to_string());
  }
  return {static_cast<int64_t>(n), static_cast<int64_t>(r)};
}

Money join(int64_t nanos, int64_t attos) {
  return Money::from_units(static_cast<Int128>(nanos) * kAttosPerNano + attos);
}

// ---- statements --------------------------------------------------------------------------------

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw Error("ledger: " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement in use: binds, steps, reads; resets on destruction so it can be reused.
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // Empty strings are stored as NULL.
  Query& bind(int i, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_null(s_, i);
    } else {
      sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    return *this;
  }
  Query& bind_text(int i, std::string_view v) {  // '' stays ''
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Query& bind(const char* name, int64_t v) { return bind(index(name), v); }
  Query& bind(const char* name, std::string_view v) { return bind_text(index(name), v); }
  // true while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "step");
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  int index(const char* name) {
    const int i = sqlite3_bind_parameter_index(s_, name);
    if (i == 0) throw Error(std::string("ledger: no SQL parameter ") + name);
    return i;
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// ---- processes ---------------------------------------------------------------------------------

// Incremented in every forked child (pthread_atfork, registered once).
std::atomic<uint64_t>& fork_generation() {
  static std::atomic<uint64_t> gen{0};
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { fork_generation().fetch_add(1); });
    return true;
  }();
  (void)registered;
  return gen;
}

// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); 0 if unknown.
// Guards against pid reuse when deciding that a reservation's owner is still alive.
int64_t process_start(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return 0;
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

bool process_alive(int64_t pid, int64_t start) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (start != 0) {
    const int64_t now_start = process_start(pid);
    if (now_start != 0 && now_start != start) return false;  // pid reused
  }
  return true;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

std::vector<std::pair<int64_t, TimeUs>> decode_windows(const std::string& text) {
  std::vector<std::pair<int64_t, TimeUs>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string::npos) end = text.size();
    const size_t colon = text.find(':', pos);
    if (colon < end) {
      out.emplace_back(std::strtoll(text.c_str() + pos, nullptr, 10),
                       std::strtoll(text.c_str() + colon + 1, nullptr, 10));
    }
    pos = end + 1;
  }
  return out;
}

std::string encode_thresholds(const std::vector<int32_t>& t) {
  std::string out;
  for (const int32_t v : t) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

std::vector<int32_t> decode_thresholds(const std::string& s) {
  std::vector<int32_t> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(static_cast<int32_t>(std::stol(part)));
  }
  return out;
}

// ---- schema ------------------------------------------------------------------------------------

// Migration i (1-based) brings the schema from version i-1 to i. Append, never edit.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE state(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  budget_gen INTEGER NOT NULL,
  cutoff_reason TEXT,
  cutoff_at INTEGER);
INSERT INTO state(id, budget_gen) VALUES (1, 0);

CREATE TABLE calls(
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  project TEXT, conversation TEXT, task_id TEXT, task_type TEXT,
  model_requested TEXT, model_used TEXT, provider TEXT, generation_id TEXT,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  est_nanos INTEGER, est_attos INTEGER,
  cost_nanos INTEGER NOT NULL, cost_attos INTEGER NOT NULL,
  latency_us INTEGER, ttft_us INTEGER,
  outcome TEXT NOT NULL, error_class TEXT, attempts INTEGER NOT NULL);
CREATE INDEX calls_ts ON calls(ts);
CREATE INDEX calls_project_ts ON calls(project, ts);
CREATE INDEX calls_type_model ON calls(task_type, model_used, id);

CREATE TABLE call_tags(
  call_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (call_id, key)) WITHOUT ROWID;
CREATE INDEX call_tags_kv ON call_tags(key, value, call_id);

CREATE TABLE budgets(
  id INTEGER PRIMARY KEY,
  scope_kind TEXT NOT NULL, scope_key TEXT NOT NULL, scope_value TEXT NOT NULL,
  period TEXT NOT NULL, time_zone TEXT NOT NULL,
  limit_nanos INTEGER NOT NULL, limit_attos INTEGER NOT NULL,
  policy TEXT NOT NULL, thresholds TEXT NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (scope_kind, scope_key, scope_value, period));

CREATE TABLE budget_windows(
  budget_id INTEGER NOT NULL, window_start INTEGER NOT NULL,
  spent_nanos INTEGER NOT NULL, spent_attos INTEGER NOT NULL,
  reserved_nanos INTEGER NOT NULL, reserved_attos INTEGER NOT NULL,
  PRIMARY KEY (budget_id, window_start)) WITHOUT ROWID;

CREATE TABLE reservations(
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, host TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  amount_nanos INTEGER NOT NULL, amount_attos INTEGER NOT NULL,
  project TEXT, conversation TEXT, tags TEXT, model TEXT, task_id TEXT,
  windows TEXT NOT NULL);

CREATE TABLE alerts(
  budget_id INTEGER NOT NULL, window_start INTEGER NOT NULL, threshold_pct INTEGER NOT NULL,
  fired_at INTEGER NOT NULL, budget_name TEXT NOT NULL,
  spent_nanos INTEGER NOT NULL, spent_attos INTEGER NOT NULL,
  limit_nanos INTEGER NOT NULL, limit_attos INTEGER NOT NULL,
  PRIMARY KEY (budget_id, window_start, threshold_pct));
CREATE INDEX alerts_fired_at ON alerts(fired_at);
)sql",
    // 2: budget leases (a process's allowance, see SqliteLedger) are reservation rows marked 1.
    R"sql(
ALTER TABLE reservations ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
-- One page fewer per recorded call: project filters and project budgets use calls_ts.
DROP INDEX calls_project_ts;
)sql",
    // 3: where each call's cost came from (the upstream's checked figure, the catalog, ...).
    R"sql(
ALTER TABLE calls ADD COLUMN cost_source TEXT NOT NULL DEFAULT '';
)sql",
};
constexpr int64_t kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

const char* const kCallColumns =
    "id, ts, project, conversation, task_id, task_type, model_requested, model_used, provider, "
    "generation_id, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, "
    "reasoning_tokens, est_nanos, est_attos, cost_nanos, cost_attos, latency_us, ttft_us, outcome, "
    "error_class, attempts, cost_source, "
    "(SELECT group_concat(key || '=' || value, char(10)) FROM call_tags WHERE call_id = calls.id)";

}  // namespace

// ---- Impl --------------------------------------------------------------------------------------

struct SqliteLedger::Impl {
  std::string path;
  SqliteLedgerOptions options;
  sqlite3* db = nullptr;
  std::mutex mu;
  std::unordered_map<std::string, sqlite3_stmt*> stmts;
  std::unordered_map<const char*, sqlite3_stmt*> literal_stmts;
  int64_t pid = 0, pid_start = 0;
  std::string host;
  std::chrono::steady_clock::time_point last_reclaim{};

  // Budgets as of a budget_gen (re-read when a writer bumps it). Replaced, never mutated: the
  // lease fast path reads it under `lmu` while a transaction (under `mu`) may load a newer one.
  struct BudgetSet {
    int64_t gen = -1;
    std::vector<Budget> budgets;
    std::vector<std::shared_ptr<const TimeZone>> zones;
  };
  std::shared_ptr<const BudgetSet> bset = std::make_shared<BudgetSet>();

  struct Counter {
    Money spent, reserved;
  };
  struct Matched {
    const Budget* budget;
    TimeUs start, end;
    Counter counter;
  };

  // ---- cross-process epoch (sidecar) ----
  // A counter in a small shared file next to the ledger (`<path>-orroute`, mmap'd), bumped inside
  // the writing transaction by set_cutoff, set_budget and remove_budget. While it is unchanged,
  // this process's cached cutoff and budget list are current, so the lease fast path and cutoff()
  // need no database read. A ":memory:" ledger keeps it in-process. nullptr: no sidecar (leases
  // off, every read goes to the database).
  std::atomic<uint64_t> local_epoch{0};
  uint64_t* shared_epoch = nullptr;  // in the mmap'd sidecar
  void* sidecar_map = nullptr;
  bool has_epoch = false;

  uint64_t load_epoch() const {
    if (shared_epoch) return std::atomic_ref<uint64_t>(*shared_epoch).load(std::memory_order_acquire);
    return local_epoch.load(std::memory_order_acquire);
  }
  void bump_epoch() {
    if (shared_epoch) {
      std::atomic_ref<uint64_t>(*shared_epoch).fetch_add(1, std::memory_order_acq_rel);
    } else {
      local_epoch.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void open_sidecar() {
    if (path == ":memory:" || path.empty()) {
      has_epoch = true;
      return;
    }
    const std::string side = path + "-orroute";
    const int fd = ::open(side.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    constexpr off_t kSize = 64;
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0 && (st.st_size >= kSize || ::ftruncate(fd, kSize) == 0);
    void* m = ok ? ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    ::close(fd);
    if (m == MAP_FAILED) return;
    sidecar_map = m;
    shared_epoch = static_cast<uint64_t*>(m);
    has_epoch = true;
  }

  // ---- budget leases ----
  // A lease is one `reservations` row (lease = 1) of this process charged to the reserved
  // counters of a set of budget windows, exactly like a reservation; locally it is split into
  // `free` (not yet handed out) and `held` (sub-reservations in flight). Guarded by `lmu`.
  using WindowKey = std::vector<std::pair<int64_t, TimeUs>>;
  struct Lease {
    int64_t row_id = 0;
    WindowKey windows;
    std::string windows_text;
    TimeUs window_end = 0;  // earliest end of its windows
    TimeUs expires_at = 0;  // of the row
    Money free, held;
    int64_t pending = 0;    // claims of transactions not yet committed
    bool closing = false;   // being deleted by an uncommitted transaction
    bool dead = false;      // row gone (reclaimed or deleted)
  };
  // A reservation served from a lease (negative ids), or purely local when no budget matched.
  struct Sub {
    Money amount;
    std::shared_ptr<Lease> lease;  // null: no budget matched at reserve time
    TimeUs created_at = 0, expires_at = 0;
    SpendScope scope;
    std::string model, task_id;
    bool settling = false;
  };
  static constexpr int64_t kLeaseTtlUs = 15LL * 60 * 1'000'000;
  bool leases_on = false;
  std::mutex lmu;  // order: mu before lmu, never the reverse
  std::map<WindowKey, std::shared_ptr<Lease>> leases;
  std::unordered_map<int64_t, Sub> subs;
  int64_t next_sub_id = -1;
  int64_t leases_gen = -1;  // budget_gen the leases' free portions were granted under
  // Cached shared state, valid while the epoch equals cached_epoch.
  bool state_valid = false;
  uint64_t cached_epoch = 0;
  std::optional<std::string> cached_cutoff;
  // Last counter values this process read or wrote, for ReserveOutcome::remaining on the fast
  // path (exact within one process).
  std::map<std::pair<int64_t, TimeUs>, Counter> wcache;

  // Every ledger object open in this process, by canonical file path: what "this process"
  // sees (budget_states, live_reservations) covers all its objects on one file (e.g. a
  // CostTracker and the engine's own ledger), not only the one asked. Never destroyed (static
  // destruction order).
  struct OpenLedgers {
    std::mutex mu;
    std::multimap<std::string, Impl*> by_path;
  };
  static OpenLedgers& open_ledgers() {
    static auto* registry = new OpenLedgers;
    return *registry;
  }
  std::string canonical;  // registry key ("" = not registered)

  void register_open() {
    if (path == ":memory:" || path.empty()) return;
    std::error_code ec;
    const auto c = std::filesystem::weakly_canonical(path, ec);
    canonical = ec ? path : c.string();
    std::lock_guard lk(open_ledgers().mu);
    open_ledgers().by_path.emplace(canonical, this);
  }

  // This process's view across its objects on this file: free lease money per window, the
  // lease rows, and the reservations served from them. Caller holds `mu` (never an lmu).
  struct ProcessView {
    std::map<std::pair<int64_t, TimeUs>, Money> free;
    std::vector<int64_t> lease_rows;
    int64_t subs = 0;
    Money held;
  };
  ProcessView process_view() {
    ProcessView v;
    auto add = [&v](Impl& impl) {
      std::lock_guard lk(impl.lmu);
      for (const auto& [key, lease] : impl.leases) {
        if (lease->dead) continue;
        v.lease_rows.push_back(lease->row_id);
        for (const auto& w : key) v.free[w] += lease->free;
      }
      for (const auto& [id, sub] : impl.subs) {
        if (sub.lease && sub.lease->dead) continue;
        ++v.subs;
        v.held += sub.amount;
      }
    };
    if (canonical.empty()) {
      add(*this);
      return v;
    }
    const int64_t me = ::getpid();
    std::lock_guard lk(open_ledgers().mu);
    auto [lo, hi] = open_ledgers().by_path.equal_range(canonical);
    for (auto it = lo; it != hi; ++it) {
      if (it->second->pid == me) add(*it->second);  // a forked child's copies are not its own
    }
    return v;
  }

  ~Impl() {
    if (!canonical.empty()) {
      std::lock_guard lk(open_ledgers().mu);
      auto [lo, hi] = open_ledgers().by_path.equal_range(canonical);
      for (auto it = lo; it != hi; ++it) {
        if (it->second == this) {
          open_ledgers().by_path.erase(it);
          break;
        }
      }
    }
    for (auto& [sql, s] : stmts) sqlite3_finalize(s);
    for (auto& [sql, s] : literal_stmts) sqlite3_finalize(s);
    if (db) sqlite3_close_v2(db);
    if (sidecar_map) ::munmap(sidecar_map, 64);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown";
      sqlite3_free(err);
      throw Error(std::string("ledger: ") + msg);
    }
  }

  // Hot path: statements from string literals are cached by address (no hashing of the text).
  Query q(const char* sql) {
    auto it = literal_stmts.find(sql);
    if (it == literal_stmts.end()) {
      sqlite3_stmt* s = prepare(sql);
      it = literal_stmts.emplace(sql, s).first;
    }
    return Query(db, it->second);
  }

  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      fail(db, "prepare");
    }
    return s;
  }

  Query q(const std::string& sql) {
    auto it = stmts.find(sql);
    if (it == stmts.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
          SQLITE_OK) {
        fail(db, "prepare");
      }
      it = stmts.emplace(sql, s).first;
    }
    return Query(db, it->second);
  }

  // RAII write transaction. BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
  // timeout), so the reads inside see the state the writes are based on: check-and-reserve is
  // atomic across processes.
  class Txn {
   public:
    explicit Txn(Impl& impl) : impl_(impl) { impl_.q("BEGIN IMMEDIATE").run(); }
    ~Txn() {
      if (!done_) sqlite3_exec(impl_.db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
      impl_.q("COMMIT").run();
      done_ = true;
    }

   private:
    Impl& impl_;
    bool done_ = false;
  };

  // ---- group commit ----
  // Money operations from many threads are batched: the first waiting thread becomes the leader,
  // takes every queued job, and runs them in one BEGIN IMMEDIATE transaction, each inside its own
  // SAVEPOINT so a failing job is rolled back alone. One commit (one WAL append) then serves the
  // whole batch. A job's caller returns only after the commit, so nothing is reported before it
  // is durable; the cross-process semantics are unchanged (each batch is one atomic step).
  struct Job {
    std::function<void()> run;
    std::exception_ptr error;
    bool done = false;
    bool lead = false;  // this job's thread runs the next batch
    // Local effects of the job: applied (under lmu) once the batch is committed, or undone if
    // the job or the batch fails. Counter values written, for wcache.
    std::vector<std::function<void()>> on_commit, on_fail;
    std::vector<std::tuple<int64_t, TimeUs, Counter>> counters;
  };
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::vector<Job*> queue;
  bool leader_active = false;
  Job* current = nullptr;  // the job running (under mu), for the hooks below
  // Leases created by jobs of the running batch (under mu), so that later jobs extend them.
  std::map<WindowKey, std::shared_ptr<Lease>> pending_new;

  void after_commit(std::function<void()> f) {
    if (current) current->on_commit.push_back(std::move(f));
  }
  void if_failed(std::function<void()> f) {
    if (current) current->on_fail.push_back(std::move(f));
  }

  void fail_job(Job& job) {
    std::lock_guard lk(lmu);
    for (auto it = job.on_fail.rbegin(); it != job.on_fail.rend(); ++it) (*it)();
    job.on_fail.clear();
    job.on_commit.clear();
    job.counters.clear();
  }

  void commit_job(Job& job) {
    std::lock_guard lk(lmu);
    for (const auto& [id, start, c] : job.counters) wcache[{id, start}] = c;
    for (auto& f : job.on_commit) f();
    job.on_commit.clear();
    job.on_fail.clear();
  }

  void run_batch(const std::vector<Job*>& batch) {
    std::lock_guard lock(mu);
    bool committed = false;
    try {
      Txn txn(*this);
      if (batch.size() == 1) {  // no savepoint needed: a failure rolls back the transaction
        current = batch[0];
        try {
          batch[0]->run();
        } catch (...) {
          current = nullptr;
          batch[0]->error = std::current_exception();
          fail_job(*batch[0]);
          pending_new.clear();
          return;  // ~Txn rolls back
        }
        current = nullptr;
      } else {
        for (Job* job : batch) {
          q("SAVEPOINT job").run();
          current = job;
          try {
            job->run();
          } catch (...) {
            current = nullptr;
            job->error = std::current_exception();
            fail_job(*job);
            q("ROLLBACK TO job").run();
          }
          current = nullptr;
          q("RELEASE job").run();
        }
      }
      txn.commit();
      committed = true;
    } catch (...) {
      // BEGIN or COMMIT failed: nothing in the batch happened.
      current = nullptr;
      for (Job* job : batch) {
        if (!job->error) {
          job->error = std::current_exception();
          fail_job(*job);
        }
      }
    }
    if (committed) {
      for (Job* job : batch) {
        if (!job->error) commit_job(*job);
      }
    }
    pending_new.clear();
  }

  // Leadership is handed over, not raced for: when a batch ends and jobs are queued, the oldest
  // queued job's thread leads next, so a thread returning from a batch cannot start a new batch
  // holding only its own next job while the others are still waking up (batches stay large).
  template <class F>
  auto transact(F&& body) -> decltype(body()) {
    check_pid();
    using R = decltype(body());
    std::optional<R> result;
    Job job;
    job.run = [&] { result.emplace(body()); };
    std::unique_lock lk(queue_mu);
    queue.push_back(&job);
    if (!leader_active) {
      leader_active = true;
      job.lead = true;
    }
    while (!job.done) {
      if (job.lead) {
        std::vector<Job*> batch;
        batch.swap(queue);
        lk.unlock();
        run_batch(batch);
        lk.lock();
        for (Job* j : batch) j->done = true;
        if (queue.empty()) {
          leader_active = false;
        } else {
          queue.front()->lead = true;
        }
        queue_cv.notify_all();
      } else {
        queue_cv.wait(lk);
      }
    }
    lk.unlock();
    if (job.error) std::rethrow_exception(job.error);
    return std::move(*result);
  }

  // getpid() is a system call; a fork generation counter bumped in the child by an atfork
  // handler tells the same thing for free on the hot path.
  uint64_t fork_gen_at_open = 0;
  void check_pid() const {
    if (fork_generation().load(std::memory_order_relaxed) == fork_gen_at_open) return;
    if (static_cast<int64_t>(::getpid()) != pid) {
      throw Error("ledger: this connection was opened in another process (fork); open a new one");
    }
  }

  void open() {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      throw Error("ledger: cannot open '" + path + "': " + msg);
    }
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    // Only takes effect on a new, empty file (existing files keep theirs).
    if (options.page_size > 0) exec(("PRAGMA page_size=" + std::to_string(options.page_size)).c_str());
    if (path != ":memory:") exec("PRAGMA journal_mode=WAL");
    if (options.wal_autocheckpoint > 0) {
      exec(("PRAGMA wal_autocheckpoint=" + std::to_string(options.wal_autocheckpoint)).c_str());
    }
    exec(options.durable_fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA temp_store=MEMORY");
    migrate();
    open_sidecar();
    leases_on = options.leases && has_epoch;
  }

  int64_t version() {
    auto v = q("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    v.step();
    return v.i64(0);
  }

  void migrate() {
    exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL, "
         "applied_at INTEGER NOT NULL)");
    if (version() >= kSchemaVersion) {
      if (version() > kSchemaVersion) {
        throw Error("ledger '" + path + "' has schema version " + std::to_string(version()) +
                    ", newer than this orroute understands (" + std::to_string(kSchemaVersion) +
                    ")");
      }
      return;
    }
    Txn txn(*this);
    // Re-read under the write lock: another process may have migrated meanwhile.
    for (int64_t v = version(); v < kSchemaVersion; ++v) {
      exec(kMigrations[v]);
      q("INSERT INTO schema_version(version, applied_at) VALUES (?, ?)").bind(1, v + 1).bind(2, now_us()).run();
    }
    txn.commit();
  }

  // ---- budgets ----

  void load_budgets(int64_t gen) {
    if (gen == bset->gen) return;
    auto fresh = std::make_shared<BudgetSet>();
    auto s = q("SELECT id, scope_kind, scope_key, scope_value, period, time_zone, limit_nanos, "
               "limit_attos, policy, thresholds FROM budgets ORDER BY id");
    while (s.step()) {
      Budget b;
      b.id = s.i64(0);
      b.scope.kind = parse_scope_kind(s.text(1));
      b.scope.key = s.text(2);
      b.scope.value = s.text(3);
      b.window = parse_window(s.text(4));
      b.time_zone = s.text(5);
      b.limit = join(s.i64(6), s.i64(7));
      b.policy = parse_policy(s.text(8));
      b.thresholds_pct = decode_thresholds(s.text(9));
      fresh->budgets.push_back(std::move(b));
      fresh->zones.push_back(TimeZone::locate(fresh->budgets.back().time_zone));
    }
    fresh->gen = gen;
    std::lock_guard lk(lmu);
    bset = std::move(fresh);
  }

  // Reads the shared state row (inside a transaction) and refreshes the budget cache.
  std::optional<std::string> read_state() {
    auto s = q("SELECT budget_gen, cutoff_reason FROM state WHERE id = 1");
    if (!s.step()) throw Error("ledger: state row missing");
    const int64_t gen = s.i64(0);
    std::optional<std::string> cut;
    if (!s.null(1)) cut = s.text(1);
    load_budgets(gen);
    return cut;
  }

  // Inside a write transaction (the write lock held, so no other writer is between its change
  // and its epoch bump): the cutoff, reading the state row only if the epoch moved since this
  // process last cached it. Caches what it read once the batch commits.
  std::optional<std::string> sync_state() {
    if (!has_epoch) return read_state();
    const uint64_t e = load_epoch();
    {
      std::lock_guard lk(lmu);
      if (state_valid && e == cached_epoch) return cached_cutoff;
    }
    auto cut = read_state();
    after_commit([this, e, cut] {
      state_valid = true;
      cached_epoch = e;
      cached_cutoff = cut;
    });
    return cut;
  }

  void bump_gen() { q("UPDATE state SET budget_gen = budget_gen + 1 WHERE id = 1").run(); }

  Counter counter(const Budget& b, TimeUs start, TimeUs end) {
    {
      auto s = q("SELECT spent_nanos, spent_attos, reserved_nanos, reserved_attos FROM "
                 "budget_windows WHERE budget_id = ? AND window_start = ?");
      s.bind(1, b.id).bind(2, start);
      if (s.step()) return {join(s.i64(0), s.i64(1)), join(s.i64(2), s.i64(3))};
    }
    // First use of this window: start from the calls already recorded in it.
    Money spent;
    {
      std::string sql = "SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(cost_attos), 0) FROM "
                        "calls WHERE ts >= ? AND ts < ?";
      switch (b.scope.kind) {
        case ScopeKind::kGlobal: break;
        case ScopeKind::kProject: sql += " AND project = ?"; break;
        case ScopeKind::kConversation: sql += " AND conversation = ?"; break;
        case ScopeKind::kTag:
          sql += " AND id IN (SELECT call_id FROM call_tags WHERE key = ? AND value = ?)";
          break;
      }
      auto s = q(sql);
      s.bind(1, start).bind(2, end);
      if (b.scope.kind == ScopeKind::kTag) {
        s.bind_text(3, b.scope.key).bind_text(4, b.scope.value);
      } else if (b.scope.kind != ScopeKind::kGlobal) {
        s.bind_text(3, b.scope.value);
      }
      s.step();
      spent = join(s.i64(0), s.i64(1));
    }
    const auto [sn, sa] = split(spent);
    q("INSERT INTO budget_windows VALUES (?, ?, ?, ?, 0, 0)")
        .bind(1, b.id).bind(2, start).bind(3, sn).bind(4, sa).run();
    return {spent, Money()};
  }

  void write_counter(int64_t budget_id, TimeUs start, const Counter& c) {
    if (current) current->counters.emplace_back(budget_id, start, c);
    const auto [sn, sa] = split(c.spent);
    const auto [rn, ra] = split(c.reserved);
    q("UPDATE budget_windows SET spent_nanos = ?, spent_attos = ?, reserved_nanos = ?, "
      "reserved_attos = ? WHERE budget_id = ? AND window_start = ?")
        .bind(1, sn).bind(2, sa).bind(3, rn).bind(4, ra).bind(5, budget_id).bind(6, start).run();
  }

  std::vector<Matched> match(const SpendScope& scope, TimeUs at, bool all) {
    std::vector<Matched> out;
    const BudgetSet& set = *bset;
    for (size_t i = 0; i < set.budgets.size(); ++i) {
      const Budget& b = set.budgets[i];
      if (!all && !scope_matches(b.scope, scope)) continue;
      const auto [start, end] = window_bounds(b.window, *set.zones[i], at);
      out.push_back({&b, start, end, counter(b, start, end)});
    }
    return out;
  }

  // ---- reservations ----

  // Removes a reservation and its share of the counters. false if it does not exist.
  bool remove_reservation(int64_t id) {
    Money amount;
    std::vector<std::pair<int64_t, TimeUs>> windows;
    {
      auto s = q("SELECT amount_nanos, amount_attos, windows FROM reservations WHERE id = ?");
      s.bind(1, id);
      if (!s.step()) return false;
      amount = join(s.i64(0), s.i64(1));
      windows = decode_windows(s.text(2));
    }
    for (const auto& [budget_id, start] : windows) {
      auto s = q("SELECT spent_nanos, spent_attos, reserved_nanos, reserved_attos FROM "
                 "budget_windows WHERE budget_id = ? AND window_start = ?");
      s.bind(1, budget_id).bind(2, start);
      if (!s.step()) continue;
      Counter c{join(s.i64(0), s.i64(1)), join(s.i64(2), s.i64(3)) - amount};
      if (c.reserved.is_negative()) c.reserved = Money();
      write_counter(budget_id, start, c);
    }
    q("DELETE FROM reservations WHERE id = ?").bind(1, id).run();
    return true;
  }

  int64_t reclaim_locked(TimeUs at) {
    last_reclaim = std::chrono::steady_clock::now();
    std::vector<int64_t> dead;
    std::vector<std::shared_ptr<Lease>> own;
    {
      auto s = q("SELECT id, pid, pid_start, host, expires_at FROM reservations");
      std::unordered_map<int64_t, bool> alive;  // pid -> alive, per pass
      while (s.step()) {
        const int64_t id = s.i64(0), rpid = s.i64(1), rstart = s.i64(2), expires = s.i64(4);
        bool gone = expires <= at;
        if (!gone && rpid != pid && s.text(3) == host) {
          auto it = alive.find(rpid);
          if (it == alive.end()) it = alive.emplace(rpid, process_alive(rpid, rstart)).first;
          gone = !it->second;
        }
        if (gone) dead.push_back(id);
      }
    }
    if (!dead.empty()) {
      std::lock_guard lk(lmu);
      for (const auto& [key, lease] : leases) {
        if (std::find(dead.begin(), dead.end(), lease->row_id) != dead.end()) own.push_back(lease);
      }
    }
    for (const int64_t id : dead) remove_reservation(id);
    // One of this process's leases expired (idle for its whole ttl): it is gone with its subs.
    for (auto& lease : own) after_commit([this, lease] { drop_lease(lease); });
    return static_cast<int64_t>(dead.size());
  }

  // ---- leases (see the Lease struct); functions marked "under lmu" expect it held ----

  // Under lmu: forgets a lease whose row is gone, and the reservations served from it.
  void drop_lease(const std::shared_ptr<Lease>& lease) {
    lease->dead = true;
    auto it = leases.find(lease->windows);
    if (it != leases.end() && it->second == lease) leases.erase(it);
    for (auto s = subs.begin(); s != subs.end();) {
      s = s->second.lease == lease ? subs.erase(s) : std::next(s);
    }
  }

  // Under lmu: this process's unused lease money on one budget window.
  Money own_free(const std::pair<int64_t, TimeUs>& w) const {
    Money sum;
    for (const auto& [key, lease] : leases) {
      if (!lease->dead && std::find(key.begin(), key.end(), w) != key.end()) sum += lease->free;
    }
    return sum;
  }

  static std::string encode_windows(const WindowKey& key) {
    std::string out;  // "budget:start;..."
    for (const auto& [id, start] : key) out += std::to_string(id) + ":" + std::to_string(start) + ";";
    return out;
  }

  // Adds `delta` (may be negative) to a window's reserved counter; no-op if the counter is gone
  // (its budget was removed).
  void add_reserved(int64_t budget_id, TimeUs start, Money delta) {
    Counter c;
    {
      auto s = q("SELECT spent_nanos, spent_attos, reserved_nanos, reserved_attos FROM "
                 "budget_windows WHERE budget_id = ? AND window_start = ?");
      s.bind(1, budget_id).bind(2, start);
      if (!s.step()) return;
      c = {join(s.i64(0), s.i64(1)), join(s.i64(2), s.i64(3)) + delta};
    }
    if (c.reserved.is_negative()) c.reserved = Money();
    write_counter(budget_id, start, c);
  }

  // Adds `delta` to a lease row's amount (exact nanos/attos carry, relative to what is stored so
  // that several jobs of one batch compose) and pushes its expiry to at least `expires`.
  // false if the row is gone.
  bool add_to_lease_row(int64_t row_id, Money delta, TimeUs expires) {
    const auto [dn, da] = split(delta);
    q("UPDATE reservations SET "
      "amount_nanos = amount_nanos + ?1 + (amount_attos + ?2 >= 1000000000), "
      "amount_attos = amount_attos + ?2 - 1000000000 * (amount_attos + ?2 >= 1000000000), "
      "expires_at = MAX(expires_at, ?3) WHERE id = ?4")
        .bind(1, dn).bind(2, da).bind(3, expires).bind(4, row_id).run();
    return sqlite3_changes(db) == 1;
  }

  // Gives a lease's free money back to its budgets (in the current job). With `drop_if_idle`
  // and nothing held, deletes the row too.
  void return_free(const std::shared_ptr<Lease>& lease, bool drop_if_idle) {
    Money amount;
    bool drop = false;
    {
      std::lock_guard lk(lmu);
      if (lease->dead || lease->closing) return;
      amount = lease->free;
      drop = drop_if_idle && lease->held.is_zero() && lease->pending == 0;
      if (amount.is_zero() && !drop) return;
      lease->free = Money();
      lease->closing = drop;
    }
    if_failed([lease, amount] {
      lease->free += amount;
      lease->closing = false;
    });
    if (drop) {
      q("DELETE FROM reservations WHERE id = ?").bind(1, lease->row_id).run();
      if (sqlite3_changes(db) == 0) {  // reclaimed meanwhile: its money is already back
        after_commit([this, lease] { drop_lease(lease); });
        return;
      }
    } else if (!add_to_lease_row(lease->row_id, -amount, 0)) {
      after_commit([this, lease] { drop_lease(lease); });
      return;
    }
    for (const auto& [id, start] : lease->windows) add_reserved(id, start, -amount);
    if (drop) after_commit([this, lease] { drop_lease(lease); });
  }

  // Under lmu: drops reservations served from leases whose ttl passed (their money goes back to
  // the lease's free part).
  void purge_expired_subs(TimeUs at) {
    for (auto it = subs.begin(); it != subs.end();) {
      Sub& sub = it->second;
      if (sub.expires_at > at || sub.settling) {
        ++it;
        continue;
      }
      if (sub.lease && !sub.lease->dead) {
        sub.lease->held -= sub.amount;
        sub.lease->free += sub.amount;
      }
      it = subs.erase(it);
    }
  }

  // Under lmu: a new local reservation id.
  int64_t add_sub(int64_t id, const ReserveRequest& r, TimeUs at, std::shared_ptr<Lease> lease) {
    Sub sub;
    sub.amount = r.amount;
    sub.lease = std::move(lease);
    sub.created_at = at;
    sub.expires_at = at + r.ttl_us;
    sub.scope = r.scope;
    sub.model = r.model;
    sub.task_id = r.task_id;
    subs.emplace(id, std::move(sub));
    return id;
  }

  // Under lmu: min over `key`'s windows of limit - spent - reserved as this process sees it
  // (its own free lease money not counted as reserved); nullopt if a window is unknown.
  std::optional<Money> cached_remaining(const WindowKey& key) const {
    std::optional<Money> out;
    for (const auto& w : key) {
      auto c = wcache.find(w);
      const auto b = std::find_if(bset->budgets.begin(), bset->budgets.end(),
                                  [&](const Budget& x) { return x.id == w.first; });
      if (c == wcache.end() || b == bset->budgets.end()) return std::nullopt;
      Money r = b->limit - c->second.spent - c->second.reserved + own_free(w);
      if (r.is_negative()) r = Money();
      if (!out || r < *out) out = r;
    }
    return out;
  }

  // The lease fast path: no database access. nullopt when the slow path is needed.
  std::optional<ReserveOutcome> reserve_fast(const ReserveRequest& r, TimeUs at) {
    const uint64_t e = load_epoch();
    std::lock_guard lk(lmu);
    if (!state_valid || e != cached_epoch || bset->gen != leases_gen) return std::nullopt;
    ReserveOutcome out;
    if (cached_cutoff) {
      out.status = ReserveStatus::kCutoff;
      out.cutoff_reason = *cached_cutoff;
      return out;
    }
    WindowKey key;
    const BudgetSet& set = *bset;
    for (size_t i = 0; i < set.budgets.size(); ++i) {
      if (!scope_matches(set.budgets[i].scope, r.scope)) continue;
      key.emplace_back(set.budgets[i].id, window_bounds(set.budgets[i].window, *set.zones[i], at).first);
    }
    if (key.empty()) {  // no budget applies: nothing to book
      out.reservation_id = add_sub(next_sub_id--, r, at, nullptr);
      return out;
    }
    auto it = leases.find(key);
    if (it == leases.end()) return std::nullopt;
    const std::shared_ptr<Lease>& lease = it->second;
    if (lease->dead || lease->closing || lease->free < r.amount || at >= lease->window_end ||
        at + r.ttl_us > lease->expires_at) {
      return std::nullopt;
    }
    out.remaining = cached_remaining(key);
    lease->free -= r.amount;
    lease->held += r.amount;
    out.reservation_id = add_sub(next_sub_id--, r, at, lease);
    return out;
  }

  // The lease slow path, inside a job: cutoff and budget changes, expired reservations, ended
  // windows, then take the request from this scope's lease, growing it (or creating it) in the
  // database by a grant sized to what is left.
  ReserveOutcome reserve_slow(const ReserveRequest& r, TimeUs at) {
    ReserveOutcome out;
    if (auto cut = sync_state()) {
      out.status = ReserveStatus::kCutoff;
      out.cutoff_reason = *cut;
      return out;
    }
    bool reclaimed = false;
    if (std::chrono::steady_clock::now() - last_reclaim >=
        std::chrono::microseconds(options.reclaim_interval_us)) {
      reclaim_locked(at);
      reclaimed = true;
    }
    std::vector<std::shared_ptr<Lease>> to_return, ended;
    const int64_t gen = bset->gen;
    {
      std::lock_guard lk(lmu);
      purge_expired_subs(at);
      for (const auto& [key, lease] : leases) {
        if (lease->dead) continue;
        if (at >= lease->window_end) {
          ended.push_back(lease);
        } else if (gen != leases_gen) {
          to_return.push_back(lease);  // budgets changed: re-lease under the new limits
        }
      }
    }
    for (auto& lease : ended) return_free(lease, true);
    for (auto& lease : to_return) return_free(lease, false);
    if (gen != leases_gen) after_commit([this, gen] { leases_gen = gen; });

    auto matched = match(r.scope, at, false);
    WindowKey key;
    TimeUs window_end = std::numeric_limits<TimeUs>::max();
    for (const auto& m : matched) {
      key.emplace_back(m.budget->id, m.start);
      window_end = std::min(window_end, m.end);
    }
    int64_t id = 0;
    {
      std::lock_guard lk(lmu);
      id = next_sub_id--;
    }
    if (key.empty()) {
      after_commit([this, id, r, at] { add_sub(id, r, at, nullptr); });
      out.reservation_id = id;
      return out;
    }

    // This scope's lease, if its row still exists; claim what it has free (up to the amount).
    std::shared_ptr<Lease> lease;
    Money claimed;
    {
      std::lock_guard lk(lmu);
      auto it = leases.find(key);
      if (it != leases.end() && !it->second->dead && !it->second->closing) lease = it->second;
    }
    if (!lease) {  // created by an earlier job of this batch, not committed yet
      auto it = pending_new.find(key);
      if (it != pending_new.end()) lease = it->second;
    }
    if (lease) {
      auto s = q("SELECT 1 FROM reservations WHERE id = ?");
      s.bind(1, lease->row_id);
      if (!s.step()) {
        after_commit([this, lease] { drop_lease(lease); });
        lease = nullptr;
      }
    }
    if (lease) {
      std::lock_guard lk(lmu);
      claimed = std::min(lease->free, r.amount);
      lease->free -= claimed;
      ++lease->pending;
    }
    if (lease) {
      if_failed([lease, claimed] {
        lease->free += claimed;
        --lease->pending;
      });
    }
    bool returned_others = false;
    for (;;) {
      // What this process sees: counters minus its own free lease money (the claim included).
      std::vector<Money> own(matched.size());
      {
        std::lock_guard lk(lmu);
        for (size_t i = 0; i < matched.size(); ++i) own[i] = own_free(key[i]) + claimed;
      }
      const Money need = r.amount - claimed;
      std::optional<size_t> refuse, downgrade;
      std::optional<Money> room;  // least limit - spent - reserved, true counters
      std::vector<BudgetState> seen;
      for (size_t i = 0; i < matched.size(); ++i) {
        const Matched& m = matched[i];
        if (current) current->counters.emplace_back(m.budget->id, m.start, m.counter);
        seen.push_back({*m.budget, m.start, m.end, m.counter.spent, m.counter.reserved - own[i]});
        if (seen.back().reserved.is_negative()) seen.back().reserved = Money();
        if (!out.remaining || seen.back().remaining() < *out.remaining) {
          out.remaining = seen.back().remaining();
        }
        Money left = m.budget->limit - m.counter.spent - m.counter.reserved;
        if (left.is_negative()) left = Money();
        if (!room || left < *room) room = left;
        if (m.counter.spent + m.counter.reserved + need > m.budget->limit) {
          if (m.budget->policy == Policy::kRefuse && !refuse) refuse = i;
          if (m.budget->policy == Policy::kDowngrade && !downgrade) downgrade = i;
        }
      }
      const std::optional<BudgetState> blocking =
          refuse ? std::optional(seen[*refuse])
                 : downgrade ? std::optional(seen[*downgrade]) : std::nullopt;
      if (blocking) {
        if (!returned_others) {
          // This process's other leases on these budgets give their free money back first.
          returned_others = true;
          std::vector<std::shared_ptr<Lease>> others;
          {
            std::lock_guard lk(lmu);
            for (const auto& [k, l] : leases) {
              if (l == lease || l->dead || l->free.is_zero()) continue;
              for (const auto& w : k) {
                if (std::find(key.begin(), key.end(), w) != key.end()) {
                  others.push_back(l);
                  break;
                }
              }
            }
          }
          if (!others.empty()) {
            for (auto& l : others) return_free(l, false);
            matched = match(r.scope, at, false);
            out.remaining.reset();
            continue;
          }
        }
        if (!reclaimed) {
          reclaimed = true;
          if (reclaim_locked(at) > 0) {
            if (lease) {
              auto s = q("SELECT 1 FROM reservations WHERE id = ?");
              s.bind(1, lease->row_id);
              if (!s.step()) {  // our own lease expired: its claim went with it
                after_commit([this, lease] { drop_lease(lease); });
                lease = nullptr;
                claimed = Money();
              }
            }
            matched = match(r.scope, at, false);
            out.remaining.reset();
            continue;
          }
        }
        out.status = ReserveStatus::kExceeded;
        out.blocking = blocking;
        if (lease) {
          after_commit([lease, claimed] {
            lease->free += claimed;
            --lease->pending;
          });
        }
        return out;
      }
      // Fits. Grant at least what is missing; more while the budgets have room, so the next
      // calls stay local: at most 1/8 of what is left (grants shrink near the limit and end up
      // exact) and at most 32 calls of this size.
      const Money need_now = need;
      Money grant;
      if (!need_now.is_zero() || !lease) {
        const Money eighth = Money::from_units(room.value_or(Money()).units() / 8);
        grant = std::max(need_now, std::min(eighth, r.amount * 32));
      }
      // The row outlives any reservation it may serve by one more lease ttl, so the fast path
      // (which needs at + ttl <= expires) keeps working between refreshes.
      const TimeUs expires = at + std::max(r.ttl_us, kLeaseTtlUs) + kLeaseTtlUs;
      if (lease) {
        add_to_lease_row(lease->row_id, grant, expires);
      } else {
        const auto [gn, ga] = split(grant);
        const std::string windows = encode_windows(key);
        q("INSERT INTO reservations(pid, pid_start, host, created_at, expires_at, amount_nanos, "
          "amount_attos, windows, lease) VALUES (?,?,?,?,?,?,?,?,1)")
            .bind(1, pid).bind(2, pid_start).bind(3, host).bind(4, at).bind(5, expires)
            .bind(6, gn).bind(7, ga).bind_text(8, windows).run();
        auto fresh = std::make_shared<Lease>();
        fresh->row_id = sqlite3_last_insert_rowid(db);
        fresh->windows = key;
        fresh->windows_text = windows;
        fresh->window_end = window_end;
        fresh->expires_at = expires;
        fresh->pending = 1;
        lease = fresh;
        pending_new[key] = fresh;
        if_failed([this, key] { pending_new.erase(key); });
        after_commit([this, fresh] { leases[fresh->windows] = fresh; });
      }
      if (!grant.is_zero()) {
        for (auto& m : matched) {
          m.counter.reserved += grant;
          write_counter(m.budget->id, m.start, m.counter);
        }
      }
      out.reservation_id = id;
      after_commit([this, lease, grant, need_now, expires, id, r, at] {
        lease->free += grant - need_now;
        lease->held += r.amount;
        --lease->pending;
        lease->expires_at = std::max(lease->expires_at, expires);
        add_sub(id, r, at, lease);
      });
      return out;
    }
  }

  // Settles a reservation served from a lease (id < 0).
  SettleOutcome settle_sub(int64_t id, CallRecord call, TimeUs now) {
    Sub sub;
    bool found = false;
    {
      std::lock_guard lk(lmu);
      auto it = subs.find(id);
      if (it != subs.end() && !it->second.settling && !(it->second.lease && it->second.lease->dead)) {
        it->second.settling = true;
        sub = it->second;
        found = true;
      }
    }
    if (!found) {
      if (call.at == 0) call.at = now;
      return transact([&] {
        SettleOutcome out = insert_call(call, nullptr, Money());
        out.reservation_found = false;
        return out;
      });
    }
    return transact([&] {
      if_failed([this, id] {
        auto it = subs.find(id);
        if (it != subs.end()) it->second.settling = false;
      });
      CallRecord c = call;
      bool here = true;
      // A call that cost more than it reserved (an upstream ignoring max_tokens) takes the excess
      // off the lease's free money, so the lease never serves calls the budget cannot cover; when
      // the free money does not cover it, the budget generation moves and every process re-leases
      // under the true remaining amount.
      Money taken;
      if (sub.lease && call.cost > sub.amount) {
        const Money excess = call.cost - sub.amount;
        {
          std::lock_guard lk(lmu);
          taken = std::max(Money(), std::min(excess, sub.lease->free));
          sub.lease->free -= taken;
        }
        if_failed([lease = sub.lease, taken] { lease->free += taken; });
        if (taken < excess) {
          bump_gen();
          bump_epoch();
        }
      }
      if (sub.lease &&
          !add_to_lease_row(sub.lease->row_id, -(sub.amount + taken), now + 2 * kLeaseTtlUs)) {
        here = false;  // the lease was reclaimed: like a reclaimed reservation
        after_commit([this, lease = sub.lease] { drop_lease(lease); });
      }
      if (here) {
        c.at = sub.created_at;
        c.scope = sub.scope;
      } else if (c.at == 0) {
        c.at = now;
      }
      SettleOutcome out = insert_call(c, here ? sub.lease.get() : nullptr, sub.amount + taken);
      out.reservation_found = here;
      after_commit([this, id, lease = sub.lease, amount = sub.amount, here, now] {
        subs.erase(id);
        if (lease && here && !lease->dead) {
          lease->held -= amount;
          lease->expires_at = std::max(lease->expires_at, now + 2 * kLeaseTtlUs);
        }
      });
      return out;
    });
  }

  // Releases a reservation served from a lease: local only.
  bool release_sub(int64_t id) {
    std::lock_guard lk(lmu);
    auto it = subs.find(id);
    if (it == subs.end() || it->second.settling) return false;
    const Sub sub = it->second;
    subs.erase(it);
    if (!sub.lease) return true;
    if (sub.lease->dead) return false;
    sub.lease->held -= sub.amount;
    sub.lease->free += sub.amount;
    return true;
  }

  // Gives back every lease's free money and deletes idle lease rows (a job).
  void return_all_leases() {
    std::vector<std::shared_ptr<Lease>> all;
    {
      std::lock_guard lk(lmu);
      for (const auto& [key, lease] : leases) all.push_back(lease);
    }
    for (auto& lease : all) return_free(lease, true);
  }

  // ---- calls ----

  // Records the row and adds its cost to every matching budget's window; returns fired alerts.
  // With `lease`, also takes `released` off the reserved counters of the lease's windows (in the
  // same counter writes when they are the call's windows).
  SettleOutcome insert_call(CallRecord& c, const Lease* lease = nullptr, Money released = {}) {
    if (c.prompt_tokens < 0 || c.completion_tokens < 0 || c.cached_tokens < 0 ||
        c.cache_write_tokens < 0 || c.reasoning_tokens < 0) {
      throw InvalidArgument("token counts must be >= 0");
    }
    check_scope(c.scope);
    sync_state();
    // Counters first: a counter created now is back-filled from rows before this one.
    auto matched = match(c.scope, c.at, false);
    if (lease) {
      for (const auto& w : lease->windows) {
        auto m = std::find_if(matched.begin(), matched.end(), [&](const Matched& x) {
          return x.budget->id == w.first && x.start == w.second;
        });
        if (m == matched.end()) {
          add_reserved(w.first, w.second, -released);
        } else {
          m->counter.reserved -= released;
          if (m->counter.reserved.is_negative()) m->counter.reserved = Money();
        }
      }
    }
    const auto [cn, ca] = split(c.cost);
    {
      auto s = q("INSERT INTO calls(ts, project, conversation, task_id, task_type, "
                 "model_requested, model_used, provider, generation_id, prompt_tokens, "
                 "completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, "
                 "est_nanos, est_attos, cost_nanos, cost_attos, latency_us, ttft_us, outcome, "
                 "error_class, attempts, cost_source) VALUES "
                 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      s.bind(1, c.at).bind(2, c.scope.project).bind(3, c.scope.conversation).bind(4, c.task_id);
      s.bind(5, c.task_type).bind(6, c.model_requested).bind(7, c.model_used).bind(8, c.provider);
      s.bind(9, c.generation_id).bind(10, c.prompt_tokens).bind(11, c.completion_tokens);
      s.bind(12, c.cached_tokens).bind(13, c.cache_write_tokens).bind(14, c.reasoning_tokens);
      if (c.estimated_cost) {
        const auto [en, ea] = split(*c.estimated_cost);
        s.bind(15, en).bind(16, ea);
      } else {
        s.bind_null(15).bind_null(16);
      }
      s.bind(17, cn).bind(18, ca);
      if (c.latency_us >= 0) s.bind(19, c.latency_us); else s.bind_null(19);
      if (c.ttft_us >= 0) s.bind(20, c.ttft_us); else s.bind_null(20);
      s.bind_text(21, c.outcome).bind(22, c.error_class).bind(23, int64_t{c.attempts});
      s.bind_text(24, c.cost_source);
      s.run();
    }
    c.id = sqlite3_last_insert_rowid(db);
    for (const auto& [k, v] : c.scope.tags) {
      q("INSERT INTO call_tags(call_id, key, value) VALUES (?, ?, ?)")
          .bind(1, c.id).bind_text(2, k).bind_text(3, v).run();
    }
    SettleOutcome out;
    out.call_id = c.id;
    for (auto& m : matched) {
      m.counter.spent += c.cost;
      write_counter(m.budget->id, m.start, m.counter);
      const Money limit = m.budget->limit;
      if (!m.counter.spent.is_negative() && !m.counter.spent.is_zero()) {
        for (const int32_t t : m.budget->thresholds_pct) {
          if (m.counter.spent * 100 < limit * t) continue;
          const auto [sn, sa] = split(m.counter.spent);
          const auto [ln, la] = split(limit);
          const std::string name = m.budget->name();
          q("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
              .bind(1, m.budget->id).bind(2, m.start).bind(3, int64_t{t}).bind(4, c.at)
              .bind_text(5, name).bind(6, sn).bind(7, sa).bind(8, ln).bind(9, la).run();
          if (sqlite3_changes(db) == 1) {
            out.alerts.push_back({m.budget->id, name, t, m.start, c.at, m.counter.spent, limit});
          }
        }
      }
    }
    return out;
  }

  // WHERE clause for a CallQuery, with named parameters bound by bind_query.
  static std::string where(const CallQuery& cq) {
    std::string w = " WHERE ts >= :from";
    if (cq.to > 0) w += " AND ts < :to";
    if (!cq.project.empty()) w += " AND project = :project";
    if (!cq.conversation.empty()) w += " AND conversation = :conversation";
    if (!cq.model.empty()) w += " AND model_used = :model";
    if (!cq.task_type.empty()) w += " AND task_type = :task_type";
    if (!cq.tag_key.empty()) {
      w += " AND id IN (SELECT call_id FROM call_tags WHERE key = :tag_key AND value = :tag_value)";
    }
    return w;
  }
  static void bind_query(Query& s, const CallQuery& cq) {
    s.bind(":from", cq.from);
    if (cq.to > 0) s.bind(":to", cq.to);
    if (!cq.project.empty()) s.bind(":project", std::string_view(cq.project));
    if (!cq.conversation.empty()) s.bind(":conversation", std::string_view(cq.conversation));
    if (!cq.model.empty()) s.bind(":model", std::string_view(cq.model));
    if (!cq.task_type.empty()) s.bind(":task_type", std::string_view(cq.task_type));
    if (!cq.tag_key.empty()) {
      s.bind(":tag_key", std::string_view(cq.tag_key));
      s.bind(":tag_value", std::string_view(cq.tag_value));
    }
  }
};

// ---- public ------------------------------------------------------------------------------------

SqliteLedger::SqliteLedger(const std::string& path, SqliteLedgerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->fork_gen_at_open = fork_generation().load();
  impl_->pid = ::getpid();
  impl_->pid_start = process_start(impl_->pid);
  impl_->host = host_name();
  impl_->open();
  impl_->register_open();
}

SqliteLedger::~SqliteLedger() {
  if (impl_->leases_on && static_cast<int64_t>(::getpid()) == impl_->pid) {
    try {
      release_leases();
    } catch (...) {  // best effort: the rows are reclaimed when this process is gone
    }
  }
}

void SqliteLedger::release_leases() {
  if (!impl_->leases_on) return;
  impl_->transact([&] {
    impl_->return_all_leases();
    return true;
  });
}

bool SqliteLedger::leases_enabled() const { return impl_->leases_on; }

const std::string& SqliteLedger::path() const { return impl_->path; }

int64_t SqliteLedger::schema_version() {
  std::lock_guard lock(impl_->mu);
  return impl_->version();
}

int64_t SqliteLedger::set_budget(const BudgetSpec& spec) {
  if (spec.limit.is_negative()) throw InvalidArgument("budget limit must be >= 0");
  if (spec.scope.kind != ScopeKind::kGlobal && spec.scope.value.empty()) {
    throw InvalidArgument("budget scope " + spec.scope.to_string() + " needs a name");
  }
  if (spec.scope.kind == ScopeKind::kTag &&
      (spec.scope.key.empty() || spec.scope.key.find_first_of("=\n") != std::string::npos)) {
    throw InvalidArgument("tag budget needs a key without '='");
  }
  for (const int32_t t : spec.thresholds_pct) {
    if (t <= 0 || t > 1000) throw InvalidArgument("alert thresholds must be in (0, 1000] percent");
  }
  TimeZone::locate(spec.time_zone);  // throws if unknown
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  Impl::Txn txn(*impl_);
  const auto [ln, la] = split(spec.limit);
  impl_->q("INSERT INTO budgets(scope_kind, scope_key, scope_value, period, time_zone, "
           "limit_nanos, limit_attos, policy, thresholds, created_at) VALUES "
           "(?,?,?,?,?,?,?,?,?,?) ON CONFLICT (scope_kind, scope_key, scope_value, period) DO "
           "UPDATE SET time_zone = excluded.time_zone, limit_nanos = excluded.limit_nanos, "
           "limit_attos = excluded.limit_attos, policy = excluded.policy, "
           "thresholds = excluded.thresholds")
      .bind_text(1, to_string(spec.scope.kind)).bind_text(2, spec.scope.key)
      .bind_text(3, spec.scope.value).bind_text(4, to_string(spec.window))
      .bind_text(5, spec.time_zone.empty() ? "UTC" : spec.time_zone).bind(6, ln).bind(7, la)
      .bind_text(8, to_string(spec.policy)).bind_text(9, encode_thresholds(spec.thresholds_pct))
      .bind(10, now_us()).run();
  int64_t id = 0;
  {
    auto s = impl_->q("SELECT id FROM budgets WHERE scope_kind = ? AND scope_key = ? AND "
                      "scope_value = ? AND period = ?");
    s.bind_text(1, to_string(spec.scope.kind)).bind_text(2, spec.scope.key)
        .bind_text(3, spec.scope.value).bind_text(4, to_string(spec.window));
    s.step();
    id = s.i64(0);
  }
  impl_->bump_gen();
  impl_->bump_epoch();  // inside the transaction: see sync_state()
  txn.commit();
  return id;
}

bool SqliteLedger::remove_budget(const BudgetScope& scope, Window window) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  Impl::Txn txn(*impl_);
  int64_t id = 0;
  {
    auto s = impl_->q("SELECT id FROM budgets WHERE scope_kind = ? AND scope_key = ? AND "
                      "scope_value = ? AND period = ?");
    s.bind_text(1, to_string(scope.kind)).bind_text(2, scope.key).bind_text(3, scope.value)
        .bind_text(4, to_string(window));
    if (!s.step()) return false;
    id = s.i64(0);
  }
  impl_->q("DELETE FROM budgets WHERE id = ?").bind(1, id).run();
  impl_->q("DELETE FROM budget_windows WHERE budget_id = ?").bind(1, id).run();
  impl_->bump_gen();
  impl_->bump_epoch();
  txn.commit();
  return true;
}

std::vector<Budget> SqliteLedger::budgets() {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  Impl::Txn txn(*impl_);
  impl_->read_state();
  txn.commit();
  return impl_->bset->budgets;
}

std::vector<BudgetState> SqliteLedger::budget_states(const SpendScope& scope, TimeUs at, bool all) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  if (at == 0) at = now_us();
  Impl::Txn txn(*impl_);
  impl_->read_state();
  std::vector<BudgetState> out;
  const auto matched = impl_->match(scope, at, all);
  const Impl::ProcessView view = impl_->process_view();
  for (const auto& m : matched) {
    // This process's unused lease money is not reserved for anything yet.
    Money reserved = m.counter.reserved;
    if (auto f = view.free.find({m.budget->id, m.start}); f != view.free.end()) reserved -= f->second;
    if (reserved.is_negative()) reserved = Money();
    out.push_back({*m.budget, m.start, m.end, m.counter.spent, reserved});
  }
  txn.commit();
  return out;
}

ReserveOutcome SqliteLedger::reserve(const ReserveRequest& r) {
  if (r.amount.is_negative()) throw InvalidArgument("reservation amount must be >= 0");
  if (r.ttl_us <= 0) throw InvalidArgument("reservation ttl must be > 0");
  check_scope(r.scope);
  const TimeUs at = r.at != 0 ? r.at : now_us();
  if (impl_->leases_on) {
    impl_->check_pid();
    if (auto out = impl_->reserve_fast(r, at)) return std::move(*out);
    return impl_->transact([&] { return impl_->reserve_slow(r, at); });
  }
  return impl_->transact([&] { return reserve_in_txn(r, at); });
}

std::optional<ReserveOutcome> SqliteLedger::try_reserve_local(const ReserveRequest& r) {
  if (!impl_->leases_on) return std::nullopt;
  if (r.amount.is_negative()) throw InvalidArgument("reservation amount must be >= 0");
  if (r.ttl_us <= 0) throw InvalidArgument("reservation ttl must be > 0");
  check_scope(r.scope);
  impl_->check_pid();
  return impl_->reserve_fast(r, r.at != 0 ? r.at : now_us());
}

ReserveOutcome SqliteLedger::reserve_in_txn(const ReserveRequest& r, TimeUs at) {
  bool reclaimed = false;
  if (std::chrono::steady_clock::now() - impl_->last_reclaim >=
      std::chrono::microseconds(impl_->options.reclaim_interval_us)) {
    impl_->reclaim_locked(at);
    reclaimed = true;
  }
  for (;;) {
    ReserveOutcome out;
    if (auto cut = impl_->sync_state()) {
      out.status = ReserveStatus::kCutoff;
      out.cutoff_reason = *cut;
      return out;
    }
    auto matched = impl_->match(r.scope, at, false);
    const Impl::Matched* refuse = nullptr;
    const Impl::Matched* downgrade = nullptr;
    for (const auto& m : matched) {
      const BudgetState st{*m.budget, m.start, m.end, m.counter.spent, m.counter.reserved};
      if (!out.remaining || st.remaining() < *out.remaining) out.remaining = st.remaining();
      if (m.counter.spent + m.counter.reserved + r.amount > m.budget->limit) {
        if (m.budget->policy == Policy::kRefuse && !refuse) refuse = &m;
        if (m.budget->policy == Policy::kDowngrade && !downgrade) downgrade = &m;
      }
    }
    if (const Impl::Matched* b = refuse ? refuse : downgrade) {
      if (!reclaimed && impl_->reclaim_locked(at) > 0) {
        reclaimed = true;
        continue;  // dead reservations freed room: check again
      }
      out.status = ReserveStatus::kExceeded;
      out.blocking = BudgetState{*b->budget, b->start, b->end, b->counter.spent, b->counter.reserved};
      return out;  // the batch commits new counters and reclaims
    }
    const auto [an, aa] = split(r.amount);
    std::string windows;  // the counters this reservation is charged to: "budget:start;..."
    for (const auto& m : matched) {
      windows += std::to_string(m.budget->id) + ":" + std::to_string(m.start) + ";";
    }
    impl_->q("INSERT INTO reservations(pid, pid_start, host, created_at, expires_at, amount_nanos, "
             "amount_attos, project, conversation, tags, model, task_id, windows) VALUES "
             "(?,?,?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, impl_->pid).bind(2, impl_->pid_start).bind(3, impl_->host).bind(4, at)
        .bind(5, at + r.ttl_us).bind(6, an).bind(7, aa).bind(8, r.scope.project)
        .bind(9, r.scope.conversation).bind(10, encode_tags(r.scope.tags)).bind(11, r.model)
        .bind(12, r.task_id).bind_text(13, windows).run();
    out.reservation_id = sqlite3_last_insert_rowid(impl_->db);
    for (auto& m : matched) {
      m.counter.reserved += r.amount;
      impl_->write_counter(m.budget->id, m.start, m.counter);
    }
    return out;
  }
}

SettleOutcome SqliteLedger::settle(int64_t reservation_id, CallRecord call) {
  const TimeUs now = now_us();
  if (reservation_id < 0) return impl_->settle_sub(reservation_id, std::move(call), now);
  return impl_->transact([&] {
  bool found = false;
  {
    auto s = impl_->q("SELECT created_at, project, conversation, tags, amount_nanos, amount_attos "
                      "FROM reservations WHERE id = ?");
    s.bind(1, reservation_id);
    if (s.step()) {
      found = true;
      call.at = s.i64(0);
      call.scope.project = s.text(1);
      call.scope.conversation = s.text(2);
      call.scope.tags = decode_tags(s.text(3));
      // Spent past its reservation: other processes' leases must re-check the true remaining.
      if (impl_->leases_on && call.cost > join(s.i64(4), s.i64(5))) {
        impl_->bump_gen();
        impl_->bump_epoch();
      }
    }
  }
  if (found) impl_->remove_reservation(reservation_id);
  if (call.at == 0) call.at = now;
  SettleOutcome out = impl_->insert_call(call);
  out.reservation_found = found;
  return out;
  });
}

bool SqliteLedger::release(int64_t reservation_id) {
  if (reservation_id < 0) {
    impl_->check_pid();
    return impl_->release_sub(reservation_id);
  }
  return impl_->transact([&] { return impl_->remove_reservation(reservation_id); });
}

SettleOutcome SqliteLedger::record(CallRecord call) {
  if (call.at == 0) call.at = now_us();
  return impl_->transact([&] { return impl_->insert_call(call); });
}

int64_t SqliteLedger::reclaim(TimeUs at) {
  if (at == 0) at = now_us();
  return impl_->transact([&] {
    if (impl_->leases_on) {
      std::lock_guard lk(impl_->lmu);
      impl_->purge_expired_subs(at);
    }
    return impl_->reclaim_locked(at);
  });
}

std::pair<int64_t, Money> SqliteLedger::live_reservations() {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  // Other processes' leases count whole (their money is set aside); this object's lease rows
  // are replaced by the reservations it served from them.
  auto s = impl_->q("SELECT COUNT(*), COALESCE(SUM(amount_nanos), 0), COALESCE(SUM(amount_attos), 0) "
                    "FROM reservations WHERE NOT (lease = 1 AND amount_nanos = 0 AND "
                    "amount_attos = 0)");
  s.step();
  int64_t n = s.i64(0);
  Money sum = join(s.i64(1), s.i64(2));
  const Impl::ProcessView view = impl_->process_view();
  for (const int64_t id : view.lease_rows) {
    auto r = impl_->q("SELECT amount_nanos, amount_attos FROM reservations WHERE id = ?");
    r.bind(1, id);
    if (!r.step()) continue;
    const Money amount = join(r.i64(0), r.i64(1));
    if (amount.is_zero()) continue;
    --n;
    sum -= amount;
  }
  n += view.subs;
  sum += view.held;
  return {n, sum};
}

void SqliteLedger::set_cutoff(std::optional<std::string> reason) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  Impl::Txn txn(*impl_);
  auto s = impl_->q("UPDATE state SET cutoff_reason = ?, cutoff_at = ? WHERE id = 1");
  if (reason) {
    s.bind_text(1, *reason).bind(2, now_us());
  } else {
    s.bind_null(1).bind_null(2);
  }
  s.run();
  impl_->bump_epoch();  // inside the transaction: see sync_state()
  txn.commit();
}

std::optional<std::string> SqliteLedger::cutoff() {
  impl_->check_pid();
  if (impl_->has_epoch) {
    // Served from this process's cache while no writer has bumped the epoch since it was read.
    const uint64_t e = impl_->load_epoch();
    std::lock_guard lk(impl_->lmu);
    if (impl_->state_valid && e == impl_->cached_epoch) return impl_->cached_cutoff;
  }
  std::lock_guard lock(impl_->mu);
  auto s = impl_->q("SELECT cutoff_reason FROM state WHERE id = 1");
  if (!s.step() || s.null(0)) return std::nullopt;
  return s.text(0);
}

std::vector<CallRecord> SqliteLedger::calls(const CallQuery& cq) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  std::string sql = std::string("SELECT ") + kCallColumns + " FROM calls" + Impl::where(cq) +
                    (cq.limit >= 0 ? " ORDER BY id DESC LIMIT :limit" : " ORDER BY id");
  auto s = impl_->q(sql);
  Impl::bind_query(s, cq);
  if (cq.limit >= 0) s.bind(":limit", cq.limit);
  std::vector<CallRecord> out;
  while (s.step()) {
    CallRecord c;
    c.id = s.i64(0);
    c.at = s.i64(1);
    c.scope.project = s.text(2);
    c.scope.conversation = s.text(3);
    c.task_id = s.text(4);
    c.task_type = s.text(5);
    c.model_requested = s.text(6);
    c.model_used = s.text(7);
    c.provider = s.text(8);
    c.generation_id = s.text(9);
    c.prompt_tokens = s.i64(10);
    c.completion_tokens = s.i64(11);
    c.cached_tokens = s.i64(12);
    c.cache_write_tokens = s.i64(13);
    c.reasoning_tokens = s.i64(14);
    if (!s.null(15)) c.estimated_cost = join(s.i64(15), s.i64(16));
    c.cost = join(s.i64(17), s.i64(18));
    c.latency_us = s.null(19) ? -1 : s.i64(19);
    c.ttft_us = s.null(20) ? -1 : s.i64(20);
    c.outcome = s.text(21);
    c.error_class = s.text(22);
    c.attempts = static_cast<int32_t>(s.i64(23));
    c.cost_source = s.text(24);
    c.scope.tags = decode_tags(s.text(25));
    std::sort(c.scope.tags.begin(), c.scope.tags.end());
    out.push_back(std::move(c));
  }
  if (cq.limit >= 0) std::reverse(out.begin(), out.end());
  return out;
}

Money SqliteLedger::total_cost(const CallQuery& cq) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  auto s = impl_->q("SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(cost_attos), 0) FROM calls" +
                    Impl::where(cq));
  Impl::bind_query(s, cq);
  s.step();
  return join(s.i64(0), s.i64(1));
}

std::vector<ReportRow> SqliteLedger::report(const CallQuery& cq, std::string_view period,
                                            std::string_view by) {
  std::string period_sql;
  if (period == "day" || period == "daily") {
    period_sql = "strftime('%Y-%m-%d', ts / 1000000, 'unixepoch')";
  } else if (period == "week" || period == "weekly") {
    period_sql = "date(ts / 1000000, 'unixepoch', 'weekday 0', '-6 days')";  // Monday
  } else if (period == "month" || period == "monthly") {
    period_sql = "strftime('%Y-%m', ts / 1000000, 'unixepoch')";
  } else if (period == "hour") {
    period_sql = "strftime('%Y-%m-%dT%H', ts / 1000000, 'unixepoch')";
  } else if (period == "total" || period.empty()) {
    period_sql = "'total'";
  } else {
    throw InvalidArgument("report period must be hour, day, week, month or total, got '" +
                          std::string(period) + "'");
  }
  std::string key_sql;
  std::string tag_key;
  static const char* const kColumns[] = {"model", "model_requested", "project", "provider",
                                         "task_type", "conversation", "outcome", "error_class",
                                         "task_id"};
  if (by.empty() || by == "none") {
    key_sql = "''";
  } else if (by.substr(0, 4) == "tag:" && by.size() > 4) {
    tag_key = by.substr(4);
    key_sql = "(SELECT value FROM call_tags WHERE call_id = calls.id AND key = :by_tag)";
  } else if (std::find(std::begin(kColumns), std::end(kColumns), by) != std::end(kColumns)) {
    key_sql = by == "model" ? "model_used" : std::string(by);
  } else {
    throw InvalidArgument("report cannot group by '" + std::string(by) +
                          "' (model, model_requested, project, provider, task_type, "
                          "conversation, outcome, error_class, task_id, tag:<key>)");
  }
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  const std::string sql =
      "SELECT " + period_sql + " AS p, COALESCE(" + key_sql + ", '') AS k, COUNT(*), "
      "SUM(outcome != 'ok'), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos), "
      "SUM(cost_attos), COALESCE(SUM(est_nanos), 0), COALESCE(SUM(est_attos), 0), "
      "COALESCE(SUM(CASE WHEN est_nanos IS NOT NULL THEN cost_nanos END), 0), "
      "COALESCE(SUM(CASE WHEN est_nanos IS NOT NULL THEN cost_attos END), 0), "
      "COALESCE(SUM(latency_us), 0), COUNT(latency_us) FROM calls" +
      Impl::where(cq) + " GROUP BY p, k ORDER BY p, k";
  auto s = impl_->q(sql);
  Impl::bind_query(s, cq);
  if (!tag_key.empty()) s.bind(":by_tag", std::string_view(tag_key));
  std::vector<ReportRow> out;
  while (s.step()) {
    ReportRow r;
    r.period = s.text(0);
    r.key = s.text(1);
    r.calls = s.i64(2);
    r.errors = s.i64(3);
    r.prompt_tokens = s.i64(4);
    r.completion_tokens = s.i64(5);
    r.cost = join(s.i64(6), s.i64(7));
    r.estimated = join(s.i64(8), s.i64(9));
    r.cost_of_estimated = join(s.i64(10), s.i64(11));
    r.latency_us_sum = s.i64(12);
    r.latency_count = s.i64(13);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Alert> SqliteLedger::alerts(TimeUs from) {
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  auto s = impl_->q("SELECT budget_id, budget_name, threshold_pct, window_start, fired_at, "
                    "spent_nanos, spent_attos, limit_nanos, limit_attos FROM alerts WHERE "
                    "fired_at >= ? ORDER BY fired_at, budget_id, threshold_pct");
  s.bind(1, from);
  std::vector<Alert> out;
  while (s.step()) {
    out.push_back({s.i64(0), s.text(1), static_cast<int32_t>(s.i64(2)), s.i64(3), s.i64(4),
                   join(s.i64(5), s.i64(6)), join(s.i64(7), s.i64(8))});
  }
  return out;
}

std::optional<int64_t> SqliteLedger::completion_quantile(std::string_view task_type,
                                                         std::string_view model, double q,
                                                         int64_t last_n) {
  if (!(q >= 0.0 && q <= 1.0)) throw InvalidArgument("quantile must be in [0, 1]");
  std::lock_guard lock(impl_->mu);
  impl_->check_pid();
  auto s = impl_->q("SELECT completion_tokens FROM calls WHERE task_type = ? AND model_used = ? "
                    "AND outcome = 'ok' ORDER BY id DESC LIMIT ?");
  s.bind_text(1, task_type).bind_text(2, model).bind(3, last_n);
  std::vector<int64_t> v;
  while (s.step()) v.push_back(s.i64(0));
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least q of the sample at or below it.
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[rank == 0 ? 0 : std::min(rank, v.size()) - 1];
}

}  // namespace orroute
