// Bindings of the tokenizer: Encoding (tiktoken-shaped core calls) and model/chat token counting.
// Text arrives as UTF-8 views of the Python str; every loop runs with the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "gil.h"
#include "orroute/no_destructor.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/token_count.h"

namespace py = pybind11;

namespace orroute::bindings {
// A text argument as a view of its UTF-8 (of a str; bytes and bytearray as they are), as
// pybind11's std::string_view caster gives it, minus that caster's bookkeeping: it also puts the
// argument in a per-call keep-alive set (a hash-set node allocated and freed each call, ~20% of
// a short text's call). The caller's reference keeps the argument alive for the whole call, which
// is all a view used only during the call needs.
struct TextView {
  std::string_view view;
};
// A batch's texts (a list or tuple) as views, the same way: pybind11's list caster would put
// every item in the keep-alive set (a node allocated per text, ~40% of a short text's share of
// the serial conversion under the GIL). The caller's list keeps the items alive.
struct TextViews {
  std::vector<std::string_view> views;
};

// The UTF-8 of a str (bytes and bytearray as they are), or false for anything else and for a
// str with lone surrogates (Python's side retries those as a TypeError).
inline bool utf8_view(PyObject* obj, std::string_view& out) {
  Py_ssize_t size = 0;
  const char* data = nullptr;
  if (PyUnicode_Check(obj)) {
    data = PyUnicode_AsUTF8AndSize(obj, &size);
    if (data == nullptr) {
      PyErr_Clear();
      return false;
    }
  } else if (PyBytes_Check(obj)) {
    data = PyBytes_AS_STRING(obj);
    size = PyBytes_GET_SIZE(obj);
  } else if (PyByteArray_Check(obj)) {
    data = PyByteArray_AS_STRING(obj);
    size = PyByteArray_GET_SIZE(obj);
  } else {
    return false;
  }
  out = std::string_view(data, static_cast<size_t>(size));
  return true;
}
}  // namespace orroute::bindings

namespace pybind11::detail {
template <>
struct type_caster<orroute::bindings::TextView> {
  PYBIND11_TYPE_CASTER(orroute::bindings::TextView, const_name("str"));
  bool load(handle src, bool /*convert*/) { return orroute::bindings::utf8_view(src.ptr(), value.view); }
};

template <>
struct type_caster<orroute::bindings::TextViews> {
  PYBIND11_TYPE_CASTER(orroute::bindings::TextViews, const_name("list[str]"));
  bool load(handle src, bool /*convert*/) {
    PyObject* seq = src.ptr();
    if (!PyList_Check(seq) && !PyTuple_Check(seq)) return false;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject** items = PySequence_Fast_ITEMS(seq);
    value.views.resize(static_cast<size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (!orroute::bindings::utf8_view(items[i], value.views[static_cast<size_t>(i)])) return false;
    }
    return true;
  }
};
}  // namespace pybind11::detail

namespace orroute::bindings {
namespace {

using EncodingPtr = std::shared_ptr<Encoding>;
using Strings = std::vector<std::string>;
using Tokens = std::vector<uint32_t>;
// A special-token set from Python: None is tiktoken's "all".
using SpecialSet = std::optional<Strings>;

SpecialPolicy policy(SpecialSet allowed, SpecialSet disallowed) {
  SpecialPolicy p;
  p.allow_all = !allowed;
  p.disallow_others = !disallowed;
  if (allowed) p.allowed = std::move(*allowed);
  if (disallowed) p.disallowed = std::move(*disallowed);
  return p;
}

// One Python int per token id, shared by every list the process builds: a list item is then a
// reference count bump instead of an int allocated (and later freed) per token, which was half
// the cost of encode() to a list. Created on first use of each id, never freed (one int per id
// ever returned, ids below kSharedIds: at most 32 bytes per vocabulary entry); only touched with
// the GIL held. A process-lifetime table, so never destroyed (no Python call at exit).
constexpr uint32_t kSharedIds = uint32_t{1} << 21;  // Vocab's id bound; larger ids get fresh ints
PyObject** shared_ids() {
  static PyObject** table = static_cast<PyObject**>(std::calloc(kSharedIds, sizeof(PyObject*)));
  return table;  // calloc: untouched pages cost nothing
}

// A new reference to the int of `id`: the shared one (made on first use), or a fresh one.
[[gnu::always_inline]] inline PyObject* token_int(PyObject** table, uint32_t id) {
  if (table == nullptr || id >= kSharedIds) [[unlikely]] return PyLong_FromUnsignedLong(id);
  PyObject* obj = table[id];
  if (obj == nullptr) [[unlikely]] {
    obj = PyLong_FromUnsignedLong(id);
    if (obj == nullptr) return nullptr;
    table[id] = obj;  // the table keeps this reference for the life of the process
  }
  Py_INCREF(obj);
  return obj;
}

// list[int] built directly: pybind11's generic list caster is several times slower per token.
// Each item waits on two reads that miss the cache on fresh text (the encoder's tables evict the
// shared ints between calls): the id's table slot, then the int's reference count. Both are
// requested ahead of use, the slot kSlotAhead items ahead and the int kIntAhead items ahead (its
// slot requested long enough before to have arrived), so the waits overlap. The items before the
// last kSlotAhead are taken in a loop without bound checks (an id past the table requests some
// other slot: harmless), the rest with them.
constexpr size_t kSlotAhead = 16;
constexpr size_t kIntAhead = 8;
constexpr uint32_t kSlotMask = kSharedIds - 1;

py::list to_list(const Tokens& tokens) {
  const size_t n = tokens.size();
  auto list = py::reinterpret_steal<py::list>(PyList_New(static_cast<Py_ssize_t>(n)));
  if (!list) throw py::error_already_set();
  PyObject** items = PySequence_Fast_ITEMS(list.ptr());
  PyObject** table = shared_ids();
  const uint32_t* ids = tokens.data();
  size_t i = 0;
  if (table != nullptr && n > kSlotAhead) {
    for (; i < n - kSlotAhead; ++i) {
      __builtin_prefetch(&table[ids[i + kSlotAhead] & kSlotMask]);
      if (PyObject* ahead = table[ids[i + kIntAhead] & kSlotMask]) __builtin_prefetch(ahead, 1);
      if ((items[i] = token_int(table, ids[i])) == nullptr) throw py::error_already_set();
    }
  }
  for (; i < n; ++i) {
    if (table != nullptr && i + kIntAhead < n) {
      if (PyObject* ahead = table[ids[i + kIntAhead] & kSlotMask]) __builtin_prefetch(ahead, 1);
    }
    if ((items[i] = token_int(table, ids[i])) == nullptr) throw py::error_already_set();
  }
  return list;
}

py::list to_lists(const std::vector<Tokens>& batch) {
  py::list result(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) result[i] = to_list(batch[i]);
  return result;
}

// Tokens handed to numpy without a copy (buffer protocol, read-only uint32).
struct TokenBuffer {
  Tokens tokens;
};
// encode_batch_flat's offsets, the same way (read-only uint64).
struct OffsetBuffer {
  std::vector<uint64_t> offsets;
};

template <class T>
py::buffer_info readonly_vector(std::vector<T>& v) {
  return py::buffer_info(v.data(), sizeof(T), py::format_descriptor<T>::format(), 1,
                         {static_cast<py::ssize_t>(v.size())},
                         {static_cast<py::ssize_t>(sizeof(T))}, /*readonly=*/true);
}

// tiktoken's default arguments (allowed_special=set(), disallowed_special="all"): every special
// token's text is an error. The commonest call gets its own entry points, so it pays for no
// conversion of the two sets (about 0.3 us a call, 6% of encoding a typical 400-byte text).
const SpecialPolicy& default_policy() {
  // Read by counts that run without the GIL (a daemon thread may be in one at exit): never destroyed.
  static const NoDestructor<SpecialPolicy> p(
      SpecialPolicy{.allowed = {}, .disallowed = {}, .allow_all = false, .disallow_others = true});
  return *p;
}

// fn() with the GIL released (GilRelease: a daemon thread inside it at exit ends quietly).
template <class Fn>
auto without_gil(Fn&& fn) {
  GilRelease released;
  return fn();
}

// Texts shorter than this are encoded with the GIL held: they take microseconds, about what
// releasing and re-taking the GIL costs (fastokens' threshold is 32 KB). Other Python threads
// wait at most ~0.3 ms for one call.
constexpr size_t kReleaseGilBytes = 16 * 1024;

// fn() on a text of `bytes` bytes, with the GIL released if the text is long.
template <class Fn>
auto gil_free_if_long(size_t bytes, Fn&& fn) {
  if (bytes < kReleaseGilBytes) return fn();
  return without_gil(std::forward<Fn>(fn));
}

// Runs fn() (encoding a text of `bytes` bytes; the GIL released if long) and converts its tokens
// to a list.
template <class Fn>
py::list released_list(size_t bytes, Fn&& fn) {
  return to_list(gil_free_if_long(bytes, std::forward<Fn>(fn)));
}

// Runs fn() with the GIL released and converts its tokens to a list.
template <class Fn>
py::list released_list(Fn&& fn) {
  return to_list(without_gil(std::forward<Fn>(fn)));
}

// ---- the per-message calls without pybind11's dispatcher --------------------------------------
//
// count and encode of one text, ordinary or with tiktoken's default arguments, are what an
// application calls once per chat message. Through pybind11 a call's dispatch (overload record,
// argument loaders, the result's caster) took ~1.3k instructions, more than counting a short text
// does, so these four are plain CPython functions (METH_FASTCALL) whose `self` is a capsule
// holding the encoding. Same arguments (one text), results and errors as the bound methods.

constexpr const char* kEncodingCapsule = "orroute._core.Encoding";

const Encoding& capsule_encoding(PyObject* capsule) {
  return **static_cast<const EncodingPtr*>(PyCapsule_GetPointer(capsule, kEncodingCapsule));
}

// call(encoding, text) -> a new reference, for the single text argument; a C++ exception becomes
// the Python exception pybind11's translators give it.
template <class Call>
PyObject* one_text(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs, Call&& call) {
  std::string_view text;
  if (nargs != 1 || !utf8_view(args[0], text)) {
    PyErr_SetString(PyExc_TypeError, "expected one argument: the text (str)");
    return nullptr;
  }
  try {
    return call(capsule_encoding(capsule), text);
  } catch (abi::__forced_unwind&) {
    throw;  // a daemon thread ended at exit inside a long text's call: let it end (see gil.h)
  } catch (...) {
    py::detail::try_translate_exceptions();
    return nullptr;
  }
}

PyObject* fast_count_ordinary(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  return one_text(capsule, args, nargs, [](const Encoding& e, std::string_view text) {
    return PyLong_FromSize_t(gil_free_if_long(text.size(), [&] { return e.count_ordinary(text); }));
  });
}
PyObject* fast_count_default(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  return one_text(capsule, args, nargs, [](const Encoding& e, std::string_view text) {
    return PyLong_FromSize_t(
        gil_free_if_long(text.size(), [&] { return e.count(text, default_policy()); }));
  });
}
PyObject* fast_encode_ordinary(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  return one_text(capsule, args, nargs, [](const Encoding& e, std::string_view text) {
    return released_list(text.size(), [&] { return e.encode_ordinary(text); }).release().ptr();
  });
}
PyObject* fast_encode_default(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  return one_text(capsule, args, nargs, [](const Encoding& e, std::string_view text) {
    return released_list(text.size(), [&] { return e.encode(text, default_policy()); }).release().ptr();
  });
}

template <PyObject* (*Fn)(PyObject*, PyObject* const*, Py_ssize_t)>
PyMethodDef fastcall_def(const char* name) {
  // Through void(*)(): the documented way to store a METH_FASTCALL function as a PyCFunction.
  return {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Fn)), METH_FASTCALL,
          nullptr};
}
PyMethodDef kFastCalls[] = {
    fastcall_def<fast_count_ordinary>("count_ordinary"),
    fastcall_def<fast_count_default>("count_default"),
    fastcall_def<fast_encode_ordinary>("encode_ordinary"),
    fastcall_def<fast_encode_default>("encode_default"),
};

// (count_ordinary, count_default, encode_ordinary, encode_default) of `e`, each holding it.
py::tuple fast_calls(EncodingPtr e) {
  auto capsule = py::reinterpret_steal<py::object>(
      PyCapsule_New(new EncodingPtr(std::move(e)), kEncodingCapsule, [](PyObject* c) {
        delete static_cast<EncodingPtr*>(PyCapsule_GetPointer(c, kEncodingCapsule));
      }));
  if (!capsule) throw py::error_already_set();
  py::tuple calls(std::size(kFastCalls));
  for (size_t i = 0; i < std::size(kFastCalls); ++i) {
    PyObject* fn = PyCFunction_New(&kFastCalls[i], capsule.ptr());
    if (fn == nullptr) throw py::error_already_set();
    calls[i] = py::reinterpret_steal<py::object>(fn);
  }
  return calls;
}

py::tuple count_tuple(const TokenCount& c) {
  return py::make_tuple(c.tokens, c.exact, c.encoding, c.family);
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<TokenBuffer>(m, "TokenBuffer", py::buffer_protocol())
      .def_buffer([](TokenBuffer& b) { return readonly_vector(b.tokens); });
  py::class_<OffsetBuffer>(m, "OffsetBuffer", py::buffer_protocol())
      .def_buffer([](OffsetBuffer& b) { return readonly_vector(b.offsets); });

  py::class_<Encoding, EncodingPtr>(m, "Encoding")
      .def(py::init([](std::string name, std::string_view pat_str,
                       const std::vector<std::pair<std::string, uint32_t>>& ranks,
                       const std::map<std::string, uint32_t>& special_tokens) {
             std::vector<SpecialToken> specials;
             for (const auto& [text, id] : special_tokens) specials.push_back({text, id});
             return std::const_pointer_cast<Encoding>(
                 make_encoding(std::move(name), pat_str, ranks, std::move(specials)));
           }),
           py::arg("name"), py::arg("pat_str"), py::arg("ranks"), py::arg("special_tokens"))
      .def_property_readonly("name", &Encoding::name)
      .def_property_readonly("pat_str",
                             [](const Encoding& e) { return std::string(pattern_regex(e.pattern())); })
      .def_property_readonly("n_vocab", &Encoding::n_vocab)
      .def_property_readonly("n_ranks", [](const Encoding& e) { return e.vocab().size(); })
      .def_property_readonly("eot_token", &Encoding::eot_token)
      .def_property_readonly("special_tokens",
                             [](const Encoding& e) {
                               py::dict d;
                               for (const SpecialToken& s : e.special_tokens()) d[py::str(s.text)] = s.id;
                               return d;
                             })
      .def("is_special_token", &Encoding::is_special_token, py::arg("token"))
      .def("encode_ordinary",
           [](const Encoding& e, TextView text) {
             return released_list(text.view.size(), [&] { return e.encode_ordinary(text.view); });
           },
           py::arg("text"))
      .def("encode",
           [](const Encoding& e, TextView text, SpecialSet allowed, SpecialSet disallowed) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             return released_list(text.view.size(), [&] { return e.encode(text.view, p); });
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"))
      .def("encode_with_unstable",
           [](const Encoding& e, TextView text, SpecialSet allowed, SpecialSet disallowed) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             const auto out = without_gil([&] { return e.encode_with_unstable(text.view, p); });
             return py::make_tuple(to_list(out.first), to_lists(out.second));
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"))
      .def("encode_to_buffer",
           [](const Encoding& e, TextView text, SpecialSet allowed, SpecialSet disallowed) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             return without_gil([&] { return TokenBuffer{e.encode(text.view, p)}; });
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"))
      .def("encode_default",
           [](const Encoding& e, TextView text) {
             return released_list(text.view.size(),
                                  [&] { return e.encode(text.view, default_policy()); });
           },
           py::arg("text"))
      .def("count_default",
           [](const Encoding& e, TextView text) {
             return gil_free_if_long(text.view.size(),
                                     [&] { return e.count(text.view, default_policy()); });
           },
           py::arg("text"))
      .def("count_ordinary",
           [](const Encoding& e, TextView text) {
             return gil_free_if_long(text.view.size(), [&] { return e.count_ordinary(text.view); });
           },
           py::arg("text"))
      .def("count",
           [](const Encoding& e, TextView text, SpecialSet allowed, SpecialSet disallowed) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             return gil_free_if_long(text.view.size(), [&] { return e.count(text.view, p); });
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"))
      .def("encode_batch",
           [](const Encoding& e, const TextViews& texts, SpecialSet allowed, SpecialSet disallowed,
              unsigned threads) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             return to_lists(without_gil([&] { return e.encode_batch(texts.views, p, threads); }));
           },
           py::arg("texts"), py::arg("allowed"), py::arg("disallowed"), py::arg("threads"))
      .def("encode_batch_flat",
           [](const Encoding& e, const TextViews& texts, SpecialSet allowed, SpecialSet disallowed,
              unsigned threads) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             FlatTokens flat =
                 without_gil([&] { return e.encode_batch_flat(texts.views, p, threads); });
             return py::make_tuple(TokenBuffer{std::move(flat.tokens)},
                                   OffsetBuffer{std::move(flat.offsets)});
           },
           py::arg("texts"), py::arg("allowed"), py::arg("disallowed"), py::arg("threads"))
      .def("count_batch",
           [](const Encoding& e, const TextViews& texts, SpecialSet allowed, SpecialSet disallowed,
              unsigned threads) {
             const SpecialPolicy p = policy(std::move(allowed), std::move(disallowed));
             return without_gil([&] { return e.count_batch(texts.views, p, threads); });
           },
           py::arg("texts"), py::arg("allowed"), py::arg("disallowed"), py::arg("threads"))
      .def("encode_bytes",
           [](const Encoding& e, std::string_view bytes) {
             return released_list([&] { return e.encode_bytes(bytes); });
           },
           py::arg("bytes"))
      .def("encode_single_piece",
           [](const Encoding& e, std::string_view bytes) {
             return released_list([&] { return e.encode_single_piece(bytes); });
           },
           py::arg("bytes"))
      .def("encode_single_token", &Encoding::encode_single_token, py::arg("bytes"))
      .def("decode_bytes",
           [](const Encoding& e, const Tokens& tokens) {
             return py::bytes(without_gil([&] { return e.decode_bytes(tokens); }));
           },
           py::arg("tokens"))
      .def("decode_bytes_batch",
           [](const Encoding& e, const std::vector<Tokens>& batch) {
             const std::vector<std::string> out =
                 without_gil([&] { return e.decode_bytes_batch(batch); });
             py::list result(out.size());
             for (size_t i = 0; i < out.size(); ++i) result[i] = py::bytes(out[i]);
             return result;
           },
           py::arg("batch"))
      .def("decode_with_offsets",
           [](const Encoding& e, const Tokens& tokens) {
             auto [bytes, offsets] = e.decode_with_offsets(tokens);
             return py::make_tuple(py::bytes(bytes), offsets);
           },
           py::arg("tokens"))
      .def("token_bytes",
           [](const Encoding& e, uint32_t token) { return py::bytes(std::string(e.token_bytes(token))); },
           py::arg("token"))
      .def("token_byte_values", [](const Encoding& e) {
        const std::vector<std::string_view> values = e.token_byte_values();
        py::list result(values.size());
        for (size_t i = 0; i < values.size(); ++i) result[i] = py::bytes(values[i]);
        return result;
      });

  m.def("fast_calls", &fast_calls, py::arg("encoding"));
  m.def("get_encoding",
        [](std::string_view name) {
          return std::const_pointer_cast<Encoding>(without_gil([&] { return get_encoding(name); }));
        },
        py::arg("name"));
  m.def("encoding_names", &encoding_names);
  m.def("add_vocab_dir", &add_vocab_dir, py::arg("dir"));
  m.def("tiktoken_encoding_name",
        [](std::string_view model) { return std::string(tiktoken_encoding_name(model)); },
        py::arg("model"));
  m.def("encoding_for_model", &encoding_for_model, py::arg("model"), py::arg("strict"));
  m.def("tiktoken_model_tables", [] {
    auto pairs = [](std::span<const std::pair<std::string_view, std::string_view>> t) {
      return std::vector<std::pair<std::string, std::string>>(t.begin(), t.end());
    };
    return std::pair(pairs(tiktoken_model_names()), pairs(tiktoken_model_prefixes()));
  });
  m.def("parse_tiktoken_ranks",
        [](std::string_view data, std::string_view where) {
          const auto ranks = parse_tiktoken_ranks(data, where);
          py::dict d;
          for (const auto& [bytes, rank] : ranks) d[py::bytes(bytes)] = rank;
          return d;
        },
        py::arg("data"), py::arg("where"));

  py::class_<ModelTokenizer>(m, "ModelTokenizer")
      .def_readonly("encoding", &ModelTokenizer::encoding)
      .def_readonly("family", &ModelTokenizer::family)
      .def_readonly("factor", &ModelTokenizer::factor)
      .def_readonly("exact", &ModelTokenizer::exact);
  m.def("tokenizer_for_model", &tokenizer_for_model, py::arg("model"));
  // Counts come back as (tokens, exact, encoding, family) tuples: a bound TokenCount object cost
  // more than the count of a short text (an instance made, then four property reads).
  m.def("count_text_tokens",
        [](TextView model, TextView text) {
          return count_tuple(
              gil_free_if_long(text.view.size(), [&] { return count_text_tokens(model.view, text.view); }));
        },
        py::arg("model"), py::arg("text"));
  m.def("count_chat_tokens_json",
        [](TextView model, TextView messages_json, std::string_view tools_json) {
          return count_tuple(without_gil(
              [&] { return count_chat_tokens_json(model.view, messages_json.view, tools_json); }));
        },
        py::arg("model"), py::arg("messages_json"), py::arg("tools_json"));
}

}  // namespace orroute::bindings
