// FeedbackStore: quality scores kept next to the ledger. Type conversion and GIL release only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "gil.h"
#include "orroute/cost/feedback_store.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_feedback(py::module_& m) {
  py::class_<FeedbackEntry>(m, "FeedbackEntry")
      .def(py::init<>())
      .def_readwrite("id", &FeedbackEntry::id)
      .def_readwrite("at", &FeedbackEntry::at)
      .def_readwrite("model", &FeedbackEntry::model)
      .def_readwrite("task_type", &FeedbackEntry::task_type)
      .def_readwrite("score", &FeedbackEntry::score)
      .def_readwrite("source", &FeedbackEntry::source)
      .def_readwrite("result_id", &FeedbackEntry::result_id);

  py::class_<FeedbackSummary>(m, "FeedbackSummary")
      .def_readonly("model", &FeedbackSummary::model)
      .def_readonly("task_type", &FeedbackSummary::task_type)
      .def_readonly("sum", &FeedbackSummary::sum)
      .def_readonly("count", &FeedbackSummary::count)
      .def_property_readonly("mean", &FeedbackSummary::mean);

  py::class_<FeedbackStore, std::shared_ptr<FeedbackStore>>(m, "FeedbackStore")
      .def(py::init([](const std::string& location) { return open_feedback_store(location); }),
           py::arg("location"), py::call_guard<GilRelease>())
      .def("add", &FeedbackStore::add, py::arg("entry"), py::call_guard<GilRelease>())
      .def("summary", &FeedbackStore::summary, py::call_guard<GilRelease>())
      .def("entries", &FeedbackStore::entries, py::arg("start") = 0, py::arg("limit") = -1,
           py::call_guard<GilRelease>());
}

}  // namespace orroute::bindings
