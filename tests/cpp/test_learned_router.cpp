#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "orroute/error.h"
#include "orroute/select/learned_router.h"
#include "orroute/select/quality_predictor.h"

using orroute::LearnedRouter;
using orroute::OutcomeTable;
using orroute::RouterConfig;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// "cheap" solves the arithmetic prompts only, "strong" solves everything at 20x the price.
OutcomeTable toy_table() {
  OutcomeTable t;
  t.models = {"cheap", "strong"};
  t.scores.assign(2, {});
  t.costs.assign(2, {});
  for (int i = 0; i < 60; ++i) {
    const bool easy = i % 2 == 0;
    t.prompts.push_back(easy ? "What is " + std::to_string(i) + " plus " + std::to_string(i + 1) +
                                   "?"
                             : "Write a detailed essay comparing the philosophies of author " +
                                   std::to_string(i) + " and explain each step of the argument.");
    t.scores[0].push_back(easy ? 1.0 : 0.0);
    t.scores[1].push_back(1.0);
    t.costs[0].push_back(0.0001);
    t.costs[1].push_back(0.002);
  }
  return t;
}

RouterConfig toy_config() {
  RouterConfig c;
  c.features.hash_bits = 14;
  c.epochs = 10;
  c.learning_rate = 0.5;
  return c;
}

}  // namespace

TEST_CASE("learned router learns which prompts the cheap model solves", "[learned_router]") {
  const auto r = LearnedRouter::fit(toy_table(), toy_config());
  REQUIRE(r->model_names() == std::vector<std::string>{"cheap", "strong"});
  const auto easy = r->predict("What is 7 plus 8?");
  const auto hard = r->predict("Write a detailed essay comparing the philosophies and explain.");
  REQUIRE(easy[0] > hard[0] + 0.2);
  REQUIRE(hard[1] > 0.8);
  for (const double p : easy) REQUIRE((p > 0.0 && p < 1.0));

  SECTION("route trades success for cost") {
    REQUIRE(r->route("Write a detailed essay comparing the philosophies and explain.", 0.0) ==
            "strong");
    REQUIRE(r->route("What is 7 plus 8?", 100.0) == "cheap");
    REQUIRE(r->route("Write a detailed essay comparing the philosophies and explain.", 100.0) ==
            "strong");
    REQUIRE(r->route("anything", 1e9) == "cheap");
    REQUIRE_THROWS_AS(r->route("x", -1.0), orroute::InvalidArgument);
  }
  SECTION("threshold rule takes the cheapest model that is likely enough") {
    REQUIRE(r->route_threshold("What is 7 plus 8?", 0.5) == "cheap");
    REQUIRE(r->route_threshold("Write a detailed essay comparing the philosophies and explain.",
                               0.7) == "strong");
    REQUIRE_THROWS_AS(r->route_threshold("x", 1.5), orroute::InvalidArgument);
  }
  SECTION("expected costs come from the observed costs") {
    const auto c = r->expected_costs("What is 7 plus 8?");
    REQUIRE(c[0] == Approx(0.0001));
    REQUIRE(c[1] == Approx(0.002));
  }
}

TEST_CASE("learned router folds in feedback online", "[learned_router]") {
  const auto r = LearnedRouter::fit(toy_table(), toy_config());
  const std::string prompt = "Translate this sentence into Klingon please.";
  const double before = r->predict(prompt)[0];
  for (int i = 0; i < 30; ++i) r->update(prompt, "cheap", 0.0);
  REQUIRE(r->predict(prompt)[0] < before - 0.1);
  REQUIRE(r->row_counts()[0] == 60 + 30);
  REQUIRE_THROWS_AS(r->update(prompt, "nobody", 1.0), orroute::NotFound);
  REQUIRE_THROWS_AS(r->update(prompt, "cheap", 2.0), orroute::InvalidArgument);
  r->update(prompt, "cheap", 1.0, 0.0003);
  REQUIRE(r->expected_costs(prompt)[0] > 0.0001);
}

TEST_CASE("learned router saves and loads the same predictions", "[learned_router]") {
  const auto r = LearnedRouter::fit(toy_table(), toy_config());
  const auto path = std::filesystem::temp_directory_path() / "orroute_test_router.bin";
  r->save(path.string());
  const auto back = LearnedRouter::load(path.string());
  REQUIRE(back->model_names() == r->model_names());
  for (const char* p : {"What is 1 plus 2?", "Write an essay.", ""}) {
    const auto a = r->predict(p);
    const auto b = back->predict(p);
    REQUIRE(a[0] == Approx(b[0]).margin(1e-12));
    REQUIRE(a[1] == Approx(b[1]).margin(1e-12));
    REQUIRE(r->expected_costs(p)[1] == Approx(back->expected_costs(p)[1]));
  }
  REQUIRE(back->to_bytes() == r->to_bytes());

  SECTION("a loaded router keeps learning like the original") {
    r->update("Name a colour.", "cheap", 0.0);
    back->update("Name a colour.", "cheap", 0.0);
    REQUIRE(r->predict("Name a colour.")[0] == Approx(back->predict("Name a colour.")[0]));
  }
  SECTION("bad files are ParseErrors") {
    std::string bytes = r->to_bytes();
    REQUIRE_THROWS_AS(LearnedRouter::from_bytes(bytes.substr(0, bytes.size() / 2)),
                      orroute::ParseError);
    REQUIRE_THROWS_AS(LearnedRouter::from_bytes("not a router at all"), orroute::ParseError);
    bytes[8] = 99;  // version field
    REQUIRE_THROWS_WITH(LearnedRouter::from_bytes(bytes), Catch::Contains("version 99"));
    bytes[8] = 0;
    REQUIRE_THROWS_WITH(LearnedRouter::from_bytes(bytes), Catch::Contains("version 0"));
    REQUIRE_THROWS_AS(LearnedRouter::load((path.string() + ".missing")), orroute::ParseError);
  }
  std::filesystem::remove(path);
}

TEST_CASE("learned router rejects unusable tables", "[learned_router]") {
  const RouterConfig c = toy_config();
  OutcomeTable t = toy_table();
  SECTION("ragged scores") {
    t.scores[1].pop_back();
    REQUIRE_THROWS_AS(LearnedRouter::fit(t, c), orroute::InvalidArgument);
  }
  SECTION("score out of range") {
    t.scores[0][3] = 1.5;
    REQUIRE_THROWS_AS(LearnedRouter::fit(t, c), orroute::InvalidArgument);
  }
  SECTION("model with no scores") {
    t.scores[0].assign(t.prompts.size(), kNaN);
    REQUIRE_THROWS_AS(LearnedRouter::fit(t, c), orroute::InvalidArgument);
  }
  SECTION("duplicate model") {
    t.models[1] = "cheap";
    REQUIRE_THROWS_AS(LearnedRouter::fit(t, c), orroute::InvalidArgument);
  }
}

TEST_CASE("missing scores and few rows fall back to the model's prior", "[learned_router]") {
  OutcomeTable t = toy_table();
  for (size_t i = 0; i < t.prompts.size(); ++i) t.scores[0][i] = i < 3 ? 0.0 : kNaN;  // 3 fails
  RouterConfig c;  // the default (shipped) training settings
  c.features.hash_bits = 14;
  const auto r = LearnedRouter::fit(t, c);
  REQUIRE(r->row_counts()[0] == 3);
  const auto p = r->predict("What is 100 plus 1?");
  REQUIRE(p[0] > 0.2);  // three failures do not make a certain failure ...
  REQUIRE(p[0] < p[1]);  // ... but the model ranks below its always-right peer
}

TEST_CASE("catalog quality predictor renames router models to catalog ids", "[learned_router]") {
  const std::shared_ptr<const LearnedRouter> r = LearnedRouter::fit(toy_table(), toy_config());
  const orroute::CatalogQualityPredictor q(r, {{"strong", "openai/gpt-4o"}});
  REQUIRE(q.catalog_ids() == std::vector<std::string>{"openai/gpt-4o"});
  REQUIRE(q.covers("openai/gpt-4o"));
  REQUIRE_FALSE(q.covers("strong"));
  const auto m = q.predict("What is 2 plus 2?");
  REQUIRE(m.size() == 1);
  REQUIRE(m.at("openai/gpt-4o") == Approx(r->predict("What is 2 plus 2?")[1]));
  REQUIRE(q.predict_one("What is 2 plus 2?", "openai/gpt-4o").has_value());
  REQUIRE_FALSE(q.predict_one("What is 2 plus 2?", "x/y").has_value());
  REQUIRE_THROWS_AS(orroute::CatalogQualityPredictor(r, {{"nobody", "a/b"}}), orroute::NotFound);
  REQUIRE_THROWS_AS(orroute::CatalogQualityPredictor(r, {{"cheap", "a/b"}, {"strong", "a/b"}}),
                    orroute::InvalidArgument);
}

TEST_CASE("learned router reads version 1 files with their whole-prompt word features",
          "[learned_router]") {
  // Written by the version-1 router (tests/data/learned_router_v1.bin; see test_routing.py for
  // the same file from Python). Version 1 had no word window.
  const auto r = LearnedRouter::load(ORROUTE_SOURCE_DIR "/tests/data/learned_router_v1.bin");
  REQUIRE(r->model_names() == std::vector<std::string>{"small", "big"});
  REQUIRE(r->config().features.word_window == 0);
  const auto p = r->predict("What is 7+1?");
  REQUIRE(p[0] == Approx(0.977102487813761).margin(1e-6));
  REQUIRE(p[1] == Approx(0.9910417533336794).margin(1e-6));
  std::string long_prompt = "Prove that 2 is prime. ";
  for (int i = 0; i < 800; ++i) long_prompt += "x ";
  const auto q = r->predict(long_prompt);
  REQUIRE(q[0] == Approx(0.3974203866071808).margin(1e-6));
  REQUIRE(q[1] == Approx(0.7567756611553174).margin(1e-6));
  // Saved again, it is a current-version file that predicts the same.
  const auto again = LearnedRouter::from_bytes(r->to_bytes());
  REQUIRE(again->predict(long_prompt)[1] == Approx(q[1]).margin(1e-9));
}
