// One bind function per area; each lives in bind_<area>.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include "orroute/error.h"

namespace orroute::bindings {

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
