// The usage ledger: one row per call, budgets, reservations, fired alerts and the emergency cutoff.
//
// `Ledger` is the interface everything above the cost layer uses (router engine, CostTracker);
// SqliteLedger (sqlite_ledger.h) is the embedded default, and a networked backend (Redis) only has
// to implement this class. Every operation that changes money is one atomic step of the backend:
// check-and-reserve, settle (row + release), release, reclaim.
//
// Amounts are orroute::Money (int128 attodollars, exact). Times are UTC microseconds (TimeUs);
// every mutating call takes the instant to use (`at`, 0 = now), so tests can inject a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/cost/window.h"
#include "orroute/error.h"

namespace orroute {

// What a budget applies to. kTag matches calls whose tag `key` equals `value` (e.g. user=alice).
enum class ScopeKind { kGlobal, kProject, kConversation, kTag };
// What happens when a call would exceed the budget: kRefuse fails the call; kDowngrade reports
// what is left so the selector can pick a cheaper model.
enum class Policy { kRefuse, kDowngrade };

struct BudgetScope {
  ScopeKind kind = ScopeKind::kGlobal;
  std::string key;    // tag key (kTag only)
  std::string value;  // project / conversation name, or tag value

  // "global", "project:demo", "conversation:c1", "tag:user=alice".
  std::string to_string() const;
  friend bool operator==(const BudgetScope&, const BudgetScope&) = default;
};

// Parses the to_string() form. Throws InvalidArgument.
BudgetScope parse_scope(std::string_view text);
// "global", "project", "conversation", "tag": how backends store a scope's kind.
std::string_view to_string(ScopeKind kind);
// Inverse of to_string(ScopeKind); anything else is kGlobal.
ScopeKind parse_scope_kind(std::string_view text);
std::string_view to_string(Policy p);
Policy parse_policy(std::string_view text);  // "refuse" | "downgrade"; throws InvalidArgument

struct BudgetSpec {
  BudgetScope scope;
  Window window = Window::kTotal;
  std::string time_zone = "UTC";             // window boundaries are this zone's midnights
  Money limit;                               // USD, >= 0
  Policy policy = Policy::kRefuse;
  std::vector<int32_t> thresholds_pct = {50, 80, 100};  // soft alerts, percent of limit
};

struct Budget : BudgetSpec {
  int64_t id = 0;
  // "project:demo/daily": the name used in errors and alerts.
  std::string name() const;
};

// A budget's state in the window containing some instant.
struct BudgetState {
  Budget budget;
  TimeUs window_start = 0;
  TimeUs window_end = 0;
  Money spent;     // settled calls in the window
  Money reserved;  // live reservations charged to the window
  // limit - spent - reserved, clamped at zero.
  Money remaining() const;
};

// Where a call's spend is booked; budgets match on these.
struct SpendScope {
  std::string project;
  std::string conversation;
  std::vector<std::pair<std::string, std::string>> tags;  // key=value; keys unique
};

// True if a call booked to `spend` counts towards a budget on `scope`.
bool scope_matches(const BudgetScope& scope, const SpendScope& spend);
// Throws InvalidArgument unless every tag key is non-empty without '=' or newlines, every value
// has no newline and no key repeats (what encode_tags() needs to be reversible).
void check_scope(const SpendScope& spend);
// Tags as stored by the backends: "key=value\n" per tag, and back.
std::string encode_tags(const std::vector<std::pair<std::string, std::string>>& tags);
std::vector<std::pair<std::string, std::string>> decode_tags(std::string_view text);

struct ReserveRequest {
  SpendScope scope;
  Money amount;                       // worst-case cost, >= 0
  TimeUs at = 0;                      // 0 = now
  int64_t ttl_us = 15LL * 60 * 1'000'000;  // reclaimed after this even if the owner is alive
  std::string model;                  // informational
  std::string task_id;                // informational
};

enum class ReserveStatus { kReserved, kExceeded, kCutoff };

// Result of reserve(). Expected refusals are values, not exceptions.
struct ReserveOutcome {
  ReserveStatus status = ReserveStatus::kReserved;
  int64_t reservation_id = 0;  // kReserved only
  // kExceeded: the budget that blocks (the first refusing one if any, else a downgrading one),
  // its state before this request, and its policy.
  std::optional<BudgetState> blocking;
  // Smallest remaining() over every matching budget, before this request; nullopt if no budget
  // matches. This is what a cheaper model must fit into.
  std::optional<Money> remaining;
  std::string cutoff_reason;  // kCutoff only
};

// One call as recorded. Token counts >= 0. Latencies in microseconds, -1 = unknown.
struct CallRecord {
  int64_t id = 0;  // assigned by the ledger
  TimeUs at = 0;   // when the call started; 0 = now (settle uses the reservation's time)
  SpendScope scope;
  std::string task_id;
  std::string task_type;
  std::string model_requested;
  std::string model_used;
  std::string provider;
  std::string generation_id;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t cache_write_tokens = 0;
  int64_t reasoning_tokens = 0;
  std::optional<Money> estimated_cost;
  Money cost;
  int64_t latency_us = -1;
  int64_t ttft_us = -1;
  std::string outcome = "ok";  // "ok", "error", "cancelled", ...
  std::string error_class;     // e.g. "RateLimitError"
  int32_t attempts = 1;
  // Where `cost` came from: "upstream" (the reply's usage.cost, checked), "catalog", "tokenizer",
  // "metered" or "reservation", with ": <why>" when the upstream's figure was replaced
  // (see cost/usage_audit.h); "" for calls recorded by hand.
  std::string cost_source;
};

// The outcome of a refund row: the only call row whose cost may be negative (money the upstream
// gave back, which lowers the spend of the budgets it matches). Any other negative cost is
// refused: a lying or mistaken figure must not refill a budget.
inline constexpr std::string_view kRefundOutcome = "refund";
// The outcome of a reclaim's booking: the money of reservations no settle came for (their
// process gone, or past their expiry), booked as spent at what they held.
inline constexpr std::string_view kAbandonedOutcome = "abandoned";
// Whether a row of `outcome` is a call made, of its model: not a reclaim's booking (it stands
// for calls of unknown outcome, no latency, maybe several) nor a refund (money given back).
// Counts of calls and errors, and a model's statistics, count calls only; totals count every
// row's cost.
bool is_call(std::string_view outcome);

// Throws InvalidArgument unless every token count is >= 0 and the cost is >= 0, or negative with
// the outcome kRefundOutcome. Every backend checks a call with it before writing anything.
void check_call(const CallRecord& call);
// The refusal of a refund (`refund` < 0) that is more than budget `budget` spent in the window it
// falls in (`spent`): a budget's room never grows past its limit. Each backend checks every
// window a refund matches where its counters take the row, before writing anything.
InvalidArgument refund_past_spent(const std::string& budget, Money refund, Money spent);
// Throws InvalidArgument when `call` is a refund: a reservation's settle, and a call recorded as
// made, book what a call cost; money given back is booked only by record_refund.
void check_not_refund(const CallRecord& call);

// A soft threshold crossed by settled spend. Fired once per budget, window and threshold across
// every process sharing the ledger.
struct Alert {
  int64_t budget_id = 0;
  std::string budget_name;
  int32_t threshold_pct = 0;
  TimeUs window_start = 0;
  TimeUs at = 0;
  Money spent;
  Money limit;
};

struct SettleOutcome {
  int64_t call_id = 0;
  bool reservation_found = true;  // false if it had been reclaimed or released already
  std::vector<Alert> alerts;      // thresholds this write crossed (fire them)
};

// One settle of a batch (Ledger::settle_batch).
struct SettleItem {
  int64_t reservation_id = 0;
  CallRecord call;
};

// How one settle of a batch went: its outcome, or why it was not written (`error`).
struct BatchSettle {
  std::optional<SettleOutcome> outcome;  // nullopt: not written (the reservation is still held)
  std::string error;                     // why, when not written
};

// Filter for calls(); empty strings / nullopt mean "any".
struct CallQuery {
  TimeUs from = 0;
  TimeUs to = 0;  // exclusive; 0 = no upper bound
  std::string project;
  std::string conversation;
  std::string model;
  std::string task_type;
  std::string tag_key, tag_value;
  int64_t limit = -1;  // newest first when set
};

// One group of report(): period label x group key.
struct ReportRow {
  std::string period;  // "2025-03-01" (day; a week is labelled by its Monday), "2025-03", "total"
  std::string key;     // value of the `by` column ("" when by = none)
  int64_t calls = 0;
  int64_t errors = 0;  // outcome != "ok"
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  Money cost;
  Money estimated;            // sum of estimates over rows that have one
  Money cost_of_estimated;    // actual cost of those same rows (for estimate error)
  int64_t latency_us_sum = 0;
  int64_t latency_count = 0;
};

// Abstract ledger. Implementations are safe to call from many threads; the money operations are
// atomic across every process sharing the backend. All may throw orroute::Error when the backend
// fails (I/O, lock timeout); InvalidArgument on bad input.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // Creates or replaces the budget with the same scope and window; returns its id.
  virtual int64_t set_budget(const BudgetSpec& spec) = 0;
  // false if no such budget.
  virtual bool remove_budget(const BudgetScope& scope, Window window) = 0;
  virtual std::vector<Budget> budgets() = 0;
  // State of every budget matching `scope` at `at` (all budgets if `all`).
  virtual std::vector<BudgetState> budget_states(const SpendScope& scope, TimeUs at, bool all) = 0;

  // Atomically: checks the cutoff and every matching budget (spent + reserved + amount <= limit)
  // and, if all hold, records the reservation. Before refusing, reclaims dead or expired
  // reservations and checks again.
  virtual ReserveOutcome reserve(const ReserveRequest& request) = 0;
  // reserve() when the backend can decide without waiting on storage (e.g. from a budget lease
  // or a cached cutoff); nullopt otherwise (then call reserve()). Same results and errors as
  // reserve(). Lets callers skip releasing an interpreter lock for a sub-microsecond call.
  virtual std::optional<ReserveOutcome> try_reserve_local(const ReserveRequest& request) {
    (void)request;
    return std::nullopt;
  }
  // Atomically: records `call` (at the reservation's time and scope) and removes the reservation.
  // A reservation already reclaimed still gets its row (reservation_found = false).
  virtual SettleOutcome settle(int64_t reservation_id, CallRecord call) = 0;
  // settle() of each item, in order; one result per item, each as settle() would have done it.
  // A backend may write the whole batch in one transaction (group commit: the engine's settle
  // worker hands it every settle queued while the previous batch was written); if that
  // transaction fails, every item is reported failed. Failures are results, never thrown
  // (allocation aside). The default calls settle() once per item.
  virtual std::vector<BatchSettle> settle_batch(std::vector<SettleItem> items);
  // Removes a reservation without recording a call. false if it no longer exists.
  virtual bool release(int64_t reservation_id) = 0;
  // Records a call made without a reservation (also counts towards budgets). A refund is
  // refused (check_not_refund): money given back is booked by record_refund alone.
  virtual SettleOutcome record(CallRecord call) = 0;
  // Books `refund` (a row record_refund shaped: cost < 0, outcome kRefundOutcome) as money given
  // back for the recorded call `call_id`, atomically with refund_of's check of what is left of
  // that call to give back (InvalidArgument, nothing written, when none is: no call `call_id`,
  // or its refunds would pass its cost). The row takes the call's time and scope.
  virtual SettleOutcome record_refund_of(int64_t call_id, CallRecord refund) = 0;
  // Removes reservations that expired or whose process is gone; returns how many.
  virtual int64_t reclaim(TimeUs at) = 0;
  // Gives this process's unused lease money back to the budgets, so other processes see it free
  // (a backend without leases has nothing to give back). The ledger stays usable.
  virtual void release_leases() {}
  // Total reserved over all live reservations, and their count.
  virtual std::pair<int64_t, Money> live_reservations() = 0;

  // Emergency cutoff: while set, every reserve() in every process returns kCutoff.
  virtual void set_cutoff(std::optional<std::string> reason) = 0;
  virtual std::optional<std::string> cutoff() = 0;

  virtual std::vector<CallRecord> calls(const CallQuery& query) = 0;
  // Exact total cost of the calls matching `query` (limit ignored).
  virtual Money total_cost(const CallQuery& query) = 0;
  // `period`: "hour", "day", "week", "month" or "total" (UTC); `by`: "model", "model_requested",
  // "project", "provider", "task_type", "conversation", "outcome", "error_class", "task_id",
  // "tag:<key>" or "" (no grouping). Throws InvalidArgument for anything else.
  virtual std::vector<ReportRow> report(const CallQuery& query, std::string_view period,
                                        std::string_view by) = 0;
  virtual std::vector<Alert> alerts(TimeUs from) = 0;
  // The q-quantile (0..1) of completion_tokens over the last `last_n` successful calls of this
  // task type and model; nullopt if there are none.
  virtual std::optional<int64_t> completion_quantile(std::string_view task_type,
                                                     std::string_view model, double q,
                                                     int64_t last_n) = 0;
};

// Books `refund.cost` (> 0, else InvalidArgument) given back by an upstream for the recorded
// call `call_id` (its row id) as a row of outcome kRefundOutcome and cost -refund.cost:
// CostTracker.record_refund's rule. A provider refunds a call: the refund is capped at what that
// call cost less the refunds booked for it before, and booked at the call's time and scope, so
// it lowers the spend of exactly the budget windows the call's cost went to (refund_of).
SettleOutcome record_refund(Ledger& ledger, int64_t call_id, CallRecord refund);
// The rule of a refund, applied by each backend where it reads the call (`call`, as recorded),
// and `refunded`, what earlier refunds of it gave back: throws InvalidArgument unless `call`
// cost money (neither a refund nor an "abandoned" booking, whose call's cost is not known) and
// -refund.cost <= call.cost - refunded, or when `refund` names a scope (it is the call's). Then
// gives `refund` the call's time and scope, and its model, task and generation ids where it
// names none.
void refund_of(const CallRecord& call, Money refunded, CallRecord& refund);
// Ledger::record of a call made (CostTracker.record_call): a refund refused (check_not_refund).
SettleOutcome record_call(Ledger& ledger, CallRecord call);

// Raised by the throwing helpers (BudgetGuard) when a reservation is refused. Carries the fields
// of Python's BudgetExceededError.
class BudgetExceeded : public Error {
 public:
  BudgetExceeded(const BudgetState& state, Money estimate, Policy policy, Money remaining);
  // This refusal for a request of several calls reserved together (all or none), refused while
  // `held` of them were reserved: the budget as it stood before any of them, the request's
  // `total`, and `asked` saying what it is ("3 completions ...") where one call says "this call".
  BudgetExceeded together(Money total, Money held, const std::string& asked) const;
  ErrorKind kind() const noexcept override { return ErrorKind::kBudgetExceeded; }
  std::string budget;
  Money limit, spent, reserved, estimate, remaining;
  Policy policy;

 private:
  BudgetExceeded(const std::string& message, const BudgetExceeded& fields) : Error(message), budget(fields.budget),
      limit(fields.limit), spent(fields.spent), reserved(fields.reserved), estimate(fields.estimate),
      remaining(fields.remaining), policy(fields.policy) {}
};

class EmergencyCutoff : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kEmergencyCutoff; }
};

class ApprovalDenied : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kApprovalDenied; }
};

}  // namespace orroute
