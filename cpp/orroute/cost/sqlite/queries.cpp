// Reading the calls back: filtered rows, totals, grouped reports, alerts, completion quantiles.
#include <algorithm>
#include <cmath>
#include <iterator>

#include "orroute/cost/sqlite/impl.h"
#include "orroute/cost/sqlite/money_columns.h"
#include "orroute/cost/sqlite/schema.h"

namespace orroute {

using namespace sqlite;

std::string SqliteLedger::Impl::where(const CallQuery& cq) {
  std::string w = " WHERE ts >= :from";
  if (cq.from > 0) w += " AND " + calls_from(":from");  // from 0 (all): no range to look up
  if (cq.to > 0) w += " AND ts < :to AND " + calls_before(":to");
  if (!cq.project.empty()) w += " AND project = :project";
  if (!cq.conversation.empty()) w += " AND conversation = :conversation";
  if (!cq.model.empty()) w += " AND model_used = :model";
  if (!cq.task_type.empty()) w += " AND task_type = :task_type";
  if (!cq.tag_key.empty()) {
    w += " AND id IN (SELECT call_id FROM call_tags WHERE key = :tag_key AND value = :tag_value)";
  }
  return w;
}

void SqliteLedger::Impl::bind_query(Query& s, const CallQuery& cq) {
  s.bind(":from", cq.from);
  if (cq.to > 0) s.bind(":to", cq.to);
  if (!cq.project.empty()) s.bind(":project", std::string_view(cq.project));
  if (!cq.conversation.empty()) s.bind(":conversation", std::string_view(cq.conversation));
  if (!cq.model.empty()) s.bind(":model", std::string_view(cq.model));
  if (!cq.task_type.empty()) s.bind(":task_type", std::string_view(cq.task_type));
  if (!cq.tag_key.empty()) {
    s.bind(":tag_key", std::string_view(cq.tag_key));
    s.bind(":tag_value", std::string_view(cq.tag_value));
  }
}

CallRecord SqliteLedger::Impl::read_call(sqlite::Query& s) {
  CallRecord c;
  c.id = s.i64(0);
  c.at = s.i64(1);
  c.scope.project = s.text(2);
  c.scope.conversation = s.text(3);
  c.task_id = s.text(4);
  c.task_type = s.text(5);
  c.model_requested = s.text(6);
  c.model_used = s.text(7);
  c.provider = s.text(8);
  c.generation_id = s.text(9);
  c.prompt_tokens = s.i64(10);
  c.completion_tokens = s.i64(11);
  c.cached_tokens = s.i64(12);
  c.cache_write_tokens = s.i64(13);
  c.reasoning_tokens = s.i64(14);
  if (!s.null(15)) c.estimated_cost = join(s.i64(15), s.i64(16));
  c.cost = join(s.i64(17), s.i64(18));
  c.latency_us = s.null(19) ? -1 : s.i64(19);
  c.ttft_us = s.null(20) ? -1 : s.i64(20);
  c.outcome = s.text(21);
  c.error_class = s.text(22);
  c.attempts = static_cast<int32_t>(s.i64(23));
  c.cost_source = s.text(24);
  c.scope.tags = decode_tags(s.text(25));
  std::sort(c.scope.tags.begin(), c.scope.tags.end());
  return c;
}

std::vector<CallRecord> SqliteLedger::calls(const CallQuery& cq) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  std::string sql = std::string("SELECT ") + kCallColumns + " FROM calls" + Impl::where(cq) +
                    (cq.limit >= 0 ? " ORDER BY id DESC LIMIT :limit" : " ORDER BY id");
  auto s = impl_->q(sql);
  Impl::bind_query(s, cq);
  if (cq.limit >= 0) s.bind(":limit", cq.limit);
  std::vector<CallRecord> out;
  while (s.step()) out.push_back(Impl::read_call(s));
  if (cq.limit >= 0) std::reverse(out.begin(), out.end());
  return out;
}

Money SqliteLedger::total_cost(const CallQuery& cq) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  auto s = impl_->q("SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(cost_attos), 0) FROM calls" +
                    Impl::where(cq));
  Impl::bind_query(s, cq);
  s.step();
  return join(s.i64(0), s.i64(1));
}

std::vector<ReportRow> SqliteLedger::report(const CallQuery& cq, std::string_view period,
                                            std::string_view by) {
  std::string period_sql;
  if (period == "day" || period == "daily") {
    period_sql = "strftime('%Y-%m-%d', ts / 1000000, 'unixepoch')";
  } else if (period == "week" || period == "weekly") {
    period_sql = "date(ts / 1000000, 'unixepoch', 'weekday 0', '-6 days')";  // Monday
  } else if (period == "month" || period == "monthly") {
    period_sql = "strftime('%Y-%m', ts / 1000000, 'unixepoch')";
  } else if (period == "hour") {
    period_sql = "strftime('%Y-%m-%dT%H', ts / 1000000, 'unixepoch')";
  } else if (period == "total" || period.empty()) {
    period_sql = "'total'";
  } else {
    throw InvalidArgument("report period must be hour, day, week, month or total, got '" +
                          std::string(period) + "'");
  }
  std::string key_sql;
  std::string tag_key;
  static const char* const kColumns[] = {"model", "model_requested", "project", "provider",
                                         "task_type", "conversation", "outcome", "error_class",
                                         "task_id"};
  if (by.empty() || by == "none") {
    key_sql = "''";
  } else if (by.substr(0, 4) == "tag:" && by.size() > 4) {
    tag_key = by.substr(4);
    key_sql = "(SELECT value FROM call_tags WHERE call_id = calls.id AND key = :by_tag)";
  } else if (std::find(std::begin(kColumns), std::end(kColumns), by) != std::end(kColumns)) {
    key_sql = by == "model" ? "model_used" : std::string(by);
  } else {
    throw InvalidArgument("report cannot group by '" + std::string(by) +
                          "' (model, model_requested, project, provider, task_type, "
                          "conversation, outcome, error_class, task_id, tag:<key>)");
  }
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  const std::string sql =
      // calls and errors: is_call's outcomes (a reclaim's booking and a refund are no calls)
      "SELECT " + period_sql + " AS p, COALESCE(" + key_sql + ", '') AS k, "
      "SUM(outcome NOT IN ('abandoned', 'refund')), SUM(outcome NOT IN ('ok', 'abandoned', 'refund')), "
      "SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos), "
      "SUM(cost_attos), COALESCE(SUM(est_nanos), 0), COALESCE(SUM(est_attos), 0), "
      "COALESCE(SUM(CASE WHEN est_nanos IS NOT NULL THEN cost_nanos END), 0), "
      "COALESCE(SUM(CASE WHEN est_nanos IS NOT NULL THEN cost_attos END), 0), "
      "COALESCE(SUM(latency_us), 0), COUNT(latency_us) FROM calls" +
      Impl::where(cq) + " GROUP BY p, k ORDER BY p, k";
  auto s = impl_->q(sql);
  Impl::bind_query(s, cq);
  if (!tag_key.empty()) s.bind(":by_tag", std::string_view(tag_key));
  std::vector<ReportRow> out;
  while (s.step()) {
    ReportRow r;
    r.period = s.text(0);
    r.key = s.text(1);
    r.calls = s.i64(2);
    r.errors = s.i64(3);
    r.prompt_tokens = s.i64(4);
    r.completion_tokens = s.i64(5);
    r.cost = join(s.i64(6), s.i64(7));
    r.estimated = join(s.i64(8), s.i64(9));
    r.cost_of_estimated = join(s.i64(10), s.i64(11));
    r.latency_us_sum = s.i64(12);
    r.latency_count = s.i64(13);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Alert> SqliteLedger::alerts(TimeUs from) {
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  auto s = impl_->q("SELECT budget_id, budget_name, threshold_pct, window_start, fired_at, "
                    "spent_nanos, spent_attos, limit_nanos, limit_attos FROM alerts WHERE "
                    "fired_at >= ? ORDER BY fired_at, budget_id, threshold_pct");
  s.bind(1, from);
  std::vector<Alert> out;
  while (s.step()) {
    out.push_back({s.i64(0), s.text(1), static_cast<int32_t>(s.i64(2)), s.i64(3), s.i64(4),
                   join(s.i64(5), s.i64(6)), join(s.i64(7), s.i64(8))});
  }
  return out;
}

void SqliteLedger::Impl::index_completions() {
  // The last call ok_completions covers, and the last call recorded.
  const auto marks = [this] {
    auto at = q("SELECT completions_through, (SELECT COALESCE(MAX(id), 0) FROM calls) FROM state "
                "WHERE id = 1");
    at.step();
    return std::pair{at.i64(0), at.i64(1)};
  };
  for (;;) {
    if (const auto [through, last] = marks(); through == last) return;  // no write lock taken
    Txn txn(*this);
    const auto [through, last] = marks();  // again under the lock: another process may have added them
    const int64_t upto = std::min(last, through + kCompletionsPerTxn);
    if (last < through) {
      // The newest calls were deleted (orroute never does): their ids are given again.
      q("DELETE FROM ok_completions WHERE call_id > ?").bind(1, last).run();
    } else {
      q("INSERT INTO ok_completions SELECT task_type, model_used, id FROM calls WHERE id > ? AND "
        "id <= ? AND task_type IS NOT NULL AND model_used IS NOT NULL AND outcome = 'ok'")
          .bind(1, through).bind(2, upto).run();
    }
    q("UPDATE state SET completions_through = ? WHERE id = 1").bind(1, upto).run();
    txn.commit();
    if (upto == last) return;
  }
}

std::optional<int64_t> SqliteLedger::completion_quantile(std::string_view task_type,
                                                         std::string_view model, double q,
                                                         int64_t last_n) {
  if (!(q >= 0.0 && q <= 1.0)) throw InvalidArgument("quantile must be in [0, 1]");
  impl_->flush_queued();  // this object reads what it wrote
  Impl::Locked lock(*impl_);
  impl_->index_completions();
  // The call's own columns are checked again: the index table only ever names a row to read.
  auto s = impl_->q("SELECT c.completion_tokens FROM ok_completions AS o CROSS JOIN calls AS c "
                    "ON c.id = o.call_id WHERE o.task_type = ?1 AND o.model_used = ?2 "
                    "AND c.task_type = ?1 AND c.model_used = ?2 AND c.outcome = 'ok' "
                    "ORDER BY o.call_id DESC LIMIT ?3");
  s.bind_text(1, task_type).bind_text(2, model).bind(3, last_n);
  std::vector<int64_t> v;
  while (s.step()) v.push_back(s.i64(0));
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least q of the sample at or below it.
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[rank == 0 ? 0 : std::min(rank, v.size()) - 1];
}

}  // namespace orroute
