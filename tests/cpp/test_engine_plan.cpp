// Engine::plan(): which models a task will try, in which order.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "orroute/engine.h"
#include "orroute/select/quality_priors.h"

using namespace orroute;

TEST_CASE("a task's own strategy ranks the candidates and ignores the body's alias",
          "[engine]") {
  const auto m = [](const std::string& id, const std::string& price) {
    return "{\"id\":\"" + id + "\",\"context_length\":64000,\"architecture\":{\"input_modalities\":"
           "[\"text\"],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"" + price +
           "\",\"completion\":\"" + price + "\"},\"supported_parameters\":[\"tools\"]}";
  };
  auto catalog = std::make_shared<const ModelCatalog>(ModelCatalog::from_json(
      "{\"data\":[" + m("cheap/one", "0.0000001") + "," + m("dear/two", "0.00001") + "]}"));
  const QualityPriors priors = QualityPriors::from_json(
      R"({"models": {"cheap/one": {"overall": 0.3}, "dear/two": {"overall": 0.95}}})");
  EngineConfig config;
  config.client.base_url = "http://127.0.0.1:9";  // never called: plan() only
  config.client.api_keys = {"sk-test"};
  config.fallbacks = {"configured/chain"};
  Engine engine(config, catalog, nullptr, priors);

  EngineTask task;
  task.request_json = R"({"model": "orroute/auto", "messages": [{"role": "user", "content": "hi"}]})";
  task.strategy = Strategy::kCostOptimized;
  CHECK(engine.plan(task).candidates == std::vector<std::string>{"cheap/one", "dear/two"});
  task.strategy = Strategy::kQualityFirst;
  CHECK(engine.plan(task).candidates == std::vector<std::string>{"dear/two", "cheap/one"});
  // a task's own fallbacks still win; without a strategy the body's model and the chain are used
  task.fallbacks = {"dear/two"};
  CHECK(engine.plan(task).candidates == std::vector<std::string>{"dear/two"});
  task.fallbacks.clear();
  task.strategy.reset();
  CHECK(engine.plan(task).candidates ==
        std::vector<std::string>{"orroute/auto", "configured/chain"});
}
