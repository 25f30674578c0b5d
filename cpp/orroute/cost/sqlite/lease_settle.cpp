// Settling a reservation served from a lease.
#include <algorithm>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

SettleOutcome SqliteLedger::Impl::settle_sub(int64_t id, CallRecord call, TimeUs now) {
  if (behind_on) {
    if (auto out = settle_behind(id, call, now)) return std::move(*out);
  }
  const std::optional<Sub> sub = claim_sub(id);
  if (!sub) return transact([&] { return settle_unreserved_job(call, now); });
  try {
    return transact([&] { return settle_sub_job(id, *sub, call, now); });
  } catch (...) {
    unclaim_sub(id);
    throw;
  }
}

std::optional<SqliteLedger::Impl::Sub> SqliteLedger::Impl::claim_sub(int64_t id) {
  std::lock_guard lk(lmu);
  auto it = subs.find(id);
  if (it == subs.end() || it->second.settling) return std::nullopt;
  it->second.settling = true;
  return it->second;
}

void SqliteLedger::Impl::unclaim_sub(int64_t id) {
  std::lock_guard lk(lmu);
  auto it = subs.find(id);
  if (it != subs.end()) it->second.settling = false;
}

SettleOutcome SqliteLedger::Impl::settle_unreserved_job(CallRecord& call, TimeUs now) {
  if (call.at == 0) call.at = now;
  SettleOutcome out = insert_call(call, nullptr, Money());
  out.reservation_found = false;
  return out;
}

SettleOutcome SqliteLedger::Impl::settle_sub_job(int64_t id, const Sub& sub, CallRecord& c,
                                                 TimeUs now) {
  bool here = true;
  // A call that cost more than it reserved (an upstream ignoring max_tokens) takes the excess
  // off the lease's free money, so the lease never serves calls the budget cannot cover; when
  // the free money does not cover it, the budget generation moves and every process re-leases
  // under the true remaining amount.
  Money taken;
  if (sub.lease && c.cost > sub.amount) {
    const Money excess = c.cost - sub.amount;
    {
      std::lock_guard lk(lmu);
      taken = std::max(Money(), std::min(excess, sub.lease->free));
      sub.lease->free -= taken;
    }
    if_failed([lease = sub.lease, taken] { lease->free += taken; });
    if (taken < excess) {
      bump_gen();
      bump_epoch();
    }
  }
  // The lease row and its windows' reserved counters keep the settled reservation (as
  // `consumed`) while the row's expiry is more than a lease ttl away: one page fewer per settle,
  // and a crash still only releases money whose cost is already in spent. Write-behind leases
  // (whose dead rows count as spent) and a row due for an expiry refresh take it off now.
  bool keep_in_row = false;
  if (sub.lease && !behind_on) {
    std::lock_guard lk(lmu);
    keep_in_row = sub.lease->expires_at - now > kLeaseTtlUs;
  }
  if (keep_in_row) {
    here = lease_row_exists(*sub.lease);
  } else if (sub.lease) {
    here = add_to_lease_row(*sub.lease, -(sub.amount + taken), now + 2 * kLeaseTtlUs);
  }
  if (sub.lease && !here) {  // the lease was reclaimed: like a reclaimed reservation
    after_commit([this, lease = sub.lease] { drop_lease(lease); });
  }
  // Booked as the reservation was made, its lease reclaimed or not.
  c.at = sub.created_at;
  c.scope = sub.scope;
  // Its lease reclaimed (booked as abandoned with this call in flight): the call replaces its
  // share.
  std::optional<SettleOutcome> late;
  if (sub.lease && !here) {
    late = settle_abandoned(sub.lease->row_id, sub.lease->created_at,
                            LeaseShare{as_held(sub.amount), sub.created_at}, c, now);
  }
  const bool release_now = here && !keep_in_row;
  SettleOutcome out = late ? std::move(*late)
                           : insert_call(c, release_now ? sub.lease.get() : nullptr, sub.amount + taken);
  out.reservation_found = here;
  after_commit([this, id, lease = sub.lease, amount = sub.amount, taken, here, keep_in_row, now] {
    subs.erase(id);
    if (lease && here && !lease->dead) {
      unhold(*lease, amount);
      if (keep_in_row) {
        lease->consumed += amount + taken;
      } else {
        lease->expires_at = std::max(lease->expires_at, now + 2 * kLeaseTtlUs);
      }
    }
  });
  return out;
}

}  // namespace orroute
