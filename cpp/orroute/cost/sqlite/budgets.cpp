// Budgets and their per-window counters (spent, reserved).
#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"
#include "orroute/cost/sqlite/schema.h"
#include "orroute/cost/sqlite/text_columns.h"

namespace orroute {

using namespace sqlite;

std::optional<SqliteLedger::Impl::Counter> SqliteLedger::Impl::existing_counter(int64_t budget_id,
                                                                               TimeUs start) {
  if (in_write_txn) {
    if (const TxnReads::Entry* e = txn_reads.find({budget_id, start})) return e->counter;
  }
  auto s = q("SELECT spent_nanos, spent_attos, reserved_nanos, reserved_attos FROM "
             "budget_windows WHERE budget_id = ? AND window_start = ?");
  s.bind(1, budget_id).bind(2, start);
  if (!s.step()) return std::nullopt;
  const Counter c{join(s.i64(0), s.i64(1)), join(s.i64(2), s.i64(3))};
  if (in_write_txn) txn_reads.set({budget_id, start}, c, false);
  return c;
}

SqliteLedger::Impl::Counter SqliteLedger::Impl::counter(const Budget& b, TimeUs start, TimeUs end) {
  if (std::optional<Counter> c = existing_counter(b.id, start)) return *c;
  // First use of this window: start from the calls already recorded in it.
  Money spent;
  {
    std::string sql = "SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(cost_attos), 0) FROM "
                      "calls WHERE ts >= ?1 AND ts < ?2 AND " + calls_from("?1") + " AND " +
                      calls_before("?2");
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
  const Counter c{spent, Money()};
  if (in_write_txn) txn_reads.set({b.id, start}, c, false);
  return c;
}

void SqliteLedger::Impl::write_counter(int64_t budget_id, TimeUs start, const Counter& c) {
  if (current) current->counters.emplace_back(budget_id, start, c);
  if (in_write_txn) {
    if (TxnReads::Entry* e = txn_reads.find({budget_id, start})) {
      e->counter = c;  // its window exists: written at commit
      e->dirty = true;
      return;
    }
  }
  if (update_counter_row(budget_id, start, c) && in_write_txn) txn_reads.set({budget_id, start}, c, false);
}

bool SqliteLedger::Impl::update_counter_row(int64_t budget_id, TimeUs start, const Counter& c) {
  const auto [sn, sa] = split(c.spent);
  const auto [rn, ra] = split(c.reserved);
  q("UPDATE budget_windows SET spent_nanos = ?, spent_attos = ?, reserved_nanos = ?, "
    "reserved_attos = ? WHERE budget_id = ? AND window_start = ?")
      .bind(1, sn).bind(2, sa).bind(3, rn).bind(4, ra).bind(5, budget_id).bind(6, start).run();
  return sqlite3_changes(db) == 1;
}

void SqliteLedger::Impl::flush_counters() {
  for (TxnReads::Entry& entry : txn_reads.counters) {
    if (!entry.dirty) continue;
    update_counter_row(entry.window.first, entry.window.second, entry.counter);
    entry.dirty = false;
  }
}

std::vector<SqliteLedger::Impl::Matched> SqliteLedger::Impl::match(const SpendScope& scope,
                                                                  TimeUs at, bool all) {
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
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  Impl::Txn txn(*impl_);
  const auto [ln, la] = split(spec.limit);
  // A new budget's id is past every id used before (state.last_budget_id): see schema migration 4.
  impl_->q("INSERT INTO budgets(id, scope_kind, scope_key, scope_value, period, time_zone, "
           "limit_nanos, limit_attos, policy, thresholds, created_at) VALUES "
           "((SELECT MAX(last_budget_id, (SELECT COALESCE(MAX(id), 0) FROM budgets)) + 1 FROM state "
           "WHERE id = 1),?,?,?,?,?,?,?,?,?,?) ON CONFLICT (scope_kind, scope_key, scope_value, period) DO "
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
  impl_->q("UPDATE state SET last_budget_id = MAX(last_budget_id, ?) WHERE id = 1").bind(1, id).run();
  impl_->bump_gen();
  impl_->bump_epoch();  // inside the transaction: see sync_state()
  txn.commit();
  return id;
}

bool SqliteLedger::remove_budget(const BudgetScope& scope, Window window) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
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
  std::erase_if(impl_->txn_reads.counters, [id](const auto& e) { return e.window.first == id; });
  impl_->bump_gen();
  impl_->bump_epoch();
  txn.commit();
  return true;
}

std::vector<Budget> SqliteLedger::budgets() {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  Impl::Txn txn(*impl_);
  impl_->read_state();
  txn.commit();
  return impl_->bset->budgets;
}

std::vector<BudgetState> SqliteLedger::budget_states(const SpendScope& scope, TimeUs at, bool all) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
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

}  // namespace orroute
