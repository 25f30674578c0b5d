// Reserving from a lease: the in-memory fast path, and the slow path that grows the lease.
#include <algorithm>
#include <limits>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"

namespace orroute {

using namespace sqlite;

namespace {

// A lease refilled sooner than this after its last grant gets a grant twice as large; one that
// waited longer than kSlowRefillUs, half as large.
constexpr TimeUs kQuickRefillUs = 250'000;
constexpr TimeUs kSlowRefillUs = 2'000'000;

}  // namespace

int64_t SqliteLedger::Impl::grant_calls_for(const Lease* lease, TimeUs at) const {
  // Sized to the rate the lease is used at: a busy process takes the write lock for a grant a
  // few times a second, not every 32 calls. That transaction runs on the thread that reserves
  // (the router's calling thread, its event loop) and waits for the settles being written, so
  // its cost lands on every call in flight. Write-behind leases stay at the minimum: a crash
  // burns the whole lease as spent (docs/cost.md). Under mu (the fields change at commit).
  if (!lease || behind_on || lease->granted_at == 0) return kMinGrantCalls;
  const TimeUs since = at - lease->granted_at;
  if (since < kQuickRefillUs) return std::min(lease->grant_calls * 2, kMaxGrantCalls);
  if (since > kSlowRefillUs) return std::max(lease->grant_calls / 2, kMinGrantCalls);
  return lease->grant_calls;
}

std::optional<ReserveOutcome> SqliteLedger::Impl::reserve_fast(const ReserveRequest& r, TimeUs at) {
  const uint64_t e = load_epoch();
  std::lock_guard lk(lmu);
  if (!state_valid || e != cached_epoch || bset->gen != leases_gen) return std::nullopt;
  ReserveOutcome out;
  if (cached_cutoff) {
    out.status = ReserveStatus::kCutoff;
    out.cutoff_reason = *cached_cutoff;
    return out;
  }
  WindowKey key;
  const BudgetSet& set = *bset;
  for (size_t i = 0; i < set.budgets.size(); ++i) {
    if (!scope_matches(set.budgets[i].scope, r.scope)) continue;
    key.emplace_back(set.budgets[i].id, window_bounds(set.budgets[i].window, *set.zones[i], at).first);
  }
  if (key.empty()) {  // no budget applies: nothing to book
    out.reservation_id = add_sub(next_sub_id--, r, at, nullptr);
    return out;
  }
  auto it = leases.find(key);
  if (it == leases.end()) return std::nullopt;
  const std::shared_ptr<Lease>& lease = it->second;
  if (lease->dead || lease->closing || lease->free < r.amount || at >= lease->window_end ||
      at + r.ttl_us > lease->expires_at) {
    return std::nullopt;
  }
  out.remaining = cached_remaining(key);
  lease->free -= r.amount;
  hold(*lease, r.amount);
  out.reservation_id = add_sub(next_sub_id--, r, at, lease);
  return out;
}

ReserveOutcome SqliteLedger::Impl::reserve_slow(const ReserveRequest& r, TimeUs at) {
  ReserveOutcome out;
  if (auto cut = sync_state()) {
    out.status = ReserveStatus::kCutoff;
    out.cutoff_reason = *cut;
    return out;
  }
  bool reclaimed = false;
  if (std::chrono::steady_clock::now() - last_reclaim >=
      std::chrono::microseconds(options.reclaim_interval_us)) {
    reclaim_locked(at);
    reclaimed = true;
  }
  std::vector<std::shared_ptr<Lease>> to_return, ended;
  const int64_t gen = bset->gen;
  {
    std::lock_guard lk(lmu);
    purge_expired_subs(at);
    for (const auto& [key, lease] : leases) {
      if (lease->dead) continue;
      if (at >= lease->window_end) {
        ended.push_back(lease);
      } else if (gen != leases_gen) {
        to_return.push_back(lease);  // budgets changed: re-lease under the new limits
      }
    }
  }
  for (auto& lease : ended) return_free(lease, true);
  for (auto& lease : to_return) return_free(lease, false);
  if (gen != leases_gen) after_commit([this, gen] { leases_gen = gen; });

  auto matched = match(r.scope, at, false);
  WindowKey key;
  TimeUs window_end = std::numeric_limits<TimeUs>::max();
  for (const auto& m : matched) {
    key.emplace_back(m.budget->id, m.start);
    window_end = std::min(window_end, m.end);
  }
  int64_t id = 0;
  {
    std::lock_guard lk(lmu);
    id = next_sub_id--;
  }
  if (key.empty()) {
    after_commit([this, id, r, at] { add_sub(id, r, at, nullptr); });
    out.reservation_id = id;
    return out;
  }

  // This scope's lease, if its row still exists; claim what it has free (up to the amount).
  std::shared_ptr<Lease> lease;
  Money claimed;
  {
    std::lock_guard lk(lmu);
    auto it = leases.find(key);
    if (it != leases.end() && !it->second->dead && !it->second->closing) lease = it->second;
  }
  if (!lease) {  // created by an earlier job of this batch, not committed yet
    auto it = pending_new.find(key);
    if (it != pending_new.end()) lease = it->second;
  }
  if (lease && !lease_row_exists(*lease)) {
    after_commit([this, lease] { drop_lease(lease); });
    lease = nullptr;
  }
  // Its settled reservations leave the counters first, so the check below sees true room.
  if (lease && flush_consumed(lease)) matched = match(r.scope, at, false);
  if (lease) {
    std::lock_guard lk(lmu);
    claimed = std::min(lease->free, r.amount);
    lease->free -= claimed;
    ++lease->pending;
  }
  if (lease) {
    if_failed([lease, claimed] {
      lease->free += claimed;
      --lease->pending;
    });
  }
  bool returned_others = false;
  for (;;) {
    // What this process sees: counters minus its own free lease money (the claim included).
    std::vector<Money> own(matched.size());
    {
      std::lock_guard lk(lmu);
      for (size_t i = 0; i < matched.size(); ++i) own[i] = own_free(key[i]) + claimed;
    }
    const Money need = r.amount - claimed;
    std::optional<size_t> refuse, downgrade;
    std::optional<Money> room;  // least limit - spent - reserved, true counters
    std::vector<BudgetState> seen;
    for (size_t i = 0; i < matched.size(); ++i) {
      const Matched& m = matched[i];
      if (current) current->counters.emplace_back(m.budget->id, m.start, m.counter);
      seen.push_back({*m.budget, m.start, m.end, m.counter.spent, m.counter.reserved - own[i]});
      if (seen.back().reserved.is_negative()) seen.back().reserved = Money();
      if (!out.remaining || seen.back().remaining() < *out.remaining) {
        out.remaining = seen.back().remaining();
      }
      Money left = m.budget->limit - m.counter.spent - m.counter.reserved;
      if (left.is_negative()) left = Money();
      if (!room || left < *room) room = left;
      if (m.counter.spent + m.counter.reserved + need > m.budget->limit) {
        if (m.budget->policy == Policy::kRefuse && !refuse) refuse = i;
        if (m.budget->policy == Policy::kDowngrade && !downgrade) downgrade = i;
      }
    }
    const std::optional<BudgetState> blocking =
        refuse ? std::optional(seen[*refuse])
               : downgrade ? std::optional(seen[*downgrade]) : std::nullopt;
    if (blocking) {
      if (!returned_others) {
        // This process's other leases on these budgets give their free money back first.
        returned_others = true;
        std::vector<std::shared_ptr<Lease>> others;
        {
          std::lock_guard lk(lmu);
          for (const auto& [k, l] : leases) {
            if (l == lease || l->dead || (l->free.is_zero() && l->consumed.is_zero())) continue;
            for (const auto& w : k) {
              if (std::find(key.begin(), key.end(), w) != key.end()) {
                others.push_back(l);
                break;
              }
            }
          }
        }
        if (!others.empty()) {
          for (auto& l : others) return_free(l, false);
          matched = match(r.scope, at, false);
          out.remaining.reset();
          continue;
        }
      }
      if (!reclaimed) {
        reclaimed = true;
        if (reclaim_locked(at) > 0) {
          if (lease) {
            if (!lease_row_exists(*lease)) {  // our own lease expired: its claim went with it
              after_commit([this, lease] { drop_lease(lease); });
              lease = nullptr;
              claimed = Money();
            }
          }
          matched = match(r.scope, at, false);
          out.remaining.reset();
          continue;
        }
      }
      out.status = ReserveStatus::kExceeded;
      out.blocking = blocking;
      if (lease) {
        after_commit([lease, claimed] {
          lease->free += claimed;
          --lease->pending;
        });
      }
      return out;
    }
    // Fits. Grant at least what is missing; more while the budgets have room, so the next
    // calls stay local: at most 1/8 of what is left (grants shrink near the limit and end up
    // exact) and at most grant_calls_for() calls of this size (32 to 1024).
    const Money need_now = need;
    Money grant;
    const int64_t calls = grant_calls_for(lease.get(), at);
    if (!need_now.is_zero() || !lease) {
      const Money eighth = Money::from_units(room.value_or(Money()).units() / 8);
      grant = std::max(need_now, std::min(eighth, r.amount * calls));
    }
    // The row outlives any reservation it may serve by one more lease ttl, so the fast path
    // (which needs at + ttl <= expires) keeps working between refreshes.
    const TimeUs expires = at + std::max(r.ttl_us, kLeaseTtlUs) + kLeaseTtlUs;
    if (lease) {
      add_to_lease_row(*lease, grant, expires);
    } else {
      const auto [gn, ga] = split(grant);
      const std::string windows = encode_windows(key);
      // The scope of the call that made it: one that matches the lease's budgets, which the
      // row's calls in flight are booked against if this process dies (abandon_reservation).
      q("INSERT INTO reservations(id, pid, pid_start, host, created_at, expires_at, amount_nanos, "
        "amount_attos, windows, lease, project, conversation, tags) VALUES "
        "(" ORROUTE_NEW_RESERVATION_ID ",?,?,?,?,?,?,?,?,?,?,?,?)")
          .bind(1, pid).bind(2, pid_start).bind(3, host).bind(4, at).bind(5, expires)
          .bind(6, gn).bind(7, ga).bind_text(8, windows).bind(9, int64_t{behind_on ? 2 : 1})
          .bind(10, r.scope.project).bind(11, r.scope.conversation)
          .bind(12, encode_tags(r.scope.tags)).run();
      auto fresh = std::make_shared<Lease>();
      fresh->row_id = sqlite3_last_insert_rowid(db);
      fresh->created_at = at;
      fresh->windows = key;
      fresh->windows_text = windows;
      fresh->window_end = window_end;
      fresh->expires_at = expires;
      fresh->pending = 1;
      lease = fresh;
      pending_new[key] = fresh;
      if_failed([this, key] { pending_new.erase(key); });
      after_commit([this, fresh] {
        fresh->slot = take_held_slot(fresh->row_id, fresh->created_at);
        leases[fresh->windows] = fresh;
      });
    }
    if (!grant.is_zero()) {
      for (auto& m : matched) {
        m.counter.reserved += grant;
        write_counter(m.budget->id, m.start, m.counter);
      }
    }
    out.reservation_id = id;
    after_commit([this, lease, grant, need_now, expires, id, r, at, calls] {
      if (!grant.is_zero()) {
        lease->grant_calls = calls;
        lease->granted_at = at;
      }
      lease->free += grant - need_now;
      hold(*lease, r.amount);
      --lease->pending;
      lease->expires_at = std::max(lease->expires_at, expires);
      add_sub(id, r, at, lease);
    });
    return out;
  }
}

}  // namespace orroute
