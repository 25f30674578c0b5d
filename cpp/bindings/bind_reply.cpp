// A JSON reply parsed once and turned into Python values only where it is read: the response
// types (python/orroute/types.py) read their fields through a JsonRef, so a chat completion read
// for its content and usage makes those few objects, not the dozens of the whole reply (which
// `to_py` makes when the caller wants all of it: model_dump, ==, repr).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
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

// One JSON object inside a parsed reply: a plain CPython type, not a pybind11 class, since a
// caller's every read of a nested object (`r.choices[0].message`) makes one and every field read
// calls `get`: a pybind11 instance (its registry, holder, dispatcher's argument casters) cost
// ~2k instructions to make and free and ~1.7k a `get`. Not made from Python (no tp_new), not
// subclassed, no references to Python objects (no GC); the few freed ones are kept for reuse.
struct JsonRefObject {
  PyObject_HEAD
  std::shared_ptr<const ParsedReply> reply;  // constructed in place after the allocation
  const rapidjson::Value* object;
};

PyTypeObject* json_ref_type = nullptr;  // set by bind_reply (a heap type, kept for the process)

// Freed JsonRefs kept for the next ones (the GIL guards it; the type's reference is given back
// when one is kept and taken again by PyObject_Init when it is reused).
constexpr int kFreeRefs = 32;
JsonRefObject* free_refs[kFreeRefs];
int n_free_refs = 0;

py::object make_ref(const std::shared_ptr<const ParsedReply>& reply, const rapidjson::Value* object) {
  JsonRefObject* r = nullptr;
  if (n_free_refs > 0) {
    r = free_refs[--n_free_refs];
    PyObject_Init(reinterpret_cast<PyObject*>(r), json_ref_type);
  } else {
    r = PyObject_New(JsonRefObject, json_ref_type);
    if (r == nullptr) throw py::error_already_set();
  }
  new (&r->reply) std::shared_ptr<const ParsedReply>(reply);
  r->object = object;
  return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(r));
}

void json_ref_dealloc(PyObject* self) {
  auto* r = reinterpret_cast<JsonRefObject*>(self);
  r->reply.~shared_ptr();
  PyTypeObject* type = Py_TYPE(self);
  if (n_free_refs < kFreeRefs) {
    free_refs[n_free_refs++] = r;
  } else {
    PyObject_Free(self);
  }
  Py_DECREF(type);  // a heap type: each instance holds a reference to it
}

// How a field's value is handed over (the response type's declaration of the field): as Python
// values all the way down, as a JsonRef when it is an object (a nested response type), or as a
// list whose objects are JsonRefs (a list of a response type).
enum FieldKind : long { kPlain = 0, kObject = 1, kObjects = 2 };

// The text of a str argument; a Python error (TypeError for another type) when it is not one.
bool utf8_of(PyObject* name, std::string_view& out) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(name, &n);
  if (s == nullptr) return false;
  out = {s, static_cast<size_t>(n)};
  return true;
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

py::object field_value(const JsonRefObject& ref, const rapidjson::Value& v, long kind) {
  if (kind == kObject && v.IsObject()) return make_ref(ref.reply, &v);
  if (kind == kObjects && v.IsArray()) {
    py::list out(v.Size());
    Py_ssize_t i = 0;
    for (const auto& item : v.GetArray()) {
      py::object o = item.IsObject() ? make_ref(ref.reply, &item) : json_to_py(item);
      PyList_SET_ITEM(out.ptr(), i++, o.release().ptr());
    }
    return out;
  }
  return json_to_py(v);
}

// get(name, kind, missing)
PyObject* json_ref_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_Format(PyExc_TypeError, "get() takes 3 arguments (name, kind, missing), %zd given", nargs);
    return nullptr;
  }
  const auto& r = *reinterpret_cast<JsonRefObject*>(self);
  std::string_view name;
  if (!utf8_of(args[0], name)) return nullptr;
  const long kind = PyLong_AsLong(args[1]);
  if (kind == -1 && PyErr_Occurred()) return nullptr;
  const rapidjson::Value* v = find_member(*r.object, name);
  if (v == nullptr) return Py_NewRef(args[2]);
  try {
    return field_value(r, *v, kind).release().ptr();
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

int json_ref_contains(PyObject* self, PyObject* name) {
  std::string_view s;
  if (!PyUnicode_Check(name)) return 0;
  if (!utf8_of(name, s)) return -1;
  return find_member(*reinterpret_cast<JsonRefObject*>(self)->object, s) != nullptr ? 1 : 0;
}

PyObject* json_ref_to_py(PyObject* self, PyObject* /*unused*/) {
  try {
    return json_to_py(*reinterpret_cast<JsonRefObject*>(self)->object).release().ptr();
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyMethodDef json_ref_methods[] = {
    {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(json_ref_get)), METH_FASTCALL,
     "get($self, name, kind, missing, /)\n--\n\n"
     "The field `name` (kind 0: Python values; 1: a JsonRef if an object; 2: a list whose objects "
     "are JsonRefs), or `missing` when the object has none."},
    {"to_py", json_ref_to_py, METH_NOARGS, "to_py($self, /)\n--\n\nThe whole object as a dict."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot json_ref_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(json_ref_dealloc)},
    {Py_sq_contains, reinterpret_cast<void*>(json_ref_contains)},
    {Py_tp_methods, json_ref_methods},
    {Py_tp_doc, const_cast<char*>("A JSON object of a parsed reply, read field by field (private).")},
    {0, nullptr},
};

PyType_Spec json_ref_spec = {
    "orroute._core.JsonRef", static_cast<int>(sizeof(JsonRefObject)), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION, json_ref_slots};

}  // namespace

py::object reply_to_py(const std::string& text) {
  if (text.empty()) return py::none();
  auto reply = std::make_shared<ParsedReply>(text);
  if (!reply->parse()) return upstream_str(text);
  if (!reply->root().IsObject()) return json_to_py(reply->root());
  return make_ref(reply, &reply->root());
}

py::object plain_reply_to_py(const std::string& text) {
  if (text.empty()) return py::none();
  auto reply = std::make_shared<ParsedReply>(text);
  if (!reply->parse() || !reply->root().IsObject() || find_member(reply->root(), "error") != nullptr) {
    return py::none();
  }
  return make_ref(reply, &reply->root());
}

void bind_reply(py::module_& m) {
  auto type = py::reinterpret_steal<py::object>(PyType_FromSpec(&json_ref_spec));
  if (!type) throw py::error_already_set();
  json_ref_type = reinterpret_cast<PyTypeObject*>(type.inc_ref().ptr());  // kept for the process
  m.add_object("JsonRef", type);
}

}  // namespace orroute::bindings
