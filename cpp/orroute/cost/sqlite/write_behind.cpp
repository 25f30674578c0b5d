// Write-behind settles: lease-served settles queued in memory and written in batches (see the
// "write-behind settles" part of impl.h, and docs/cost.md for the contract).
#include <algorithm>
#include <iterator>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

namespace {
constexpr int kMaxAttempts = 3;
}

std::optional<SettleOutcome> SqliteLedger::Impl::settle_behind(int64_t id, CallRecord& call,
                                                               TimeUs now) {
  // What insert_call would refuse is refused now: a queued settle can only fail on I/O.
  check_call(call);
  Behind item{id, {}, {}, now};
  {
    std::lock_guard lk(lmu);
    auto it = subs.find(id);
    // Only money already set aside in a live lease, within its reservation, can wait: an
    // overspend must move the budget generation now, and a call without a lease has no money
    // that a crash would leave counted.
    if (it == subs.end() || it->second.settling || !it->second.lease || it->second.lease->dead ||
        call.cost > it->second.amount) {
      return std::nullopt;
    }
    it->second.settling = true;
    item.sub = it->second;
  }
  item.call = std::move(call);
  SettleOutcome out;
  bool full = false;
  {
    std::lock_guard lk(bmu);
    if (behind.empty()) behind_since = std::chrono::steady_clock::now();
    behind.push_back(std::move(item));
    full = behind.size() >= static_cast<size_t>(std::max(1, options.settle_batch));
    if (!full) {
      out.alerts.swap(late_alerts);
      if (behind.size() == 1) bcv.notify_one();
    }
  }
  if (full) out.alerts = flush_behind();
  return out;
}

std::vector<Alert> SqliteLedger::Impl::flush_behind(const std::function<void()>& also) {
  std::vector<Behind> items;
  {
    std::lock_guard lk(bmu);
    items.swap(behind);
  }
  std::vector<SettleOutcome> outs(items.size());
  std::vector<std::function<void()>> jobs;
  for (size_t i = 0; i < items.size(); ++i) {
    jobs.push_back([this, &items, &outs, i] {
      Behind& b = items[i];
      outs[i] = settle_sub_job(b.id, b.sub, b.call, b.now);
    });
  }
  if (also) jobs.push_back(also);
  const std::vector<std::exception_ptr> errors = transact_all(std::move(jobs));
  std::vector<Alert> alerts;
  std::vector<Behind> retry;
  std::exception_ptr first;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!errors[i]) {
      for (Alert& a : outs[i].alerts) alerts.push_back(std::move(a));
      continue;
    }
    if (!first) first = errors[i];
    // Kept queued (its money stays held in the lease) and retried; after kMaxAttempts the row
    // is given up but the money stays held: counted, never freed, until the process ends.
    if (++items[i].attempts < kMaxAttempts) retry.push_back(std::move(items[i]));
  }
  std::lock_guard lk(bmu);
  if (!retry.empty()) {
    if (behind.empty()) behind_since = std::chrono::steady_clock::now();
    behind.insert(behind.begin(), std::make_move_iterator(retry.begin()),
                  std::make_move_iterator(retry.end()));
  }
  if (also) {  // the caller wants its own job's outcome; the settles' alerts wait for a settle
    for (Alert& a : alerts) late_alerts.push_back(std::move(a));
    if (errors.back()) std::rethrow_exception(errors.back());
    return {};
  }
  if (first) {
    for (Alert& a : alerts) late_alerts.push_back(std::move(a));
    std::rethrow_exception(first);
  }
  for (Alert& a : late_alerts) alerts.push_back(std::move(a));
  late_alerts.clear();
  return alerts;
}

void SqliteLedger::Impl::flusher_loop() {
  const auto delay = std::chrono::microseconds(options.settle_delay_us);
  std::unique_lock lk(bmu);
  while (!flusher_stop) {
    if (behind.empty()) {
      bcv.wait(lk);
      continue;
    }
    const auto due = behind_since + delay;
    if (std::chrono::steady_clock::now() < due) {
      bcv.wait_until(lk, due);
      continue;
    }
    lk.unlock();
    try {
      // Alerts of a timed write go to the next settle() (there is no caller to hand them to).
      std::vector<Alert> alerts = flush_behind();
      std::lock_guard relock(bmu);
      for (Alert& a : alerts) late_alerts.push_back(std::move(a));
    } catch (...) {  // the settles stay queued and are retried after the delay
    }
    lk.lock();
  }
}

void SqliteLedger::Impl::start_flusher() {
  std::lock_guard lk(bmu);
  if (!flusher && !flusher_stop) flusher = new std::thread([this] { flusher_loop(); });
}

void SqliteLedger::Impl::stop_flusher() {
  std::thread* t = nullptr;
  {
    std::lock_guard lk(bmu);
    flusher_stop = true;
    std::swap(t, flusher);
    bcv.notify_all();
  }
  if (t) {
    t->join();
    delete t;
  }
}

void SqliteLedger::Impl::defer_alerts(std::vector<Alert> alerts) {
  if (alerts.empty()) return;
  after_commit([this, alerts = std::move(alerts)]() mutable {
    std::lock_guard lk(bmu);
    for (Alert& a : alerts) late_alerts.push_back(std::move(a));
    alerts_waiting.store(true, std::memory_order_release);
  });
}

void SqliteLedger::Impl::hand_out_late_alerts(std::vector<Alert>& out) {
  if (!alerts_waiting.load(std::memory_order_acquire)) return;  // the settle's usual case
  std::lock_guard lk(bmu);
  alerts_waiting.store(false, std::memory_order_relaxed);
  for (Alert& a : late_alerts) out.push_back(std::move(a));
  late_alerts.clear();
}

std::vector<Alert> SqliteLedger::flush_settles() {
  if (impl_->behind_on) return impl_->flush_behind();
  std::vector<Alert> out;
  impl_->hand_out_late_alerts(out);
  return out;
}

}  // namespace orroute
