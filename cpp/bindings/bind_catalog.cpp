// Binds the catalog: ModelCatalog (held by shared_ptr so selectors and engines can share it),
// ModelInfo and its pricing. Models are returned by reference, kept alive by their catalog.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "bindings.h"
#include "casters.h"
#include "gil.h"
#include "orroute/catalog/catalog.h"
#include "orroute/catalog/catalog_snapshot.h"

namespace py = pybind11;

namespace orroute::bindings {

void bind_catalog(py::module_& m) {
  using orroute::ModelCatalog;
  using orroute::ModelInfo;
  constexpr auto ref = py::return_value_policy::reference_internal;

  py::class_<PriceSet>(m, "Prices")
      .def_readonly("prompt", &PriceSet::prompt)
      .def_readonly("completion", &PriceSet::completion)
      .def_readonly("request", &PriceSet::request)
      .def_readonly("image", &PriceSet::image)
      .def_readonly("web_search", &PriceSet::web_search)
      .def_readonly("internal_reasoning", &PriceSet::internal_reasoning)
      .def_readonly("input_cache_read", &PriceSet::input_cache_read)
      .def_readonly("input_cache_write", &PriceSet::input_cache_write)
      .def_readonly("input_cache_write_1h", &PriceSet::input_cache_write_1h)
      .def_readonly("audio", &PriceSet::audio)
      .def_readonly("audio_output", &PriceSet::audio_output)
      .def_readonly("image_output", &PriceSet::image_output)
      .def_readonly("image_token", &PriceSet::image_token)
      .def_readonly("input_audio_cache", &PriceSet::input_audio_cache);

  py::class_<PriceTier>(m, "PriceTier")
      .def_readonly("min_prompt_tokens", &PriceTier::min_prompt_tokens)
      .def_readonly("utc_start", &PriceTier::utc_start)
      .def_readonly("utc_end", &PriceTier::utc_end)
      .def_readonly("prices", &PriceTier::prices, ref);

  py::class_<Pricing>(m, "Pricing")
      .def_readonly("base", &Pricing::base, ref)
      .def_readonly("tiers", &Pricing::tiers)
      .def_readonly("dynamic", &Pricing::dynamic)
      .def_readonly("discount", &Pricing::discount)
      .def_property_readonly("prompt", [](const Pricing& p) { return p.base.prompt; })
      .def_property_readonly("completion", [](const Pricing& p) { return p.base.completion; });

  py::class_<ReasoningInfo>(m, "ReasoningInfo")
      .def_readonly("mandatory", &ReasoningInfo::mandatory)
      .def_readonly("default_enabled", &ReasoningInfo::default_enabled)
      .def_readonly("supported_efforts", &ReasoningInfo::supported_efforts)
      .def_readonly("default_effort", &ReasoningInfo::default_effort)
      .def_readonly("supports_max_tokens", &ReasoningInfo::supports_max_tokens);

  py::class_<ModelInfo>(m, "ModelInfo")
      .def_readonly("id", &ModelInfo::id)
      .def_readonly("canonical_slug", &ModelInfo::canonical_slug)
      .def_readonly("name", &ModelInfo::name)
      .def_readonly("description", &ModelInfo::description)
      .def_readonly("hugging_face_id", &ModelInfo::hugging_face_id)
      .def_readonly("created", &ModelInfo::created)
      .def_readonly("context_length", &ModelInfo::context_length)
      .def_readonly("max_completion_tokens", &ModelInfo::max_completion_tokens)
      .def_readonly("top_provider_context_length", &ModelInfo::top_provider_context_length)
      .def_readonly("is_moderated", &ModelInfo::is_moderated)
      .def_readonly("modality", &ModelInfo::modality)
      .def_readonly("input_modalities", &ModelInfo::input_modalities)
      .def_readonly("output_modalities", &ModelInfo::output_modalities)
      .def_readonly("tokenizer", &ModelInfo::tokenizer)
      .def_readonly("instruct_type", &ModelInfo::instruct_type)
      .def_readonly("supported_parameters", &ModelInfo::supported_parameters)
      .def_readonly("reasoning", &ModelInfo::reasoning)
      .def_readonly("expiration_date", &ModelInfo::expiration_date)
      .def_readonly("knowledge_cutoff", &ModelInfo::knowledge_cutoff)
      .def_readonly("per_request_prompt_tokens", &ModelInfo::per_request_prompt_tokens)
      .def_readonly("per_request_completion_tokens", &ModelInfo::per_request_completion_tokens)
      .def_readonly("pricing", &ModelInfo::pricing, ref)
      .def_property_readonly("capabilities",
                             [](const ModelInfo& mi) { return capability_list(mi.capabilities); })
      .def_property_readonly("provider",
                             [](const ModelInfo& mi) { return std::string(mi.provider()); })
      .def_property_readonly("variant", [](const ModelInfo& mi) { return std::string(mi.variant()); })
      .def_property_readonly("is_free", &ModelInfo::is_free)
      .def("supports_parameter", &ModelInfo::supports_parameter, py::arg("name"))
      .def("has_capability",
           [](const ModelInfo& mi, const std::string& name) {
             const uint32_t bits = capability_bits({name});
             return (mi.capabilities & bits) == bits;
           },
           py::arg("name"))
      .def("__repr__", [](const ModelInfo& mi) { return "<ModelInfo " + mi.id + ">"; });

  py::class_<ModelCatalog, std::shared_ptr<ModelCatalog>>(m, "ModelCatalog")
      .def(py::init<>())
      .def_static(
          "from_json", [](std::string_view text) { return ModelCatalog::from_json(text); },
          py::arg("text"), py::call_guard<GilRelease>())
      .def_static("from_file", &ModelCatalog::from_file, py::arg("path"),
                  py::call_guard<GilRelease>())
      .def_static("load_bundled", &orroute::load_bundled_catalog, py::arg("json_path"),
                  py::arg("snapshot_path"), py::call_guard<GilRelease>())
      .def_static(
          "from_snapshot", [](py::bytes b) { return orroute::read_catalog_snapshot(std::string_view(b)); },
          py::arg("data"))
      .def(
          "to_snapshot",
          [](const ModelCatalog& c, uint64_t json_fingerprint) {
            return py::bytes(orroute::write_catalog_snapshot(c, json_fingerprint));
          },
          py::arg("json_fingerprint"))
      .def("__len__", &ModelCatalog::size)
      .def("find", &ModelCatalog::find, py::arg("id"), ref)
      .def("at", &ModelCatalog::at, py::arg("id"), ref)
      .def("nearest_ids", &ModelCatalog::nearest_ids, py::arg("id"), py::arg("n") = 3)
      .def_property_readonly("models", &ModelCatalog::models, ref)
      .def_property_readonly("warnings", &ModelCatalog::warnings)
      .def(
          "filter",
          [](const ModelCatalog& c, const std::vector<std::string>& capabilities,
             std::optional<Money> max_prompt, std::optional<Money> max_completion,
             std::optional<int64_t> min_context, std::vector<std::string> providers,
             std::optional<bool> free, bool include_dynamic) {
            return c.filter({capability_bits(capabilities), max_prompt, max_completion,
                             min_context, std::move(providers), free, include_dynamic});
          },
          py::arg("capabilities") = std::vector<std::string>{},
          py::arg("max_prompt_price_per_mtok") = py::none(),
          py::arg("max_completion_price_per_mtok") = py::none(),
          py::arg("min_context") = py::none(), py::arg("providers") = std::vector<std::string>{},
          py::arg("free") = py::none(), py::arg("include_dynamic") = true, ref)
      .def(
          "cost",
          [](const ModelCatalog& c, std::string_view id, int64_t prompt, int64_t completion,
             int64_t cached, int64_t cache_write, int64_t reasoning, int64_t audio,
             int64_t audio_output, int64_t image_output, int64_t requests, int64_t images,
             int64_t web_searches, bool cache_write_1h, std::optional<int32_t> utc_hhmm) {
            return c.cost(id, {prompt, completion, cached, cache_write, reasoning, audio,
                               audio_output, image_output, requests, images, web_searches,
                               cache_write_1h, utc_hhmm});
          },
          py::arg("model_id"), py::arg("prompt_tokens"), py::arg("completion_tokens"),
          py::arg("cached_tokens") = 0, py::arg("cache_write_tokens") = 0,
          py::arg("reasoning_tokens") = 0, py::arg("audio_tokens") = 0,
          py::arg("audio_output_tokens") = 0, py::arg("image_output_tokens") = 0,
          py::arg("requests") = 1, py::arg("images") = 0, py::arg("web_searches") = 0,
          py::arg("cache_write_1h") = false, py::arg("utc_hhmm") = py::none())
      .def("worst_case", &ModelCatalog::worst_case, py::arg("model_id"), py::arg("prompt_tokens"),
           py::arg("max_output_tokens") = py::none(), py::arg("requests") = 1,
           py::arg("may_write_cache") = false);

  m.def("capability_names", &capability_names,
        "Every capability name a model can have (tools, vision, ...).");
}

}  // namespace orroute::bindings
