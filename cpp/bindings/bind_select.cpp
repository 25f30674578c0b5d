// Binds selection: QualityPriors, Constraints, ModelSelector and its results.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "orroute/catalog/capabilities.h"
#include "orroute/route/complexity.h"
#include "orroute/select/selector.h"

namespace py = pybind11;

namespace orroute::bindings {

namespace {

std::vector<Tier> tiers_from(const std::vector<std::string>& names) {
  std::vector<Tier> out;
  for (const auto& n : names) out.push_back(tier_from_name(n));
  return out;
}

std::vector<std::string> tier_names(const std::vector<Tier>& tiers) {
  std::vector<std::string> out;
  for (Tier t : tiers) out.emplace_back(tier_name(t));
  return out;
}

}  // namespace

void bind_select(py::module_& m) {
  py::class_<QualityPriors>(m, "QualityPriors")
      .def(py::init<>())
      .def_static(
          "from_json", [](std::string_view text) { return QualityPriors::from_json(text); },
          py::arg("text"))
      .def("merge", &QualityPriors::merge, py::arg("overrides"))
      .def_property_readonly("model_count", &QualityPriors::model_count)
      .def_property_readonly("family_count", &QualityPriors::family_count)
      .def(
          "lookup",
          [](const QualityPriors& p, std::string_view id) -> std::optional<py::dict> {
            const auto s = p.lookup(id);
            if (!s) return std::nullopt;
            py::dict d;
            for (int c = 0; c < kNumQualityCategories; ++c) {
              const auto cat = static_cast<QualityCategory>(c);
              if (const auto v = s->get(cat)) d[py::str(std::string(quality_category_name(cat)))] = *v;
            }
            d["source"] = s->source;
            return d;
          },
          py::arg("model_id"));
  m.def("family_key", &family_key, py::arg("model_id"));

  py::class_<Constraints>(m, "Constraints")
      .def(py::init([](const std::vector<std::string>& capabilities,
                       std::vector<std::string> parameters, std::optional<Money> max_price_per_1k,
                       std::optional<Money> max_price_per_mtok, std::optional<int64_t> min_context,
                       std::optional<int64_t> expected_output_tokens,
                       std::vector<std::string> allowed_providers,
                       std::vector<std::string> blocked_providers,
                       std::vector<std::string> allowed_models,
                       std::vector<std::string> blocked_models, bool free_only, bool paid_only,
                       bool allow_free, const std::vector<std::string>& tiers,
                       std::optional<double> min_quality) {
             return Constraints{capability_bits(capabilities), std::move(parameters),
                                max_price_per_1k, max_price_per_mtok, min_context,
                                expected_output_tokens, std::move(allowed_providers),
                                std::move(blocked_providers), std::move(allowed_models),
                                std::move(blocked_models), free_only, paid_only, allow_free,
                                tiers_from(tiers), min_quality};
           }),
           py::kw_only(), py::arg("capabilities") = std::vector<std::string>{},
           py::arg("parameters") = std::vector<std::string>{},
           py::arg("max_price_per_1k") = py::none(), py::arg("max_price_per_mtok") = py::none(),
           py::arg("min_context") = py::none(), py::arg("expected_output_tokens") = py::none(),
           py::arg("allowed_providers") = std::vector<std::string>{},
           py::arg("blocked_providers") = std::vector<std::string>{},
           py::arg("allowed_models") = std::vector<std::string>{},
           py::arg("blocked_models") = std::vector<std::string>{}, py::arg("free_only") = false,
           py::arg("paid_only") = false, py::arg("allow_free") = false, py::arg("tiers") = std::vector<std::string>{},
           py::arg("min_quality") = py::none())
      .def_property_readonly("capabilities",
                             [](const Constraints& c) { return capability_list(c.required_capabilities); })
      .def_readonly("parameters", &Constraints::required_parameters)
      .def_readonly("max_price_per_1k", &Constraints::max_price_per_1k)
      .def_readonly("max_price_per_mtok", &Constraints::max_price_per_mtok)
      .def_readonly("min_context", &Constraints::min_context)
      .def_readonly("expected_output_tokens", &Constraints::expected_output_tokens)
      .def_readonly("allowed_providers", &Constraints::allowed_providers)
      .def_readonly("blocked_providers", &Constraints::blocked_providers)
      .def_readonly("allowed_models", &Constraints::allowed_models)
      .def_readonly("blocked_models", &Constraints::blocked_models)
      .def_readonly("free_only", &Constraints::free_only)
      .def_readonly("paid_only", &Constraints::paid_only)
      .def_readonly("allow_free", &Constraints::allow_free)
      .def_property_readonly("tiers", [](const Constraints& c) { return tier_names(c.tiers); })
      .def_readonly("min_quality", &Constraints::min_quality);

  py::class_<Candidate>(m, "Candidate")
      .def_property_readonly("model_id", [](const Candidate& c) { return c.model->id; })
      .def_readonly("score", &Candidate::score)
      .def_readonly("quality", &Candidate::quality)
      .def_readonly("cheapness", &Candidate::cheapness)
      .def_readonly("speed", &Candidate::speed)
      .def_readonly("estimated_cost", &Candidate::estimated_cost)
      .def_property_readonly("tier", [](const Candidate& c) { return std::string(tier_name(c.tier)); })
      .def_readonly("quality_source", &Candidate::quality_source)
      .def_readonly("reasons", &Candidate::reasons);

  py::class_<ModelSpec>(m, "ModelSpec")
      .def_property_readonly("model_id", [](const ModelSpec& s) { return s.model->id; })
      .def_readonly("capabilities", &ModelSpec::capabilities)
      .def_readonly("cost_per_1k", &ModelSpec::cost_per_1k)
      .def_readonly("context_window", &ModelSpec::context_window)
      .def_property_readonly("tier", [](const ModelSpec& s) { return std::string(tier_name(s.tier)); })
      .def_readonly("quality", &ModelSpec::quality)
      .def_readonly("quality_source", &ModelSpec::quality_source);

  py::class_<ModelSelector>(m, "ModelSelector")
      .def(py::init([](std::shared_ptr<ModelCatalog> catalog, QualityPriors priors,
                       std::string_view strategy, std::optional<Constraints> constraints) {
             return std::make_unique<ModelSelector>(std::move(catalog), std::move(priors),
                                                    strategy_from_name(strategy),
                                                    constraints.value_or(Constraints{}));
           }),
           py::arg("catalog"), py::arg("priors"), py::arg("strategy") = "balanced",
           py::arg("constraints") = py::none())
      .def("select_model", &ModelSelector::select_model, py::arg("task_type"),
           py::arg("input_size"), py::arg("budget") = py::none(),
           py::call_guard<GilRelease>())
      .def(
          "rank",
          [](const ModelSelector& s, std::string task_type, int64_t input_size,
             std::optional<Money> budget, std::optional<std::string> strategy,
             std::optional<Constraints> constraints,
             std::unordered_map<std::string, double> predicted_quality, bool explain,
             size_t limit, std::string prompt, bool complexity_floor) {
            GilRelease release;
            std::optional<double> floor;
            std::string floor_why;
            if (!prompt.empty() && complexity_floor) {
              // The engine's difficulty floor (engine/plan.cpp, docs/router.md): the analyzer's
              // tier for the prompt sets the least quality a candidate needs, under any strategy.
              ComplexityInput in;
              in.prompt = prompt;
              in.prompt_tokens = input_size > 0 ? input_size : -1;
              in.declared_type = task_type;
              const Complexity c = ComplexityAnalyzer().analyze(in);
              if (c.tier != ComplexityTier::kEconomy) {
                floor = quality_floor(c.tier);
                floor_why = complexity_line(c);
              }
            }
            SelectionRequest r{std::move(task_type), input_size, budget, std::nullopt,
                               std::move(constraints), std::move(predicted_quality), explain,
                               limit, std::move(prompt), floor, std::move(floor_why), ImageParts{}};
            if (strategy) r.strategy = strategy_from_name(*strategy);
            return s.rank(r);
          },
          py::arg("task_type"), py::arg("input_size"), py::arg("budget") = py::none(),
          py::arg("strategy") = py::none(), py::arg("constraints") = py::none(),
          py::arg("predicted_quality") = std::unordered_map<std::string, double>{},
          py::arg("explain") = true, py::arg("limit") = 0, py::arg("prompt") = "",
          py::arg("complexity_floor") = true)
      .def(
          "set_quality_predictor",
          [](ModelSelector& s, std::shared_ptr<CatalogQualityPredictor> p) {
            s.set_quality_predictor(std::move(p));
          },
          py::arg("predictor").none(true))
      .def(
          "set_metrics",
          [](ModelSelector& s, std::string_view id, std::optional<double> success_rate,
             std::optional<double> latency_ms, std::optional<double> tokens_per_second,
             bool available) {
            s.set_metrics(id, {success_rate, latency_ms, tokens_per_second, available});
          },
          py::arg("model_id"), py::kw_only(), py::arg("success_rate") = py::none(),
          py::arg("latency_ms") = py::none(), py::arg("tokens_per_second") = py::none(),
          py::arg("available") = true)
      .def("clear_metrics", &ModelSelector::clear_metrics)
      .def("specs", &ModelSelector::specs)
      .def_property_readonly("default_strategy", [](const ModelSelector& s) {
        return std::string(strategy_name(s.default_strategy()));
      });

  m.def("task_type_rules", [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& t : task_types()) out.emplace_back(t.name, t.rule);
    return out;
  });
}

}  // namespace orroute::bindings
