// The async bridge, written once: a Notifier (eventfd) that the transport thread signals without
// ever taking the GIL, which an asyncio loop watches with loop.add_reader; and ChatStream reading
// with the GIL released for blocking waits. No core lock is held while the GIL is taken.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "gil.h"
#include "json_py.h"
#include "orroute/net/chat_stream.h"
#include "orroute/seconds.h"

namespace py = pybind11;

namespace orroute::bindings {

py::dict error_to_py(const ApiError& e);  // bind_net.cpp

void bind_stream(py::module_& m) {
  py::class_<Notifier, std::shared_ptr<Notifier>>(m, "Notifier", "Wakes an event loop from the transport thread (private).")
      .def(py::init<bool>(), py::arg("lendable") = false,
           "`lendable`: a transport's loop may be lent to the event loop watching fd() (private).")
      .def_property_readonly("fd", &Notifier::fd)
      .def(
          "drain",
          [](Notifier& n) {
            if (n.watch() && n.watch()->lent()) {  // the lent loop's turn first: it may finish calls
              GilRelease release;
              n.turn();
            } else if (n.watch()) {
              n.watch()->turn();  // no lease: reads the timer an ended lease left readable
            }
            return n.drain();
          },
          "Runs the turn of a network loop lent to this notifier, if any; then the tokens of the "
          "calls that have news (resets the descriptor).");

  py::class_<ChatStream>(m, "ChatStream", "Reads a streamed chat completion (private).")
      .def(py::init<std::shared_ptr<Call>>(), py::arg("call"))
      .def(
          "next",
          [](ChatStream& s, double timeout) -> py::tuple {
            rapidjson::Document chunk;
            Call::Next n;
            {
              const int64_t ms = wait_ms(timeout, "timeout");
              GilRelease release;
              n = s.next(chunk, /*block=*/true, ms);
            }
            if (n == Call::Next::kItem) return py::make_tuple(0, json_to_py(chunk));
            return py::make_tuple(static_cast<int>(n), py::none());
          },
          py::arg("timeout"),
          "(0, chunk) | (1, None) nothing within `timeout` s | (2, None) end | (3, None) error. GIL released.")
      .def(
          "try_next",
          [](ChatStream& s) -> py::tuple {
            rapidjson::Document chunk;
            const Call::Next n = s.next(chunk, /*block=*/false);
            if (n == Call::Next::kItem) return py::make_tuple(0, json_to_py(chunk));
            return py::make_tuple(static_cast<int>(n), py::none());
          },
          "Like next() without waiting.")
      .def("arm", [](ChatStream& s, std::shared_ptr<Notifier> n, uint64_t token) { s.call().arm(std::move(n), token); })
      .def("error", [](const ChatStream& s) { return error_to_py(s.error()); })
      .def("cancel", [](ChatStream& s) { s.call().cancel(); })
      .def_property_readonly("call", &ChatStream::call_ptr)
      .def("text", [](const ChatStream& s, size_t index) { return upstream_str(s.accumulator().text(index)); }, py::arg("index") = 0)
      .def("usage", [](const ChatStream& s) { return json_text_to_py(s.accumulator().usage_json()); })
      .def("completion", [](const ChatStream& s) { return json_text_to_py(s.accumulator().completion_json()); },
           "The completion assembled so far (text, tool calls, usage) as a dict.");
}

}  // namespace orroute::bindings
