// The response cache: its key rule, its store and stream replay. Type conversion and GIL release
// only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "orroute/cache/cache_key.h"
#include "orroute/cache/replay.h"
#include "orroute/cache/response_cache.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_cache(py::module_& m) {
  py::class_<CacheKey>(m, "CacheKey")
      .def_readonly("cacheable", &CacheKey::cacheable)
      .def_readonly("key", &CacheKey::key)
      .def_readonly("reason", &CacheKey::reason);
  m.def(
      "cache_key",
      [](std::string_view request_json, std::string_view scope, bool allow_sampling) {
        return cache_key(request_json, scope, CachePolicy{allow_sampling});
      },
      py::arg("request_json"), py::arg("scope"), py::arg("allow_sampling") = false,
      py::call_guard<GilRelease>());
  m.def(
      "canonical_request",
      [](std::string_view request_json) { return canonical_request(request_json, nullptr); },
      py::arg("request_json"), py::call_guard<GilRelease>());
  m.def("cache_hit_completion", &cache_hit_completion, py::arg("reply"),
        py::call_guard<GilRelease>());
  m.def("replay_chunks", &replay_chunks, py::arg("completion_json"), py::arg("piece_bytes") = 48,
        py::call_guard<GilRelease>());

  py::class_<CacheLimits>(m, "CacheLimits")
      .def(py::init<>())
      .def_readwrite("ttl_s", &CacheLimits::ttl_s)
      .def_readwrite("max_entries", &CacheLimits::max_entries)
      .def_readwrite("max_bytes", &CacheLimits::max_bytes);
  py::class_<CachedReply>(m, "CachedReply")
      .def(py::init<>())
      .def_readwrite("completion_json", &CachedReply::completion_json)
      .def_readwrite("model", &CachedReply::model)
      .def_readwrite("prompt_tokens", &CachedReply::prompt_tokens)
      .def_readwrite("completion_tokens", &CachedReply::completion_tokens)
      .def_readwrite("cost", &CachedReply::cost)
      .def_readonly("stored_at", &CachedReply::stored_at)
      .def_readonly("hits", &CachedReply::hits);
  py::class_<CacheStats>(m, "CacheStats")
      .def_readonly("entries", &CacheStats::entries)
      .def_readonly("bytes", &CacheStats::bytes)
      .def_readonly("hits", &CacheStats::hits)
      .def_readonly("misses", &CacheStats::misses)
      .def_readonly("stores", &CacheStats::stores)
      .def_readonly("evictions", &CacheStats::evictions)
      .def_readonly("saved_nanos", &CacheStats::saved_nanos);
  py::class_<ResponseCache, std::shared_ptr<ResponseCache>>(m, "ResponseCache")
      .def(py::init([](const std::string& location, const CacheLimits& limits) {
             return open_response_cache(location, limits);
           }),
           py::arg("location"), py::arg("limits") = CacheLimits{},
           py::call_guard<GilRelease>())
      .def("get", &ResponseCache::get, py::arg("key"), py::arg("now") = 0,
           py::call_guard<GilRelease>())
      .def("put", &ResponseCache::put, py::arg("key"), py::arg("reply"), py::arg("now") = 0,
           py::call_guard<GilRelease>())
      .def("stats", &ResponseCache::stats, py::call_guard<GilRelease>())
      .def("clear", &ResponseCache::clear, py::call_guard<GilRelease>())
      .def_property_readonly("limits", &ResponseCache::limits);
}

}  // namespace orroute::bindings
