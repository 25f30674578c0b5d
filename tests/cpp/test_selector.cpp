// ModelSelector, task types, tiers and quality priors, on a small hand-made catalog.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "orroute/select/selector.h"

using orroute::Money;
using orroute::ModelSelector;

namespace {

std::string model(const std::string& id, const std::string& prompt, const std::string& completion,
                  int64_t ctx, const std::string& params, const std::string& inputs = "\"text\"") {
  return "{\"id\":\"" + id + "\",\"context_length\":" + std::to_string(ctx) +
         ",\"architecture\":{\"input_modalities\":[" + inputs +
         "],\"output_modalities\":[\"text\"]},\"pricing\":{\"prompt\":\"" + prompt +
         "\",\"completion\":\"" + completion + "\"},\"supported_parameters\":[" + params + "]}";
}

std::shared_ptr<const orroute::ModelCatalog> small_catalog() {
  const std::string json =
      "{\"data\":[" +
      model("big/flagship", "0.00001", "0.00003", 200000, "\"tools\",\"reasoning\"") + "," +
      model("mid/standard", "0.0000003", "0.0000012", 128000, "\"tools\"") + "," +
      model("tiny/economy", "0.00000002", "0.00000004", 32000, "\"tools\"") + "," +
      model("tiny/economy:free", "0", "0", 32000, "\"tools\"") + "," +
      model("eye/vision", "0.000001", "0.000004", 64000, "\"tools\"", "\"text\",\"image\"") + "," +
      "{\"id\":\"openrouter/auto\",\"context_length\":2000000,\"pricing\":{\"prompt\":\"-1\","
      "\"completion\":\"-1\"},\"supported_parameters\":[\"tools\"]}" +
      "]}";
  return std::make_shared<const orroute::ModelCatalog>(orroute::ModelCatalog::from_json(json));
}

orroute::QualityPriors priors() {
  return orroute::QualityPriors::from_json(R"({
    "models": {"big/flagship": {"overall": 0.95, "coding": 0.97, "math": 0.9, "hard_prompts": 0.9,
                                "instruction_following": 0.9, "source": "test"},
               "mid/standard": {"overall": 0.8, "coding": 0.75, "source": "test"}},
    "families": {"tiny/economy": {"overall": 0.4, "source": "family test"}},
    "tier_defaults": {"premium": {"overall": 0.7}}})");
}

}  // namespace

TEST_CASE("family keys drop versions and dates but keep sizes", "[select]") {
  CHECK(orroute::family_key("anthropic/claude-opus-4.5") == "anthropic/claude-opus");
  CHECK(orroute::family_key("~anthropic/claude-sonnet-latest") == "anthropic/claude-sonnet");
  CHECK(orroute::family_key("meta-llama/llama-3.3-70b-instruct:free") ==
        "meta-llama/llama-70b-instruct");
  CHECK(orroute::family_key("openai/gpt-4o-2024-08-06") == "openai/gpt");
  CHECK(orroute::family_key("deepseek/deepseek-v3.2") == "deepseek/deepseek");
  CHECK(orroute::family_key("qwen/qwen3-235b-a22b") == "qwen/qwen3-235b-a22b");
}

TEST_CASE("priors resolve by id, variant, family, else nothing", "[select]") {
  const auto p = priors();
  CHECK(p.lookup("big/flagship")->get(orroute::QualityCategory::kCoding) == Approx(0.97));
  CHECK(p.lookup("big/flagship:free")->source == "test");
  CHECK(p.lookup("tiny/economy-2")->get(orroute::QualityCategory::kMath) == Approx(0.4));
  CHECK_FALSE(p.lookup("unknown/model").has_value());
  const auto merged = p.merge(orroute::QualityPriors::from_json(
      R"({"models": {"mid/standard": {"coding": 0.99, "source": "mine"}}})"));
  CHECK(merged.lookup("mid/standard")->get(orroute::QualityCategory::kCoding) == Approx(0.99));
  CHECK(merged.lookup("mid/standard")->get(orroute::QualityCategory::kOverall) == Approx(0.8));
  CHECK_THROWS_AS(orroute::QualityPriors::from_json(R"({"models": {"x": {"overall": 3}}})"),
                  orroute::ParseError);
}

TEST_CASE("tiers come from the blended price", "[select]") {
  const auto cat = small_catalog();
  CHECK(orroute::tier_of(cat->at("big/flagship").pricing) == orroute::Tier::kFlagship);
  CHECK(orroute::tier_of(cat->at("mid/standard").pricing) == orroute::Tier::kStandard);
  CHECK(orroute::tier_of(cat->at("eye/vision").pricing) == orroute::Tier::kPremium);
  CHECK(orroute::tier_of(cat->at("tiny/economy").pricing) == orroute::Tier::kEconomy);
  // (3 x 0.0000003 + 0.0000012) x 250000
  CHECK(orroute::blended_price_per_mtok(cat->at("mid/standard").pricing) == Money::parse("0.525"));
}

TEST_CASE("strategies trade quality against cost", "[select]") {
  const ModelSelector sel(small_catalog(), priors());
  orroute::SelectionRequest r;
  r.task_type = "coding";
  r.input_tokens = 1000;
  r.strategy = orroute::Strategy::kQualityFirst;
  CHECK(sel.rank(r).front().model->id == "big/flagship");
  r.strategy = orroute::Strategy::kCostOptimized;
  CHECK(sel.rank(r).front().model->id == "tiny/economy");
  SECTION("free variants only when allowed") {
    orroute::Constraints c;
    c.allow_free = true;
    r.constraints = c;
    CHECK(sel.rank(r).front().model->id == "tiny/economy:free");
  }
  SECTION("select_model agrees with the top of rank for the default strategy") {
    r.strategy.reset();
    CHECK(sel.select_model("coding", 1000) == sel.rank(r).front().model->id);
  }
}

TEST_CASE("candidates must fit context and budget; the error names the last constraint", "[select]") {
  const ModelSelector sel(small_catalog(), priors());
  // coding expects 2000 output tokens; 150000 + 2000 only fits big/flagship.
  CHECK(sel.select_model("coding", 150000) == "big/flagship");
  CHECK_THROWS_WITH(sel.select_model("coding", 150000, Money::parse("0.001")),
                    Catch::Contains("budget $0.001 removed the last 1 candidates") &&
                        Catch::Contains("big/flagship"));
  CHECK_THROWS_AS(sel.select_model("coding", 500000), orroute::NoModelAvailable);
  CHECK_THROWS_WITH(sel.select_model("coding", 500000), Catch::Contains("context window"));
  CHECK_THROWS_WITH(sel.select_model("dancing", 1), Catch::Contains("known task types: general"));
  CHECK_THROWS_AS(sel.select_model("coding", -1), orroute::InvalidArgument);
}

TEST_CASE("task types and constraints filter candidates", "[select]") {
  const ModelSelector sel(small_catalog(), priors());
  orroute::SelectionRequest r;
  r.task_type = "computer_use";  // vision + tools
  const auto ranked = sel.rank(r);
  REQUIRE(ranked.size() == 1);
  CHECK(ranked[0].model->id == "eye/vision");
  CHECK_FALSE(ranked[0].reasons.empty());
  r.task_type = "general";
  orroute::Constraints c;
  c.blocked_providers = {"eye", "tiny"};
  c.max_price_per_mtok = Money::parse("1");
  r.constraints = c;
  const auto general = sel.rank(r);
  REQUIRE(general.size() == 1);
  CHECK(general[0].model->id == "mid/standard");
  c.required_parameters = {"reasoning"};
  r.constraints = c;
  CHECK_THROWS_WITH(sel.rank(r), Catch::Contains("required parameters [reasoning]"));
}

TEST_CASE("measured metrics and learned predictions change the ranking", "[select]") {
  ModelSelector sel(small_catalog(), priors());
  orroute::SelectionRequest r;
  r.task_type = "coding";
  r.strategy = orroute::Strategy::kQualityFirst;
  CHECK(sel.rank(r).front().model->id == "big/flagship");
  SECTION("unavailable models are never selected") {
    sel.set_metrics("big/flagship", {std::nullopt, std::nullopt, std::nullopt, false});
    CHECK(sel.rank(r).front().model->id != "big/flagship");
    sel.clear_metrics();
    CHECK(sel.rank(r).front().model->id == "big/flagship");
  }
  SECTION("a low measured success rate lowers quality") {
    sel.set_metrics("big/flagship", {0.5, std::nullopt, std::nullopt, true});
    CHECK(sel.rank(r).front().model->id == "mid/standard");
  }
  SECTION("a learned per-prompt prediction outweighs the prior") {
    r.predicted_quality = {{"mid/standard", 1.0}, {"big/flagship", 0.3}};
    CHECK(sel.rank(r).front().model->id == "mid/standard");
  }
  CHECK_THROWS_AS(sel.set_metrics("no/such", {}), orroute::NotFound);
}

namespace {

// A predictor that favours "mid/standard" for prompts mentioning "easy".
class FixedPredictor : public orroute::QualityPredictor {
 public:
  std::vector<std::string> model_names() const override { return {"m-big", "m-mid"}; }
  std::vector<double> predict(std::string_view prompt) const override {
    if (prompt.find("easy") != std::string_view::npos) return {0.2, 1.0};
    return {0.9, 0.5};
  }
};

}  // namespace

TEST_CASE("an installed quality predictor informs requests that carry a prompt", "[select]") {
  ModelSelector sel(small_catalog(), priors());
  auto predictor = std::make_shared<const orroute::CatalogQualityPredictor>(
      std::make_shared<const FixedPredictor>(),
      std::vector<std::pair<std::string, std::string>>{{"m-big", "big/flagship"},
                                                       {"m-mid", "mid/standard"}});
  sel.set_quality_predictor(predictor);
  orroute::SelectionRequest r;
  r.task_type = "coding";
  r.strategy = orroute::Strategy::kQualityFirst;
  CHECK(sel.rank(r).front().model->id == "big/flagship");  // no prompt: priors only
  r.prompt = "an easy one";
  CHECK(sel.rank(r).front().model->id == "mid/standard");
  CHECK_THAT(sel.rank(r).front().reasons[1], Catch::Contains("learned prediction"));
  r.predicted_quality = {{"mid/standard", 0.0}, {"big/flagship", 1.0}};  // explicit entries win
  CHECK(sel.rank(r).front().model->id == "big/flagship");
  sel.set_quality_predictor(nullptr);
  r.predicted_quality.clear();
  CHECK(sel.rank(r).front().model->id == "big/flagship");
}

TEST_CASE("models past their expiration_date are never selected; near ones say so", "[select]") {
  using namespace std::chrono;
  const auto in_days = [](int n) {
    const year_month_day d{floor<days>(system_clock::now()) + days{n}};
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
    return std::string(buf);
  };
  const auto with_expiry = [](std::string json, const std::string& date) {
    json.insert(json.size() - 1, ",\"expiration_date\":\"" + date + "\"");
    return json;
  };
  // The cheapest model retired yesterday, the next one retires today, the third in 10 days.
  const std::string json =
      "{\"data\":[" +
      with_expiry(model("old/retired", "0.00000001", "0.00000002", 32000, ""), in_days(-1)) + "," +
      with_expiry(model("old/today", "0.00000002", "0.00000003", 32000, ""), in_days(0)) + "," +
      with_expiry(model("soon/leaving", "0.00000003", "0.00000004", 32000, ""), in_days(10)) + "," +
      with_expiry(model("far/future", "0.0000003", "0.0000004", 32000, ""), "2999-12-31") + "," +
      with_expiry(model("bad/date", "0.0000004", "0.0000005", 32000, ""), "someday") + "]}";
  const ModelSelector sel(
      std::make_shared<const orroute::ModelCatalog>(orroute::ModelCatalog::from_json(json)),
      priors(), orroute::Strategy::kCostOptimized);

  CHECK(sel.select_model("general", 100) == "soon/leaving");
  orroute::SelectionRequest req;
  req.task_type = "general";
  req.input_tokens = 100;
  const auto ranked = sel.rank(req);
  REQUIRE(ranked.size() == 3);  // soon/leaving, far/future, bad/date (an unreadable date is ignored)
  const auto expiry_reason = [](const orroute::Candidate& c) {
    for (const auto& r : c.reasons) {
      if (r.rfind("expires on ", 0) == 0) return r;
    }
    return std::string();
  };
  CHECK(ranked[0].model->id == "soon/leaving");
  CHECK(expiry_reason(ranked[0]) == "expires on " + in_days(10) + " (in 10 days)");
  CHECK(expiry_reason(ranked[1]).empty());
  CHECK(expiry_reason(ranked[2]).empty());
  // When only retired models fit, the error says why.
  orroute::Constraints only_old;
  only_old.allowed_models = {"old/retired", "old/today"};
  req.constraints = only_old;
  CHECK_THROWS_WITH(sel.rank(req), Catch::Contains("expiration_date reached"));
}

TEST_CASE("a quality floor keeps only strong enough candidates under every strategy", "[select]") {
  using orroute::Strategy;
  const ModelSelector sel(small_catalog(), priors());
  const auto has_reason = [](const orroute::Candidate& c, const std::string& text) {
    return std::any_of(c.reasons.begin(), c.reasons.end(),
                       [&](const std::string& r) { return r.find(text) != std::string::npos; });
  };
  for (const Strategy s : {Strategy::kCostOptimized, Strategy::kBalanced, Strategy::kPerformance,
                           Strategy::kQualityFirst}) {
    CAPTURE(orroute::strategy_name(s));
    orroute::SelectionRequest req;
    req.strategy = s;
    req.input_tokens = 100;
    const auto unfloored = sel.rank(req);
    double best = 0;
    size_t strong = 0;
    for (const auto& c : unfloored) best = std::max(best, c.quality);
    for (const auto& c : unfloored) strong += c.quality >= 0.75 ? 1 : 0;
    REQUIRE(strong > 0);
    REQUIRE(strong < unfloored.size());  // the floor has something to remove

    {  // a floor some candidates reach removes the rest and says so
      req.quality_floor = 0.75;
      req.quality_floor_why = "complexity 0.80 -> premium";
      const auto ranked = sel.rank(req);
      REQUIRE(ranked.size() == strong);
      for (const auto& c : ranked) REQUIRE(c.quality >= 0.75);
      REQUIRE(has_reason(ranked.front(), "quality floor 0.75 from complexity 0.80 -> premium: kept " +
                                             std::to_string(strong) + " of " +
                                             std::to_string(unfloored.size())));
    }
    {  // a floor nobody reaches is relaxed to the best quality there is
      req.quality_floor = 0.999;
      const auto ranked = sel.rank(req);
      REQUIRE_FALSE(ranked.empty());
      for (const auto& c : ranked) REQUIRE(c.quality == best);
      REQUIRE(has_reason(ranked.front(), "relaxed to"));
    }
    {  // the budget is still a hard limit: the floor relaxes to what it affords
      // Under the flagship's estimate, above the standard model's.
      const auto flagship = std::find_if(unfloored.begin(), unfloored.end(), [](const auto& c) {
        return c.model->id == "big/flagship";
      });
      REQUIRE(flagship != unfloored.end());
      req.budget = flagship->estimated_cost - Money::parse("0.000000001");
      req.quality_floor = 0.9;
      const auto ranked = sel.rank(req);
      REQUIRE_FALSE(ranked.empty());
      for (const auto& c : ranked) {
        REQUIRE(c.model->id != "big/flagship");
        REQUIRE(c.estimated_cost <= *req.budget);
      }
      REQUIRE(has_reason(ranked.front(), "relaxed to"));
    }
  }
}

TEST_CASE("a prompt's images count at each candidate's own bound where its context is checked", "[select][prompt_bounds]") {
  // Both windows 128k; gpt-4o-mini is the cheaper, and bills an image up to 48,169 tokens against
  // gpt-4o's 1,445 (cost/prompt_bounds.cpp): three images (144,507 on mini) only fit gpt-4o.
  // x/seer has no row: its images count gpt-4o's 1,445 each, for fitting only.
  const std::string json = "{\"data\":[" +
                           model("openai/gpt-4o-mini", "0.00000015", "0.0000006", 128000, "", "\"text\",\"image\"") +
                           "," + model("openai/gpt-4o", "0.0000025", "0.00001", 128000, "", "\"text\",\"image\"") +
                           "," + model("x/seer", "0.000001", "0.000004", 20000, "", "\"text\",\"image\"") + "]}";
  const ModelSelector sel(std::make_shared<const orroute::ModelCatalog>(orroute::ModelCatalog::from_json(json)),
                          priors());
  orroute::SelectionRequest req;
  req.input_tokens = 100;
  req.strategy = orroute::Strategy::kCostOptimized;
  orroute::Constraints c;
  c.expected_output_tokens = 100;
  const auto chosen = [&](const orroute::Constraints& constraints) {
    req.constraints = constraints;
    std::vector<std::string> ids;
    for (const orroute::Candidate& cand : sel.rank(req)) ids.push_back(cand.model->id);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  using Ids = std::vector<std::string>;
  CHECK(chosen(c) == Ids{"openai/gpt-4o", "openai/gpt-4o-mini", "x/seer"});  // text alone: all fit
  // The plain constraints' scan and the full per-model check alike.
  orroute::Constraints listed = c;
  listed.allowed_models = {"openai/gpt-4o-mini", "openai/gpt-4o", "x/seer"};
  for (const orroute::Constraints& constraints : {c, listed}) {
    req.images = {3, 0};
    CHECK(chosen(constraints) == Ids{"openai/gpt-4o", "x/seer"});  // mini: 144,507 + 200 > 128,000
    req.images = {14, 0};
    CHECK(chosen(constraints) == Ids{"openai/gpt-4o"});  // x/seer: 20,230 + 200 > 20,000
    req.images = {3, 3};  // at detail "low": 2,833 each on mini
    CHECK(chosen(constraints) == Ids{"openai/gpt-4o", "openai/gpt-4o-mini", "x/seer"});
  }
  req.images = {100, 0};
  req.constraints = c;
  CHECK_THROWS_WITH(sel.rank(req), Catch::Contains("context window") && Catch::Contains("100 images"));
}
