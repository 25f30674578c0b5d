// One bind function per area; each lives in bind_<area>.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "orroute/error.h"

namespace orroute::bindings {

// A plain CPython function (`def`, METH_FASTCALL or METH_NOARGS) whose `self` is a capsule named
// `name` owning `data`, deleted with the function (under the GIL): a hot call with no pybind11
// dispatch, its C++ object found with PyCapsule_GetPointer(self, name).
template <typename T>
pybind11::object capsule_function(PyMethodDef* def, const char* name, std::unique_ptr<T> data) {
  PyObject* capsule = PyCapsule_New(data.get(), name, [](PyObject* o) {
    delete static_cast<T*>(PyCapsule_GetPointer(o, PyCapsule_GetName(o)));
  });
  if (capsule == nullptr) throw pybind11::error_already_set();
  data.release();  // the capsule's now
  auto owned = pybind11::reinterpret_steal<pybind11::object>(capsule);
  PyObject* fn = PyCFunction_New(def, capsule);
  if (fn == nullptr) throw pybind11::error_already_set();
  return pybind11::reinterpret_steal<pybind11::object>(fn);
}

// The one table from the core's error kinds to the classes of orroute/_exceptions.py: the only
// place Python class names appear on the C++ side.
inline const char* python_class(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "InvalidArgumentError";
    case ErrorKind::kNotFound: return "NotFoundInCatalogError";
    case ErrorKind::kParse: return "ParseError";
    case ErrorKind::kNoModelAvailable: return "NoModelAvailableError";
    case ErrorKind::kBudgetExceeded: return "BudgetExceededError";
    case ErrorKind::kEmergencyCutoff: return "EmergencyCutoffError";
    case ErrorKind::kApprovalDenied: return "ApprovalDeniedError";
    case ErrorKind::kUnpricedModel: return "UnpricedModelError";
    case ErrorKind::kError: break;
  }
  return "OrRouteError";
}

void bind_money(pybind11::module_& m);
void bind_catalog(pybind11::module_& m);    // Catalog, ModelInfo, pricing
void bind_select(pybind11::module_& m);     // ModelSelector, strategies
void bind_tokenizer(pybind11::module_& m);  // Encoding, chat counting
void bind_net(pybind11::module_& m);        // transport, requests, streams
void bind_cost(pybind11::module_& m);       // ledger, budgets, reservations
void bind_feedback(pybind11::module_& m);   // FeedbackStore (next to the ledger)
void bind_cache(pybind11::module_& m);      // response cache: key rule, store, replay
void bind_redis(pybind11::module_& m);      // RedisLedger (when built with hiredis)
void bind_route(pybind11::module_& m);      // engine, breakers, limits, metrics
void bind_routing(pybind11::module_& m);    // learned router
void bind_verify(pybind11::module_& m);     // answer verifiers, escalation, operating points
void bind_compression(pybind11::module_& m);  // prompt compression's decision rule
void bind_provider(pybind11::module_& m);   // providers, wire adapters, balancer

}  // namespace orroute::bindings
