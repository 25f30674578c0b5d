// RedisLedger (multi-machine ledger): the same Python surface as SqliteLedger, plus its URL.
// Built only when hiredis was found; otherwise orroute._core has no RedisLedger and
// `redis_available()` is False.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "gil.h"
#include "ledger_methods.h"
#include "orroute/cost/open_ledger.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#endif

namespace py = pybind11;

namespace orroute::bindings {

void bind_redis(py::module_& m) {
  m.def("redis_available", &redis_ledger_available,
        "Whether this build has the Redis ledger (hiredis found at build time).");
#ifdef ORROUTE_HAVE_REDIS
  using GIL = py::call_guard<GilRelease>;
  py::class_<RedisLedger> redis(m, "RedisLedger");
  redis
      .def(py::init([](const std::string& url, const std::string& prefix,
                       int32_t connect_timeout_ms, int32_t command_timeout_ms) {
             RedisLedgerOptions options;
             options.prefix = prefix;
             options.connect_timeout_ms = connect_timeout_ms;
             options.command_timeout_ms = command_timeout_ms;
             return std::make_unique<RedisLedger>(url, options);
           }),
           py::arg("url"), py::arg("prefix") = "orroute:", py::arg("connect_timeout_ms") = 5'000,
           py::arg("command_timeout_ms") = 10'000, GIL())
      .def_property_readonly("url", &RedisLedger::url)
      .def_property_readonly("prefix", &RedisLedger::prefix)
      .def("wipe", &RedisLedger::wipe, GIL())
      .def("flush_settles", &RedisLedger::flush_settles, GIL())
      .def("__repr__", [](const RedisLedger& l) { return "RedisLedger('" + l.url() + "')"; });
  def_ledger_methods(redis);
#endif
}

}  // namespace orroute::bindings
