// The GIL released for a scope, in every binding that blocks or computes without Python.
#pragma once

#include <Python.h>

#include <chrono>
#include <exception>
#include <thread>

namespace orroute::bindings {

// pybind11's gil_scoped_release, but the GIL is taken back in a destructor that may throw.
// At interpreter exit CPython (3.10-3.13) ends a thread that takes the GIL back with
// pthread_exit, a forced unwind that aborts the process (std::terminate) when it meets a noexcept
// frame, and gil_scoped_release's destructor is one: a daemon thread still inside a call when the
// program ended took the whole process down with status 134. Here the unwind goes on up through
// pybind11 (which lets it pass) and that thread ends quietly. Should the guard be left by another
// exception while the interpreter is finalizing (a second unwind would terminate), the thread
// sleeps instead of taking the GIL back: the process is exiting and ends it.
// Usable as a scope guard and as py::call_guard<GilRelease>.
class GilRelease {
 public:
  GilRelease() : state_(PyEval_SaveThread()), unwinding_(std::uncaught_exceptions()) {}
  ~GilRelease() noexcept(false) {
    if (std::uncaught_exceptions() > unwinding_ && finalizing()) {
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    PyEval_RestoreThread(state_);
  }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  static bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
  }

  PyThreadState* state_;
  int unwinding_;  // exceptions in flight when the GIL was released
};

}  // namespace orroute::bindings
