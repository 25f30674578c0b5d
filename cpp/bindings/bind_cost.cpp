// Ledger, budgets, reservations. Thin: type conversion, GIL release around every ledger call,
// and the translator that gives BudgetExceededError its attributes.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "ledger_methods.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/sqlite_ledger.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#endif

namespace py = pybind11;

namespace orroute::bindings {
namespace {

using Tags = std::vector<std::pair<std::string, std::string>>;

std::string status_name(ReserveStatus s) {
  switch (s) {
    case ReserveStatus::kReserved: return "reserved";
    case ReserveStatus::kExceeded: return "exceeded";
    case ReserveStatus::kCutoff: return "cutoff";
  }
  return "reserved";
}

}  // namespace

void bind_cost(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const BudgetExceeded& e) {
      const py::object cls = py::module_::import("orroute._exceptions").attr(python_class(e.kind()));
      const py::object err = cls(e.what(), py::arg("budget") = e.budget, py::arg("limit") = e.limit,
                                 py::arg("spent") = e.spent, py::arg("reserved") = e.reserved,
                                 py::arg("estimate") = e.estimate,
                                 py::arg("remaining") = e.remaining,
                                 py::arg("policy") = std::string(to_string(e.policy)));
      PyErr_SetObject(cls.ptr(), err.ptr());
    }
  });

  m.def("window_bounds",
        [](const std::string& period, const std::string& tz, TimeUs at) {
          return window_bounds(parse_window(period), *TimeZone::locate(tz), at);
        },
        py::arg("period"), py::arg("time_zone"), py::arg("at"),
        "[start, end) in UTC microseconds of the budget window containing `at`.");
  m.def("now_us", &now_us);
  py::class_<SpendScope>(m, "SpendScope")
      .def(py::init([](std::string project, std::string conversation, Tags tags) {
             return SpendScope{std::move(project), std::move(conversation), std::move(tags)};
           }),
           py::arg("project") = "", py::arg("conversation") = "", py::arg("tags") = Tags{})
      .def_readwrite("project", &SpendScope::project)
      .def_readwrite("conversation", &SpendScope::conversation)
      .def_readwrite("tags", &SpendScope::tags);

  py::class_<Budget>(m, "Budget")
      .def_readonly("id", &Budget::id)
      .def_property_readonly("scope", [](const Budget& b) { return b.scope.to_string(); })
      .def_property_readonly("period", [](const Budget& b) { return std::string(to_string(b.window)); })
      .def_readonly("time_zone", &Budget::time_zone)
      .def_readonly("limit", &Budget::limit)
      .def_property_readonly("policy", [](const Budget& b) { return std::string(to_string(b.policy)); })
      .def_readonly("thresholds", &Budget::thresholds_pct)
      .def_property_readonly("name", &Budget::name);

  py::class_<BudgetState>(m, "BudgetState")
      .def_readonly("budget", &BudgetState::budget)
      .def_readonly("window_start", &BudgetState::window_start)
      .def_readonly("window_end", &BudgetState::window_end)
      .def_readonly("spent", &BudgetState::spent)
      .def_readonly("reserved", &BudgetState::reserved)
      .def_property_readonly("remaining", &BudgetState::remaining);

  py::class_<ReserveOutcome>(m, "ReserveOutcome")
      .def_property_readonly("status", [](const ReserveOutcome& o) { return status_name(o.status); })
      .def_readonly("reservation_id", &ReserveOutcome::reservation_id)
      .def_readonly("blocking", &ReserveOutcome::blocking)
      .def_readonly("remaining", &ReserveOutcome::remaining)
      .def_readonly("cutoff_reason", &ReserveOutcome::cutoff_reason);

  py::class_<CallRecord>(m, "CallRecord")
      .def(py::init<>())
      .def_readwrite("id", &CallRecord::id)
      .def_readwrite("at", &CallRecord::at)
      .def_readwrite("scope", &CallRecord::scope)
      .def_readwrite("task_id", &CallRecord::task_id)
      .def_readwrite("task_type", &CallRecord::task_type)
      .def_readwrite("model_requested", &CallRecord::model_requested)
      .def_readwrite("model_used", &CallRecord::model_used)
      .def_readwrite("provider", &CallRecord::provider)
      .def_readwrite("generation_id", &CallRecord::generation_id)
      .def_readwrite("prompt_tokens", &CallRecord::prompt_tokens)
      .def_readwrite("completion_tokens", &CallRecord::completion_tokens)
      .def_readwrite("cached_tokens", &CallRecord::cached_tokens)
      .def_readwrite("cache_write_tokens", &CallRecord::cache_write_tokens)
      .def_readwrite("reasoning_tokens", &CallRecord::reasoning_tokens)
      .def_readwrite("estimated_cost", &CallRecord::estimated_cost)
      .def_readwrite("cost", &CallRecord::cost)
      .def_readwrite("latency_us", &CallRecord::latency_us)
      .def_readwrite("ttft_us", &CallRecord::ttft_us)
      .def_readwrite("outcome", &CallRecord::outcome)
      .def_readwrite("error_class", &CallRecord::error_class)
      .def_readwrite("attempts", &CallRecord::attempts)
      .def_readwrite("cost_source", &CallRecord::cost_source)
      .def_property_readonly("is_call", [](const CallRecord& c) { return is_call(c.outcome); });

  py::class_<Alert>(m, "Alert")
      .def_readonly("budget_id", &Alert::budget_id)
      .def_readonly("budget", &Alert::budget_name)
      .def_readonly("threshold_pct", &Alert::threshold_pct)
      .def_readonly("window_start", &Alert::window_start)
      .def_readonly("at", &Alert::at)
      .def_readonly("spent", &Alert::spent)
      .def_readonly("limit", &Alert::limit);

  py::class_<SettleOutcome>(m, "SettleOutcome")
      .def_readonly("call_id", &SettleOutcome::call_id)
      .def_readonly("reservation_found", &SettleOutcome::reservation_found)
      .def_readonly("alerts", &SettleOutcome::alerts);

  py::class_<CallQuery>(m, "CallQuery")
      .def(py::init<>())
      .def_readwrite("start", &CallQuery::from)
      .def_readwrite("end", &CallQuery::to)
      .def_readwrite("project", &CallQuery::project)
      .def_readwrite("conversation", &CallQuery::conversation)
      .def_readwrite("model", &CallQuery::model)
      .def_readwrite("task_type", &CallQuery::task_type)
      .def_readwrite("tag_key", &CallQuery::tag_key)
      .def_readwrite("tag_value", &CallQuery::tag_value)
      .def_readwrite("limit", &CallQuery::limit);

  py::class_<ReportRow>(m, "ReportRow")
      .def_readonly("period", &ReportRow::period)
      .def_readonly("key", &ReportRow::key)
      .def_readonly("calls", &ReportRow::calls)
      .def_readonly("errors", &ReportRow::errors)
      .def_readonly("prompt_tokens", &ReportRow::prompt_tokens)
      .def_readonly("completion_tokens", &ReportRow::completion_tokens)
      .def_readonly("cost", &ReportRow::cost)
      .def_readonly("estimated", &ReportRow::estimated)
      .def_readonly("cost_of_estimated", &ReportRow::cost_of_estimated)
      .def_readonly("latency_us_sum", &ReportRow::latency_us_sum)
      .def_readonly("latency_count", &ReportRow::latency_count);

  py::class_<ApprovalRequest>(m, "ApprovalRequest")
      .def_readonly("estimate", &ApprovalRequest::estimate)
      .def_readonly("scope", &ApprovalRequest::scope)
      .def_readonly("model", &ApprovalRequest::model)
      .def_readonly("task_id", &ApprovalRequest::task_id);

  using GIL = py::call_guard<GilRelease>;
  py::class_<SqliteLedger> sqlite(m, "SqliteLedger");
  sqlite.def(py::init([](const std::string& path, int32_t busy_timeout_ms, bool durable_fsync,
                       bool leases, int64_t settle_delay_us) {
             SqliteLedgerOptions options;
             options.busy_timeout_ms = busy_timeout_ms;
             options.durable_fsync = durable_fsync;
             options.leases = leases;
             options.settle_delay_us = settle_delay_us;
             return std::make_unique<SqliteLedger>(path, options);
           }),
           py::arg("path"), py::arg("busy_timeout_ms") = 30'000, py::arg("durable_fsync") = false,
           py::arg("leases") = true, py::arg("settle_delay_us") = 0, GIL())
      .def_property_readonly("path", &SqliteLedger::path)
      .def_property_readonly("leases",
                             [](const SqliteLedger& l) {
                               GilRelease release;  // a forked child's first use opens the file
                               return l.leases_enabled();
                             })
      .def("release_leases", &SqliteLedger::release_leases, GIL())
      .def("flush_settles", &SqliteLedger::flush_settles, GIL())
      .def("schema_version", &SqliteLedger::schema_version, GIL());
  def_ledger_methods(sqlite);

  py::class_<BudgetGuard>(m, "BudgetGuard")
      .def(py::init<SqliteLedger&>(), py::arg("ledger"), py::keep_alive<1, 2>())
#ifdef ORROUTE_HAVE_REDIS
      .def(py::init<RedisLedger&>(), py::arg("ledger"), py::keep_alive<1, 2>())
#endif
      .def("set_approval", &BudgetGuard::set_approval, py::arg("above"), py::arg("hook"))
      .def("approval_threshold", &BudgetGuard::approval_threshold)
      .def("reserve",
           [](BudgetGuard& g, const SpendScope& scope, Money amount, TimeUs at, int64_t ttl_us,
              const std::string& model, const std::string& task_id) {
             const ReserveRequest req{scope, amount, at, ttl_us, model, task_id};
             if (auto out = g.try_reserve_local(req)) return std::move(*out);
             GilRelease release;
             return g.reserve(req);
           },
           py::arg("scope"), py::arg("amount"), py::arg("at") = 0,
           py::arg("ttl_us") = 15LL * 60 * 1'000'000, py::arg("model") = "",
           py::arg("task_id") = "");
}

}  // namespace orroute::bindings
