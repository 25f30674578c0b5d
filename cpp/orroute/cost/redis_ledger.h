// Redis implementation of Ledger: the multi-machine backend. Every process on every machine that
// opens the same Redis database and key prefix shares budgets, reservations, cutoff, alerts and
// calls.
//
// Atomicity: every money operation (check-and-reserve across all matching budgets + cutoff,
// settle, record, release, reclaim) is ONE Lua script run on the server (EVALSHA, EVAL on
// NOSCRIPT); Redis runs a script with nothing else interleaved, so a budget is never exceeded by
// concurrency, across machines.
//
// Exact money: amounts are stored as decimal strings of attodollars (orroute::Money units) and
// the scripts do their arithmetic in base-1e9 limbs (each limb and every intermediate product stays
// far below 2^53, so Lua's doubles are exact), signed, with no upper bound.
//
// Budget windows (daily/weekly/monthly in IANA zones) are computed here, client-side, from a cached
// budget list; the scripts check the list's generation (bumped by set_budget/remove_budget) and
// the client reloads it and retries when another client changed budgets.
//
// Reservations expire after their ttl (default 15 min) and are reclaimed by every reserve():
// unlike SqliteLedger there is no dead-pid reclaim (a pid only means something on its own host).
//
// Retries: a dropped connection (server restart, CLIENT KILL, idle timeout) is reopened and the
// command retried once. Money scripts carry a client-generated token remembered by the server for
// an hour, so a script that ran before the connection dropped is not applied twice.
//
// Layout (prefix P, default "orroute:"): P gen, P budgets / budget_idx / budget_seq, P w:<id>:<start>
// (window counters s, r), P res:<id> + P res_exp (zset by expiry), P call:<id> + P calls (zset by
// time), P q:<type/model> (completion tokens of recent successful calls, last 10000), P alerts +
// P alert_keys, P cutoff, P tok:<token>. Reports, calls() and total_cost() read the calls in the
// time range and filter here: O(calls in the range) round-trip batches of 500.
//
// Thread-safe: a small pool of connections (one per concurrently calling thread). After fork()
// the child's first call connects again and leaves the parent's connections and reservations
// alone.
#pragma once

#include <memory>
#include <string>

#include "orroute/cost/ledger.h"
#include "orroute/per_process.h"
#include "orroute/net/redis_client.h"  // RedisUrl, parse_redis_url

namespace orroute {

struct RedisLedgerOptions {
  // Prepended to every key; several ledgers can share one database. Overridden by the URL's
  // `?prefix=` query parameter.
  std::string prefix = "orroute:";
  int32_t connect_timeout_ms = 5'000;
  int32_t command_timeout_ms = 10'000;
};

class RedisLedger final : public Ledger {
 public:
  // Connects (throws Error if the server cannot be reached or refuses the password; the message
  // names the redacted URL) and loads the budgets.
  explicit RedisLedger(const std::string& url, RedisLedgerOptions options = {});
  ~RedisLedger() override;
  RedisLedger(const RedisLedger&) = delete;
  RedisLedger& operator=(const RedisLedger&) = delete;

  // The URL without its password.
  const std::string& url() const;
  const std::string& prefix() const;

  int64_t set_budget(const BudgetSpec& spec) override;
  bool remove_budget(const BudgetScope& scope, Window window) override;
  std::vector<Budget> budgets() override;
  std::vector<BudgetState> budget_states(const SpendScope& scope, TimeUs at, bool all) override;
  ReserveOutcome reserve(const ReserveRequest& request) override;
  SettleOutcome settle(int64_t reservation_id, CallRecord call) override;
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

  // The alerts a reclaim's bookings crossed (the one inside a reserve, or reclaim()) that no
  // settle or record has handed out yet, each handed out once (settle and record append them to
  // their own). SqliteLedger::flush_settles's twin.
  std::vector<Alert> flush_settles();

  // Deletes every key under this ledger's prefix (tests, `orroute budget reset`-style tooling).
  // Not atomic with concurrent writers. Throws Error on server failure.
  void wipe();

 private:
  struct Impl;
  static std::shared_ptr<Impl> open(const std::string& url, const RedisLedgerOptions& options);
  PerProcess<Impl> impl_;  // a forked child's first use connects again
};

}  // namespace orroute
