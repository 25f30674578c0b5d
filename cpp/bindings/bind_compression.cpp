// Prompt compression's decision rule (cpp/orroute/route/compression.h); python/orroute/_compress.py
// makes the summary call and rebuilds the messages.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "orroute/catalog/catalog.h"
#include "orroute/route/compression.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_compression(py::module_& m) {
  py::class_<CompressionRule>(m, "CompressionRule")
      .def(py::init<>())
      .def_readwrite("max_prompt_tokens", &CompressionRule::max_prompt_tokens)
      .def_readwrite("max_prompt_cost", &CompressionRule::max_prompt_cost)
      .def_readwrite("keep_last", &CompressionRule::keep_last)
      .def_readwrite("summary_tokens", &CompressionRule::summary_tokens);
  py::class_<CompressionPlan>(m, "CompressionPlan")
      .def_readonly("compress", &CompressionPlan::compress)
      .def_readonly("reason", &CompressionPlan::reason)
      .def_readonly("prompt_tokens", &CompressionPlan::prompt_tokens)
      .def_readonly("prompt_cost", &CompressionPlan::prompt_cost)
      .def_readonly("kept_tokens", &CompressionPlan::kept_tokens)
      .def_readonly("keep", &CompressionPlan::keep)
      .def_readonly("fold", &CompressionPlan::fold)
      .def_readonly("summary_at", &CompressionPlan::summary_at);
  m.def("plan_compression", &plan_compression, py::arg("model"), py::arg("messages_json"),
        py::arg("rule"), py::arg("catalog") = nullptr, py::arg("tools_json") = "",
        py::call_guard<GilRelease>());
}

}  // namespace orroute::bindings
