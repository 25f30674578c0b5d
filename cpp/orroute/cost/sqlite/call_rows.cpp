// Call rows: recording a call, its tags, its spend on the budget counters and the alerts it fires.
#include <algorithm>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"
#include "orroute/cost/sqlite/schema.h"

namespace orroute {

using namespace sqlite;

void SqliteLedger::Impl::bind_call(sqlite::Query& s, const CallRecord& c) {
  // `c` outlives the statement's step: its text is bound without SQLite's copy. A parameter
  // not bound is NULL (the statement is fresh).
  s.bind(1, c.at).bind_borrowed_fresh(2, c.scope.project).bind_borrowed_fresh(3, c.scope.conversation);
  s.bind_borrowed_fresh(4, c.task_id).bind_borrowed_fresh(5, c.task_type);
  s.bind_borrowed_fresh(6, c.model_requested).bind_borrowed_fresh(7, c.model_used);
  s.bind_borrowed_fresh(8, c.provider).bind_borrowed_fresh(9, c.generation_id);
  s.bind(10, c.prompt_tokens).bind(11, c.completion_tokens);
  s.bind(12, c.cached_tokens).bind(13, c.cache_write_tokens).bind(14, c.reasoning_tokens);
  if (c.estimated_cost) {
    const auto [en, ea] = split(*c.estimated_cost);
    s.bind(15, en).bind(16, ea);
  }
  const auto [cn, ca] = split(c.cost);
  s.bind(17, cn).bind(18, ca);
  if (c.latency_us >= 0) s.bind(19, c.latency_us);
  if (c.ttft_us >= 0) s.bind(20, c.ttft_us);
  s.bind_text_borrowed(21, c.outcome).bind_borrowed_fresh(22, c.error_class).bind(23, int64_t{c.attempts});
  s.bind_text_borrowed(24, c.cost_source);
}

void SqliteLedger::Impl::check_refund_fits(const std::vector<Matched>& matched, Money refund) {
  for (const Matched& m : matched) {
    if ((m.counter.spent + refund).is_negative()) throw refund_past_spent(m.budget->name(), refund, m.counter.spent);
  }
}

void SqliteLedger::Impl::book_spent(std::vector<Matched>& matched, Money delta, TimeUs at,
                                    std::vector<Alert>& alerts) {
  for (auto& m : matched) {
    m.counter.spent += delta;
    write_counter(m.budget->id, m.start, m.counter);
    const Money limit = m.budget->limit;
    if (m.counter.spent.is_negative() || m.counter.spent.is_zero()) continue;
    for (const int32_t t : m.budget->thresholds_pct) {
      if (m.counter.spent * 100 < limit * t) continue;
      const std::tuple<int64_t, TimeUs, int32_t> key{m.budget->id, m.start, t};
      if (known_alerts.contains(key)) continue;  // fired before: the insert would be ignored
      after_commit([this, key] {
        if (known_alerts.size() >= kMaxKnownAlerts) known_alerts.clear();
        known_alerts.insert(key);
      });
      const auto [sn, sa] = split(m.counter.spent);
      const auto [ln, la] = split(limit);
      const std::string name = m.budget->name();
      q("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(1, m.budget->id).bind(2, m.start).bind(3, int64_t{t}).bind(4, at)
          .bind_text(5, name).bind(6, sn).bind(7, sa).bind(8, ln).bind(9, la).run();
      if (sqlite3_changes(db) == 1) alerts.push_back({m.budget->id, name, t, m.start, at, m.counter.spent, limit});
    }
  }
}

SettleOutcome SqliteLedger::Impl::insert_call(CallRecord& c, const Lease* lease, Money released) {
  check_call(c);
  check_scope(c.scope);
  sync_state();
  // Counters first: a counter created now is back-filled from rows before this one.
  auto matched = match(c.scope, c.at, false);
  if (lease) {
    for (const auto& w : lease->windows) {
      auto m = std::find_if(matched.begin(), matched.end(), [&](const Matched& x) {
        return x.budget->id == w.first && x.start == w.second;
      });
      if (m == matched.end()) {
        add_reserved(w.first, w.second, -released);
      } else {
        m->counter.reserved -= released;
        if (m->counter.reserved.is_negative()) m->counter.reserved = Money();
      }
    }
  }
  if (c.cost.is_negative()) check_refund_fits(matched, c.cost);  // before anything is written
  {
    auto s = q("INSERT INTO calls(ts, project, conversation, task_id, task_type, "
               "model_requested, model_used, provider, generation_id, prompt_tokens, "
               "completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, "
               "est_nanos, est_attos, cost_nanos, cost_attos, latency_us, ttft_us, outcome, "
               "error_class, attempts, cost_source) VALUES "
               "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    bind_call(s, c);
    s.run();
  }
  c.id = unused_id(sqlite3_last_insert_rowid(db));
  note_call(c.id, c.at);
  for (const auto& [k, v] : c.scope.tags) {
    q("INSERT INTO call_tags(call_id, key, value) VALUES (?, ?, ?)")
        .bind(1, c.id).bind_text_borrowed(2, k).bind_text_borrowed(3, v).run();
  }
  SettleOutcome out;
  out.call_id = c.id;
  book_spent(matched, c.cost, c.at, out.alerts);
  return out;
}

// SQLite gives a new row the largest rowid + 1: with the newest calls deleted by hand, their ids
// came again, inside a block of calls_blocks whose time span was theirs (the time filters
// missed the new calls, and completing the block again failed its insert: every settle after it
// failed), below state.completions_through (never indexed for completion_quantile, whose entries
// for the old calls named the new ones) or under the old calls' tags. The call moves past every
// id they used (rare: a manual delete); the calls after it follow. What was used is read once
// another connection changed the file (txn_reads): a settle at concurrency 1 reads nothing more.
int64_t SqliteLedger::Impl::unused_id(int64_t id) {
  int64_t& from = txn_reads.unused_ids_from;
  if (from < 0) {
    auto used = q("SELECT MAX((SELECT COALESCE(MAX(block) + 1, 0) << 6 FROM calls_blocks), "
                  "(SELECT completions_through + 1 FROM state), "
                  "(SELECT COALESCE(MAX(call_id), 0) + 1 FROM call_tags))");
    used.step();
    from = used.i64(0);
  }
  if (id < from) {
    q("UPDATE calls SET id = ?1 WHERE id = ?2").bind(1, from).bind(2, id).run();
    id = from;
  }
  from = id + 1;
  return id;
}

void SqliteLedger::Impl::note_call(int64_t id, TimeUs ts) {
  TxnReads::OwnCalls& own = txn_reads.own_calls;
  if (own.last >= 0 && id == own.last + 1) {
    own.last = id;
    own.min_ts = std::min(own.min_ts, ts);
    own.max_ts = std::max(own.max_ts, ts);
  } else {
    own = {id, id, ts, ts};
  }
  if ((id & 63) != 63) return;
  // Block id >> 6 is complete. Its row spans the ids after the last block written (more than 64
  // when calls came in without blocks: an older orroute's, on the file while another process
  // migrated it). Read from the rows (~1k instructions a row) unless this connection's own
  // calls are all of them.
  q("INSERT INTO calls_blocks SELECT ?1, ?2, ?3, ?4 WHERE "
    "(SELECT COALESCE(MAX(block) + 1, 0) << 6 FROM calls_blocks) >= ?2")
      .bind(1, id >> 6).bind(2, own.first).bind(3, own.min_ts).bind(4, own.max_ts).run();
  if (sqlite3_changes(db) == 0) {
    q("INSERT INTO calls_blocks SELECT ?1 >> 6, MIN(id), MIN(ts), MAX(ts) FROM calls WHERE "
      "id >= (SELECT COALESCE(MAX(block) + 1, 0) << 6 FROM calls_blocks) AND id <= ?1")
        .bind(1, id).run();
  }
  own = {};
}

std::optional<CallRecord> SqliteLedger::Impl::call_row(int64_t id) {
  auto s = q(std::string("SELECT ") + kCallColumns + " FROM calls WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_call(s);
}

Money SqliteLedger::Impl::refunded(int64_t id) {
  auto s = q("SELECT COALESCE(SUM(c.cost_nanos), 0), COALESCE(SUM(c.cost_attos), 0) FROM refunds AS r "
             "JOIN calls AS c ON c.id = r.refund_id WHERE r.call_id = ?");
  s.bind(1, id);
  s.step();
  return -join(s.i64(0), s.i64(1));
}

SettleOutcome SqliteLedger::record_refund_of(int64_t call_id, CallRecord refund) {
  SettleOutcome out = impl_->transact([&] {
    const std::optional<CallRecord> call = impl_->call_row(call_id);
    if (!call) throw InvalidArgument("no call " + std::to_string(call_id) + " to refund");
    refund_of(*call, impl_->refunded(call_id), refund);
    SettleOutcome booked = impl_->insert_call(refund);
    impl_->q("INSERT INTO refunds(call_id, refund_id) VALUES (?, ?)").bind(1, call_id)
        .bind(2, booked.call_id).run();
    return booked;
  });
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

SettleOutcome SqliteLedger::record(CallRecord call) {
  check_not_refund(call);
  if (call.at == 0) call.at = now_us();
  SettleOutcome out = impl_->transact([&] { return impl_->insert_call(call); });
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

}  // namespace orroute
