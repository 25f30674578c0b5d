// A JSON reply parsed once and turned into Python values only where it is read: the response
// types (python/orroute/types.py) read their fields through a JsonRef, so a chat completion read
// for its content and usage makes those few objects, not the dozens of the whole reply (which
// `to_py` makes when the caller wants all of it: model_dump, ==, repr).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "json_py.h"
#include "orroute/json.h"

namespace py = pybind11;

namespace orroute::bindings {

namespace {

// The reply's text, parsed in place, and its document: the document's strings point into the
// text, so neither moves; every JsonRef into it shares it.
class ParsedReply {
 public:
  explicit ParsedReply(const std::string& text) : text_(text), pool_(pool_chunk(text.size())), doc_(&pool_) {}
  ParsedReply(const ParsedReply&) = delete;
  ParsedReply& operator=(const ParsedReply&) = delete;

  bool parse() { return parse_json_in_place(text_, doc_) == JsonParse::kOk; }  // depth-bounded
  const rapidjson::Value& root() const { return doc_; }

 private:
  // Chunks about the size a usual reply's document takes (a value is 16 bytes, a member 32; the
  // strings stay in the text), not RapidJSON's default 64 KB, which every completion a caller
  // keeps would hold on to; at most that for a long reply (its text is mostly strings).
  static size_t pool_chunk(size_t text_bytes) { return std::min<size_t>(2 * text_bytes + 1024, 64u << 10); }

  std::string text_;
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;  // declared after the pool it allocates from (destroyed before it)
};

// One JSON object inside a parsed reply.
struct JsonRef {
  std::shared_ptr<const ParsedReply> reply;
  const rapidjson::Value* object;
};

// How a field's value is handed over (the response type's declaration of the field): as Python
// values all the way down, as a JsonRef when it is an object (a nested response type), or as a
// list whose objects are JsonRefs (a list of a response type).
enum FieldKind : int { kPlain = 0, kObject = 1, kObjects = 2 };

std::string_view utf8_of(py::handle name) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(name.ptr(), &n);
  if (s == nullptr) throw py::error_already_set();
  return {s, static_cast<size_t>(n)};
}

// The member `name` of `object`: the last of equal keys, as the whole dict (`to_py`) and Python's
// json have it, so a field read alone and the dumped reply never disagree.
const rapidjson::Value* find_member(const rapidjson::Value& object, std::string_view name) {
  const rapidjson::Value* found = nullptr;
  for (const auto& m : object.GetObject()) {
    if (m.name.GetStringLength() == name.size() && std::memcmp(m.name.GetString(), name.data(), name.size()) == 0) {
      found = &m.value;
    }
  }
  return found;
}

py::object field_value(const JsonRef& ref, const rapidjson::Value& v, int kind) {
  if (kind == kObject && v.IsObject()) return py::cast(JsonRef{ref.reply, &v});
  if (kind == kObjects && v.IsArray()) {
    py::list out(v.Size());
    Py_ssize_t i = 0;
    for (const auto& item : v.GetArray()) {
      py::object o = item.IsObject() ? py::cast(JsonRef{ref.reply, &item}) : json_to_py(item);
      PyList_SET_ITEM(out.ptr(), i++, o.release().ptr());
    }
    return out;
  }
  return json_to_py(v);
}

}  // namespace

py::object reply_to_py(const std::string& text) {
  if (text.empty()) return py::none();
  auto reply = std::make_shared<ParsedReply>(text);
  if (!reply->parse()) return upstream_str(text);
  if (!reply->root().IsObject()) return json_to_py(reply->root());
  return py::cast(JsonRef{reply, &reply->root()});
}

py::object plain_reply_to_py(const std::string& text) {
  if (text.empty()) return py::none();
  auto reply = std::make_shared<ParsedReply>(text);
  if (!reply->parse() || !reply->root().IsObject() || find_member(reply->root(), "error") != nullptr) {
    return py::none();
  }
  return py::cast(JsonRef{reply, &reply->root()});
}

void bind_reply(py::module_& m) {
  py::class_<JsonRef>(m, "JsonRef", "A JSON object of a parsed reply, read field by field (private).")
      .def(
          "get",
          [](const JsonRef& r, py::handle name, int kind, py::handle missing) -> py::object {
            const rapidjson::Value* v = find_member(*r.object, utf8_of(name));
            return v == nullptr ? py::reinterpret_borrow<py::object>(missing) : field_value(r, *v, kind);
          },
          py::arg("name"), py::arg("kind"), py::arg("missing"),
          "The field `name` (kind 0: Python values; 1: a JsonRef if an object; 2: a list whose "
          "objects are JsonRefs), or `missing` when the object has none.")
      .def("__contains__",
           [](const JsonRef& r, py::handle name) {
             return PyUnicode_Check(name.ptr()) && find_member(*r.object, utf8_of(name)) != nullptr;
           })
      .def("to_py", [](const JsonRef& r) { return json_to_py(*r.object); }, "The whole object as a dict.");
}

}  // namespace orroute::bindings
