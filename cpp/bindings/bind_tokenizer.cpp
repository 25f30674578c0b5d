// Bindings of the tokenizer: Encoding (tiktoken-shaped core calls) and model/chat token counting.
// Text arrives as UTF-8 views of the Python str; every loop runs with the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/token_count.h"

namespace py = pybind11;

namespace orroute::bindings {
namespace {

using EncodingPtr = std::shared_ptr<Encoding>;
using Strings = std::vector<std::string>;

// list[int] built directly: pybind11's generic list caster is several times slower per token.
py::list to_list(const std::vector<uint32_t>& tokens) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(tokens.size()));
  if (!list) throw py::error_already_set();
  for (size_t i = 0; i < tokens.size(); ++i) {
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), PyLong_FromUnsignedLong(tokens[i]));
  }
  return py::reinterpret_steal<py::list>(list);
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<Encoding, EncodingPtr>(m, "Encoding")
      .def_property_readonly("name", &Encoding::name)
      .def_property_readonly("n_vocab", &Encoding::n_vocab)
      .def_property_readonly("eot_token", &Encoding::eot_token)
      .def_property_readonly("special_tokens",
                             [](const Encoding& e) {
                               py::dict d;
                               for (const SpecialToken& s : e.special_tokens()) d[py::str(s.text)] = s.id;
                               return d;
                             })
      .def("encode_ordinary",
           [](const Encoding& e, std::string_view text) {
             std::vector<uint32_t> out;
             {
               py::gil_scoped_release release;
               out = e.encode_ordinary(text);
             }
             return to_list(out);
           },
           py::arg("text"))
      .def("encode",
           [](const Encoding& e, std::string_view text, Strings allowed, Strings disallowed) {
             std::vector<uint32_t> out;
             {
               py::gil_scoped_release release;
               out = e.encode(text, {std::move(allowed), std::move(disallowed)});
             }
             return to_list(out);
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"))
      .def("count_ordinary", &Encoding::count_ordinary, py::arg("text"),
           py::call_guard<py::gil_scoped_release>())
      .def("count",
           [](const Encoding& e, std::string_view text, Strings allowed, Strings disallowed) {
             return e.count(text, {std::move(allowed), std::move(disallowed)});
           },
           py::arg("text"), py::arg("allowed"), py::arg("disallowed"),
           py::call_guard<py::gil_scoped_release>())
      .def("encode_batch",
           [](const Encoding& e, const Strings& texts, Strings allowed, Strings disallowed,
              unsigned threads) {
             std::vector<std::vector<uint32_t>> out;
             {
               py::gil_scoped_release release;
               out = e.encode_batch(texts, {std::move(allowed), std::move(disallowed)}, threads);
             }
             py::list result(out.size());
             for (size_t i = 0; i < out.size(); ++i) result[i] = to_list(out[i]);
             return result;
           },
           py::arg("texts"), py::arg("allowed"), py::arg("disallowed"), py::arg("threads"))
      .def("count_batch",
           [](const Encoding& e, const Strings& texts, Strings allowed, Strings disallowed,
              unsigned threads) {
             return e.count_batch(texts, {std::move(allowed), std::move(disallowed)}, threads);
           },
           py::arg("texts"), py::arg("allowed"), py::arg("disallowed"), py::arg("threads"),
           py::call_guard<py::gil_scoped_release>())
      .def("decode_bytes",
           [](const Encoding& e, const std::vector<uint32_t>& tokens) {
             std::string out;
             {
               py::gil_scoped_release release;
               out = e.decode_bytes(tokens);
             }
             return py::bytes(out);
           },
           py::arg("tokens"))
      .def("token_bytes",
           [](const Encoding& e, uint32_t token) { return py::bytes(std::string(e.token_bytes(token))); },
           py::arg("token"));

  m.def("get_encoding",
        [](std::string_view name) { return std::const_pointer_cast<Encoding>(get_encoding(name)); },
        py::arg("name"), py::call_guard<py::gil_scoped_release>());
  m.def("encoding_names", &encoding_names);
  m.def("add_vocab_dir", &add_vocab_dir, py::arg("dir"));

  py::class_<ModelTokenizer>(m, "ModelTokenizer")
      .def_readonly("encoding", &ModelTokenizer::encoding)
      .def_readonly("family", &ModelTokenizer::family)
      .def_readonly("factor", &ModelTokenizer::factor)
      .def_readonly("exact", &ModelTokenizer::exact);
  m.def("tokenizer_for_model", &tokenizer_for_model, py::arg("model"));
  py::class_<TokenCount>(m, "TokenCount")
      .def_readonly("tokens", &TokenCount::tokens)
      .def_readonly("exact", &TokenCount::exact)
      .def_readonly("encoding", &TokenCount::encoding)
      .def_readonly("family", &TokenCount::family);
  m.def("count_text_tokens", &count_text_tokens, py::arg("model"), py::arg("text"),
        py::call_guard<py::gil_scoped_release>());
  m.def("count_chat_tokens_json", &count_chat_tokens_json, py::arg("model"),
        py::arg("messages_json"), py::arg("tools_json"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace orroute::bindings
