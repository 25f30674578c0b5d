// orroute._core: the only translation unit that defines the module. Each area binds itself in
// bind_<area>.cpp; this file wires them up and maps core exceptions to orroute._exceptions.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "json_py.h"
#include "orroute/error.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "orroute's C++ core (private: use the public API in the orroute package)";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const orroute::Error& e) {
      const py::object cls =
          py::module_::import("orroute._exceptions").attr(orroute::bindings::python_class(e.kind()));
      // a message may quote an upstream: decoded leniently, so the translation itself cannot fail
      PyErr_SetObject(cls.ptr(), orroute::bindings::upstream_str(e.what()).ptr());
    }
  });

  py::enum_<orroute::ErrorKind>(m, "ErrorKind", "What went wrong, as the core names it.")
      .value("ERROR", orroute::ErrorKind::kError)
      .value("INVALID_ARGUMENT", orroute::ErrorKind::kInvalidArgument)
      .value("NOT_FOUND", orroute::ErrorKind::kNotFound)
      .value("PARSE", orroute::ErrorKind::kParse)
      .value("NO_MODEL_AVAILABLE", orroute::ErrorKind::kNoModelAvailable)
      .value("BUDGET_EXCEEDED", orroute::ErrorKind::kBudgetExceeded)
      .value("EMERGENCY_CUTOFF", orroute::ErrorKind::kEmergencyCutoff)
      .value("APPROVAL_DENIED", orroute::ErrorKind::kApprovalDenied)
      .value("UNPRICED_MODEL", orroute::ErrorKind::kUnpricedModel);
  m.def("python_class", &orroute::bindings::python_class, py::arg("kind"),
        "The orroute._exceptions class name an ErrorKind becomes.");

  orroute::bindings::bind_money(m);
  orroute::bindings::bind_catalog(m);
  orroute::bindings::bind_select(m);
  orroute::bindings::bind_tokenizer(m);
  orroute::bindings::bind_net(m);
  orroute::bindings::bind_cost(m);
  orroute::bindings::bind_feedback(m);
  orroute::bindings::bind_cache(m);
  orroute::bindings::bind_redis(m);
  orroute::bindings::bind_route(m);
  orroute::bindings::bind_routing(m);
  orroute::bindings::bind_verify(m);
  orroute::bindings::bind_compression(m);
  orroute::bindings::bind_provider(m);
}
