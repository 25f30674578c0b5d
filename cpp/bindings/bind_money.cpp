#include <pybind11/pybind11.h>

#include "bindings.h"
#include "casters.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_money(py::module_& m) {
  // Round-trips an amount through the exact core type: useful to normalise user input.
  m.def("parse_money", [](orroute::Money v) { return v; }, py::arg("amount"),
        "Parses an amount of USD exactly (Decimal, int, str or float) and returns a Decimal.");
}

}  // namespace orroute::bindings
