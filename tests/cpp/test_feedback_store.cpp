// FeedbackStore (SQLite and Redis), the expected cost recorded on call rows, and an engine that
// starts from the feedback an earlier engine recorded.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ledger_test_util.h"
#include "orroute/cost/feedback_store.h"
#include "orroute/engine.h"
#include "orroute/select/expected_cost.h"
#include "orroute/select/quality_priors.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#include "redis_server.h"
#endif

using namespace orroute;

namespace {

FeedbackEntry fb(const std::string& model, const std::string& type, double score,
                 TimeUs at = 0) {
  FeedbackEntry e;
  e.model = model;
  e.task_type = type;
  e.score = score;
  e.at = at;
  return e;
}

// The same checks for every backend: `open` returns a new store on the same location each time.
template <class Open>
void check_store(Open open) {
  {
    auto s = open();
    s->add(fb("m/a", "coding", 0.25, 1'000));
    s->add(fb("m/a", "coding", 0.75, 2'000));
    s->add(fb("m/b", "", 1.0, 3'000));  // no task type: "general"
    auto e = fb("m/a", "coding", 0.5, 4'000);
    e.source = "benchmark";
    e.result_id = "gen-42";
    s->add(e);
  }
  auto s = open();  // a new process, as far as the store can tell
  const auto sum = s->summary();
  REQUIRE(sum.size() == 2);
  CHECK(sum[0].model == "m/a");
  CHECK(sum[0].task_type == "coding");
  CHECK(sum[0].count == 3);
  CHECK(sum[0].sum == 1.5);  // exact: integer micro-scores
  CHECK(sum[0].mean() == 0.5);
  CHECK(sum[1].model == "m/b");
  CHECK(sum[1].task_type == "general");

  const auto all = s->entries(0, -1);
  REQUIRE(all.size() == 4);
  CHECK(all.front().at == 1'000);
  CHECK(all.back().source == "benchmark");
  CHECK(all.back().result_id == "gen-42");
  CHECK(all[0].source == "user");
  const auto newest = s->entries(0, 2);
  REQUIRE(newest.size() == 2);
  CHECK(newest[0].at == 3'000);
  CHECK(s->entries(2'500, -1).size() == 2);

  SECTION("bad input is refused and nothing is recorded") {
    CHECK_THROWS_AS(s->add(fb("m/a", "coding", 1.5)), InvalidArgument);
    CHECK_THROWS_AS(s->add(fb("m/a", "coding", -0.1)), InvalidArgument);
    CHECK_THROWS_AS(s->add(fb("m/a", "coding", std::nan(""))), InvalidArgument);
    CHECK_THROWS_AS(s->add(fb("", "coding", 0.5)), InvalidArgument);
    CHECK_THROWS_AS(s->add(fb("m/a\tx", "coding", 0.5)), InvalidArgument);
    CHECK(s->entries(0, -1).size() == 4);
  }
}

}  // namespace

TEST_CASE("feedback kept in the ledger file survives reopening", "[feedback]") {
  test::TempLedgerFile file;
  check_store([&] { return open_feedback_store(file.path); });
}

TEST_CASE("feedback kept in Redis survives reopening", "[feedback][redis]") {
#ifdef ORROUTE_HAVE_REDIS
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary");
    return;
  }
  const std::string url = server->url("feedback");
  RedisLedger(url).wipe();  // same prefix as the ledger: wiping it clears the feedback too
  check_store([&] { return open_feedback_store(url); });
  RedisLedger(url).wipe();
  CHECK(open_feedback_store(url)->summary().empty());
#else
  CHECK_THROWS_AS(open_feedback_store("redis://127.0.0.1:1"), InvalidArgument);
#endif
}

TEST_CASE("the expected cost prices the task type's expected output, not the worst case",
          "[feedback][cost]") {
  const auto catalog = ModelCatalog::from_json(
      R"({"data":[{"id":"m/a","context_length":64000,"pricing":{"prompt":"0.000001",)"
      R"("completion":"0.000002"}}]})");
  // general expects 500 output tokens: 1000 x $1/M + 500 x $2/M = $0.002
  CHECK(expected_cost(catalog, "m/a", "general", 1000, 4096) == Money::parse("0.002"));
  // capped by max_tokens: 1000 x $1/M + 100 x $2/M
  CHECK(expected_cost(catalog, "m/a", "general", 1000, 100) == Money::parse("0.0012"));
  // an unknown task type is priced as general; an unknown model has no estimate
  CHECK(expected_cost(catalog, "m/a", "no-such-type", 1000, 0) == Money::parse("0.002"));
  CHECK_FALSE(expected_cost(catalog, "m/none", "general", 1000, 0).has_value());
}

TEST_CASE("an engine starts from the feedback an earlier engine recorded in its store",
          "[feedback][engine]") {
  const auto m = [](const std::string& id, const std::string& price) {
    return "{\"id\":\"" + id + "\",\"context_length\":64000,\"architecture\":{\"input_modalities\":"
           "[\"text\"],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"" + price +
           "\",\"completion\":\"" + price + "\"}}";
  };
  auto catalog = std::make_shared<const ModelCatalog>(ModelCatalog::from_json(
      "{\"data\":[" + m("cheap/one", "0.0000001") + "," + m("dear/two", "0.00001") + "]}"));
  const std::string priors_json =
      R"({"models": {"cheap/one": {"overall": 0.3}, "dear/two": {"overall": 0.95}}})";
  EngineConfig config;
  config.client.base_url = "http://127.0.0.1:9";  // never called: plan() only
  config.client.api_keys = {"sk-test"};
  config.strategy = Strategy::kQualityFirst;
  EngineTask task;
  task.request_json = R"({"messages": [{"role": "user", "content": "hi"}]})";
  task.task_type = "general";
  test::TempLedgerFile file;
  const auto first = [&](Engine& e) { return e.plan(task).candidates.front(); };
  {
    Engine engine(config, catalog, nullptr, QualityPriors::from_json(priors_json));
    engine.set_feedback_store(open_feedback_store(file.path));
    REQUIRE(first(engine) == "dear/two");  // the priors alone
    const std::string type = engine.plan(task).task_type;  // feedback is per planned task type
    engine.record_feedback("dear/two", type, 0.0, "user", "r1");
    engine.record_feedback("cheap/one", type, 1.0);
    REQUIRE(first(engine) == "cheap/one");
    CHECK_THROWS_AS(engine.record_feedback("cheap/one", type, 2.0), InvalidArgument);
  }
  Engine restarted(config, catalog, nullptr, QualityPriors::from_json(priors_json));
  CHECK(first(restarted) == "dear/two");  // no store: nothing remembered
  restarted.set_feedback_store(open_feedback_store(file.path));
  CHECK(first(restarted) == "cheap/one");
  CHECK(open_feedback_store(file.path)->entries(0, -1).size() == 2);  // the bad score was not kept
}
