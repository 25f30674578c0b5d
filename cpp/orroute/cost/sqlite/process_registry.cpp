// This process's ledger objects on one file, and what they hold (leases, their reservations).
#include <filesystem>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

void SqliteLedger::Impl::register_open() {
  if (path == ":memory:" || path.empty()) return;
  std::error_code ec;
  const auto c = std::filesystem::weakly_canonical(path, ec);
  canonical = ec ? path : c.string();
  std::lock_guard lk(open_ledgers().mu);
  open_ledgers().by_path.emplace(canonical, this);
}

SqliteLedger::Impl::ProcessView SqliteLedger::Impl::process_view() {
  ProcessView v;
  auto add = [&v](Impl& impl) {
    std::lock_guard lk(impl.lmu);
    for (const auto& [key, lease] : impl.leases) {
      if (lease->dead) continue;
      v.lease_rows.push_back(lease->row_id);
      for (const auto& w : key) v.free[w] += lease->free + lease->consumed;
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

}  // namespace orroute
