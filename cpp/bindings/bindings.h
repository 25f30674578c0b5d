// One bind function per area; each lives in bind_<area>.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace orroute::bindings {

void bind_money(pybind11::module_& m);
void bind_catalog(pybind11::module_& m);    // Catalog, ModelInfo, pricing
void bind_select(pybind11::module_& m);     // ModelSelector, strategies
void bind_tokenizer(pybind11::module_& m);  // Encoding, chat counting
void bind_net(pybind11::module_& m);        // transport, requests, streams
void bind_cost(pybind11::module_& m);       // ledger, budgets, reservations
void bind_redis(pybind11::module_& m);      // RedisLedger (when built with hiredis)
void bind_route(pybind11::module_& m);      // engine, breakers, limits, metrics
void bind_routing(pybind11::module_& m);    // learned router
void bind_provider(pybind11::module_& m);   // providers, wire adapters, balancer

}  // namespace orroute::bindings
