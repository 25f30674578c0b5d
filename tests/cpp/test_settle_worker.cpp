// The settle worker (engine/settle_worker.h): settles queued while a batch is written go to the
// ledger together in the next batch; a failed batch keeps every reservation in it held (its calls
// were billed); each call's completion runs only once its settle is written (or failed).
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "orroute/cost/sqlite_ledger.h"
#include "orroute/engine/settle_worker.h"

using namespace orroute;

namespace {

// A ledger over an in-memory SQLite ledger that counts settle_batch() calls and their sizes, can
// hold the first batch until told to go on, and can fail whole batches (as a backend writing the
// batch in one transaction does when that transaction fails).
class CountingLedger final : public Ledger {
 public:
  SqliteLedger inner{":memory:"};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> batch_sizes;
  bool hold_first = false, entered = false, go_on = false, fail = false;

  std::vector<BatchSettle> settle_batch(std::vector<SettleItem> items) override {
    {
      std::unique_lock lock(mu);
      batch_sizes.push_back(items.size());
      entered = true;
      cv.notify_all();
      if (hold_first && batch_sizes.size() == 1) cv.wait(lock, [this] { return go_on; });
      if (fail) return std::vector<BatchSettle>(items.size(), BatchSettle{std::nullopt, "disk full"});
    }
    return Ledger::settle_batch(std::move(items));
  }
  void wait_entered() {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return entered; });
  }
  void release_first() {
    std::lock_guard lock(mu);
    go_on = true;
    cv.notify_all();
  }

  int64_t set_budget(const BudgetSpec& s) override { return inner.set_budget(s); }
  bool remove_budget(const BudgetScope& s, Window w) override { return inner.remove_budget(s, w); }
  std::vector<Budget> budgets() override { return inner.budgets(); }
  std::vector<BudgetState> budget_states(const SpendScope& s, TimeUs at, bool all) override {
    return inner.budget_states(s, at, all);
  }
  ReserveOutcome reserve(const ReserveRequest& r) override { return inner.reserve(r); }
  SettleOutcome settle(int64_t id, CallRecord c) override { return inner.settle(id, std::move(c)); }
  bool release(int64_t id) override { return inner.release(id); }
  SettleOutcome record(CallRecord c) override { return inner.record(std::move(c)); }
  SettleOutcome record_refund_of(int64_t id, CallRecord c) override { return inner.record_refund_of(id, std::move(c)); }
  int64_t reclaim(TimeUs at) override { return inner.reclaim(at); }
  std::pair<int64_t, Money> live_reservations() override { return inner.live_reservations(); }
  void set_cutoff(std::optional<std::string> r) override { inner.set_cutoff(std::move(r)); }
  std::optional<std::string> cutoff() override { return inner.cutoff(); }
  std::vector<CallRecord> calls(const CallQuery& q) override { return inner.calls(q); }
  Money total_cost(const CallQuery& q) override { return inner.total_cost(q); }
  std::vector<ReportRow> report(const CallQuery& q, std::string_view p, std::string_view b) override {
    return inner.report(q, p, b);
  }
  std::vector<Alert> alerts(TimeUs from) override { return inner.alerts(from); }
  std::optional<int64_t> completion_quantile(std::string_view t, std::string_view m, double q,
                                             int64_t n) override {
    return inner.completion_quantile(t, m, q, n);
  }
};

int64_t reserve(Ledger& l, const char* amount) {
  ReserveRequest r;
  r.amount = Money::parse(amount);
  const ReserveOutcome o = l.reserve(r);
  REQUIRE(o.status == ReserveStatus::kReserved);
  return o.reservation_id;
}

CallRecord call(const std::string& task_id, const char* cost) {
  CallRecord c;
  c.task_id = task_id;
  c.model_requested = c.model_used = "m/a";
  c.cost = Money::parse(cost);
  return c;
}

// What the completions saw, filled on the worker thread.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<SettleOutcome>> outcomes;
  std::vector<size_t> rows_when_done;  // calls in the ledger when each completion ran
  void wait_for(size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outcomes.size() >= n; });
  }
};

SettleWorker::Done note(Seen& seen, Ledger& ledger) {
  return [&seen, &ledger](std::optional<SettleOutcome> o) {
    const size_t rows = ledger.calls({}).size();
    std::lock_guard lock(seen.mu);
    seen.outcomes.push_back(std::move(o));
    seen.rows_when_done.push_back(rows);
    seen.cv.notify_all();
  };
}

}  // namespace

TEST_CASE("settles queued while a batch is written go to the ledger as one batch", "[settle_worker]") {
  CountingLedger ledger;
  ledger.hold_first = true;
  Seen seen;
  std::vector<int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(reserve(ledger, "0.10"));
  {
    SettleWorker worker(ledger);
    CHECK(worker.idle());
    REQUIRE(worker.start());
    worker.post(ids[0], call("t0", "0.01"), note(seen, ledger));
    ledger.wait_entered();  // the first batch is being written: the next five queue behind it
    CHECK_FALSE(worker.idle());  // the engine then hands settles to it rather than write them
    for (int i = 1; i < 6; ++i) {
      worker.post(ids[i], call("t" + std::to_string(i), "0.01"), note(seen, ledger));
    }
    ledger.release_first();
    seen.wait_for(6);
    const SettleWorker::Stats s = worker.stats();
    CHECK(s.batches == 2);
    CHECK(s.settles == 6);
    CHECK(s.largest_batch == 5);
  }
  CHECK(ledger.batch_sizes == std::vector<size_t>{1, 5});
  for (const auto& o : seen.outcomes) CHECK(o.has_value());
  // Each completion ran after its own row was written (its batch's rows, and those before).
  CHECK(seen.rows_when_done.front() >= 1);
  for (size_t i = 1; i < seen.rows_when_done.size(); ++i) CHECK(seen.rows_when_done[i] == 6);
  CHECK(ledger.calls({}).size() == 6);
  CHECK(ledger.live_reservations().first == 0);
  CHECK(ledger.total_cost({}) == Money::parse("0.06"));
}

TEST_CASE("a failed batch keeps every reservation in it held and records nothing", "[settle_worker]") {
  CountingLedger ledger;
  ledger.hold_first = true;
  ledger.fail = true;
  Seen seen;
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(reserve(ledger, "0.10"));
  REQUIRE(ledger.live_reservations().first == 4);
  {
    SettleWorker worker(ledger);
    REQUIRE(worker.start());
    worker.post(ids[0], call("t0", "0.01"), note(seen, ledger));
    ledger.wait_entered();
    for (int i = 1; i < 4; ++i) worker.post(ids[i], call("t" + std::to_string(i), "0.01"), note(seen, ledger));
    ledger.release_first();
    seen.wait_for(4);
  }
  CHECK(ledger.batch_sizes == std::vector<size_t>{1, 3});
  for (const auto& o : seen.outcomes) CHECK_FALSE(o.has_value());
  // Held until their TTL: the calls were billed, so their money never goes back to the budget
  // unrecorded (it did: a ledger that could not write rows let every later call through).
  CHECK(ledger.live_reservations().first == 4);
  CHECK(ledger.calls({}).empty());
}

TEST_CASE("stopping the worker writes what is still queued", "[settle_worker]") {
  CountingLedger ledger;
  Seen seen;
  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(reserve(ledger, "0.10"));
  {
    SettleWorker worker(ledger);
    REQUIRE(worker.start());
    for (int i = 0; i < 20; ++i) worker.post(ids[i], call("t" + std::to_string(i), "0.01"), note(seen, ledger));
  }  // destroyed at once: every queued settle is still written and completed
  CHECK(seen.outcomes.size() == 20);
  CHECK(ledger.calls({}).size() == 20);
  CHECK(ledger.live_reservations().first == 0);
}
