// An awaited call waited for on the event loop's own thread while the network loop is lent to it
// (LoopWatch, Transport::Driver::lend_to): the client's plain calls and the manager's tasks.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <cmath>
#include <functional>

#include "gil.h"
#include "orroute/net/api_client.h"
#include "orroute/net/transport.h"
#include "orroute/seconds.h"

namespace orroute::bindings {

// Serves the loop lent to `notifier` on this (the event loop's) thread until `done()`, while
// `loop_fd` (the event loop's descriptor) stays quiet, at most `timeout` seconds (< 0, +inf or
// kMaxSeconds and beyond: no limit), the GIL released. True once done(); false when the caller
// must await it the event loop's way, and at once for a NaN `timeout` (an event loop's timer at
// NaN: what the loop makes of it is its own business, not a wait here).
// A signal during the wait (Ctrl-C) cancels the call (`cancel()`) and raises it, as a sync
// call's wait does.
inline bool serve_lent(const Notifier& notifier, int loop_fd, double timeout,
                       const std::function<bool()>& done, const std::function<void()>& cancel) {
  if (!notifier.watch() || std::isnan(timeout)) return false;
  const auto limit = std::chrono::milliseconds(wait_ms(timeout, "serve_timeout"));
  bool served = false;
  {
    GilRelease release;
    served = notifier.watch()->serve_until(done, loop_fd, limit);
  }
  if (!served && PyErr_CheckSignals() != 0) {
    cancel();
    throw pybind11::error_already_set();
  }
  return served;
}

}  // namespace orroute::bindings
