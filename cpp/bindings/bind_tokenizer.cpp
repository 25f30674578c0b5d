#include <pybind11/pybind11.h>

#include "bindings.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_tokenizer(py::module_& /*m*/) {}

}  // namespace orroute::bindings
