// Reserving, settling and releasing (the entry points; lease-served ones go to lease_*.cpp), and
// reservations without leases: one row each, their release and reclaim.
#include <algorithm>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"
#include "orroute/cost/sqlite/text_columns.h"

namespace orroute {

using namespace sqlite;

bool SqliteLedger::Impl::remove_reservation(int64_t id, bool as_spent) {
  Money amount;
  std::vector<std::pair<int64_t, TimeUs>> windows;
  {
    auto s = q("SELECT amount_nanos, amount_attos, windows FROM reservations WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return false;
    amount = join(s.i64(0), s.i64(1));
    windows = decode_windows(s.text(2));
  }
  for (const auto& [budget_id, start] : windows) {
    std::optional<Counter> c = existing_counter(budget_id, start);
    if (!c) continue;
    c->reserved -= amount;
    if (c->reserved.is_negative()) c->reserved = Money();
    if (as_spent) c->spent += amount;
    write_counter(budget_id, start, *c);
  }
  q("DELETE FROM reservations WHERE id = ?").bind(1, id).run();
  return true;
}

int64_t SqliteLedger::Impl::drop_leases_of(int64_t owner) {
  std::vector<std::pair<int64_t, bool>> rows;  // id, a write-behind lease
  {
    auto s = q("SELECT id, lease FROM reservations WHERE lease != 0 AND pid = ?");
    s.bind(1, owner);
    while (s.step()) rows.emplace_back(s.i64(0), s.i64(1) == 2);
  }
  for (const auto& [id, spent] : rows) remove_reservation(id, spent);
  return static_cast<int64_t>(rows.size());
}

void SqliteLedger::Impl::abandon_reservation(int64_t id, Money in_flight, const std::string& why,
                                             TimeUs at) {
  CallRecord call;
  {
    auto s = q("SELECT created_at, project, conversation, tags, model, task_id FROM reservations "
               "WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return;
    call.at = s.i64(0);
    call.scope.project = s.text(1);
    call.scope.conversation = s.text(2);
    call.scope.tags = decode_tags(s.text(3));
    call.model_requested = call.model_used = s.text(4);
    call.task_id = s.text(5);
  }
  remove_reservation(id);
  if (in_flight.is_zero()) return;
  call.cost = in_flight;
  call.outcome = kAbandonedOutcome;
  call.cost_source = "reservation: " + why;
  defer_alerts(insert_call(call).alerts);  // no caller is waiting on this row
  q("INSERT OR REPLACE INTO abandoned(reservation, created_at, reclaimed_at, call_id) VALUES "
    "(?, ?, ?, ?)").bind(1, id).bind(2, call.at).bind(3, at).bind(4, call.id).run();
}

std::optional<SqliteLedger::Impl::Booking> SqliteLedger::Impl::find_booking(int64_t id,
                                                                          TimeUs created_at) {
  auto s = q("SELECT a.call_id, a.reclaimed_at, c.ts, c.project, c.conversation, c.cost_nanos, "
             "c.cost_attos, (SELECT group_concat(key || '=' || value, char(10)) FROM call_tags "
             "WHERE call_id = c.id) FROM abandoned AS a JOIN calls AS c ON c.id = a.call_id "
             "WHERE a.reservation = ?1 AND (?2 = 0 OR a.created_at = ?2)");
  s.bind(1, id).bind(2, created_at);
  if (!s.step()) return std::nullopt;
  Booking b;
  b.reclaimed_at = s.i64(1);
  b.row.id = s.i64(0);
  b.row.at = s.i64(2);
  b.row.scope.project = s.text(3);
  b.row.scope.conversation = s.text(4);
  b.row.cost = join(s.i64(5), s.i64(6));
  b.row.scope.tags = decode_tags(s.text(7));
  return b;
}

void SqliteLedger::Impl::rewrite_call(const CallRecord& call) {
  auto s = q("UPDATE calls SET (ts, project, conversation, task_id, task_type, model_requested, "
             "model_used, provider, generation_id, prompt_tokens, completion_tokens, "
             "cached_tokens, cache_write_tokens, reasoning_tokens, est_nanos, est_attos, "
             "cost_nanos, cost_attos, latency_us, ttft_us, outcome, error_class, attempts, "
             "cost_source) = (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) WHERE id = ?25");
  bind_call(s, call);
  s.bind(25, call.id).run();
  // ok_completions is filled from the rows after completions_through: an older row is added
  // here (an abandoned row never is).
  q("INSERT OR IGNORE INTO ok_completions SELECT task_type, model_used, id FROM calls WHERE "
    "id = ? AND task_type IS NOT NULL AND model_used IS NOT NULL AND outcome = 'ok' AND "
    "id <= (SELECT completions_through FROM state WHERE id = 1)").bind(1, call.id).run();
}

Money SqliteLedger::Impl::share_of(const Booking& booking, const std::optional<LeaseShare>& share) {
  if (!share) return booking.row.cost;
  return share->served_at <= booking.reclaimed_at ? std::min(share->amount, booking.row.cost) : Money();
}

std::optional<SettleOutcome> SqliteLedger::Impl::settle_abandoned(int64_t id, TimeUs created_at,
                                                                  std::optional<LeaseShare> share,
                                                                  CallRecord& call, TimeUs now) {
  std::optional<Booking> booking = find_booking(id, created_at);
  if (!booking) return std::nullopt;
  CallRecord& booked = booking->row;
  const Money replaced = share_of(*booking, share);
  if (replaced.is_zero()) return std::nullopt;
  check_call(call);
  sync_state();
  auto matched = match(booked.scope, booked.at, false);  // the windows the booking went to
  SettleOutcome out;
  if (replaced == booked.cost) {  // the call takes the row over, at its time and scope
    call.id = booked.id;
    call.at = booked.at;
    call.scope = std::move(booked.scope);
    rewrite_call(call);
    q("DELETE FROM abandoned WHERE reservation = ?").bind(1, id).run();
    book_spent(matched, call.cost - replaced, call.at, out.alerts);
    out.call_id = call.id;
  } else {  // one call of a lease's booking: its share comes off the row, the call gets its own
    const auto [n, a] = split(booked.cost - replaced);
    q("UPDATE calls SET cost_nanos = ?, cost_attos = ? WHERE id = ?").bind(1, n).bind(2, a)
        .bind(3, booked.id).run();
    book_spent(matched, -replaced, booked.at, out.alerts);
    if (call.at == 0) call.at = now;
    SettleOutcome own = insert_call(call);
    out.call_id = own.call_id;
    for (Alert& alert : own.alerts) out.alerts.push_back(std::move(alert));
  }
  out.reservation_found = false;
  return out;
}

bool SqliteLedger::Impl::release_abandoned(int64_t id, TimeUs created_at,
                                           std::optional<LeaseShare> share) {
  const std::optional<Booking> booking = find_booking(id, created_at);
  if (!booking) return false;
  const CallRecord& booked = booking->row;
  const Money released = share_of(*booking, share);
  if (released.is_zero()) return false;
  sync_state();
  auto matched = match(booked.scope, booked.at, false);  // the windows the booking went to
  std::vector<Alert> none;  // spend only goes down
  book_spent(matched, -released, booked.at, none);
  const auto [n, a] = split(booked.cost - released);
  q("UPDATE calls SET cost_nanos = ?, cost_attos = ? WHERE id = ?").bind(1, n).bind(2, a)
      .bind(3, booked.id).run();
  if (released == booked.cost) {
    q("UPDATE calls SET cost_source = 'reservation: released by its owner after the reclaim "
      "booked it (nothing was billed)' WHERE id = ?").bind(1, booked.id).run();
    q("DELETE FROM abandoned WHERE reservation = ?").bind(1, id).run();
  }
  return true;
}

void SqliteLedger::Impl::remember_own(int64_t id, OwnReservation made) {
  if (own_reserved.size() >= own_sweep_at) {
    std::erase_if(own_reserved, [&](const auto& kv) { return kv.second.expires_at <= made.created_at; });
    own_sweep_at = std::max(kMaxOwnReserved, 2 * own_reserved.size());
  }
  own_reserved[id] = made;
}

TimeUs SqliteLedger::Impl::own_created_at(int64_t id) {
  std::lock_guard lk(lmu);
  const auto it = own_reserved.find(id);
  return it == own_reserved.end() ? 0 : it->second.created_at;
}

bool SqliteLedger::Impl::reservation_exists(int64_t id, TimeUs created_at) {
  auto s = q("SELECT 1 FROM reservations WHERE id = ?1 AND lease = 0 AND (?2 = 0 OR created_at = ?2)");
  s.bind(1, id).bind(2, created_at);
  return s.step();
}

bool SqliteLedger::Impl::release_reserved_job(int64_t id) {
  const TimeUs made = own_created_at(id);
  after_commit([this, id] { own_reserved.erase(id); });
  if (reservation_exists(id, made)) return remove_reservation(id);
  return release_abandoned(id, made, std::nullopt);
}

int64_t SqliteLedger::Impl::reclaim_locked(TimeUs at) {
  last_reclaim = std::chrono::steady_clock::now();
  std::vector<int64_t> dead;  // released: expired while their process (on this host) lives
  struct Abandoned {
    int64_t id;
    Money in_flight;
    std::string why;
  };
  std::vector<Abandoned> abandoned;
  std::vector<std::shared_ptr<Lease>> own;
  {
    auto s = q("SELECT id, pid, pid_start, host, expires_at, lease, created_at, amount_nanos, "
               "amount_attos FROM reservations");
    std::unordered_map<int64_t, bool> alive;  // pid -> alive, per pass
    while (s.step()) {
      const int64_t id = s.i64(0), rpid = s.i64(1), rstart = s.i64(2), expires = s.i64(4);
      const bool here = s.text(3) == host, lease = s.i64(5) != 0;
      const Money amount = join(s.i64(7), s.i64(8));
      bool exited = false;
      if (rpid != pid && here) {
        auto it = alive.find(rpid);
        if (it == alive.end()) it = alive.emplace(rpid, process_alive(rpid, rstart)).first;
        exited = !it->second;
      }
      // A live owner settles what it sent (or its reservation expired unused): released. A dead
      // one never will, and the ledger cannot tell what it sent: fail closed, booked as spent
      // (a lease: what its slot says was in flight; settles queued in memory by a write-behind
      // lease are in it). So is an expired reservation from another host, whose process cannot
      // be checked.
      auto who = [&] { return "process " + std::to_string(rpid) + (here ? "" : " on " + s.text(3)); };
      // A lease's row amount is mostly money no call held (free, or settled: already spent):
      // only what its slot says was in flight is booked (another host's slot is seen when the
      // hosts are containers of one machine, and left to its owner, who may live); with no slot
      // seen, all of it.
      if (lease && (exited || (expires <= at && !here))) {
        const std::optional<Money> held = exited ? take_dead_held(id, s.i64(6)) : peek_held(id, s.i64(6));
        abandoned.push_back({id, held ? std::min(*held, amount) : amount,
                             "the calls in flight from the budget lease of " + who() +
                                 (exited ? ", which ended" : ", which expired") +
                                 (held ? "" : " (in flight unknown: all of it)")});
      } else if (exited) {
        abandoned.push_back({id, amount, who() + " ended before settling it"});
      } else if (expires <= at && !here) {
        abandoned.push_back({id, amount, who() + " did not settle it before it expired"});
      } else if (expires <= at) {
        dead.push_back(id);
      }
    }
  }
  if (!dead.empty()) {
    std::lock_guard lk(lmu);
    for (const auto& [key, lease] : leases) {
      if (std::find(dead.begin(), dead.end(), lease->row_id) != dead.end()) own.push_back(lease);
    }
  }
  for (const int64_t id : dead) remove_reservation(id);
  for (const Abandoned& a : abandoned) abandon_reservation(a.id, a.in_flight, a.why, at);
  free_orphan_slots();
  // One of this process's leases expired (idle for its whole ttl): it is gone with its subs.
  for (auto& lease : own) after_commit([this, lease] { drop_lease(lease); });
  return static_cast<int64_t>(dead.size() + abandoned.size());
}

ReserveOutcome SqliteLedger::reserve(const ReserveRequest& r) {
  if (r.amount.is_negative()) throw InvalidArgument("reservation amount must be >= 0");
  if (r.ttl_us <= 0) throw InvalidArgument("reservation ttl must be > 0");
  check_scope(r.scope);
  const TimeUs at = r.at != 0 ? r.at : now_us();
  if (impl_->leases_on) {
    if (auto out = impl_->reserve_fast(r, at)) return std::move(*out);
    if (impl_->behind_on) {  // the queued settles ride in the same transaction
      std::optional<ReserveOutcome> out;
      impl_->flush_behind([&] { out = impl_->reserve_slow(r, at); });
      return std::move(*out);
    }
    return impl_->transact([&] { return impl_->reserve_slow(r, at); });
  }
  return impl_->transact([&] { return reserve_in_txn(r, at); });
}

std::optional<ReserveOutcome> SqliteLedger::try_reserve_local(const ReserveRequest& r) {
  // Not opened in this process yet (a forked child's first call): opening may wait for another
  // process's lock (up to busy_timeout_ms), which the caller's slow path does with the GIL released.
  if (!opened_here() || !impl_->leases_on) return std::nullopt;
  if (r.amount.is_negative()) throw InvalidArgument("reservation amount must be >= 0");
  if (r.ttl_us <= 0) throw InvalidArgument("reservation ttl must be > 0");
  check_scope(r.scope);
  return impl_->reserve_fast(r, r.at != 0 ? r.at : now_us());
}

ReserveOutcome SqliteLedger::reserve_in_txn(const ReserveRequest& r, TimeUs at) {
  bool reclaimed = false;
  if (std::chrono::steady_clock::now() - impl_->last_reclaim >=
      std::chrono::microseconds(impl_->options.reclaim_interval_us)) {
    impl_->reclaim_locked(at);
    reclaimed = true;
  }
  for (;;) {
    ReserveOutcome out;
    if (auto cut = impl_->sync_state()) {
      out.status = ReserveStatus::kCutoff;
      out.cutoff_reason = *cut;
      return out;
    }
    auto matched = impl_->match(r.scope, at, false);
    const Impl::Matched* refuse = nullptr;
    const Impl::Matched* downgrade = nullptr;
    for (const auto& m : matched) {
      const BudgetState st{*m.budget, m.start, m.end, m.counter.spent, m.counter.reserved};
      if (!out.remaining || st.remaining() < *out.remaining) out.remaining = st.remaining();
      if (m.counter.spent + m.counter.reserved + r.amount > m.budget->limit) {
        if (m.budget->policy == Policy::kRefuse && !refuse) refuse = &m;
        if (m.budget->policy == Policy::kDowngrade && !downgrade) downgrade = &m;
      }
    }
    if (const Impl::Matched* b = refuse ? refuse : downgrade) {
      if (!reclaimed && impl_->reclaim_locked(at) > 0) {
        reclaimed = true;
        continue;  // dead reservations freed room: check again
      }
      out.status = ReserveStatus::kExceeded;
      out.blocking = BudgetState{*b->budget, b->start, b->end, b->counter.spent, b->counter.reserved};
      return out;  // the batch commits new counters and reclaims
    }
    const auto [an, aa] = split(r.amount);
    std::string windows;  // the counters this reservation is charged to: "budget:start;..."
    for (const auto& m : matched) {
      windows += std::to_string(m.budget->id) + ":" + std::to_string(m.start) + ";";
    }
    impl_->q("INSERT INTO reservations(id, pid, pid_start, host, created_at, expires_at, "
             "amount_nanos, amount_attos, project, conversation, tags, model, task_id, windows) "
             "VALUES (" ORROUTE_NEW_RESERVATION_ID ",?,?,?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, impl_->pid).bind(2, impl_->pid_start).bind(3, impl_->host).bind(4, at)
        .bind(5, at + r.ttl_us).bind(6, an).bind(7, aa).bind(8, r.scope.project)
        .bind(9, r.scope.conversation).bind(10, encode_tags(r.scope.tags)).bind(11, r.model)
        .bind(12, r.task_id).bind_text(13, windows).run();
    out.reservation_id = sqlite3_last_insert_rowid(impl_->db);
    impl_->after_commit([impl = impl_.get(), id = out.reservation_id, made = Impl::OwnReservation{at, at + r.ttl_us}] {
      impl->remember_own(id, made);
    });
    for (auto& m : matched) {
      m.counter.reserved += r.amount;
      impl_->write_counter(m.budget->id, m.start, m.counter);
    }
    return out;
  }
}

SettleOutcome SqliteLedger::settle(int64_t reservation_id, CallRecord call) {
  check_not_refund(call);
  const TimeUs now = now_us();
  SettleOutcome out =
      reservation_id < 0
          ? impl_->settle_sub(reservation_id, std::move(call), now)
          : impl_->transact([&] { return impl_->settle_reserved_job(reservation_id, call, now); });
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

SettleOutcome SqliteLedger::Impl::settle_reserved_job(int64_t id, CallRecord& call, TimeUs now) {
  bool found = false;
  const TimeUs made = own_created_at(id);
  after_commit([this, id] { own_reserved.erase(id); });
  {
    auto s = q("SELECT created_at, project, conversation, tags, amount_nanos, amount_attos "
               "FROM reservations WHERE id = ?1 AND lease = 0 AND (?2 = 0 OR created_at = ?2)");
    s.bind(1, id).bind(2, made);
    if (s.step()) {
      found = true;
      call.at = s.i64(0);
      call.scope.project = s.text(1);
      call.scope.conversation = s.text(2);
      call.scope.tags = decode_tags(s.text(3));
      // Spent past its reservation: other processes' leases must re-check the true remaining.
      if (leases_on && call.cost > join(s.i64(4), s.i64(5))) {
        bump_gen();
        bump_epoch();
      }
    }
  }
  if (found) {
    remove_reservation(id);
  } else if (std::optional<SettleOutcome> out = settle_abandoned(id, made, std::nullopt, call, now)) {
    return std::move(*out);
  }
  if (call.at == 0) call.at = now;
  SettleOutcome out = insert_call(call);
  out.reservation_found = found;
  return out;
}

// Many settles in one transaction (one savepoint each): the settle worker hands over every
// call that finished while it wrote the previous batch. With write-behind the settles queue as
// they do one by one.
std::vector<BatchSettle> SqliteLedger::settle_batch(std::vector<SettleItem> items) {
  if (impl_->behind_on || items.size() < 2) return Ledger::settle_batch(std::move(items));
  const TimeUs now = now_us();
  std::vector<SettleOutcome> outs(items.size());
  std::vector<bool> claimed(items.size());
  std::vector<std::function<void()>> jobs;
  jobs.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    CallRecord& call = items[i].call;
    const int64_t id = items[i].reservation_id;
    SettleOutcome& out = outs[i];
    if (call.outcome == kRefundOutcome) {
      jobs.push_back([&call] { check_not_refund(call); });  // refused as settle() refuses it
    } else if (id >= 0) {
      jobs.push_back([this, id, &call, &out, now] { out = impl_->settle_reserved_job(id, call, now); });
    } else if (std::optional<Impl::Sub> sub = impl_->claim_sub(id)) {
      claimed[i] = true;
      jobs.push_back([this, id, sub = std::move(*sub), &call, &out, now] {
        out = impl_->settle_sub_job(id, sub, call, now);
      });
    } else {
      jobs.push_back([this, &call, &out, now] { out = impl_->settle_unreserved_job(call, now); });
    }
  }
  const std::vector<std::exception_ptr> errors = impl_->transact_all(std::move(jobs));
  std::vector<BatchSettle> result(items.size());
  bool handed = false;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!errors[i]) {
      if (!std::exchange(handed, true)) impl_->hand_out_late_alerts(outs[i].alerts);
      result[i].outcome = std::move(outs[i]);
      continue;
    }
    if (claimed[i]) impl_->unclaim_sub(items[i].reservation_id);
    try {
      std::rethrow_exception(errors[i]);
    } catch (const std::exception& e) {
      result[i].error = e.what();
    } catch (...) {
      result[i].error = "unknown error";
    }
  }
  return result;
}

bool SqliteLedger::release(int64_t reservation_id) {
  if (reservation_id < 0) {
    return impl_->release_sub(reservation_id);
  }
  return impl_->transact([&] { return impl_->release_reserved_job(reservation_id); });
}

int64_t SqliteLedger::reclaim(TimeUs at) {
  if (at == 0) at = now_us();
  impl_->flush_queued();
  return impl_->transact([&] {
    if (impl_->leases_on) {
      std::lock_guard lk(impl_->lmu);
      impl_->purge_expired_subs(at);
    }
    return impl_->reclaim_locked(at);
  });
}

std::pair<int64_t, Money> SqliteLedger::live_reservations() {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  // Other processes' leases count whole (their money is set aside); this object's lease rows
  // are replaced by the reservations it served from them.
  auto s = impl_->q("SELECT COUNT(*), COALESCE(SUM(amount_nanos), 0), COALESCE(SUM(amount_attos), 0) "
                    "FROM reservations WHERE NOT (lease <> 0 AND amount_nanos = 0 AND "
                    "amount_attos = 0)");
  s.step();
  int64_t n = s.i64(0);
  Money sum = join(s.i64(1), s.i64(2));
  const Impl::ProcessView view = impl_->process_view();
  for (const int64_t id : view.lease_rows) {
    // A lease row of this process (the id of a reclaimed one may name another reservation now).
    auto r = impl_->q("SELECT amount_nanos, amount_attos FROM reservations WHERE id = ? AND "
                      "lease <> 0 AND pid = ? AND pid_start = ?");
    r.bind(1, id).bind(2, impl_->pid).bind(3, impl_->pid_start);
    if (!r.step()) continue;
    const Money amount = join(r.i64(0), r.i64(1));
    if (amount.is_zero()) continue;
    --n;
    sum -= amount;
  }
  n += view.subs;
  sum += view.held;
  return {n, sum};
}

}  // namespace orroute
