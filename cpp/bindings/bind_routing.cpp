// Learned routing: prompt features, LearnedRouter, and the quality-predictor seam to the selector.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "gil.h"
#include "orroute/select/features.h"
#include "orroute/select/learned_router.h"
#include "orroute/select/quality_predictor.h"

namespace py = pybind11;

namespace orroute::bindings {

namespace {

using Release = py::call_guard<GilRelease>;

std::shared_ptr<LearnedRouter> fit(std::vector<std::string> prompts,
                                   std::vector<std::string> models,
                                   std::vector<std::vector<double>> scores,
                                   std::vector<std::vector<double>> costs, RouterConfig config) {
  const OutcomeTable table{std::move(prompts), std::move(models), std::move(scores),
                           std::move(costs)};
  GilRelease release;
  return LearnedRouter::fit(table, config);
}

}  // namespace

void bind_routing(py::module_& m) {
  py::class_<PromptStats>(m, "PromptStats")
      .def_readonly("chars", &PromptStats::chars)
      .def_readonly("words", &PromptStats::words)
      .def_readonly("lines", &PromptStats::lines)
      .def_readonly("sentences", &PromptStats::sentences)
      .def_readonly("questions", &PromptStats::questions)
      .def_readonly("digits", &PromptStats::digits)
      .def_readonly("uppercase", &PromptStats::uppercase)
      .def_readonly("punctuation", &PromptStats::punctuation)
      .def_readonly("code_fences", &PromptStats::code_fences)
      .def_readonly("code_cues", &PromptStats::code_cues)
      .def_readonly("math_cues", &PromptStats::math_cues)
      .def_readonly("multistep_cues", &PromptStats::multistep_cues)
      .def_readonly("list_items", &PromptStats::list_items)
      .def_readonly("choice_options", &PromptStats::choice_options)
      .def_readonly("avg_word_length", &PromptStats::avg_word_length)
      .def_readonly("complexity", &PromptStats::complexity);
  m.def("prompt_stats", &prompt_stats, py::arg("prompt"), Release());

  py::class_<RouterConfig>(m, "RouterConfig")
      .def(py::init<>())
      .def_property(
          "hash_bits", [](const RouterConfig& c) { return c.features.hash_bits; },
          [](RouterConfig& c, uint32_t v) { c.features.hash_bits = v; })
      .def_property(
          "word_unigrams", [](const RouterConfig& c) { return c.features.word_unigrams; },
          [](RouterConfig& c, bool v) { c.features.word_unigrams = v; })
      .def_property(
          "word_bigrams", [](const RouterConfig& c) { return c.features.word_bigrams; },
          [](RouterConfig& c, bool v) { c.features.word_bigrams = v; })
      .def_property(
          "char_ngram_min", [](const RouterConfig& c) { return c.features.char_ngram_min; },
          [](RouterConfig& c, uint32_t v) { c.features.char_ngram_min = v; })
      .def_property(
          "char_ngram_max", [](const RouterConfig& c) { return c.features.char_ngram_max; },
          [](RouterConfig& c, uint32_t v) { c.features.char_ngram_max = v; })
      .def_property(
          "char_window", [](const RouterConfig& c) { return c.features.char_window; },
          [](RouterConfig& c, uint32_t v) { c.features.char_window = v; })
      .def_property(
          "word_window", [](const RouterConfig& c) { return c.features.word_window; },
          [](RouterConfig& c, uint32_t v) { c.features.word_window = v; })
      .def_property(
          "structure", [](const RouterConfig& c) { return c.features.structure; },
          [](RouterConfig& c, bool v) { c.features.structure = v; })
      .def_readwrite("epochs", &RouterConfig::epochs)
      .def_readwrite("learning_rate", &RouterConfig::learning_rate)
      .def_readwrite("l2", &RouterConfig::l2)
      .def_readwrite("l2_shared", &RouterConfig::l2_shared)
      .def_readwrite("shared_component", &RouterConfig::shared_component)
      .def_readwrite("adagrad_init", &RouterConfig::adagrad_init)
      .def_readwrite("prior_strength", &RouterConfig::prior_strength)
      .def_readwrite("seed", &RouterConfig::seed);

  py::class_<PromptFeaturizer>(m, "PromptFeaturizer")
      .def(py::init([](const RouterConfig& c) { return PromptFeaturizer(c.features); }),
           py::arg("config"))
      .def_property_readonly("dim", &PromptFeaturizer::dim)
      .def(
          "features",
          [](const PromptFeaturizer& f, std::string_view prompt) {
            std::vector<std::pair<uint32_t, float>> out;
            for (const auto& x : f.features(prompt)) out.emplace_back(x.index, x.value);
            return out;
          },
          py::arg("prompt"))
      .def_static("structure_names", &PromptFeaturizer::structure_names);

  py::class_<QualityPredictor, std::shared_ptr<QualityPredictor>>(m, "QualityPredictor")
      .def("model_names", &QualityPredictor::model_names)
      .def("predict", &QualityPredictor::predict, py::arg("prompt"), Release());

  py::class_<LearnedRouter, QualityPredictor, std::shared_ptr<LearnedRouter>>(m, "LearnedRouter")
      .def_static("fit", &fit, py::arg("prompts"), py::arg("models"), py::arg("scores"),
                  py::arg("costs"), py::arg("config"))
      .def_static("load", &LearnedRouter::load, py::arg("path"), Release())
      .def_static(
          "from_bytes",
          [](const py::bytes& b) { return LearnedRouter::from_bytes(std::string_view(b)); },
          py::arg("data"))
      .def("to_bytes", [](const LearnedRouter& r) { return py::bytes(r.to_bytes()); })
      .def("save", &LearnedRouter::save, py::arg("path"), Release())
      .def_property_readonly("config", &LearnedRouter::config)
      .def("expected_costs", &LearnedRouter::expected_costs, py::arg("prompt"), Release())
      .def(
          "predict_many",
          [](const LearnedRouter& r, const std::vector<std::string>& prompts) {
            std::vector<double> p, c;
            {
              GilRelease release;
              r.predict_many(prompts, p, c);
            }
            return py::make_tuple(p, c);
          },
          py::arg("prompts"))
      .def("route", &LearnedRouter::route, py::arg("prompt"), py::arg("cost_weight"), Release())
      .def("route_threshold", &LearnedRouter::route_threshold, py::arg("prompt"),
           py::arg("threshold"), Release())
      .def("update", &LearnedRouter::update, py::arg("prompt"), py::arg("model"),
           py::arg("score"), py::arg("cost"), Release())
      .def("row_counts", &LearnedRouter::row_counts)
      .def("mean_scores", &LearnedRouter::mean_scores);

  py::class_<CatalogQualityPredictor, std::shared_ptr<CatalogQualityPredictor>>(
      m, "CatalogQualityPredictor")
      .def(py::init<std::shared_ptr<const QualityPredictor>,
                    const std::vector<std::pair<std::string, std::string>>&>(),
           py::arg("predictor"), py::arg("mapping"))
      .def_property_readonly("catalog_ids", &CatalogQualityPredictor::catalog_ids)
      .def("covers", &CatalogQualityPredictor::covers, py::arg("catalog_id"))
      .def("predict", &CatalogQualityPredictor::predict, py::arg("prompt"), Release())
      .def("predict_one", &CatalogQualityPredictor::predict_one, py::arg("prompt"),
           py::arg("catalog_id"), Release());
}

}  // namespace orroute::bindings
