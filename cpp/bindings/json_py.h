// Conversions between Python objects and JSON (RapidJSON), for the net bindings: dict/list/str/
// int/float/bool/None both ways; other objects are an error. Type conversion only, no logic.
#pragma once

#include <pybind11/pybind11.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace orroute::bindings {

// JSON text of a Python value. Throws orroute::InvalidArgument naming the type that is not JSON.
std::string py_to_json(pybind11::handle obj);
// py_to_json of a dict with these members in this order (no dict made); a null handle is left out.
std::string py_members_to_json(std::initializer_list<std::pair<std::string_view, pybind11::handle>> members);
// Python value of a parsed JSON value (dicts keep key order).
pybind11::object json_to_py(const rapidjson::Value& v);
// Text from outside (an upstream's reply, error, headers) as a str: bytes that are not UTF-8
// become U+FFFD. pybind11's own std::string -> str is strict and would raise UnicodeDecodeError
// after the call was made and paid. The core repairs what it reads; this is the last guard.
pybind11::str upstream_str(std::string_view s);
// An empty dict with room for `n` keys: filling it with up to n never resizes it.
pybind11::dict presized_dict(Py_ssize_t n);
// Parses JSON text into a Python value; invalid JSON gives the text itself as a str.
pybind11::object json_text_to_py(const std::string& text);
// A reply's JSON text as json_text_to_py gives it, except that an object stays parsed in C++: a
// JsonRef (bind_reply.cpp), whose fields become Python values as they are read.
pybind11::object reply_to_py(const std::string& text);
// reply_to_py's JsonRef when `text` is a JSON object without a top-level "error" member (a
// chat reply as a rule), else None: the caller takes the slow way (reply_to_py and its checks).
pybind11::object plain_reply_to_py(const std::string& text);

}  // namespace orroute::bindings
