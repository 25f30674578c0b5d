// Engine::plan(): which models a task will try, in which order.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orroute/engine.h"
#include "orroute/select/quality_priors.h"
#include "orroute/tokenizer/token_count.h"

using namespace orroute;

namespace {

// A catalog of one priced model, m/a.
std::shared_ptr<const ModelCatalog> catalog_of_m_a() {
  const std::string model =
      R"({"id":"m/a","context_length":64000,"architecture":{"input_modalities":["text"],)"
      R"("output_modalities":["text"]},"pricing":{"prompt":"0.000001","completion":"0.000002"}})";
  return std::make_shared<const ModelCatalog>(ModelCatalog::from_json("{\"data\":[" + model + "]}"));
}

// An engine's configuration for plan() alone (its endpoint never called).
EngineConfig plan_only_config() {
  EngineConfig config;
  config.client.base_url = "http://127.0.0.1:9";
  config.client.api_keys = {"sk-test"};
  return config;
}

}  // namespace

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

TEST_CASE("the first attempt's body made by plan() is the one the request text gives", "[engine]") {
  const auto catalog = catalog_of_m_a();
  EngineConfig config = plan_only_config();
  config.fallbacks = {"m/a", "m/b", "m/c"};
  for (const int server_side : {0, 2}) {
    config.server_side_fallbacks = server_side;
    Engine engine(config, catalog, nullptr, QualityPriors());
    for (const char* request :
         {R"({"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"extra":{"k":[1,2]}})",
          R"({"model":"m/b","messages":[{"role":"user","content":"hi"}],"max_tokens":9,"usage":{"include":false}})",
          R"({"messages":[{"role":"user","content":"hi"}],"models":["x/y"],"stream_options":{"include_usage":false}})"}) {
      for (const bool stream : {false, true}) {
        CAPTURE(server_side, request, stream);
        EngineTask task;
        task.request_json = request;
        task.stream = stream;
        CHECK_FALSE(engine.plan(task).first_attempt);  // a plan only shown makes no body
        const EnginePlan plan = engine.plan(task, Engine::PlanUse::kSend);
        REQUIRE(plan.first_attempt);
        const PreparedAttempt& first = *plan.first_attempt;
        CHECK(first.model == plan.candidates.front());
        CHECK(first.stream == stream);
        CHECK(first.server_models == server_fallbacks(plan.candidates, server_side));
        CHECK_FALSE(first.reserved_max_tokens);  // no ledger: nothing reserved, nothing metered
        CHECK(first.body == chat_attempt_body(task.request_json, first.model, stream, first.server_models));
        // made for that attempt only
        CHECK(first.made_for(first.model, stream, first.server_models, std::nullopt));
        CHECK_FALSE(first.made_for(first.model, !stream, first.server_models, std::nullopt));
        CHECK_FALSE(first.made_for("m/c", stream, first.server_models, std::nullopt));
        CHECK_FALSE(first.made_for(first.model, stream, first.server_models, int64_t{16}));
      }
    }
  }
}

TEST_CASE("a plan's estimate counts the server-side fallbacks; its shape hands over the request's own models",
          "[engine]") {
  const auto m = [](const std::string& id, const std::string& price) {
    return "{\"id\":\"" + id + "\",\"context_length\":64000,\"architecture\":{\"input_modalities\":"
           "[\"text\"],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"" + price +
           "\",\"completion\":\"" + price + "\"}}";
  };
  auto catalog = std::make_shared<const ModelCatalog>(ModelCatalog::from_json(
      "{\"data\":[" + m("m/a", "0.000001") + "," + m("m/b", "0.00001") + "," + m("x/y", "0.0001") + "]}"));
  EngineConfig config;
  config.client.base_url = "http://127.0.0.1:9";  // never called: plan() only
  config.client.api_keys = {"sk-test"};
  config.fallbacks = {"m/a", "m/b"};
  EngineTask task;
  task.request_json = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":100})";
  std::optional<Money> alone, with_fallback;
  for (const int server_side : {0, 1}) {
    config.server_side_fallbacks = server_side;
    Engine engine(config, catalog, nullptr, QualityPriors());
    const EnginePlan plan = engine.plan(task, Engine::PlanUse::kSend);
    REQUIRE(plan.estimate);
    (server_side == 0 ? alone : with_fallback) = plan.estimate;
    // submit() adds the fallbacks of the candidates it runs (a caller may change them)
    REQUIRE(plan.shape);
    CHECK(plan.shape->models.empty());
  }
  CHECK(*with_fallback > *alone);  // m/b may answer a call sent to m/a with `models`: its price
  // the request's own `models` are the shape's, whatever the server-side fallbacks
  task.request_json = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":100,"models":["m/a","x/y"]})";
  Engine engine(config, catalog, nullptr, QualityPriors());
  const EnginePlan plan = engine.plan(task, Engine::PlanUse::kSend);
  REQUIRE(plan.shape);
  CHECK(plan.shape->models == std::vector<std::string>{"m/a", "x/y"});
  REQUIRE(plan.estimate);
  CHECK(*plan.estimate > *with_fallback);  // x/y's price
}

TEST_CASE("a plan counts the prompt once, with the first candidate's tokenizer, when the order is explicit",
          "[engine]") {
  const auto m = [](const std::string& id) {
    return "{\"id\":\"" + id + "\",\"context_length\":64000,\"architecture\":{\"input_modalities\":"
           "[\"text\"],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"0.000001\","
           "\"completion\":\"0.000002\"}}";
  };
  auto catalog = std::make_shared<const ModelCatalog>(
      ModelCatalog::from_json("{\"data\":[" + m("m/a") + "," + m("m/b") + "," + m("openai/gpt-4o") + "]}"));
  // A prompt the reference's o200k and m/a's tokenizer count differently.
  const std::string messages =
      R"([{"role":"system","content":"Réponds en français. 東京の天気は？ def f(x):\n\treturn x ** 2  # ünïcödé"},)"
      R"({"role":"user","content":"Résume ce texte: naïve café — the quick brown fox. Ελληνικά κείμενο."}])";
  const int64_t as_a = count_chat_tokens_json("m/a", messages).tokens;
  const int64_t as_reference = count_chat_tokens_json("openai/gpt-4o", messages).tokens;
  REQUIRE(as_a != as_reference);
  const std::string request = "{\"messages\":" + messages + ",\"max_tokens\":100}";
  const std::string with_model = "{\"model\":\"openai/gpt-4o\",\"messages\":" + messages + ",\"max_tokens\":100}";

  EngineConfig config;
  config.client.base_url = "http://127.0.0.1:9";  // never called: plan() only
  config.client.api_keys = {"sk-test"};
  const auto counted_once_as_a = [&](const EnginePlan& plan) {
    CHECK(plan.candidates.front() == "m/a");
    CHECK(plan.prompt_tokens == as_a);
    CHECK(plan.prompt_counts.size() == 1);
  };
  {  // a task's own order, no model: one count, the first candidate's
    Engine engine(config, catalog, nullptr, QualityPriors());
    EngineTask task;
    task.request_json = request;
    task.fallbacks = {"m/a", "m/b"};
    counted_once_as_a(engine.plan(task));
    counted_once_as_a(engine.plan(task, Engine::PlanUse::kSend));
    // the body's model is not tried with a task's own order: the count is still m/a's
    task.request_json = with_model;
    const EnginePlan plan = engine.plan(task);
    CHECK(plan.candidates == std::vector<std::string>{"m/a", "m/b"});
    CHECK(plan.prompt_tokens == as_a);
  }
  {  // the engine's chain, no model
    config.fallbacks = {"m/a", "m/b"};
    Engine engine(config, catalog, nullptr, QualityPriors());
    EngineTask task;
    task.request_json = request;
    counted_once_as_a(engine.plan(task));
    // the body's model goes first: its own count
    task.request_json = with_model;
    const EnginePlan plan = engine.plan(task);
    CHECK(plan.candidates.front() == "openai/gpt-4o");
    CHECK(plan.prompt_tokens == as_reference);
  }
  {  // selection: a size before any model is chosen, the reference's; the first candidate's too
    config.fallbacks.clear();
    Engine engine(config, catalog, nullptr,
                  QualityPriors::from_json(R"({"models": {"m/a": {"overall": 0.9}}})"));
    EngineTask task;
    task.request_json = request;
    task.strategy = Strategy::kQualityFirst;
    const EnginePlan plan = engine.plan(task);
    CHECK(plan.prompt_tokens == as_reference);
    REQUIRE(plan.candidates.front() == "m/a");
    CHECK(plan.prompt_counts.size() == 2);  // the reference's, then m/a's for the estimate
  }
}

TEST_CASE("a run's prices give a model its tokenizer's count, found by the model it was made for or by its tokenizer",
          "[engine]") {
  const auto m = [](const std::string& id) {
    return "{\"id\":\"" + id + "\",\"context_length\":64000,\"architecture\":{\"input_modalities\":"
           "[\"text\"],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"0.000001\","
           "\"completion\":\"0.000002\"}}";
  };
  const ModelCatalog catalog =
      ModelCatalog::from_json("{\"data\":[" + m("m/a") + "," + m("m/b") + "," + m("openai/gpt-4o") + "]}");
  const CallPricer pricer(catalog, PricingPolicy{});
  const std::string key_a = tokenizer_key("m/a");
  REQUIRE(tokenizer_key("m/b") == key_a);
  REQUIRE(tokenizer_key("openai/gpt-4o") != key_a);
  // No messages: a model whose tokenizer has no count gets the request's own (7).
  const auto prices = [&](std::vector<PromptCount> seeded) {
    auto p = std::make_unique<CatalogPrices>(pricer, nullptr, "", RequestShape{}, 7);
    p->seed(std::move(seeded));
    return p;
  };
  for (const std::string& counted_for : {std::string("m/a"), std::string("m/b")}) {
    auto p = prices({PromptCount{key_a, counted_for, 100}});
    for (int round = 0; round < 2; ++round) {  // asked again: the same answers
      CHECK(p->prompt_tokens("m/a", 7) == 100);
      CHECK(p->prompt_tokens("m/b", 7) == 100);
      CHECK(p->prompt_tokens("openai/gpt-4o", 7) == 7);
    }
  }
  // A count under another tokenizer's key says nothing of m/a, whatever model it names.
  auto p = prices({PromptCount{tokenizer_key("openai/gpt-4o"), "openai/gpt-4o", 55}});
  CHECK(p->prompt_tokens("openai/gpt-4o", 7) == 55);
  CHECK(p->prompt_tokens("m/a", 7) == 7);
  CHECK(p->prompt_tokens("openai/gpt-4o", 7) == 55);
}

TEST_CASE("a plan's reasons: the complexity's, its line, then the order's", "[engine]") {
  const auto catalog = catalog_of_m_a();
  EngineConfig config = plan_only_config();
  EngineTask task;
  task.request_json = R"({"messages":[{"role":"user","content":"hi"}]})";
  const auto reasons_after_line = [](const EnginePlan& plan) {
    const std::vector<std::string> all = plan_reasons(plan);
    const std::vector<std::string> complexity = complexity_reasons(plan.complexity);
    REQUIRE(all.size() >= complexity.size() + 1);
    CHECK(std::vector<std::string>(all.begin(), all.begin() + static_cast<long>(complexity.size())) == complexity);
    CHECK(all[complexity.size()] == complexity_line(plan.complexity));
    return std::vector<std::string>(all.begin() + static_cast<long>(complexity.size()) + 1, all.end());
  };
  SECTION("the engine's exact order") {
    config.fallbacks = {"m/a", "m/b"};
    const Engine engine(config, catalog, nullptr, QualityPriors());
    CHECK(reasons_after_line(engine.plan(task)) == std::vector<std::string>{"explicit fallback order"});
  }
  SECTION("the task's exact order") {
    const Engine engine(config, catalog, nullptr, QualityPriors());
    task.fallbacks = {"m/b"};
    CHECK(reasons_after_line(engine.plan(task)) == std::vector<std::string>{"explicit fallback order"});
  }
  SECTION("selected: the selector's reasons, no exact order") {
    const Engine engine(config, catalog, nullptr, QualityPriors());
    const EnginePlan plan = engine.plan(task);
    CHECK(plan.candidates.front() == "m/a");
    const std::vector<std::string> later = reasons_after_line(plan);
    CHECK(later == plan.later_reasons);
    CHECK(std::find(later.begin(), later.end(), "explicit fallback order") == later.end());
  }
}
