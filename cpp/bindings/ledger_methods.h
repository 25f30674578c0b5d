// The Ledger interface's methods, bound once for every backend class (SqliteLedger, RedisLedger)
// so both expose the same Python surface. Only included by bind_cost.cpp and bind_redis.cpp.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <type_traits>

#include "casters.h"
#include "orroute/cost/ledger.h"
#include "orroute/cost/sqlite_ledger.h"

namespace orroute::bindings {

template <class L>
void def_ledger_methods(pybind11::class_<L>& c) {
  namespace py = pybind11;
  using GIL = py::call_guard<py::gil_scoped_release>;
  c.def("set_budget",
        [](L& l, const std::string& scope, const std::string& period, Money limit,
           const std::string& time_zone, const std::string& policy,
           std::vector<int32_t> thresholds) {
          const BudgetSpec spec{parse_scope(scope), parse_window(period), time_zone, limit,
                                parse_policy(policy), std::move(thresholds)};
          py::gil_scoped_release release;
          return l.set_budget(spec);
        },
        py::arg("scope"), py::arg("period"), py::arg("limit"), py::arg("time_zone"),
        py::arg("policy"), py::arg("thresholds"))
      .def("remove_budget",
           [](L& l, const std::string& scope, const std::string& period) {
             return l.remove_budget(parse_scope(scope), parse_window(period));
           },
           py::arg("scope"), py::arg("period"), GIL())
      .def("budgets", &L::budgets, GIL())
      .def("budget_states", &L::budget_states, py::arg("scope"), py::arg("at"), py::arg("all"),
           GIL())
      // A lease hit takes well under a microsecond: keep the GIL for it (releasing it costs
      // more under contention); release it only when storage is involved.
      .def("reserve",
           [](L& l, const SpendScope& scope, Money amount, TimeUs at, int64_t ttl_us,
              const std::string& model, const std::string& task_id) {
             const ReserveRequest req{scope, amount, at, ttl_us, model, task_id};
             if (auto out = l.try_reserve_local(req)) return std::move(*out);
             py::gil_scoped_release release;
             return l.reserve(req);
           },
           py::arg("scope"), py::arg("amount"), py::arg("at") = 0,
           py::arg("ttl_us") = 15LL * 60 * 1'000'000, py::arg("model") = "",
           py::arg("task_id") = "")
      .def("settle", &L::settle, py::arg("reservation_id"), py::arg("call"), GIL())
      .def("release",
           [](L& l, int64_t id) {
             if constexpr (std::is_same_v<L, SqliteLedger>) {
               // lease reservations are released in memory (once this process has its connection)
               if (l.opened_here() && !l.release_needs_database(id)) return l.release(id);
             }
             py::gil_scoped_release release;
             return l.release(id);
           },
           py::arg("reservation_id"))
      .def("record", [](L& l, CallRecord call) { return record_call(l, std::move(call)); },
           py::arg("call"), GIL())
      .def("record_refund",
           [](L& l, int64_t call_id, CallRecord refund) { return record_refund(l, call_id, std::move(refund)); },
           py::arg("call_id"), py::arg("refund"), GIL())
      .def("reclaim", &L::reclaim, py::arg("at") = 0, GIL())
      .def("live_reservations", &L::live_reservations, GIL())
      .def("set_cutoff", &L::set_cutoff, py::arg("reason"), GIL())
      .def("cutoff", &L::cutoff, GIL())
      .def("calls", &L::calls, py::arg("query"), GIL())
      .def("total_cost", &L::total_cost, py::arg("query"), GIL())
      .def("report", &L::report, py::arg("query"), py::arg("period"), py::arg("by"), GIL())
      .def("alerts", &L::alerts, py::arg("start") = 0, GIL())
      .def("completion_quantile", &L::completion_quantile, py::arg("task_type"),
           py::arg("model"), py::arg("q"), py::arg("last_n"), GIL());
}

}  // namespace orroute::bindings
