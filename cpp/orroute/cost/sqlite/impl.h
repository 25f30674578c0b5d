// SqliteLedger's state and its operations, shared by the files under cost/sqlite/ (one concept
// each: connection, schema, shared state, process registry, group commit, budgets, reservations,
// leases, call rows, queries). See sqlite_ledger.h for the design.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/cost/ledger.h"
#include "orroute/cost/sqlite/fork_gate.h"
#include "orroute/cost/sqlite/process.h"
#include "orroute/cost/sqlite/query.h"
#include "orroute/cost/sqlite_ledger.h"
#include "orroute/cost/window.h"

// The id of a new reservation row, as SQL: past every id in use and every one the reclaim
// booked as abandoned, whose owner may still settle it late (settle_abandoned). SQLite gives a
// new row the largest rowid + 1, which is the id of a reservation just reclaimed when it was the
// newest. A macro: the statements are string literals (Impl::q caches them by address).
#define ORROUTE_NEW_RESERVATION_ID                                                        \
  "(SELECT MAX(COALESCE((SELECT MAX(id) FROM reservations), 0), "                         \
  "COALESCE((SELECT MAX(reservation) FROM abandoned), 0)) + 1)"

namespace orroute {

struct SqliteLedger::Impl {
  std::string path;
  SqliteLedgerOptions options;
  sqlite3* db = nullptr;
  std::mutex mu;  // the connection's: taken with Locked, never alone
  // The connection in use: fork() waits for it to be given back (sqlite::ForkGate), then `mu`.
  struct Locked {
    explicit Locked(Impl& impl) : lock(impl.mu) {}
    sqlite::ForkGate gate;  // first in, last out
    std::lock_guard<std::mutex> lock;
  };
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

  void open_sidecar();

  // ---- money in flight, published for the reclaim of a dead process (held_slots.cpp) ----
  // The sidecar holds a table of slots, one per lease row that has one: its row id, created_at
  // and the money its reservations in flight hold (`held`, in nano-dollars, each reservation
  // rounded up). A process writes its leases' held money there as it changes (a store to shared
  // memory, no statement), so that when it dies with calls in flight, whoever reclaims its lease
  // books that much of the row as spent (those calls were sent and may be billed) and releases
  // the rest (free money, and settled reservations whose cost is already spent). A lease without
  // a slot (no sidecar, the table full, the process gone before it took one) is booked whole.
  // A slot is taken by a compare-and-swap of `owner` (0: free) and freed by storing 0 there
  // last, after the other fields. `owner` names the process (slot_owner_tag), so that a slot
  // whose process died without freeing it (while taking it, or after its row was reclaimed by
  // another host's process, which leaves the slot to its owner) is freed by the next reclaim on
  // this host (free_orphan_slots): else each death could lose one of the kHeldSlots for good.
  struct HeldSlot {
    int64_t row_id;      // 0: none (free, or being taken)
    int64_t created_at;  // of the row
    int64_t held_nanos;
    int64_t owner;       // 0: free. (Older builds left it 0 and took a slot by its row_id.)
  };
  struct Lease;
  static constexpr size_t kHeldSlots = 1024;
  static constexpr size_t kHeldSlotsOffset = 64;  // after the epoch's cache line
  static constexpr size_t kSidecarSize = kHeldSlotsOffset + kHeldSlots * sizeof(HeldSlot);
  HeldSlot* held_slots = nullptr;  // in the sidecar; null without one
  // Takes a free slot for a lease row of this process (after its row committed); null when the
  // table is full or there is no sidecar.
  HeldSlot* take_held_slot(int64_t row_id, TimeUs created_at);
  // A reservation of `amount` served from the lease starts (hold) or ends (unhold): its held
  // money, and its slot's (the amount rounded up to nano-dollars, the same both ways). Under lmu.
  static void hold(Lease& lease, Money amount);
  static void unhold(Lease& lease, Money amount);
  // For the reclaim of a dead process's lease row: the money its slot says was in flight (the
  // slot is freed), or nullopt when the row has no slot.
  std::optional<Money> take_dead_held(int64_t row_id, TimeUs created_at);
  // The same for a lease row whose owner may live (another host's, expired): the slot is left
  // to its owner, who frees it when it finds its row gone (freed here, it could be taken by
  // another lease while the owner still writes to it).
  std::optional<Money> peek_held(int64_t row_id, TimeUs created_at);
  HeldSlot* find_held_slot(int64_t row_id, TimeUs created_at);
  static Money held_in(HeldSlot& slot);
  // Frees a slot (its owner's, or a reclaim's once its owner is gone): `owner` last.
  static void free_held_slot(HeldSlot& slot);
  // In a write transaction (reclaims are serialized by the write lock): frees every slot whose
  // owner, a process of this machine (boot id, host name, PID namespace), is gone and whose lease row no longer
  // exists (a row that does is booked, and its slot freed, by the reclaim of that row).
  void free_orphan_slots();
  int64_t slot_owner = 0;  // this process's tag in a slot's `owner` (sqlite::slot_owner_tag)
  // `amount` as a slot holds it: rounded up to nano-dollars.
  static Money as_held(Money amount);

  // ---- budget leases ----
  // A lease is one `reservations` row (lease = 1, or 2 with write-behind settles) of this
  // process charged to the reserved counters of a set of budget windows, exactly like a
  // reservation; locally it is split into `free` (not yet handed out) and `held`
  // (sub-reservations in flight). Guarded by `lmu`.
  using WindowKey = std::vector<std::pair<int64_t, TimeUs>>;
  // A grant covers this many calls of the reserving call's size (never more than 1/8 of what
  // the budgets have left): the minimum, and the most for a lease refilled again and again.
  static constexpr int64_t kMinGrantCalls = 32;
  static constexpr int64_t kMaxGrantCalls = 1024;
  struct Lease {
    int64_t row_id = 0;
    TimeUs created_at = 0;  // of the row: with row_id and this process, what names the row
    WindowKey windows;
    std::string windows_text;
    TimeUs window_end = 0;  // earliest end of its windows
    TimeUs expires_at = 0;  // of the row
    Money free, held;
    // Reservations settled while the row was left alone: still in the row's amount and in the
    // windows' reserved counters (their cost is in spent), taken off both by the next
    // transaction that writes the row anyway (a grant, a return, an expiry refresh). Saves a
    // page per settle; always zero with write-behind settles (whose rows burn as spent).
    Money consumed;
    // Grants are sized to how fast the lease is used (grant_calls_for): the calls of a
    // reservation's size the next grant covers, and when the last grant committed.
    int64_t grant_calls = kMinGrantCalls;
    TimeUs granted_at = 0;
    int64_t pending = 0;    // claims of transactions not yet committed
    bool closing = false;   // being deleted by an uncommitted transaction
    bool dead = false;      // row gone (reclaimed or deleted)
    HeldSlot* slot = nullptr;  // where `held` is published for a reclaim (null: none)
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

  // Budget-window counters and lease rows this connection read or wrote inside its running
  // write transaction, served again without a statement: while the write lock is held only this
  // connection changes the file. A counter written in the transaction stays here (dirty) and is
  // written once, before COMMIT (flush_counters): a settle batch of one lease and two budgets
  // reads each counter once and writes it once, instead of a read and a write per settle.
  // Emptied when a write transaction begins or ends; a job's savepoint restores what it held
  // before the job (run_batch); lease rows are also forgotten on any change to the reservations
  // table (reservations_changed, the connection's update hook).
  // Vectors, searched linearly (a call matches a few budgets), so that a transaction and a job's
  // snapshot reuse their capacity instead of allocating.
  struct TxnReads {
    struct Entry {
      std::pair<int64_t, TimeUs> window;
      Counter counter;
      bool dirty = false;  // written here, not yet in the file
    };
    std::vector<Entry> counters;
    std::vector<std::pair<int64_t, TimeUs>> lease_rows;  // (row id, created_at) seen to exist
    // The ids this connection's calls took one after another since its last complete block of
    // 64 (schema 5's calls_blocks), and the span of their times: the block's row, without
    // reading its calls back (note_call). Forgotten with the rest when another connection
    // writes or a transaction rolls back (whose ids the next call may be given again).
    struct OwnCalls {
      int64_t first = 0, last = -1;
      TimeUs min_ts = 0, max_ts = 0;
    } own_calls;
    int64_t unused_ids_from = -1;  // no call had an id from here on (-1: not read; unused_id)
    Entry* find(const std::pair<int64_t, TimeUs>& window) {
      for (Entry& e : counters) {
        if (e.window == window) return &e;
      }
      return nullptr;
    }
    void set(const std::pair<int64_t, TimeUs>& window, const Counter& c, bool dirty) {
      if (Entry* e = find(window)) {
        e->counter = c;
        e->dirty = dirty;
      } else {
        counters.push_back({window, c, dirty});
      }
    }
    void clear() {
      counters.clear();
      lease_rows.clear();
      own_calls = {};
      unused_ids_from = -1;
    }
  };
  TxnReads txn_reads;
  TxnReads txn_reads_before_job;  // run_batch: txn_reads when the running job's savepoint began
  // What a committed transaction read and wrote stays true until another connection (or this
  // one outside a Txn) changes the file, which moves SQLite's data version
  // (SQLITE_FCNTL_DATA_VERSION: every commit, this connection's own included, and every change
  // a new read transaction finds, bump it). So txn_reads outlives the Txn that filled it when
  // it committed, and the next Txn keeps it while the version is the one read right after that
  // COMMIT: at concurrency 1 a settle then reads neither its counters nor its lease row (two
  // statements of six). nullopt: nothing kept (a rollback, or the version could not be read).
  std::optional<uint32_t> reads_version;
  static constexpr size_t kMaxKeptReads = 64;
  std::optional<uint32_t> data_version() const {
    unsigned int v = 0;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK) return std::nullopt;
    return v;
  }
  // Alerts (budget id, window start, threshold) known to be in the file: a settle past a
  // threshold skips its INSERT OR IGNORE (alerts are never deleted and budget ids never reused).
  // Filled when the transaction that inserted or found the row commits; under `mu`; emptied when
  // it holds kMaxKnownAlerts (many conversation budgets).
  std::set<std::tuple<int64_t, TimeUs, int32_t>> known_alerts;
  static constexpr size_t kMaxKnownAlerts = 4096;
  bool in_write_txn = false;  // a Txn is open (BEGIN IMMEDIATE ran, no COMMIT/ROLLBACK yet)
  static void reservations_changed(void* self, int op, const char* db_name, const char* table,
                                   sqlite3_int64 row);

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

  void register_open();
  // A connection to `path` for this process (SqliteLedger's PerProcess).
  // In a forked child, an in-memory ledger is opened as a copy of `copy_of` (the parent's).
  static std::shared_ptr<Impl> open_here(const std::string& path, SqliteLedgerOptions options,
                                         const Impl* copy_of);
  // Replaces this (new, in-memory) connection's content with that of `parent`'s connection.
  void copy_from(const Impl& parent);

  // This process's view across its objects on this file: free lease money per window, the
  // lease rows, and the reservations served from them. Caller holds `mu` (never an lmu).
  struct ProcessView {
    std::map<std::pair<int64_t, TimeUs>, Money> free;
    std::vector<int64_t> lease_rows;
    int64_t subs = 0;
    Money held;
  };
  ProcessView process_view();

  ~Impl();

  void exec(const char* sql);

  // Hot path: statements from string literals are cached by address (no hashing of the text).
  sqlite::Query q(const char* sql);

  sqlite3_stmt* prepare(const char* sql);

  sqlite::Query q(const std::string& sql);

  // SQLite's busy handler: waits for another connection's write lock up to busy_timeout_ms, in
  // steps of tens of microseconds. (sqlite3_busy_timeout sleeps 1, 2, 5, 10... ms per retry while
  // a writer holds the lock ~50 µs: with several processes on one file the lock then sits idle
  // while they sleep, and throughput falls as processes are added.) Returns 0 to give up.
  static int busy_wait(void* self, int count);
  std::chrono::steady_clock::time_point busy_since{};  // of the current wait
  // Set while migrate() brings a file another process is migrating (calls_blocks_building in
  // it) to this schema: the lock's holder is migrating it (an index's drop holds the lock for as
  // long as its pages take, past a busy timeout on a large file) or writing a call, and this
  // process waits for it with no timeout rather than fail to open the file.
  bool waiting_for_migration = false;

  // RAII write transaction. BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
  // timeout), so the reads inside see the state the writes are based on: check-and-reserve is
  // atomic across processes.
  class Txn {
   public:
    explicit Txn(Impl& impl) : impl_(impl) {
      impl_.q("BEGIN IMMEDIATE").run();
      // The write lock is held and the read snapshot taken: the version says whether anyone
      // changed the file since this connection's last COMMIT (reads_version).
      const std::optional<uint32_t> kept = std::exchange(impl_.reads_version, std::nullopt);
      // A long-lived object touches new windows (days, conversations): what it keeps stays small.
      if (!kept || impl_.data_version() != kept || impl_.txn_reads.counters.size() > kMaxKeptReads ||
          impl_.txn_reads.lease_rows.size() > kMaxKeptReads) {
        impl_.txn_reads.clear();
      }
      impl_.in_write_txn = true;
    }
    ~Txn() {
      if (!done_) {
        sqlite3_exec(impl_.db, "ROLLBACK", nullptr, nullptr, nullptr);
        impl_.txn_reads.clear();
      }
      impl_.in_write_txn = false;
    }
    void commit() {
      impl_.flush_counters();
      impl_.q("COMMIT").run();
      done_ = true;
      impl_.reads_version = impl_.data_version();  // txn_reads is what the file now holds
    }

   private:
    Impl& impl_;
    bool done_ = false;
  };

  // ---- group commit ----
  // Money operations from many threads are batched: the first waiting thread becomes the leader,
  // takes the write lock, then every queued job (those that queued while it waited included), and
  // runs them in one BEGIN IMMEDIATE transaction; a failing job is left out alone (run_batch).
  // One commit (one WAL append) then serves the
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

  void fail_job(Job& job);

  void commit_job(Job& job);

  // Runs a batch as the leader: takes the write lock, then every queued job; returns them.
  // The jobs first run one after another with nothing between them (run_together); only when
  // one fails is the transaction rolled back and the others run again, each in its own
  // SAVEPOINT (run_apart), so that the failed job is left out alone. A savepoint per job in
  // every batch cost ~4k instructions a settle: SQLite copies, per job, every page the job
  // changes that an earlier job of the batch had changed already (the calls table's last
  // pages, its indexes', the counters').
  std::vector<Job*> run_batch();
  // Runs `job` as the current job; false when it threw (its error set, its local effects
  // undone).
  bool run_job(Job& job);
  // Runs every job of `batch` in the open transaction. Returns the first that threw (its error
  // set, its local effects undone), after undoing the local effects of those before it: the
  // transaction must then be rolled back. nullptr when all ran.
  Job* run_together(const std::vector<Job*>& batch);
  // Runs the jobs of `batch` not failed yet, each in its own savepoint: one that throws is
  // rolled back alone.
  void run_apart(const std::vector<Job*>& batch);

  // Queues `jobs` together (so they ride in one batch, one savepoint each) and waits until all
  // have run; returns each one's failure (null when it committed).
  std::vector<std::exception_ptr> transact_all(std::vector<std::function<void()>> jobs);
  // The waiting/leading loop of transact and transact_all; `lk` holds queue_mu.
  void wait_jobs(std::unique_lock<std::mutex>& lk, const std::vector<Job*>& mine);

  // Leadership is handed over, not raced for: when a batch ends and jobs are queued, the oldest
  // queued job's thread leads next, so a thread returning from a batch cannot start a new batch
  // holding only its own next job while the others are still waking up (batches stay large).
  template <class F>
  auto transact(F&& body) -> decltype(body()) {
    using R = decltype(body());
    std::optional<R> result;
    Job job;
    job.run = [&] { result.emplace(body()); };
    std::unique_lock lk(queue_mu);
    queue.push_back(&job);
    wait_jobs(lk, {&job});
    lk.unlock();
    if (job.error) std::rethrow_exception(job.error);
    return std::move(*result);
  }

  // Opens the connection; with `copy_of` (an in-memory ledger in a forked child), as a copy of
  // that connection's content (copy_from).
  void open(const Impl* copy_of = nullptr);

  int64_t version();

  // Brings the file to kSchemaVersion: the migrations in one transaction, but for migration
  // 5's calls_blocks, mostly built ahead of it by build_blocks_ahead. Returns once the file is
  // at kSchemaVersion, whoever migrated it.
  void migrate();
  // While the file is at schema 4: calls_blocks_building filled in transactions of
  // options.migration_batch_calls calls each, then the calls' two indexes dropped in one each,
  // kBatchPause apart, so that the write lock is held against other processes (an older
  // orroute settling calls on the file, this one's other processes migrating too: each
  // transaction takes the next step) for one step at a time. Resumes where a stopped migration
  // left it.
  void build_blocks_ahead();
  // Runs `step` in a transaction of its own if the file is still at schema 4 (false if not),
  // then leaves the lock free for kBatchPause.
  bool step_at_schema_4(const std::function<void()>& step);
  static constexpr std::chrono::milliseconds kBatchPause{10};
  // Adds the next `most` complete blocks of calls (or fewer: those left) to
  // calls_blocks_building, made if missing; true while more are left. In a write transaction.
  bool build_blocks(int64_t most);

  // ---- budgets ----

  void load_budgets(int64_t gen);

  // Reads the shared state row (inside a transaction) and refreshes the budget cache.
  std::optional<std::string> read_state();

  // Inside a write transaction (the write lock held, so no other writer is between its change
  // and its epoch bump): the cutoff, reading the state row only if the epoch moved since this
  // process last cached it. Caches what it read once the batch commits.
  std::optional<std::string> sync_state();

  void bump_gen() { q("UPDATE state SET budget_gen = budget_gen + 1 WHERE id = 1").run(); }

  // A budget window's counter, created (from the calls already recorded in it) on first use.
  Counter counter(const Budget& b, TimeUs start, TimeUs end);
  // The counter if its window exists; no statement when this transaction already read it.
  std::optional<Counter> existing_counter(int64_t budget_id, TimeUs start);

  // Sets a window's counter: in the file now, or (inside a write transaction, for a window it
  // read) at its commit.
  void write_counter(int64_t budget_id, TimeUs start, const Counter& c);
  // Writes the counters the running transaction changed (Txn::commit, before COMMIT).
  void flush_counters();
  // The UPDATE of a window's row; false if the window has none.
  bool update_counter_row(int64_t budget_id, TimeUs start, const Counter& c);

  std::vector<Matched> match(const SpendScope& scope, TimeUs at, bool all);

  // ---- reservations ----

  // Removes a reservation and its share of the counters; `as_spent` moves that share to spent
  // instead of freeing it (a dead process's write-behind lease). false if it does not exist.
  bool remove_reservation(int64_t id, bool as_spent = false);
  // Reclaims a reservation whose owner is gone (or cannot be checked): books `in_flight` of it
  // as spent with a call row (outcome "abandoned") and releases the rest. Money fails closed:
  // the calls it held may have been sent and billed, and no settle will come.
  // The booking names its reservation (table `abandoned`, schema 6) for settle_abandoned.
  void abandon_reservation(int64_t id, Money in_flight, const std::string& why, TimeUs at);
  // An abandoned row naming a reservation (table `abandoned`): the row's id, time, scope and
  // cost, and when the reclaim booked it. find_booking: the one naming reservation `id` made at
  // `created_at` (0: any).
  struct Booking {
    CallRecord row;
    TimeUs reclaimed_at = 0;
  };
  std::optional<Booking> find_booking(int64_t id, TimeUs created_at);
  // Writes `call`'s columns over the row `call.id` (a booking taken over).
  void rewrite_call(const CallRecord& call);
  // The settle of a reservation the reclaim booked as abandoned (its owner lived: a call slower
  // than its expiry, on another host): `call` replaces `share` of that booking, so the call is
  // counted once. A plain reservation's booking is all its own (`share` nullopt); a lease's
  // stands for every call it held in flight at the reclaim, and a reservation it served is
  // `share` of it (0 if made after the reclaim). The row booked is taken over when the call
  // replaces what is left of it (one row for the call); else that much is taken off it and the
  // call gets a row of its own. nullopt (nothing written) when no booking names the
  // reservation `id` made at `created_at` (0: any), or the call had no share in it.
  struct LeaseShare {
    Money amount;       // the lease reservation's
    TimeUs served_at;   // when the lease served it
  };
  std::optional<SettleOutcome> settle_abandoned(int64_t id, TimeUs created_at,
                                                std::optional<LeaseShare> share, CallRecord& call,
                                                TimeUs now);
  // The part of `booking` a call of the reservation (`share` as settle_abandoned's) stands for.
  static Money share_of(const Booking& booking, const std::optional<LeaseShare>& share);
  // The release of a reservation the reclaim booked as abandoned (its owner lived, and its call
  // cost nothing: never sent, or cancelled before it was): its part of the booking is taken off
  // the row and the budgets, as a late settle at 0 would; a row left at 0 says so in its
  // cost_source, and no longer names the reservation (a settle of the id after it is a call of
  // its own). false when no booking names it or it had no part in one.
  bool release_abandoned(int64_t id, TimeUs created_at, std::optional<LeaseShare> share);

  // This object's reservations without a lease (positive ids) and when each was made: a settle
  // or a release names its row by id and that time. SQLite gives a deleted row's id again (the
  // id of a reservation the reclaim released when it was the newest; an older orroute's max+1
  // over an abandoned one), and a row with the id but another time is another call's
  // reservation, never this one's to settle. Under lmu; once it holds own_sweep_at, those expired
  // are forgotten (a settle then names its row by the id alone, as before), and the next sweep
  // waits for twice what is left (at least kMaxOwnReserved): a reserve costs O(1) amortised
  // however many are held, not a scan of them all each.
  struct OwnReservation {
    TimeUs created_at, expires_at;
  };
  std::unordered_map<int64_t, OwnReservation> own_reserved;
  static constexpr size_t kMaxOwnReserved = 4096;
  size_t own_sweep_at = kMaxOwnReserved;
  void remember_own(int64_t id, OwnReservation made);
  // When this object made reservation `id`; 0 when unknown (another object's, or forgotten).
  TimeUs own_created_at(int64_t id);
  // Inside a job: whether the reservation row `id` made at `created_at` (0: any) exists, a
  // plain reservation (never a lease's row).
  bool reservation_exists(int64_t id, TimeUs created_at);
  // The body of release() for a database reservation (positive id), inside a transaction.
  bool release_reserved_job(int64_t id);
  // In a forked child's in-memory copy: removes the leases of `owner` (the parent), which are its
  // money set aside for its own calls (they settle in its copy, never in this one); a write-behind
  // lease counts as spent (its settles queued in the parent's memory: fail closed, as reclaim).
  // Returns how many. In a transaction.
  int64_t drop_leases_of(int64_t owner);

  int64_t reclaim_locked(TimeUs at);

  // ---- leases (see the Lease struct); functions marked "under lmu" expect it held ----

  // Under lmu: forgets a lease whose row is gone; the reservations served from it stay to be
  // settled (settle_abandoned) or released.
  void drop_lease(const std::shared_ptr<Lease>& lease);

  // Under lmu: this process's lease money on one budget window that no call holds (free and
  // consumed): what its own view does not count as reserved.
  Money own_free(const std::pair<int64_t, TimeUs>& w) const;

  // Inside a job: takes a live lease's consumed money off its row and its windows' reserved
  // counters. false when there was none.
  bool flush_consumed(const std::shared_ptr<Lease>& lease);

  static std::string encode_windows(const WindowKey& key);

  // Adds `delta` (may be negative) to a window's reserved counter; no-op if the counter is gone
  // (its budget was removed).
  void add_reserved(int64_t budget_id, TimeUs start, Money delta);

  // Adds `delta` to a lease row's amount (exact nanos/attos carry, relative to what is stored so
  // that several jobs of one batch compose) and pushes its expiry to at least `expires`.
  // false if the row is gone.
  bool add_to_lease_row(const Lease& lease, Money delta, TimeUs expires);
  // Whether the lease's row still exists. A deleted row's id is reused by the next insert
  // (INTEGER PRIMARY KEY without AUTOINCREMENT), so every statement on a lease's row matches
  // the id and what only that row has (leases.cpp, kLeaseRow).
  bool lease_row_exists(const Lease& lease);
  // Deletes the lease's row; false if it was gone.
  bool delete_lease_row(const Lease& lease);
  // Binds ?1..?4 of a statement on a lease's row; the temporary query lives to the end of the
  // caller's full expression.
  sqlite::Query& lease_row(sqlite::Query&& q, const Lease& lease) const;

  // Gives a lease's free money back to its budgets (in the current job). With `drop_if_idle`
  // and nothing held, deletes the row too.
  void return_free(const std::shared_ptr<Lease>& lease, bool drop_if_idle);

  // Under lmu: drops reservations served from leases whose ttl passed (their money goes back to
  // the lease's free part).
  void purge_expired_subs(TimeUs at);

  // Under lmu: a new local reservation id.
  int64_t add_sub(int64_t id, const ReserveRequest& r, TimeUs at, std::shared_ptr<Lease> lease);

  // Under lmu: min over `key`'s windows of limit - spent - reserved as this process sees it
  // (its own free lease money not counted as reserved); nullopt if a window is unknown.
  std::optional<Money> cached_remaining(const WindowKey& key) const;

  // The lease fast path: no database access. nullopt when the slow path is needed.
  std::optional<ReserveOutcome> reserve_fast(const ReserveRequest& r, TimeUs at);

  // The lease slow path, inside a job: cutoff and budget changes, expired reservations, ended
  // windows, then take the request from this scope's lease, growing it (or creating it) in the
  // database by a grant sized to what is left.
  ReserveOutcome reserve_slow(const ReserveRequest& r, TimeUs at);
  // How many calls the next grant of `lease` (null: a new lease) covers at time `at`.
  int64_t grant_calls_for(const Lease* lease, TimeUs at) const;

  // Settles a reservation served from a lease (id < 0).
  SettleOutcome settle_sub(int64_t id, CallRecord call, TimeUs now);
  // Marks lease sub-reservation `id` as being settled and returns it; nullopt when it is gone
  // (expired, released) or another settle has it.
  std::optional<Sub> claim_sub(int64_t id);
  // The body of settle() for a database reservation (positive id), inside a transaction.
  SettleOutcome settle_reserved_job(int64_t id, CallRecord& call, TimeUs now);
  // The body of a settle whose reservation is gone: the row alone, inside a transaction.
  SettleOutcome settle_unreserved_job(CallRecord& call, TimeUs now);
  // Makes a claimed lease reservation settleable again (its settle failed). A claim is undone
  // by the settle's caller once the settle has failed for good, never by the job: a job that
  // ran in a batch rolled back for another job's failure runs again (run_batch).
  void unclaim_sub(int64_t id);
  // Inside a job: books `call` for the lease reservation `sub` (taken out of `subs`' reach by
  // its `settling` flag). Sets the call's time and scope to the reservation's (the same on every
  // run of the job).
  SettleOutcome settle_sub_job(int64_t id, const Sub& sub, CallRecord& call, TimeUs now);

  // ---- write-behind settles (options.settle_delay_us > 0; write_behind.cpp) ----
  // A settle served from a lease, within its reservation, is queued here and returns at once;
  // the queue is written by one group-committed batch (one savepoint per settle) when it holds
  // settle_batch calls, when its oldest is settle_delay_us old (the flusher thread), and before
  // any read, budget change or lease return of this object. Its money stays in the lease row
  // (reserved) until its batch commits, so a crash loses rows but never frees their money: a
  // dead process's write-behind lease (lease = 2) is counted as spent, not released.
  struct Behind {
    int64_t id;
    Sub sub;
    CallRecord call;
    TimeUs now;
    int attempts = 0;
  };
  bool behind_on = false;
  std::mutex bmu;  // guards the fields below; a leaf lock (nothing else is taken under it)
  std::condition_variable bcv;
  std::vector<Behind> behind;
  std::chrono::steady_clock::time_point behind_since{};  // when the oldest was queued
  // Alerts fired by writes no settle() returned (a timed write-behind batch, a reclaim's
  // abandoned rows): the next settle() or record() hands them out, or flush_settles().
  std::vector<Alert> late_alerts;
  std::atomic<bool> alerts_waiting{false};  // late_alerts may hold some (read without bmu)
  // Queues a reclaim's alerts for the next caller once its transaction commits (a rolled back
  // one fired nothing).
  void defer_alerts(std::vector<Alert> alerts);
  // Appends the queued alerts to `out` (the caller's outcome), each handed out once.
  void hand_out_late_alerts(std::vector<Alert>& out);
  bool flusher_stop = false;
  std::thread* flusher = nullptr;  // started at open; leaked in a forked child

  // Queues a settle; nullopt when it must be written now (not from a live lease, or above its
  // reservation). Writes the queue itself when it is full.
  std::optional<SettleOutcome> settle_behind(int64_t id, CallRecord& call, TimeUs now);
  // Writes every queued settle (one batch); returns the alerts nobody was handed yet. Throws the
  // first failure (the failed settles stay queued, up to 3 attempts each). With `also`, that job
  // rides last in the same batch (a lease's slow-path reserve: one transaction instead of two);
  // then only its failure is thrown, and the settles' alerts wait for the next settle().
  std::vector<Alert> flush_behind(const std::function<void()>& also = nullptr);
  // Before a read or a change of this object: its own queued settles are written first, so it
  // reads what it wrote (their alerts go to the next settle()).
  void flush_queued() {
    if (!behind_on) return;
    std::vector<Alert> alerts = flush_behind();
    std::lock_guard lk(bmu);
    for (Alert& a : alerts) late_alerts.push_back(std::move(a));
  }
  void flusher_loop();
  void start_flusher();
  void stop_flusher();

  // ---- the WAL checkpointer (checkpointer.cpp) ----
  // SQLite's automatic checkpoint runs in the commit that takes the WAL past
  // wal_autocheckpoint pages: a sync of the WAL, the pages copied to the database, its sync
  // (10-25 ms), with the write lock's queue waiting. Instead the connection's WAL hook
  // (wal_committed) wakes this object's own thread, which checkpoints (PASSIVE: it never blocks
  // a writer or a reader) on a connection of its own. A commit checkpoints inline only past
  // kHardLimitFactor times the threshold (the thread fell behind, or could not run): the WAL
  // stays bounded. A file only (":memory:" has no WAL).
  static constexpr int kHardLimitFactor = 4;
  int ckpt_threshold = 0;  // WAL frames that wake the thread (0: no checkpointer)
  sqlite3* ckpt_db = nullptr;  // the thread's own connection
  std::mutex cmu;  // guards the fields below; a leaf lock
  std::condition_variable ccv;
  bool ckpt_wanted = false, ckpt_stop = false;
  std::thread* checkpointer = nullptr;  // started at open; leaked in a forked child
  std::atomic<int64_t> ckpt_background{0}, ckpt_on_commit{0};  // checkpoints that ran
  // A commit's wait for a checkpoint in flight that ran out (busy_timeout_ms): the commits after
  // it try once without waiting until a checkpoint runs again (wal_committed).
  std::atomic<bool> ckpt_wait_futile{false};
  std::atomic<int64_t> ckpt_waits_given_up{0};
  std::atomic<int> wal_frames{0};  // the WAL's frames after this connection's last commit
  // The WAL's frames when the last checkpoint (the thread's or a commit's) looked at it. The
  // thread is woken once the WAL holds the threshold's worth of frames past this: under a
  // sustained rate the WAL never starts over (commits arrive while a checkpoint syncs), and a
  // wake per commit past the threshold ran one small checkpoint after another. Fewer frames
  // than this: the WAL started over (counts from 0 again).
  std::atomic<int> ckpt_mark{0};

  // sqlite3_wal_hook's callback: after every commit of `db`, with the WAL's frame count.
  static int wal_committed(void* self, sqlite3* db, const char* name, int frames);
  void start_checkpointer();
  void stop_checkpointer();
  void checkpointer_loop();

  // Releases a reservation served from a lease: local only.
  bool release_sub(int64_t id);

  // Gives back every lease's free money and deletes idle lease rows (a job).
  void return_all_leases();

  // ---- calls ----

  // Records the row and adds its cost to every matching budget's window; returns fired alerts.
  // With `lease`, also takes `released` off the reserved counters of the lease's windows (in the
  // same counter writes when they are the call's windows).
  SettleOutcome insert_call(CallRecord& c, const Lease* lease = nullptr, Money released = {});
  // A call row as read by a `SELECT kCallColumns` statement.
  static CallRecord read_call(sqlite::Query& s);
  // The row of call `id`; nullopt when there is none.
  std::optional<CallRecord> call_row(int64_t id);
  // What the refunds booked for call `id` gave back (>= 0).
  Money refunded(int64_t id);
  // Binds ?1..?24 of an INSERT or UPDATE of the calls table's columns, in their order.
  static void bind_call(sqlite::Query& s, const CallRecord& c);
  // Adds `delta` to the spent counters of `matched` and writes them; appends the alerts that
  // crossed a threshold for the first time (their rows written).
  void book_spent(std::vector<Matched>& matched, Money delta, TimeUs at, std::vector<Alert>& alerts);
  // Throws InvalidArgument when the refund `refund` (< 0) is more than one of `matched` spent in
  // its window: a budget's room never grows past its limit.
  static void check_refund_fits(const std::vector<Matched>& matched, Money refund);
  // After the call `id` at `ts` is inserted: writes the span of times of the block of 64 ids it
  // completes (schema 5's calls_blocks, for the time filters), from this connection's own calls
  // when they are all of it, else from the rows.
  void note_call(int64_t id, TimeUs ts);
  // The call just inserted as `id`, moved to an id no call had before if `id` was one.
  int64_t unused_id(int64_t id);

  // Adds the 'ok' calls recorded since the last call to ok_completions (schema migration 5),
  // completion_quantile's index, in transactions of at most kCompletionsPerTxn calls, so that
  // the write lock is never held long against the settles (the first read after a million
  // calls). Takes no write lock when there is nothing to add. Under `mu`, outside a transaction.
  void index_completions();
  static constexpr int64_t kCompletionsPerTxn = 10'000;

  // WHERE clause for a CallQuery, with named parameters bound by bind_query.
  static std::string where(const CallQuery& cq);
  static void bind_query(sqlite::Query& s, const CallQuery& cq);
};

// ---- public ------------------------------------------------------------------------------------

}  // namespace orroute
