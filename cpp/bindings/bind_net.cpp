// Bindings of the network client (cpp/orroute/net): NetClient, Call. Thin: converts arguments,
// releases the GIL while waiting, converts JSON to Python values. The async bridge (Notifier,
// stream reading) is in bind_stream.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cxxabi.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bindings.h"
#include "gil.h"
#include "json_py.h"
#include "lent_loop.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/json_writer.h"
#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"
#include "orroute/seconds.h"
#include "orroute/utf8.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_stream(py::module_& m);  // bind_stream.cpp
void bind_reply(py::module_& m);   // bind_reply.cpp

namespace {

// A dict key as Python's json module writes it: a str as is; an int, float, bool or None as its
// JSON text (`{50256: -100}` in a logit_bias is sent as `{"50256": -100}`).
template <typename Writer>
void write_key(Writer& w, py::handle key) {
  if (PyUnicode_Check(key.ptr())) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(key.ptr(), &n);
    if (s == nullptr) throw py::error_already_set();
    w.Key(s, static_cast<rapidjson::SizeType>(n));
    return;
  }
  std::string text;
  if (key.is_none()) {
    text = "null";
  } else if (PyBool_Check(key.ptr())) {
    text = key.ptr() == Py_True ? "true" : "false";
  } else if (PyLong_Check(key.ptr()) || PyFloat_Check(key.ptr())) {
    if (PyFloat_Check(key.ptr()) && !std::isfinite(PyFloat_AsDouble(key.ptr()))) {
      throw InvalidArgument("NaN and infinity are not valid JSON object keys");
    }
    // int.__repr__ / float.__repr__, as json does: an IntEnum key is its number
    const reprfunc repr = PyLong_Check(key.ptr()) ? PyLong_Type.tp_repr : PyFloat_Type.tp_repr;
    PyObject* r = repr(key.ptr());
    if (r == nullptr) throw py::error_already_set();
    text = py::reinterpret_steal<py::str>(r).cast<std::string>();
  } else {
    throw InvalidArgument("JSON object keys must be str, int, float, bool or None, not " +
                          py::str(py::type::handle_of(key).attr("__name__")).cast<std::string>());
  }
  w.KeyCopy(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

template <typename Writer>
void write_py(Writer& w, py::handle obj, int depth) {
  if (depth >= kMaxJsonDepth) {
    throw InvalidArgument("request body nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  if (obj.is_none()) {
    w.Null();
  } else if (PyBool_Check(obj.ptr())) {
    w.Bool(obj.ptr() == Py_True);
  } else if (PyLong_Check(obj.ptr())) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    if (overflow == 0) {
      w.Int64(v);
    } else {  // beyond 64 bits: its digits, as json.dumps writes it (the reader judges its range)
      PyObject* digits = PyLong_Type.tp_repr(obj.ptr());
      if (digits == nullptr) throw py::error_already_set();
      const std::string text = py::reinterpret_steal<py::str>(digits).cast<std::string>();
      w.RawValue(text.data(), text.size(), rapidjson::kNumberType);
    }
  } else if (PyFloat_Check(obj.ptr())) {
    const double d = PyFloat_AsDouble(obj.ptr());
    if (!std::isfinite(d)) throw InvalidArgument("NaN and infinity are not valid JSON numbers");
    w.Double(d);
  } else if (PyUnicode_Check(obj.ptr())) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(obj.ptr(), &n);
    if (s == nullptr) throw py::error_already_set();
    w.String(s, static_cast<rapidjson::SizeType>(n));
  } else if (PyDict_Check(obj.ptr())) {
    w.StartObject();
    rapidjson::SizeType members = 0;
    for (auto item : py::reinterpret_borrow<py::dict>(obj)) {
      write_key(w, item.first);
      write_py(w, item.second, depth + 1);
      ++members;
    }
    w.EndObject(members);  // a Document needs the count, a Writer ignores it
  } else if (PyList_CheckExact(obj.ptr()) || PyTuple_CheckExact(obj.ptr())) {
    // by index, not through an iterator object (an allocation the garbage collector may follow
    // with finalizers: a BorrowingSink's walk runs no Python code); the size read at every step,
    // as a list's iterator does, since model_dump() may change the list
    PyObject* seq = obj.ptr();
    const bool list = PyList_Check(seq);
    w.StartArray();
    rapidjson::SizeType elements = 0;
    for (Py_ssize_t i = 0; i < (list ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq)); ++i) {
      const auto item = py::reinterpret_borrow<py::object>(list ? PyList_GET_ITEM(seq, i) : PyTuple_GET_ITEM(seq, i));
      write_py(w, item, depth + 1);
      ++elements;
    }
    w.EndArray(elements);
  } else if constexpr (Writer::kRunsNoPython) {
    throw typename Writer::NeedsPython{};  // the caller takes a sink that may run Python code
  } else if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    // a subclass: through its own iterator, as json.dumps (the openai SDK) reads it
    w.StartArray();
    rapidjson::SizeType elements = 0;
    for (auto item : obj) {
      write_py(w, item, depth + 1);
      ++elements;
    }
    w.EndArray(elements);
  } else if (py::hasattr(obj, "model_dump")) {  // pydantic models (e.g. openai's types)
    write_py(w, obj.attr("model_dump")(), depth + 1);
  } else if (py::isinstance(obj, py::module_::import("collections.abc").attr("Mapping"))) {
    write_py(w, py::dict(py::reinterpret_borrow<py::object>(obj)), depth + 1);
  } else {
    throw InvalidArgument("cannot send a value of type " +
                          py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>() + " as JSON");
  }
}

Timeouts to_timeouts(const py::tuple& t) {
  if (t.size() != 4) throw InvalidArgument("timeouts must be (connect, first_byte, idle, total) seconds");
  auto ms = [](py::handle h) -> int64_t {  // 0: no limit (None, +inf, kMaxSeconds and beyond)
    if (h.is_none()) return 0;
    return limit_ms(h.cast<double>(), "a timeout").value_or(0);
  };
  return Timeouts{ms(t[0]), ms(t[1]), ms(t[2]), ms(t[3])};
}

// What write_py writes, built into a document instead of text. A document holds no raw number:
// an int beyond 64 bits throws TextOnly, for the caller to take the text path.
// kBorrow: the document points at the Python strings' own UTF-8 instead of copying them (~200
// instructions a string), which is safe only while every one of them stays alive and unchanged
// until the document is gone: so write_py may run no Python code on the way (a model_dump(), a
// Mapping's conversion, or a finalizer after an allocation could drop or replace a string of the
// request). A value of any other type than dict, list, tuple, str, int, float, bool and None
// throws NeedsPython, for the caller to start again with copies (kBorrow false), which may.
template <bool kBorrow>
class DocumentSink {
 public:
  static constexpr bool kRunsNoPython = kBorrow;
  struct TextOnly {};
  struct NeedsPython {};
  explicit DocumentSink(rapidjson::Document& doc) : doc_(doc) {}
  void Null() { doc_.Null(); }
  void Bool(bool b) { doc_.Bool(b); }
  void Int64(int64_t v) { doc_.Int64(v); }
  void Double(double d) { doc_.Double(d); }
  void RawValue(const char*, size_t, rapidjson::Type) { throw TextOnly{}; }
  void String(const char* s, rapidjson::SizeType n) { doc_.String(s, n, !kBorrow); }
  void Key(const char* s, rapidjson::SizeType n) { doc_.Key(s, n, !kBorrow); }
  // a key that is not a str is written from a temporary text: always copied
  void KeyCopy(const char* s, rapidjson::SizeType n) { doc_.Key(s, n, true); }
  void StartObject() { doc_.StartObject(); }
  void EndObject(rapidjson::SizeType members) { doc_.EndObject(members); }
  void StartArray() { doc_.StartArray(); }
  void EndArray(rapidjson::SizeType elements) { doc_.EndArray(elements); }

 private:
  rapidjson::Document& doc_;
};

// JsonWriter as write_py's text sink (it copies every byte it writes).
class TextSink : public JsonWriter {
 public:
  static constexpr bool kRunsNoPython = false;
  struct NeedsPython {};
  // write_py's strings are Python str's UTF-8 (PyUnicode_AsUTF8AndSize refuses a lone surrogate)
  explicit TextSink(rapidjson::StringBuffer& buf) : JsonWriter(buf) { trust_utf8(); }
  void KeyCopy(const char* s, rapidjson::SizeType n) { Key(s, n); }
};

// A text writer and its buffer kept for the next request of this thread: their two
// allocations (the text's 256 bytes and the writer's level stack) and frees were ~0.6k
// instructions of every request made from Python values (py_members_to_json 2.68k -> 2.08k a
// manager call, callgrind). Taken only when free: write_py may run
// Python code (a model_dump(), a Mapping's conversion) that writes another request meanwhile,
// which then gets writers of its own. A text over kKeptBytes gives its memory back after use.
class ReusedTextWriter {
 public:
  ReusedTextWriter() : parts_(std::move(spare())) {
    if (parts_ == nullptr) {
      parts_ = std::make_unique<Parts>();
    } else {
      parts_->buf.Clear();
      parts_->w.Reset(parts_->buf);  // a write that threw left the writer anywhere
    }
  }
  ~ReusedTextWriter() {
    if (parts_->buf.GetSize() > kKeptBytes) {
      parts_->buf.Clear();
      parts_->buf.ShrinkToFit();
    }
    std::unique_ptr<Parts>& kept = spare();
    if (kept == nullptr) kept = std::move(parts_);  // else a nested writer's are kept: freed
  }
  ReusedTextWriter(const ReusedTextWriter&) = delete;
  ReusedTextWriter& operator=(const ReusedTextWriter&) = delete;

  TextSink& writer() { return parts_->w; }
  std::string text() const { return std::string(parts_->buf.GetString(), parts_->buf.GetSize()); }

 private:
  static constexpr size_t kKeptBytes = size_t{64} << 10;
  struct Parts {
    rapidjson::StringBuffer buf;
    TextSink w{buf};  // a request's keys and texts copied whole, not byte by byte
  };
  // the parts free for this thread's next writer (freed with the thread)
  static std::unique_ptr<Parts>& spare() {
    thread_local std::unique_ptr<Parts> parts;
    return parts;
  }

  std::unique_ptr<Parts> parts_;
};

// The request's text for the shapes a request nearly always has (dict with str keys, exact list
// and tuple, str, int within 64 bits, finite float, bool, None), written into one string with no
// writer in between: write_py's events through rapidjson's Writer cost ~0.2k instructions each
// (its level stack and separators, the buffer's growth checks, then the text copied out of the
// buffer), ~1.6k of a manager call's 60-byte body. The bytes are those write_py's TextSink
// writes (json_writer.h's escapes; rapidjson's Grisu2 doubles; tests/py/test_request_text.py
// compares both on many values). value() is false for anything else (a key that is not a
// str, an int beyond 64 bits, NaN, a subclass of list, a model, a Mapping, the depth limit):
// the caller then writes the whole with write_py, which also raises what is to be raised. Runs
// no Python code, so nothing it read can change under it; a str that cannot be encoded raises
// as write_py would at the same value.
class PlainText {
 public:
  PlainText() : text_(256, '\0') {}  // a usual request's text in one allocation, handed out as it is

  // The text written (false: a value this writer leaves to write_py, the text then partial).
  bool value(PyObject* o, int depth) {
    if (depth >= kMaxJsonDepth) return false;
    if (PyUnicode_CheckExact(o)) {
      string(o);
    } else if (o == Py_None) {
      add("null", 4);
    } else if (PyBool_Check(o)) {
      if (o == Py_True) {
        add("true", 4);
      } else {
        add("false", 5);
      }
    } else if (PyLong_Check(o)) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow != 0) return false;
      char* const at = room(24);
      len_ += static_cast<size_t>(rapidjson::internal::i64toa(static_cast<int64_t>(v), at) - at);
    } else if (PyFloat_Check(o)) {
      const double d = PyFloat_AS_DOUBLE(o);
      if (!std::isfinite(d)) return false;
      char* const at = room(32);  // dtoa writes at most 25 bytes
      len_ += static_cast<size_t>(
          rapidjson::internal::dtoa(d, at, JsonWriter::kDefaultMaxDecimalPlaces) - at);
    } else if (PyUnicode_Check(o)) {
      string(o);
    } else if (PyDict_Check(o)) {
      put('{');
      Py_ssize_t pos = 0;
      PyObject* key = nullptr;
      PyObject* item = nullptr;
      bool first = true;
      while (PyDict_Next(o, &pos, &key, &item)) {
        if (!PyUnicode_Check(key)) return false;
        if (!first) put(',');
        first = false;
        string(key);
        put(':');
        if (!value(item, depth + 1)) return false;
      }
      put('}');
    } else if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
      const bool list = PyList_CheckExact(o);
      const Py_ssize_t n = list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
      put('[');
      for (Py_ssize_t i = 0; i < n; ++i) {
        if (i > 0) put(',');
        if (!value(list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i), depth + 1)) return false;
      }
      put(']');
    } else {
      return false;
    }
    return true;
  }

  // A member's name that needs no escape, and its colon.
  [[gnu::always_inline]] void name(std::string_view key) {
    char* p = room(key.size() + 3);
    *p++ = '"';
    std::memcpy(p, key.data(), key.size());
    p[key.size()] = '"';
    p[key.size() + 1] = ':';
    len_ += key.size() + 3;
  }

  [[gnu::always_inline]] void put(char c) {
    *room(1) = c;
    ++len_;
  }

  std::string take() {
    text_.resize(len_);
    return std::move(text_);
  }

 private:
  // (the small steps inlined: out of line, each was ~20-45 instructions of call and return)
  [[gnu::always_inline]] void string(PyObject* o) {
    const char* s = nullptr;
    size_t n = 0;
    if (PyUnicode_IS_COMPACT_ASCII(o)) {  // its bytes are its UTF-8, as AsUTF8AndSize gives them
      s = static_cast<const char*>(PyUnicode_DATA(o));
      n = static_cast<size_t>(PyUnicode_GET_LENGTH(o));
    } else {
      Py_ssize_t size = 0;
      s = PyUnicode_AsUTF8AndSize(o, &size);
      if (s == nullptr) throw py::error_already_set();
      n = static_cast<size_t>(size);
    }
    char* const p = room(2 + 6 * n);  // each byte escaped at most as \u00XX
    size_t i = 0;
    while (i < n && plain(static_cast<unsigned char>(s[i]))) ++i;
    if (i < n) {
      escaped(p, s, n, i);
      return;
    }
    p[0] = '"';
    std::memcpy(p + 1, s, n);
    p[n + 1] = '"';
    len_ += n + 2;
  }

  static bool plain(unsigned char c) { return json_detail::plain_byte(c); }

  // string() from the first byte to escape, `first`.
  [[gnu::noinline]] void escaped(char* const start, const char* s, size_t n, size_t first) {
    char* p = start;
    *p++ = '"';
    size_t from = 0;
    for (size_t i = first; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (plain(c)) continue;
      std::memcpy(p, s + from, i - from);
      p += i - from;
      from = i + 1;
      p += json_detail::escape(c, p);
    }
    std::memcpy(p, s + from, n - from);
    p += n - from;
    *p++ = '"';
    len_ += static_cast<size_t>(p - start);
  }

  [[gnu::always_inline]] void add(const char* s, size_t n) {
    std::memcpy(room(n), s, n);
    len_ += n;
  }

  // Where the next `n` bytes go: text_'s size is the room, len_ what is written.
  [[gnu::always_inline]] char* room(size_t n) {
    if (text_.size() - len_ < n) [[unlikely]] grow(n);
    return text_.data() + len_;
  }

  [[gnu::noinline]] void grow(size_t n) { text_.resize(std::max(2 * text_.size(), len_ + n)); }

  std::string text_;
  size_t len_ = 0;
};

}  // namespace

std::string py_to_json(py::handle obj) {
  ReusedTextWriter text;
  write_py(text.writer(), obj, 0);
  return text.text();
}

std::string py_members_to_json(std::initializer_list<std::pair<std::string_view, py::handle>> members) {
  {
    PlainText plain;
    plain.put('{');
    bool first = true;
    bool whole = true;
    for (const auto& [key, value] : members) {
      if (!value) continue;
      if (!first) plain.put(',');
      first = false;
      plain.name(key);  // the member names need no escape
      if (!plain.value(value.ptr(), 1)) {  // as a dict's value
        whole = false;
        break;
      }
    }
    if (whole) {
      plain.put('}');
      return plain.take();
    }
  }
  ReusedTextWriter text;
  TextSink& w = text.writer();
  w.StartObject();
  rapidjson::SizeType written = 0;
  for (const auto& [key, value] : members) {
    if (!value) continue;
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    write_py(w, value, 1);  // as a dict's value
    ++written;
  }
  w.EndObject(written);
  return text.text();
}

namespace {

// `body` as text (py_to_json), held to the chat request rules through its parse: a request
// holding an int beyond 64 bits, which a document cannot hold.
std::string checked_text(py::handle body) {
  std::string text = py_to_json(body);
  LocalJson<> parsed;
  parse_json_text(text, parsed.doc());  // py_to_json wrote it, within kMaxJsonDepth
  validate_chat_request(parsed.doc());
  return text;
}

// `body` (a chat request) as JSON text, held to the chat request rules (validate_chat_request,
// which throws InvalidArgument) on a document built from the Python values: not on a parse of
// the text just written, a second pass over the whole prompt on every call.
std::string chat_request_json(py::handle body) {
  LocalJson<> json;
  rapidjson::Document& doc = json.doc();
  // the document as the handler of its own events; its root set at the end. Strings borrowed
  // from the request's own str objects (no Python code runs until the text is written), else
  // copied when the request holds anything whose conversion runs Python code.
  auto build = [body](rapidjson::Document& events) {
    try {
      DocumentSink<true> borrowing(events);
      write_py(borrowing, body, 0);
    } catch (const DocumentSink<true>::NeedsPython&) {
      events.SetNull();  // the borrowed part left behind (Populate clears its stack)
      return false;
    }
    return true;
  };
  auto build_copies = [body](rapidjson::Document& events) {
    DocumentSink<false> sink(events);
    write_py(sink, body, 0);
    return true;
  };
  try {
    if (doc.Populate(build).IsNull()) {
      LocalJson<> copies;  // a fresh document: the first one's stack may hold borrowed values
      rapidjson::Document& copied = copies.doc();
      copied.Populate(build_copies);
      validate_chat_request(copied);
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      w.trust_utf8();  // a document of Python values: their str's UTF-8
      copied.Accept(w);
      return std::string(buf.GetString(), buf.GetSize());
    }
  } catch (const DocumentSink<true>::TextOnly&) {  // the text, and its parse to check it
    return checked_text(body);
  } catch (const DocumentSink<false>::TextOnly&) {
    return checked_text(body);
  }
  validate_chat_request(doc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.trust_utf8();  // a document of Python values: their str's UTF-8
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

py::str upstream_str(std::string_view s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

py::dict presized_dict(Py_ssize_t n) {
  PyObject* d = _PyDict_NewPresized(n);
  if (d == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::dict>(d);
}

namespace {

// The str of a reply's object key. Keys repeat from reply to reply ("id", "choices", "message",
// "usage", ...): a short one is decoded (and its hash computed) once per process and shared, not
// anew for every key of every reply, which was a third of turning a reply into Python objects.
// Bounded (kMaxKeys of at most kMaxKeyBytes): once full, other keys are made per use, so an
// upstream inventing keys costs memory once. Used with the GIL held only.
py::object json_key(std::string_view name) {
  constexpr size_t kMaxKeys = 512;
  constexpr size_t kMaxKeyBytes = 32;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static auto* keys = new std::unordered_map<std::string, py::object, Hash, std::equal_to<>>();  // never
  // destroyed: its objects must not be released after the interpreter is gone
  if (name.size() > kMaxKeyBytes) return upstream_str(name);
  if (const auto it = keys->find(name); it != keys->end()) return it->second;
  py::str key = upstream_str(name);
  if (keys->size() < kMaxKeys) {
    PyObject_Hash(key.ptr());  // a str caches its hash: every dict it goes into reuses it
    keys->emplace(std::string(name), key);
  }
  return key;
}

}  // namespace

py::object json_to_py(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return py::none();
    case rapidjson::kFalseType: return py::bool_(false);
    case rapidjson::kTrueType: return py::bool_(true);
    case rapidjson::kStringType:
      return upstream_str(std::string_view(v.GetString(), v.GetStringLength()));
    case rapidjson::kNumberType:
      if (v.IsInt64()) return py::int_(v.GetInt64());
      if (v.IsUint64()) return py::int_(v.GetUint64());
      return py::float_(v.GetDouble());
    case rapidjson::kArrayType: {
      // CPython's own calls, not pybind11's accessors (an accessor object and a generic
      // setitem per element): a reply is dozens of them
      py::list out(v.Size());
      Py_ssize_t i = 0;
      for (const auto& item : v.GetArray()) PyList_SET_ITEM(out.ptr(), i++, json_to_py(item).release().ptr());
      return out;
    }
    case rapidjson::kObjectType: {
      const py::dict out = presized_dict(static_cast<Py_ssize_t>(v.MemberCount()));
      for (const auto& m : v.GetObject()) {
        const py::object key = json_key(std::string_view(m.name.GetString(), m.name.GetStringLength()));
        const py::object value = json_to_py(m.value);
        if (PyDict_SetItem(out.ptr(), key.ptr(), value.ptr()) != 0) throw py::error_already_set();
      }
      return out;
    }
  }
  return py::none();
}

py::object json_text_to_py(const std::string& text) {
  if (text.empty()) return py::none();
  LocalJson<> json;  // a usual reply parses without the heap (a Document takes a 64 KB chunk)
  rapidjson::Document& doc = json.doc();
  std::string copy = text;  // parsed in place: the strings are not copied a second time, into the document
  if (parse_json_in_place(copy, doc) != JsonParse::kOk) return upstream_str(text);  // depth-bounded: json_to_py recurses
  return json_to_py(doc);
}

py::dict error_to_py(const ApiError& e) {
  static const char* kinds[] = {"status", "connection", "timeout", "stream", "cancelled"};
  py::dict d;
  d["kind"] = kinds[static_cast<int>(e.kind)];
  d["status"] = e.status;
  d["message"] = upstream_str(e.message);
  d["code"] = e.code_json.empty() ? py::object(py::none()) : json_text_to_py(e.code_json);
  d["metadata"] = e.metadata_json.empty() ? py::object(py::none()) : json_text_to_py(e.metadata_json);
  d["body"] = json_text_to_py(e.body);
  d["generation_id"] = e.generation_id.empty() ? py::object(py::none()) : py::object(upstream_str(e.generation_id));
  d["retry_after"] = e.retry_after ? py::object(py::float_(*e.retry_after)) : py::object(py::none());
  return d;
}

// Waits for `call` with the GIL released, in slices so Ctrl-C still interrupts (and cancels it).
// With `driver` held, this thread runs the event loop itself for the first slice; it lets go
// before any Python code (a signal handler) may run here, so a call made from there finds the
// loop driven, and a long call is the loop thread's again.
void wait_interruptible(Call& call, std::optional<Transport::Driver>* driver = nullptr) {
  constexpr auto kSlice = std::chrono::milliseconds(100);
  while (true) {
    bool done;
    {
      GilRelease release;
      if (driver != nullptr && *driver && (*driver)->held()) {
        done = (*driver)->run_until([&call] { return call.state() != Call::State::kRunning; }, kSlice);
      } else {
        done = call.wait(kSlice.count());
      }
    }
    if (done) return;
    if (driver != nullptr) driver->reset();
    if (PyErr_CheckSignals() != 0) {
      call.cancel();
      throw py::error_already_set();
    }
  }
}

py::dict headers_to_py(const Headers& h) {
  py::dict d;
  for (const auto& [k, v] : h.fields) {
    std::string lower = k;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    d[upstream_str(lower)] = upstream_str(v);
  }
  return d;
}

namespace {

void add_headers(CallSpec& spec, const std::vector<std::pair<std::string, std::string>>& headers) {
  for (const auto& [k, v] : headers) {
    check_header_value("header name " + k.substr(0, 40), k);
    check_header_value("header " + k, v);
    spec.extra_headers.add(k, v);
  }
}

// Starts `spec` on `c`. `blocking` (not a stream): sent and waited for on this thread while the
// loop thread is idle, returned finished (no hand-off between threads, no wake-up either way).
// Otherwise sent from this thread while the loop thread is idle; with `lend_to` (this thread's
// event loop's lendable Notifier, which awaits the call), its reply is read here too.
std::shared_ptr<Call> start_call(ApiClient& c, CallSpec&& spec, bool blocking, const py::handle& lend_to) {
  if (!blocking) {
    std::shared_ptr<LoopWatch> watch;
    if (!lend_to.is_none()) watch = lend_to.cast<std::shared_ptr<Notifier>>()->watch();
    GilRelease release;
    return start_sending_here(c.transport(), [&] { return c.start(std::move(spec)); }, std::move(watch));
  }
  std::optional<Transport::Driver> driver;
  driver.emplace(c.transport());
  std::shared_ptr<Call> call;
  {
    GilRelease release;
    call = c.start(std::move(spec));
  }
  wait_interruptible(*call, &driver);
  return call;
}

// ---- the plain chat call without pybind11's dispatch -------------------------------------------
//
// A chat call's way through NetClient.start (twelve arguments through pybind11's loaders), the
// Call's Python wrapper, its `done`, `serve_lent` and `chat_reply` took ~10k instructions of a
// ~160k call. `chat_sender(client)` returns one plain CPython function (METH_FASTCALL) whose
// `self` is a capsule holding the client: the same spec, checks and start as `start`, and for a
// call that finished inside it (blocking, or served on the event loop's thread) the reply itself.

constexpr const char* kClientCapsule = "orroute._core.NetClient";

std::string_view str_arg(PyObject* o, const char* what) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &n) : nullptr;
  if (s == nullptr) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%s must be a str", what);
    throw py::error_already_set();
  }
  return {s, static_cast<size_t>(n)};
}

int int_arg(PyObject* o, const char* what) {
  const long v = PyLong_Check(o) ? PyLong_AsLong(o) : -1;
  if (!PyLong_Check(o)) PyErr_Format(PyExc_TypeError, "%s must be an int", what);
  if (!PyErr_Occurred() && (v < INT_MIN || v > INT_MAX)) {
    PyErr_Format(PyExc_OverflowError, "%s is out of range", what);  // as pybind11's int caster
  }
  if (PyErr_Occurred()) throw py::error_already_set();
  return static_cast<int>(v);
}

// send(path, body, max_retries, timeouts, headers, blocking, lend_to, loop_fd, serve_timeout)
PyObject* fast_send_chat(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 9) {
    PyErr_SetString(PyExc_TypeError,
                    "expected (path, body, max_retries, timeouts, headers, blocking, lend_to, loop_fd, serve_timeout)");
    return nullptr;
  }
  try {
    ApiClient& c = **static_cast<std::shared_ptr<ApiClient>*>(PyCapsule_GetPointer(capsule, kClientCapsule));
    CallSpec spec;
    spec.method = "POST";
    spec.keep_ok_headers = false;  // an answered call is its reply; headers are read only by raw calls
    spec.path = str_arg(args[0], "path");
    spec.body = chat_request_json(args[1]);  // validated first
    spec.max_retries = int_arg(args[2], "max_retries");
    if (args[3] != Py_None) spec.timeouts = to_timeouts(py::reinterpret_borrow<py::tuple>(args[3]));
    if (PyObject* h = args[4]; !(PyList_Check(h) && PyList_GET_SIZE(h) == 0)) {
      add_headers(spec, py::cast<std::vector<std::pair<std::string, std::string>>>(py::handle(h)));
    }
    const bool blocking = PyObject_IsTrue(args[5]) == 1;
    const py::handle lend_to(args[6]);
    if (!lend_to.is_none() && !py::isinstance<Notifier>(lend_to)) {
      PyErr_SetString(PyExc_TypeError, "lend_to must be a Notifier or None");
      return nullptr;
    }
    const bool serve = !blocking && !lend_to.is_none() && args[8] != Py_None;
    const int loop_fd = serve ? int_arg(args[7], "loop_fd") : -1;
    const double serve_timeout = serve ? py::cast<double>(py::handle(args[8])) : 0.0;
    std::shared_ptr<Call> call = start_call(c, std::move(spec), blocking, lend_to);
    if (serve && call->state() == Call::State::kRunning) {
      serve_lent(*lend_to.cast<Notifier*>(), loop_fd, serve_timeout,
                 [&call] { return call->state() != Call::State::kRunning; }, [&call] { call->cancel(); });
    }
    if ((blocking || serve) && call->state() == Call::State::kDone) {
      py::object reply = plain_reply_to_py(call->response().body);
      if (!reply.is_none()) return reply.release().ptr();
    }
    return py::cast(std::move(call)).release().ptr();
  } catch (abi::__forced_unwind&) {
    throw;  // a daemon thread ended at exit while its call waited: let it end (see gil.h)
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyMethodDef kSendChat = {"send_chat",
                         reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_send_chat)),
                         METH_FASTCALL, nullptr};

py::object chat_sender(std::shared_ptr<ApiClient> client) {
  return capsule_function(&kSendChat, kClientCapsule, std::make_unique<std::shared_ptr<ApiClient>>(std::move(client)));
}

}  // namespace

void bind_net(py::module_& m) {
  py::class_<Call, std::shared_ptr<Call>>(m, "Call", "One API call in flight (private).")
      .def("wait",
           [](Call& c, double timeout) {
             const int64_t ms = wait_ms(timeout, "timeout");
             GilRelease r;
             return c.wait(ms);
           },
           py::arg("timeout"), "Waits up to `timeout` seconds (GIL released); True once finished.")
      .def("wait_done", [](Call& c) { wait_interruptible(c); }, "Waits until finished (GIL released, Ctrl-C cancels).")
      .def_property_readonly("done", [](const Call& c) { return c.state() != Call::State::kRunning; })
      .def_property_readonly("ok", [](const Call& c) { return c.state() == Call::State::kDone; })
      .def_property_readonly("attempts", &Call::attempts)
      .def_property_readonly("abandoned_attempts", &Call::abandoned_attempts,
                             "Attempts the upstream got in full that were cut before an answer: each may be billed.")
      .def("status", [](const Call& c) { return c.response().status; })
      .def("headers", [](const Call& c) { return headers_to_py(c.client().scrub(c.response().headers)); },
           "The reply's header fields, scrubbed of the client's keys (names and values).")
      .def("body_json", [](const Call& c) { return json_text_to_py(c.response().body); },
           "The response body parsed as JSON (the text itself if it is not JSON).")
      .def("reply", [](const Call& c) { return reply_to_py(c.response().body); },
           "body_json, but a JSON object as a JsonRef (its fields made Python values as read).")
      .def("chat_reply",
           [](const Call& c) {
             return c.state() == Call::State::kDone ? plain_reply_to_py(c.response().body) : py::none();
           },
           "reply() of a finished, answered call when it is a JSON object without `error`, else None "
           "(the usual chat reply in one call: `ok`, `reply` and the error check are the slow way).")
      .def("error", [](const Call& c) { return error_to_py(c.error()); })
      .def("arm", &Call::arm, py::arg("notifier"), py::arg("token"))
      .def(
          "serve_lent",
          [](Call& c, const Notifier& n, int loop_fd, double timeout) {
            return serve_lent(
                n, loop_fd, timeout, [&c] { return c.state() != Call::State::kRunning; }, [&c] { c.cancel(); });
          },
          py::arg("notifier"), py::arg("loop_fd"), py::arg("timeout"),
          "Waits for the call on this thread while the network loop is lent to `notifier` and "
          "`loop_fd` (the event loop's descriptor) stays quiet, at most `timeout` s (<0: no "
          "limit); False when the caller must await it the event loop's way (GIL released).")
      .def("cancel", &Call::cancel, "Aborts the call promptly; frees its connection.");

  py::class_<ApiClient, std::shared_ptr<ApiClient>>(m, "NetClient", "HTTP client on the libcurl event loop (private).")
      .def(py::init([](const std::string& base_url, std::vector<std::string> api_keys, const std::string& app_name,
                       const std::string& app_url, const std::string& user_agent, const py::tuple& timeouts,
                       const py::tuple& stream_timeouts, int max_retries, double backoff_base, double backoff_max,
                       double max_retry_after, std::optional<double> stream_deadline) {
             check_header_value("app_name", app_name);
             check_header_value("app_url", app_url);
             check_header_value("user_agent", user_agent);
             ClientConfig cfg;
             cfg.base_url = base_url;
             cfg.api_keys = std::move(api_keys);
             cfg.app_name = app_name;
             cfg.app_url = app_url;
             cfg.user_agent = user_agent;
             cfg.timeouts = to_timeouts(timeouts);
             cfg.stream_timeouts = to_timeouts(stream_timeouts);
             if (stream_deadline && cfg.stream_timeouts.total_ms == 0) {
               cfg.stream_timeouts.total_ms = stream_deadline_ms(*stream_deadline);
             }
             cfg.retry = RetryPolicy{max_retries, backoff_base, backoff_max, max_retry_after};
             return ApiClient::create(std::move(cfg));
           }),
           py::arg("base_url"), py::arg("api_keys"), py::arg("app_name"), py::arg("app_url"), py::arg("user_agent"),
           py::arg("timeouts"), py::arg("stream_timeouts"), py::arg("max_retries"), py::arg("backoff_base"),
           py::arg("backoff_max"), py::arg("max_retry_after"), py::arg("stream_deadline") = py::none())
      .def_property_readonly("base_url", [](const ApiClient& c) { return c.config().base_url; })
      .def("masked_keys", [](ApiClient& c) { return c.keys().masked(); })
      .def("usable_keys", [](ApiClient& c) { return c.keys().usable(); })
      .def("active_transfers", [](ApiClient& c) { return c.transport().active(); })
      .def("drives", [](ApiClient& c) { return c.transport().drives(); },
           "How many times a caller's thread drove the idle network loop itself (diagnostics).")
      .def("lends", [](ApiClient& c) { return c.transport().lends(); },
           "How many times the network loop was lent to an event loop's thread (diagnostics).")
      .def("wakeups", [](ApiClient& c) { return c.transport().wakeups(); },
           "How many times a command woke the network loop's thread (diagnostics).")
      .def(
          "start",
          [](ApiClient& c, const std::string& method, const std::string& path, py::object body, bool stream,
             int max_retries, py::object timeouts, const std::vector<std::pair<std::string, std::string>>& headers,
             int not_found_retries, bool chat, size_t queue_capacity, bool blocking,
             const py::object& lend_to) {
            CallSpec spec;
            spec.method = method;
            spec.path = path;
            if (chat) {
              spec.body = chat_request_json(body);  // validated first
            } else if (!body.is_none()) {
              spec.body = py_to_json(body);
            }
            spec.stream = stream;
            spec.max_retries = max_retries;
            if (!timeouts.is_none()) spec.timeouts = to_timeouts(timeouts.cast<py::tuple>());
            add_headers(spec, headers);
            spec.not_found_retries = not_found_retries;
            spec.queue_capacity = queue_capacity;
            // An object, not a shared_ptr<Notifier>: pybind11 takes None for one only in its
            // second pass over the arguments, which converts all twelve again
            return start_call(c, std::move(spec), blocking, lend_to);
          },
          py::arg("method"), py::arg("path"), py::arg("body") = py::none(), py::arg("stream") = false,
          py::arg("max_retries") = -1, py::arg("timeouts") = py::none(),
          py::arg("headers") = std::vector<std::pair<std::string, std::string>>{}, py::arg("not_found_retries") = 0,
          py::arg("chat") = false, py::arg("queue_capacity") = 64, py::arg("blocking") = false,
          py::arg("lend_to") = py::none(),
          "Starts a call (validating it first when `chat`); never blocks on the network unless "
          "`blocking` (not for streams): then returns it finished (Ctrl-C cancels it). `lend_to`: "
          "the lendable Notifier of this thread's event loop, which will await the call.");

  m.def("chat_sender", &chat_sender, py::arg("client"),
        "NetClient.start of a plain (not streamed) chat call and its reply in one call, without "
        "pybind11's dispatch: send(path, body, max_retries, timeouts, headers, blocking, lend_to, "
        "loop_fd, serve_timeout) -> the reply's JsonRef (answered, a JSON object without `error`) "
        "when it finished in this call, else the Call. `serve_timeout` (with `lend_to`): the call "
        "is served on this thread as Call.serve_lent does, at most that long (<0: no limit; "
        "None: not served).");

  m.attr("DEFAULT_BASE_URL") = std::string(kDefaultBaseUrl);
  m.def(
      "check_chat_request",
      [](std::string_view body_json, bool require_model, int64_t max_n) -> py::object {
        rapidjson::Document doc;
        if (JsonParse st = parse_json_text(body_json, doc); st != JsonParse::kOk) {
          return py::make_tuple("body", st == JsonParse::kInvalid
                                            ? std::string("the request body is not valid JSON")
                                            : std::string("the request body is ") + json_parse_reason(st));
        }
        auto p = check_chat_request(doc, ChatRequestRules{require_model, max_n});
        if (!p) return py::none();
        // The message quotes the client's JSON: decoded leniently, so no byte of it can raise.
        return py::make_tuple(upstream_str(p->field), upstream_str(p->message));
      },
      py::arg("body_json"), py::arg("require_model") = false, py::arg("max_n") = 0,
      "The first rule a chat request (JSON text) breaks, as (field, message), or None: the rules "
      "the client, the engine and the gateway share (net/protocol.h).");
  m.def("mask_key", &mask_key, py::arg("key"), "The masked form of an API key, safe to show.");
  m.def("client_text", [](std::string_view text) { return client_text(text); }, py::arg("text"),
        "Client text as an error or a log line quotes it: cut to 200 bytes with an ellipsis and its length.");
  m.def("unescape_key_chars", [](const py::bytes& data) {
        const std::string_view text = data;
        return py::bytes(unescape_key_chars(text));
      }, py::arg("data"),
      "`data` (JSON bytes) with each \\u00XX escape that spells a key character replaced by that "
      "character: the same document, in which an escaped key can be matched as bytes.");
  m.def("json_dumps", [](py::handle obj) { return py_to_json(obj); }, py::arg("obj"),
        "Compact JSON text of a Python value (as the client sends it).");
  m.def("json_loads", [](std::string text) {
        LocalJson<> json;
        rapidjson::Document& doc = json.doc();
        if (const JsonParse st = parse_json_in_place(text, doc); st != JsonParse::kOk) {
          throw ParseError(std::string("invalid JSON: ") + json_parse_reason(st));
        }
        return json_to_py(doc);
      }, py::arg("text"), "Parses JSON text with the core's parser.");
  bind_stream(m);
  bind_reply(m);
}

}  // namespace orroute::bindings
