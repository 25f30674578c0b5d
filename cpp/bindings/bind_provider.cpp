// Bindings of the provider layer (cpp/orroute/provider): ProviderConfig, ProviderClient and its
// stream, Balancer. Thin: converts types, releases the GIL while waiting.
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "gil.h"
#include "json_py.h"
#include "casters.h"
#include "orroute/provider/anthropic_inbound.h"
#include "orroute/provider/anthropic_outbound.h"
#include "orroute/provider/balancer.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/provider/provider_client.h"
#include "orroute/error.h"
#include "orroute/route/clock.h"
#include "orroute/seconds.h"

namespace py = pybind11;

namespace orroute::bindings {

py::dict error_to_py(const ApiError& e);  // bind_net.cpp

namespace {

py::tuple next_to_py(Call::Next n, const std::string& chunk) {
  if (n == Call::Next::kItem) return py::make_tuple(0, json_text_to_py(chunk));
  return py::make_tuple(static_cast<int>(n), py::none());
}

}  // namespace

void bind_provider(py::module_& m) {
  py::class_<ProviderConfig>(m, "ProviderConfig", "One upstream provider's settings (private).")
      .def(py::init<>())
      .def_readwrite("name", &ProviderConfig::name)
      .def_property(
          "kind", [](const ProviderConfig& c) { return std::string(to_string(c.kind)); },
          [](ProviderConfig& c, const std::string& k) { c.kind = parse_provider_kind(k); })
      .def_readwrite("base_url", &ProviderConfig::base_url)
      .def_readwrite("api_keys", &ProviderConfig::api_keys)
      .def_property(
          "headers", [](const ProviderConfig& c) { return c.headers.fields; },
          [](ProviderConfig& c, std::vector<std::pair<std::string, std::string>> h) { c.headers.fields = std::move(h); })
      .def_property(
          "timeout", [](const ProviderConfig& c) { return static_cast<double>(c.timeouts.total_ms) / 1000.0; },
          [](ProviderConfig& c, double seconds) {  // a whole call; for streams, the longest silence
            c.timeouts.total_ms = c.stream_timeouts.idle_ms = limit_ms(seconds, "timeout").value_or(0);
          })
      .def_readwrite("api_version", &ProviderConfig::api_version)
      .def_readwrite("priority", &ProviderConfig::priority)
      .def_readwrite("weight", &ProviderConfig::weight)
      .def_readwrite("default_max_tokens", &ProviderConfig::default_max_tokens)
      .def_readwrite("max_retries", &ProviderConfig::max_retries)
      .def_property_readonly("litellm_provider", [](const ProviderConfig& c) { return litellm_provider(c.kind); })
      .def("__repr__", [](const ProviderConfig& c) {
        return "ProviderConfig(name='" + c.name + "', kind='" + to_string(c.kind) + "', keys=" +
               std::to_string(c.api_keys.size()) + ")";
      });
  m.def("validate_provider", &validate, py::arg("config"), "Raises InvalidArgumentError for an unusable config.");
  m.def("default_base_url", [](const std::string& kind) { return default_base_url(parse_provider_kind(kind)); },
        py::arg("kind"));

  py::class_<ProviderStream>(m, "ProviderStream", "A streamed provider call as chat chunks (private).")
      .def(
          "next",
          [](ProviderStream& s, double timeout) {
            std::string chunk;
            Call::Next n;
            {
              const int64_t ms = wait_ms(timeout, "timeout");
              GilRelease release;
              n = s.next(chunk, true, ms);
            }
            return next_to_py(n, chunk);
          },
          py::arg("timeout"), "(0, chunk) | (1, None) pending | (2, None) end | (3, None) error. GIL released.")
      .def("error", [](const ProviderStream& s) { return error_to_py(s.error()); })
      .def("cancel", &ProviderStream::cancel);

  py::class_<ProviderClient, std::shared_ptr<ProviderClient>>(m, "ProviderClient",
                                                              "Chat calls to one provider (private).")
      .def(py::init(&ProviderClient::create), py::arg("config"))
      .def_property_readonly("name", [](const ProviderClient& c) { return c.config().name; })
      .def("wire_body", &ProviderClient::wire_body, py::arg("chat_json"), py::arg("model"), py::arg("stream"))
      .def(
          "complete",
          [](ProviderClient& c, const std::string& chat_json, const std::string& model) {
            ProviderResult r;
            {
              GilRelease release;
              r = c.complete(chat_json, model);
            }
            py::dict d;
            d["ok"] = r.ok;
            d["completion"] = r.ok ? json_text_to_py(r.completion_json) : py::object(py::none());
            d["error"] = r.ok ? py::object(py::none()) : py::object(error_to_py(r.error));
            d["attempts"] = r.attempts;
            return d;
          },
          py::arg("chat_json"), py::arg("model"), "Sends and waits (GIL released): {ok, completion, error, attempts}.")
      .def("stream", &ProviderClient::stream, py::arg("chat_json"), py::arg("model"));

  py::class_<ProviderPrices>(m, "ProviderPrices", "One provider's own prices (private).")
      .def_static("from_litellm_json", &ProviderPrices::from_litellm_json, py::arg("json"), py::arg("litellm_provider"))
      .def("__len__", &ProviderPrices::size)
      .def("__contains__", [](const ProviderPrices& b, const std::string& model) { return b.find(model) != nullptr; })
      .def(
          "cost",
          [](const ProviderPrices& b, const std::string& model, int64_t prompt, int64_t completion, int64_t cached,
             int64_t cache_write) {
            const Pricing* p = b.find(model);
            if (p == nullptr) throw NotFound("no price for model '" + model + "' in this price book");
            UsageCounts u;
            u.prompt_tokens = prompt, u.completion_tokens = completion, u.cached_tokens = cached;
            u.cache_write_tokens = cache_write;
            return price_call(*p, u, model);
          },
          py::arg("model"), py::arg("prompt_tokens"), py::arg("completion_tokens"), py::arg("cached_tokens") = 0,
          py::arg("cache_write_tokens") = 0, "Exact USD cost (Decimal) of a call at these prices.");

  py::class_<Balancer>(m, "Balancer", "Spreads one model's calls over its deployments (private).")
      .def(py::init([](std::vector<std::pair<std::string, int32_t>> deployments, const std::string& strategy,
                       const std::string& failover, double ramp_seconds, int32_t failures_to_down,
                       double cooldown_seconds) {
             std::vector<Deployment> deps;
             for (auto& [name, weight] : deployments) deps.push_back({std::move(name), weight});
             BalancerOptions o;
             o.strategy = parse_balance_strategy(strategy);
             o.failover = parse_failover_mode(failover);
             o.ramp = clamped_duration(ramp_seconds, "ramp_seconds");
             o.failures_to_down = failures_to_down;
             o.cooldown = clamped_duration(cooldown_seconds, "cooldown_seconds");
             return std::make_unique<Balancer>(std::move(deps), o, SteadyClock::instance());
           }),
           py::arg("deployments"), py::arg("strategy") = "round_robin", py::arg("failover") = "immediate",
           py::arg("ramp_seconds") = 60.0, py::arg("failures_to_down") = 3, py::arg("cooldown_seconds") = 30.0)
      .def("pick", &Balancer::pick)
      .def("pick_excluding", &Balancer::pick_excluding, py::arg("exclude"))
      .def(
          "finish",
          [](Balancer& b, size_t i, bool ok, double seconds) {
            b.finish(i, ok, clamped_duration(seconds, "latency_seconds"));
          },
          py::arg("index"), py::arg("ok"), py::arg("latency_seconds"))
      .def("set_down", &Balancer::set_down)
      .def("set_up", &Balancer::set_up)
      .def("name", &Balancer::name)
      .def("in_flight", &Balancer::in_flight)
      .def("is_up", &Balancer::is_up)
      .def("__len__", &Balancer::size);

  // The gateway's POST /v1/messages: Anthropic in, chat to the engine, Anthropic out.
  m.def("chat_request_from_anthropic", &chat_request_from_anthropic, py::arg("messages_json"),
        "A Messages API request body -> a chat-completions body (InvalidArgumentError names the field).");
  m.def("anthropic_message_from_chat", &anthropic_message_from_chat, py::arg("completion_json"),
        "A chat.completion body -> a Messages API message (ParseError if it cannot be expressed).");
  m.def("anthropic_error_body", [](int status, const std::string& message) {
        return py::bytes(anthropic_error_body(status, message));
      }, py::arg("status"), py::arg("message"), "Anthropic's error object for an HTTP status, as JSON bytes.");
  py::class_<AnthropicEventWriter>(m, "AnthropicEventWriter",
                                   "Chat chunks -> Anthropic stream events, one stream (private).")
      .def(py::init<std::string>(), py::arg("model"))
      .def("chunk", [](AnthropicEventWriter& w, std::string_view c) { return py::bytes(w.chunk(c)); },
           py::arg("chunk_json"))
      .def("finish", [](AnthropicEventWriter& w) { return py::bytes(w.finish()); })
      .def("fail", [](AnthropicEventWriter& w, int status, std::string_view message) {
             return py::bytes(w.fail(status, message));
           }, py::arg("status"), py::arg("message"));
}

}  // namespace orroute::bindings
