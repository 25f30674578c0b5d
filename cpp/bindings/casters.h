// Type casters shared by every bind_<area>.cpp. orroute::Money crosses the boundary as
// decimal.Decimal (exact); from Python it also accepts int, str and float (a float goes through its
// shortest repr, so 0.1 is exactly 0.1).
#pragma once

#include <pybind11/gil_safe_call_once.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "orroute/catalog/money.h"

namespace orroute::bindings {

// decimal.Decimal, looked up once and never released: a static `object` would be released by
// exit() after the interpreter is gone. gil_safe_call_once_and_store, as the import may let
// another thread take the GIL and wait on a plain static's guard while this one waits for it.
inline pybind11::handle decimal_class() {
  PYBIND11_CONSTINIT static pybind11::gil_safe_call_once_and_store<pybind11::object> storage;
  return storage
      .call_once_and_store_result([] { return pybind11::module_::import("decimal").attr("Decimal"); })
      .get_stored();
}

}  // namespace orroute::bindings

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
    // A Decimal is immutable, so the amounts converted last are handed out again: a call's cost
    // and estimate repeat across calls of one shape, and building a Decimal from text (its context
    // lookup and parse) was half of a result's conversion. Slots are read and written under the
    // GIL, which every cast holds; a slot's Decimal lives until another amount takes the slot.
    struct Slot {
      orroute::Money::Rep units = 0;
      PyObject* decimal = nullptr;
    };
    static Slot slots[kCachedAmounts];
    const orroute::Money::Rep units = m.units();
    const uint64_t mixed = (static_cast<uint64_t>(units) ^ static_cast<uint64_t>(units >> 64)) * 0x9E3779B97F4A7C15ull;
    Slot& slot = slots[mixed >> (64 - kCachedAmountsLog2)];
    if (slot.decimal != nullptr && slot.units == units) return handle(slot.decimal).inc_ref();
    object made = orroute::bindings::decimal_class()(m.to_string());
    Py_XDECREF(slot.decimal);
    slot.units = units;
    slot.decimal = made.inc_ref().ptr();
    return made.release();
  }

 private:
  static constexpr int kCachedAmountsLog2 = 6;
  static constexpr int kCachedAmounts = 1 << kCachedAmountsLog2;

  static bool is_decimal(handle h) { return isinstance(h, orroute::bindings::decimal_class()); }
};

}  // namespace pybind11::detail
