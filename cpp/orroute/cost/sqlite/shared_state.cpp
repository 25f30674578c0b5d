// State every process shares: the state row (budget generation, cutoff), the budget list, and
// the sidecar epoch that says when this process's cached copy is stale.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"
#include "orroute/cost/sqlite/text_columns.h"

namespace orroute {

using namespace sqlite;

void SqliteLedger::Impl::open_sidecar() {
  if (path == ":memory:" || path.empty()) {
    has_epoch = true;
    return;
  }
  const std::string side = path + "-orroute";
  const int fd = ::open(side.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  constexpr off_t kSize = kSidecarSize;  // a smaller one (before held slots) is grown
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && (st.st_size >= kSize || ::ftruncate(fd, kSize) == 0);
  void* m = ok ? ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m == MAP_FAILED) return;
  sidecar_map = m;
  shared_epoch = static_cast<uint64_t*>(m);
  held_slots = reinterpret_cast<HeldSlot*>(static_cast<char*>(m) + kHeldSlotsOffset);
  has_epoch = true;
}

void SqliteLedger::Impl::load_budgets(int64_t gen) {
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

std::optional<std::string> SqliteLedger::Impl::read_state() {
  auto s = q("SELECT budget_gen, cutoff_reason FROM state WHERE id = 1");
  if (!s.step()) throw Error("ledger: state row missing");
  const int64_t gen = s.i64(0);
  std::optional<std::string> cut;
  if (!s.null(1)) cut = s.text(1);
  load_budgets(gen);
  return cut;
}

std::optional<std::string> SqliteLedger::Impl::sync_state() {
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

void SqliteLedger::set_cutoff(std::optional<std::string> reason) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
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
  if (impl_->has_epoch) {
    // Served from this process's cache while no writer has bumped the epoch since it was read.
    const uint64_t e = impl_->load_epoch();
    std::lock_guard lk(impl_->lmu);
    if (impl_->state_valid && e == impl_->cached_epoch) return impl_->cached_cutoff;
  }
  Impl::Locked lock(*impl_);
  auto s = impl_->q("SELECT cutoff_reason FROM state WHERE id = 1");
  if (!s.step() || s.null(0)) return std::nullopt;
  return s.text(0);
}

}  // namespace orroute
