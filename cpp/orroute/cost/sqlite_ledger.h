// SQLite implementation of Ledger: the embedded default, shared by every process on one machine.
//
// Storage: WAL journal, `synchronous=NORMAL` (a killed process loses nothing committed; only a
// power cut can lose the last transactions — set `durable_fsync` for FULL), a busy timeout so
// writers queue instead of failing, and a `schema_version` table driving migrations.
//
// Money columns are pairs of INTEGERs: `<name>_nanos` (whole nano-dollars, floor) and
// `<name>_attos` (the rest, 0 <= attos < 1e9, in 1e-18 USD). amount = nanos*1e-9 + attos*1e-18 USD,
// exactly the orroute::Money value. SQL SUM over each column stays exact in int64 up to 9.2e9 USD
// and 9.2e9 rows, and SQLite raises "integer overflow" rather than wrapping beyond; the two sums
// are joined in int128 in C++.
//
// Budgets are kept as per-(budget, window) counters of settled spend and live reservations,
// updated in the same transaction as the call rows and reservations (so reserve is O(budgets),
// not O(rows)). A counter is created on first use from the calls already in its window.
// Cross-process atomicity: every money operation is one `BEGIN IMMEDIATE` transaction.
// Reservations carry pid, process start time, host and expiry; they are reclaimed when expired
// or when their process (same host) is gone.
#pragma once

#include <memory>
#include <string>

#include "orroute/cost/ledger.h"
#include "orroute/cost/sqlite/fork_gate.h"
#include "orroute/per_process.h"

namespace orroute {

struct SqliteLedgerOptions {
  int32_t busy_timeout_ms = 30'000;          // how long a writer waits for the lock (polled
                                             // every 25-400 µs, then Error)
  bool durable_fsync = false;                // synchronous=FULL (survives power loss)
  int64_t reclaim_interval_us = 1'000'000;  // background reclaim check during reserve()
  // Budget leases (see the class comment). Off: every reserve is its own exact transaction.
  bool leases = true;
  // Page size of a new file (existing files keep theirs); 0 = SQLite's default (4096). Small
  // pages make each commit's WAL frames cheaper (a settle rewrites ~5 pages).
  int32_t page_size = 1024;
  // WAL pages that start a checkpoint (each syncs twice); 0 = SQLite's 1000. The checkpoint
  // runs on the ledger's own thread and connection, off the calls' path; a commit checkpoints
  // itself only past 4 times this (the thread fell behind). See docs/cost.md.
  int32_t wal_autocheckpoint = 10'000;
  // Write-behind settles (with leases; 0 = off: every settle is written before it returns).
  // A settle served from a lease and within its reservation is queued and written, with the
  // others queued, in one batch when `settle_batch` are queued, when the oldest is this old, or
  // before this object's next read or budget change. Its money stays reserved in the lease until
  // then, and a process that dies with settles queued has its whole lease counted as spent (never
  // released), so a crash can lose call rows but never lets a budget be exceeded. settle() then
  // returns call_id 0, and the alerts its batch fires come back from the settle() (or
  // flush_settles()) that writes it, or else the next one. See docs/cost.md.
  int64_t settle_delay_us = 0;
  int32_t settle_batch = 64;
  // Opening a file of schema 4 builds its calls_blocks (schema 5) this many calls to a
  // transaction, ~0.2-0.4 s of the write lock each (the other processes on the file wait for
  // one batch, not the whole migration). See docs/cost.md, "Migrations".
  int64_t migration_batch_calls = 262'144;
};

// Budget leases (on by default): a process takes, in one transaction, an allowance from the
// budgets that match a scope (a `reservations` row charged to their reserved counters, like a
// reservation) and serves reserve() from it in memory; settle() is still one durable transaction
// (the row and its spend); the settled reservation stays in the lease row and the reserved
// counters ("consumed", already spent) until the row is next written: its next grant, a return,
// or the expiry refresh (docs/cost.md). A grant is what the call needs, or more
// while there is room: at most 1/8 of what the budgets have left and 32 calls of this size (up to
// 1024 for a lease refilled again and again, see grant_calls_for), so grants shrink to exact near
// the limit and spend never exceeds it. Other processes see this
// process's unused and consumed lease money as reserved; this process does not (budget_states() and
// live_reservations() show its own reservations only, over all its SqliteLedger objects on the
// file). Cutoffs and budget changes reach every
// process's next reserve() through an epoch counter in a shared sidecar file (`<path>-orroute`,
// mmap'd; bumped by set_cutoff/set_budget/remove_budget). Without the sidecar, leases are off.
// Reservations served from leases have negative ids.
//
// Thread-safe (one connection behind a mutex; concurrent money operations are group-committed:
// one transaction, a failing operation left out alone); safe across processes. Usable in a child
// after fork(): its first call there opens the file again, and the parent's connection, leases and
// reservations are left to the parent.
class SqliteLedger final : public Ledger {
 public:
  // `path` is a file path or ":memory:" (private to this object). Creates or migrates the
  // schema. Throws Error if the file cannot be opened or was written by a newer schema.
  explicit SqliteLedger(const std::string& path, SqliteLedgerOptions options = {});
  // Writes queued settles and gives back this process's unused lease money (best effort).
  ~SqliteLedger() override;
  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  const std::string& path() const;  // never opens the file (a forked child's first call does)
  // Whether this process has its connection yet: false in a forked child until its first call
  // opens the file again, which may wait for another process's lock (up to busy_timeout_ms).
  // A caller holding a lock others wait for (Python's GIL) releases it unless this is true.
  bool opened_here() const { return impl_.made_here() != nullptr; }
  // Whether release(`reservation_id`) needs the database: not for a reservation served from a
  // lease this process holds (released in memory), but for one whose lease was reclaimed (its
  // share of the booking is released with it) or a database reservation. Lets the bindings keep
  // the interpreter lock for an in-memory release. Call once opened_here().
  bool release_needs_database(int64_t reservation_id);
  // Highest migration applied.
  int64_t schema_version();
  // Gives this process's unused lease money back to the budgets and deletes idle lease rows
  // (also done by the destructor). The ledger stays usable. Throws Error on database failure.
  void release_leases() override;
  // Whether reserve() uses leases (options.leases and the sidecar could be opened).
  bool leases_enabled() const;
  // Writes the queued write-behind settles now; returns the alerts not yet handed to a
  // settle() (theirs, and those a reclaim's abandoned rows crossed). Throws Error if the batch
  // fails (the settles stay queued; their money stays reserved).
  std::vector<Alert> flush_settles();
  // What this process's connection to the file did about its WAL (tests, benches): checkpoints
  // run by the checkpointer thread, checkpoints run by a commit (past the hard limit), the
  // WAL's frames after its last commit, and the commits past the hard limit whose wait for a
  // checkpoint in flight ran out (busy_timeout_ms; the next ones did not wait until one ran).
  struct WalStats {
    int64_t background_checkpoints = 0;
    int64_t commit_checkpoints = 0;
    int64_t wal_frames = 0;
    int64_t commit_waits_given_up = 0;
  };
  WalStats wal_stats() const;

  int64_t set_budget(const BudgetSpec& spec) override;
  bool remove_budget(const BudgetScope& scope, Window window) override;
  std::vector<Budget> budgets() override;
  std::vector<BudgetState> budget_states(const SpendScope& scope, TimeUs at, bool all) override;
  ReserveOutcome reserve(const ReserveRequest& request) override;
  std::optional<ReserveOutcome> try_reserve_local(const ReserveRequest& request) override;
  SettleOutcome settle(int64_t reservation_id, CallRecord call) override;
  std::vector<BatchSettle> settle_batch(std::vector<SettleItem> items) override;
  bool release(int64_t reservation_id) override;
  SettleOutcome record(CallRecord call) override;
  SettleOutcome record_refund_of(int64_t call_id, CallRecord refund) override;
  int64_t reclaim(TimeUs at) override;
  std::pair<int64_t, Money> live_reservations() override;
  void set_cutoff(std::optional<std::string> reason) override;
  std::optional<std::string> cutoff() override;
  std::vector<CallRecord> calls(const CallQuery& query) override;
  Money total_cost(const CallQuery& query) override;
  std::vector<ReportRow> report(const CallQuery& query, std::string_view period,
                                std::string_view by) override;
  std::vector<Alert> alerts(TimeUs from) override;
  std::optional<int64_t> completion_quantile(std::string_view task_type, std::string_view model,
                                             double q, int64_t last_n) override;

 private:
  ReserveOutcome reserve_in_txn(const ReserveRequest& request, TimeUs at);
  struct Impl;
  bool made_ = false;  // impl_ has made its first Impl (before impl_: set while it is made)
  // A forked child's first use opens its own connection, inside the fork gate.
  PerProcess<Impl, sqlite::ForkGate> impl_;
};

}  // namespace orroute
