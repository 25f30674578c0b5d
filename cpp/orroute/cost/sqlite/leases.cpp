// Budget leases' bookkeeping: rows, free and held money, local reservations (see sqlite_ledger.h).
#include <algorithm>
#include <cstring>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"

namespace orroute {

using namespace sqlite;

void SqliteLedger::Impl::drop_lease(const std::shared_ptr<Lease>& lease) {
  lease->dead = true;
  if (lease->slot) {  // the row is gone: nothing of it is left to reclaim
    free_held_slot(*lease->slot);
    lease->slot = nullptr;
  }
  auto it = leases.find(lease->windows);
  if (it != leases.end() && it->second == lease) leases.erase(it);
  // Its reservations in flight stay (held by nothing now) until they settle, are released or
  // expire: a reclaim that booked them as abandoned is replaced by their settle
  // (settle_abandoned), which needs the lease they came from.
}

Money SqliteLedger::Impl::own_free(const std::pair<int64_t, TimeUs>& w) const {
  Money sum;
  for (const auto& [key, lease] : leases) {
    if (!lease->dead && std::find(key.begin(), key.end(), w) != key.end()) {
      sum += lease->free + lease->consumed;
    }
  }
  return sum;
}

std::string SqliteLedger::Impl::encode_windows(const WindowKey& key) {
  std::string out;  // "budget:start;..."
  for (const auto& [id, start] : key) out += std::to_string(id) + ":" + std::to_string(start) + ";";
  return out;
}

void SqliteLedger::Impl::add_reserved(int64_t budget_id, TimeUs start, Money delta) {
  std::optional<Counter> c = existing_counter(budget_id, start);
  if (!c) return;
  c->reserved += delta;
  if (c->reserved.is_negative()) c->reserved = Money();
  write_counter(budget_id, start, *c);
}

// A lease's row: its id alone could name a later reservation once the row is reclaimed (SQLite
// reuses the largest rowid), so the statements also match what only this lease's row has.
// Binds ?1..?4 (lease_row).
#define ORROUTE_LEASE_ROW "id = ?1 AND lease != 0 AND pid = ?2 AND pid_start = ?3 AND created_at = ?4"

sqlite::Query& SqliteLedger::Impl::lease_row(sqlite::Query&& q, const Lease& lease) const {
  return q.bind(1, lease.row_id).bind(2, pid).bind(3, pid_start).bind(4, lease.created_at);
}

bool SqliteLedger::Impl::add_to_lease_row(const Lease& lease, Money delta, TimeUs expires) {
  const auto [dn, da] = split(delta);
  lease_row(q("UPDATE reservations SET "
              "amount_nanos = amount_nanos + ?5 + (amount_attos + ?6 >= 1000000000), "
              "amount_attos = amount_attos + ?6 - 1000000000 * (amount_attos + ?6 >= 1000000000), "
              "expires_at = MAX(expires_at, ?7) WHERE " ORROUTE_LEASE_ROW),
            lease)
      .bind(5, dn).bind(6, da).bind(7, expires).run();
  return sqlite3_changes(db) == 1;
}

bool SqliteLedger::Impl::lease_row_exists(const Lease& lease) {
  const std::pair<int64_t, TimeUs> key{lease.row_id, lease.created_at};
  auto& seen = txn_reads.lease_rows;
  if (in_write_txn && std::find(seen.begin(), seen.end(), key) != seen.end()) return true;
  const bool exists = lease_row(q("SELECT 1 FROM reservations WHERE " ORROUTE_LEASE_ROW), lease).step();
  if (exists && in_write_txn) seen.push_back(key);
  return exists;
}

void SqliteLedger::Impl::reservations_changed(void* self, int /*op*/, const char* /*db_name*/,
                                              const char* table, sqlite3_int64 /*row*/) {
  if (std::strcmp(table, "reservations") == 0) {
    static_cast<Impl*>(self)->txn_reads.lease_rows.clear();
  }
}

bool SqliteLedger::Impl::delete_lease_row(const Lease& lease) {
  lease_row(q("DELETE FROM reservations WHERE " ORROUTE_LEASE_ROW), lease).run();
  return sqlite3_changes(db) == 1;
}

#undef ORROUTE_LEASE_ROW

bool SqliteLedger::Impl::flush_consumed(const std::shared_ptr<Lease>& lease) {
  // Taken now, not at commit, so a later job of the same batch cannot take it twice; settles
  // add to it only once their batch has committed.
  Money consumed;
  {
    std::lock_guard lk(lmu);
    consumed = lease->consumed;
    lease->consumed = Money();
  }
  if (consumed.is_zero()) return false;
  if_failed([lease, consumed] { lease->consumed += consumed; });
  if (!add_to_lease_row(*lease, -consumed, 0)) return false;  // gone: released with it
  for (const auto& [id, start] : lease->windows) add_reserved(id, start, -consumed);
  return true;
}

void SqliteLedger::Impl::return_free(const std::shared_ptr<Lease>& lease, bool drop_if_idle) {
  Money amount;  // free and consumed: the part of the row no call holds
  Money free, consumed;
  bool drop = false;
  {
    std::lock_guard lk(lmu);
    if (lease->dead || lease->closing) return;
    free = lease->free;
    consumed = lease->consumed;
    amount = free + consumed;
    drop = drop_if_idle && lease->held.is_zero() && lease->pending == 0;
    if (amount.is_zero() && !drop) return;
    lease->free = Money();
    lease->consumed = Money();
    lease->closing = drop;
  }
  if_failed([lease, free, consumed] {
    lease->free += free;
    lease->consumed += consumed;
    lease->closing = false;
  });
  if (drop) {
    if (!delete_lease_row(*lease)) {  // reclaimed meanwhile: its money is already back
      after_commit([this, lease] { drop_lease(lease); });
      return;
    }
  } else if (!add_to_lease_row(*lease, -amount, 0)) {
    after_commit([this, lease] { drop_lease(lease); });
    return;
  }
  for (const auto& [id, start] : lease->windows) add_reserved(id, start, -amount);
  if (drop) after_commit([this, lease] { drop_lease(lease); });
}

void SqliteLedger::Impl::purge_expired_subs(TimeUs at) {
  for (auto it = subs.begin(); it != subs.end();) {
    Sub& sub = it->second;
    if (sub.expires_at > at || sub.settling) {
      ++it;
      continue;
    }
    if (sub.lease && !sub.lease->dead) {
      unhold(*sub.lease, sub.amount);
      sub.lease->free += sub.amount;
    }
    it = subs.erase(it);
  }
}

int64_t SqliteLedger::Impl::add_sub(int64_t id, const ReserveRequest& r, TimeUs at,
                                    std::shared_ptr<Lease> lease) {
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

std::optional<Money> SqliteLedger::Impl::cached_remaining(const WindowKey& key) const {
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

bool SqliteLedger::release_needs_database(int64_t reservation_id) {
  if (reservation_id >= 0) return true;
  std::lock_guard lk(impl_->lmu);
  const auto it = impl_->subs.find(reservation_id);
  return it != impl_->subs.end() && it->second.lease && it->second.lease->dead;
}

bool SqliteLedger::Impl::release_sub(int64_t id) {
  std::shared_ptr<Lease> reclaimed;
  Sub sub;
  {
    std::lock_guard lk(lmu);
    auto it = subs.find(id);
    if (it == subs.end() || it->second.settling) return false;
    sub = std::move(it->second);
    subs.erase(it);
    if (!sub.lease) return true;
    if (!sub.lease->dead) {
      unhold(*sub.lease, sub.amount);
      sub.lease->free += sub.amount;
      return true;
    }
  }
  // Its lease was reclaimed with this reservation in flight, booked as spent: its share of the
  // booking is released with it (lmu is never held while waiting for mu).
  return transact([&] {
    return release_abandoned(sub.lease->row_id, sub.lease->created_at,
                             LeaseShare{as_held(sub.amount), sub.created_at});
  });
}

void SqliteLedger::Impl::return_all_leases() {
  std::vector<std::shared_ptr<Lease>> all;
  {
    std::lock_guard lk(lmu);
    for (const auto& [key, lease] : leases) all.push_back(lease);
  }
  for (auto& lease : all) return_free(lease, true);
}

}  // namespace orroute
