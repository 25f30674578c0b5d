// Type casters shared by every bind_<area>.cpp. orroute::Money crosses the boundary as
// decimal.Decimal (exact); from Python it also accepts int, str and float (a float goes through its
// shortest repr, so 0.1 is exactly 0.1).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "orroute/catalog/money.h"

namespace pybind11::detail {

template <>
struct type_caster<orroute::Money> {
  PYBIND11_TYPE_CASTER(orroute::Money, const_name("decimal.Decimal"));

  bool load(handle src, bool /*convert*/) {
    if (!src || src.is_none() || PyBool_Check(src.ptr())) return false;
    if (PyFloat_Check(src.ptr())) {
      value = orroute::Money::from_double(PyFloat_AsDouble(src.ptr()));
      return true;
    }
    if (PyLong_Check(src.ptr()) || PyUnicode_Check(src.ptr()) || is_decimal(src)) {
      value = orroute::Money::parse(str(src).cast<std::string>());
      return true;
    }
    return false;
  }

  static handle cast(const orroute::Money& m, return_value_policy, handle) {
    static object decimal_cls = module_::import("decimal").attr("Decimal");
    return decimal_cls(m.to_string()).release();
  }

 private:
  static bool is_decimal(handle h) {
    static object decimal_cls = module_::import("decimal").attr("Decimal");
    return isinstance(h, decimal_cls);
  }
};

}  // namespace pybind11::detail
