// ModelCatalog: parsing the real OpenRouter snapshot and the edge-case fixture, exact pricing.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/error.h"

using orroute::Money;
using orroute::ModelCatalog;
using orroute::UsageCounts;

namespace {

const ModelCatalog& real_catalog() {
  static const ModelCatalog cat =
      ModelCatalog::from_file(ORROUTE_SOURCE_DIR "/python/orroute/data/openrouter_models.json");
  return cat;
}

const ModelCatalog& fixture() {
  static const ModelCatalog cat =
      ModelCatalog::from_file(ORROUTE_SOURCE_DIR "/tests/data/models_all_modalities.json");
  return cat;
}

Money usd(const char* s) { return Money::parse(s); }

UsageCounts usage(int64_t prompt, int64_t completion) {
  UsageCounts u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  return u;
}

bool has_warning(const ModelCatalog& c, const std::string& needle) {
  for (const auto& w : c.warnings()) {
    if (w.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("the real catalog snapshot loads every entry without warnings", "[catalog]") {
  const auto& cat = real_catalog();
  REQUIRE(cat.size() == 414);
  REQUIRE(cat.warnings().empty());
  const auto* m = cat.find("openai/gpt-4o-mini");
  REQUIRE(m != nullptr);
  CHECK(m->context_length == 128000);
  CHECK(m->max_completion_tokens == 16384);
  CHECK(m->tokenizer == "GPT");
  CHECK(m->provider() == "openai");
  CHECK(m->is_moderated);
  CHECK(m->pricing.base.prompt == usd("0.00000015"));
  CHECK(cat.find("openai/none") == nullptr);
  CHECK(cat.find("~google/gemini-pro-latest")->provider() == "google");
}

TEST_CASE("router entries priced -1 are dynamic and never priced", "[catalog]") {
  const auto& cat = real_catalog();
  const auto& auto_router = cat.at("openrouter/auto");
  CHECK(auto_router.pricing.dynamic);
  CHECK_FALSE(auto_router.pricing.base.prompt.is_negative());
  CHECK_FALSE(auto_router.is_free());
  CHECK_THROWS_AS(cat.cost("openrouter/auto", usage(10, 10)), orroute::InvalidArgument);
  CHECK_THROWS_WITH(cat.worst_case("openrouter/auto", 10, 10),
                    Catch::Contains("dynamic price"));
  CHECK_FALSE(cat.at("openrouter/free").pricing.dynamic);
  CHECK(cat.cost("openrouter/free", usage(1000, 1000)).is_zero());
}

TEST_CASE("cost of a plain model is prompt and completion tokens at their prices", "[catalog]") {
  const auto& cat = real_catalog();
  // 1000 x 0.00000015 + 500 x 0.0000006
  CHECK(cat.cost("openai/gpt-4o-mini", usage(1000, 500)) == usd("0.00045"));
  SECTION("cached tokens are billed at the cache-read price instead of the prompt price") {
    UsageCounts u = usage(1000, 500);
    u.cached_tokens = 400;  // 600 x 0.00000015 + 400 x 0.000000075 + 500 x 0.0000006
    CHECK(cat.cost("openai/gpt-4o-mini", u) == usd("0.00042"));
  }
  SECTION("unknown model") {
    CHECK_THROWS_AS(cat.cost("openai/nope", usage(1, 1)), orroute::NotFound);
    CHECK_THROWS_WITH(cat.cost("openai/gpt-4o-min", usage(1, 1)),
                      Catch::Contains("did you mean") && Catch::Contains("openai/gpt-4o-mini"));
  }
}

TEST_CASE("tier overrides apply from min_prompt_tokens on", "[catalog]") {
  const auto& cat = real_catalog();
  const auto row = GENERATE(table<int64_t, const char*>({
      {31999, "0.02885922"},  // 31999 x 0.00000078 + 1000 x 0.0000039
      {32000, "0.05772"},     // 32000 x 0.00000156 + 1000 x 0.0000078
      {127999, "0.20747844"}, // 127999 x 0.00000156 + 1000 x 0.0000078
      {128000, "0.25935"},    // 128000 x 0.00000195 + 1000 x 0.00000975
  }));
  CHECK(cat.cost("qwen/qwen3-max", usage(std::get<0>(row), 1000)) == usd(std::get<1>(row)));
}

TEST_CASE("cache reads, cache writes and web searches are priced separately", "[catalog]") {
  const auto& cat = real_catalog();
  UsageCounts u = usage(10000, 1000);
  u.cached_tokens = 6000;
  u.cache_write_tokens = 2000;
  u.web_searches = 2;
  // 2000 x 0.000003 + 6000 x 0.0000003 + 2000 x 0.00000375 + 1000 x 0.000015 + 2 x 0.01
  CHECK(cat.cost("anthropic/claude-sonnet-4.5", u) == usd("0.0503"));
  SECTION("1-hour cache writes use input_cache_write_1h") {
    u.cache_write_1h = true;  // writes: 2000 x 0.000006
    CHECK(cat.cost("anthropic/claude-sonnet-4.5", u) == usd("0.0548"));
  }
  SECTION("the long-context tier also changes the cache prices") {
    UsageCounts big = usage(250000, 2000);
    big.cached_tokens = 200000;  // 50000 x 0.000006 + 200000 x 0.0000006 + 2000 x 0.0000225
    CHECK(cat.cost("anthropic/claude-sonnet-4.5", big) == usd("0.465"));
  }
  SECTION("cache tokens beyond the prompt are rejected") {
    u.cached_tokens = 9000;
    CHECK_THROWS_AS(cat.cost("anthropic/claude-sonnet-4.5", u), orroute::InvalidArgument);
  }
}

TEST_CASE("reasoning tokens are part of completion tokens, at internal_reasoning price", "[catalog]") {
  const auto& cat = real_catalog();
  UsageCounts u = usage(1000, 5000);
  u.reasoning_tokens = 4000;
  u.web_searches = 3;
  // 1000 x 0.000002 + 1000 x 0.000008 + 4000 x 0.000003 + 3 x 0.005
  CHECK(cat.cost("perplexity/sonar-deep-research", u) == usd("0.037"));
  SECTION("without an internal_reasoning price they are plain completion tokens") {
    UsageCounts v = usage(1000, 500);
    const Money plain = cat.cost("openai/gpt-4o-mini", v);
    v.reasoning_tokens = 300;
    CHECK(cat.cost("openai/gpt-4o-mini", v) == plain);
  }
  SECTION("more reasoning than completion tokens is rejected") {
    u.reasoning_tokens = 5001;
    CHECK_THROWS_WITH(cat.cost("perplexity/sonar-deep-research", u),
                      Catch::Contains("part of the completion tokens"));
  }
}

TEST_CASE("audio and image tokens are billed at their own prices within the totals", "[catalog]") {
  const auto& cat = real_catalog();
  SECTION("input and output audio (openai/gpt-audio)") {
    UsageCounts u = usage(1000, 500);
    u.audio_tokens = 600;         // of the 1000 prompt tokens
    u.audio_output_tokens = 400;  // of the 500 completion tokens
    // 400 x 0.0000025 + 600 x 0.000032 (audio) + 100 x 0.00001 + 400 x 0.000064 (audio_output)
    // = 0.001 + 0.0192 + 0.001 + 0.0256
    CHECK(cat.cost("openai/gpt-audio", u) == usd("0.0468"));
  }
  SECTION("image output next to cache reads, input audio and reasoning") {
    UsageCounts u = usage(2000, 1500);
    u.cached_tokens = 500;
    u.audio_tokens = 300;
    u.reasoning_tokens = 200;
    u.image_output_tokens = 1290;  // one generated image
    // 1200 x 0.0000003 + 500 x 0.00000003 (cache read) + 300 x 0.000001 (audio)
    // + 10 x 0.0000025 + 200 x 0.0000025 (internal_reasoning) + 1290 x 0.00003 (image_output)
    // = 0.00036 + 0.000015 + 0.0003 + 0.000025 + 0.0005 + 0.0387
    CHECK(cat.cost("google/gemini-2.5-flash-image", u) == usd("0.0399"));
    // The worst case prices every output token at the dearest output kind (image_output).
    CHECK(cat.worst_case("google/gemini-2.5-flash-image", 100, 1000) == usd("0.03003"));
  }
  SECTION("without audio or image prices they are plain prompt and completion tokens") {
    UsageCounts u = usage(1000, 500);
    u.audio_tokens = 200;
    u.audio_output_tokens = 50;
    u.image_output_tokens = 100;
    CHECK(cat.cost("openai/gpt-4o-mini", u) == usd("0.00045"));
  }
  SECTION("parts larger than their total are rejected") {
    UsageCounts u = usage(1000, 500);
    u.cached_tokens = 800;
    u.audio_tokens = 201;
    CHECK_THROWS_WITH(cat.cost("openai/gpt-audio", u),
                      Catch::Contains("part of the prompt tokens"));
    UsageCounts v = usage(1000, 500);
    v.reasoning_tokens = 100;
    v.image_output_tokens = 401;
    CHECK_THROWS_WITH(cat.cost("google/gemini-2.5-flash-image", v),
                      Catch::Contains("part of the completion tokens"));
    v.image_output_tokens = -1;
    CHECK_THROWS_AS(cat.cost("google/gemini-2.5-flash-image", v), orroute::InvalidArgument);
  }
}

TEST_CASE("time-windowed tiers apply only when the time of the call is given", "[catalog]") {
  const auto& cat = real_catalog();
  UsageCounts u = usage(1000, 1000);
  CHECK(cat.cost("deepseek/deepseek-v4-pro", u) == usd("0.00264"));
  u.utc_hhmm = 200;  // window 01:00-04:00: 1000 x 0.00000132 + 1000 x 0.00000396
  CHECK(cat.cost("deepseek/deepseek-v4-pro", u) == usd("0.00528"));
  u.utc_hhmm = 2330;  // window 10:00-01:00 wraps past midnight
  CHECK(cat.cost("deepseek/deepseek-v4-pro", u) == usd("0.00264"));
  // Worst case takes the dearest window.
  CHECK(cat.worst_case("deepseek/deepseek-v4-pro", 1000, 1000) == usd("0.00528"));
}

TEST_CASE("free variants cost nothing", "[catalog]") {
  const auto& cat = real_catalog();
  const auto& m = cat.at("liquid/lfm-2.5-2.6b:free");
  CHECK(m.is_free());
  CHECK(m.variant() == "free");
  CHECK(cat.cost(m.id, usage(100000, 5000)).is_zero());
}

TEST_CASE("worst case reserves the model's output cap at the dearest output price", "[catalog]") {
  const auto& cat = real_catalog();
  // 1000 x 0.00000015 + 16384 (max_completion_tokens) x 0.0000006
  CHECK(cat.worst_case("openai/gpt-4o-mini", 1000) == usd("0.0099804"));
  CHECK(cat.worst_case("openai/gpt-4o-mini", 1000, 100) == usd("0.00021"));
  // No output cap listed: the context left after the prompt.
  CHECK(cat.worst_case("perplexity/sonar-deep-research", 28000, std::nullopt) ==
        usd("0.000002") * 28000 + usd("0.000008") * 100000);
  // Cache writes may cost more than plain prompt tokens.
  CHECK(cat.worst_case("anthropic/claude-sonnet-4.5", 1000, 0, 1, true) == usd("0.006"));
  CHECK_THROWS_AS(cat.worst_case("openai/gpt-4o-mini", -1, 1), orroute::InvalidArgument);
}

TEST_CASE("the all-modalities fixture loads, skipping bad entries with named warnings", "[catalog]") {
  const auto& cat = fixture();
  CHECK(cat.size() == 7);
  CHECK(cat.find("acme/image-gen")->context_length == 0);
  CHECK(cat.find("acme/embed-small")->context_length == 0);
  CHECK(cat.find("acme/embed-small")->top_provider_context_length == 8192);
  CHECK(cat.find("acme/voice")->has_output("audio"));
  CHECK(cat.find("acme/legacy")->input_modalities == std::vector<std::string>{"text"});
  CHECK(cat.find("acme/legacy")->pricing.base.prompt == usd("0.0000005"));
  CHECK(cat.find("acme/chat-1")->name == "Acme: Chat 1");  // duplicate kept the first
  CHECK(has_warning(cat, "model 'acme/bad-price': pricing.prompt: not a decimal string ('cheap')"));
  CHECK(has_warning(cat, "model 'acme/bad-context': context_length"));
  CHECK(has_warning(cat, "model 'acme/no-pricing': pricing: missing"));
  CHECK(has_warning(cat, "model 'acme/negative': pricing.prompt: negative price"));
  CHECK(has_warning(cat, "model 'acme/bad-params': supported_parameters"));
  CHECK(has_warning(cat, "entry #10: id: missing"));
  CHECK(has_warning(cat, "entry #11: not an object"));
  CHECK(has_warning(cat, "model 'acme/chat-1': id: duplicate"));
  CHECK(has_warning(cat, "model 'acme/odd-override': pricing.overrides[1].region"));
  CHECK(cat.find("acme/odd-override")->pricing.tiers.size() == 1);
  SECTION("request and image fees") {
    UsageCounts u = usage(1000, 100);
    u.images = 2;  // 0.001 + 0.0002 + 2 x 0.0005 + 1 request x 0.001
    CHECK(cat.cost("acme/chat-1", u) == usd("0.0032"));
    u.requests = 0;
    CHECK(cat.cost("acme/chat-1", u) == usd("0.0022"));
  }
}

TEST_CASE("text that is not a models response is a clear parse error", "[catalog]") {
  CHECK_THROWS_AS(ModelCatalog::from_json("{not json"), orroute::ParseError);
  CHECK_THROWS_WITH(ModelCatalog::from_json("{\"models\": []}"),
                    Catch::Contains("not a models response"));
  CHECK_THROWS_WITH(ModelCatalog::from_json("{\"error\": {\"code\": 401}}"),
                    Catch::Contains("an error response"));
  CHECK_THROWS_AS(ModelCatalog::from_json("42"), orroute::ParseError);
  CHECK(ModelCatalog::from_json("{\"data\": []}").size() == 0);
  CHECK_THROWS_AS(ModelCatalog::from_file("/nonexistent/models.json"), orroute::InvalidArgument);
}

TEST_CASE("filter combines capability, price, context, provider and free", "[catalog]") {
  const auto& cat = real_catalog();
  orroute::ModelFilter f;
  f.capabilities = orroute::capability_bits({"tools", "vision"});
  f.max_prompt_price_per_mtok = usd("1");
  f.min_context = 100000;
  f.providers = {"openai", "google"};
  f.free = false;
  const auto found = cat.filter(f);
  REQUIRE_FALSE(found.empty());
  for (const auto* m : found) {
    CHECK((m->provider() == "openai" || m->provider() == "google"));
    CHECK(m->pricing.base.prompt * 1'000'000 <= usd("1"));
    CHECK(m->context_length >= 100000);
    CHECK(m->supports_parameter("tools"));
    CHECK(m->has_input("image"));
    CHECK_FALSE(m->is_free());
  }
  f = {};
  f.max_prompt_price_per_mtok = usd("1000");
  for (const auto* m : cat.filter(f)) CHECK_FALSE(m->pricing.dynamic);
  CHECK_THROWS_WITH(orroute::capability_bits({"telepathy"}),
                    Catch::Contains("unknown capability 'telepathy'") && Catch::Contains("tools"));
}

TEST_CASE("unknown ids name the nearest ones: containing the stem, else by edit distance",
          "[catalog]") {
  const auto cat = ModelCatalog::from_json(
      R"({"data":[{"id":"anthropic/claude-sonnet-4.5","pricing":{"prompt":"0","completion":"0"}},
                  {"id":"openai/gpt-4o","pricing":{"prompt":"0","completion":"0"}},
                  {"id":"openai/gpt-4","pricing":{"prompt":"0","completion":"0"}},
                  {"id":"google/gemini-2.5-pro","pricing":{"prompt":"0","completion":"0"}}]})");
  SECTION("stem contained, in catalog order") {
    REQUIRE(cat.nearest_ids("gpt-4") == std::vector<std::string>{"openai/gpt-4o", "openai/gpt-4"});
    REQUIRE(cat.nearest_ids("gpt-4", 1) == std::vector<std::string>{"openai/gpt-4o"});
  }
  SECTION("no stem match: nearest by edit distance") {
    REQUIRE(cat.nearest_ids("anthropic/claude-sonet-4.5").front() == "anthropic/claude-sonnet-4.5");
    REQUIRE(cat.nearest_ids("claude-3-sonnet").front() == "anthropic/claude-sonnet-4.5");
  }
  SECTION("nothing close: nothing suggested") {
    REQUIRE(cat.nearest_ids("zzzzzzzzzzzzzzzzzzzz").empty());
    REQUIRE(cat.nearest_ids("").empty());
  }
  SECTION("at() names them") {
    try {
      (void)cat.at("claude-3-sonnet");
      FAIL("expected NotFound");
    } catch (const orroute::NotFound& e) {
      REQUIRE(std::string(e.what()).find("did you mean: anthropic/claude-sonnet-4.5") !=
              std::string::npos);
    }
  }
}

TEST_CASE("a model whose prompt or completion price is null is skipped, not priced at $0", "[catalog]") {
  // A catalog refresh listing "prompt": null made every prompt token free: the worst case and the
  // reservation left them out. A price must be listed; "0" says free.
  const auto entry = [](const std::string& id, const char* prompt, const char* completion) {
    return "{\"id\":\"" + id + "\",\"context_length\":1000,\"pricing\":{\"prompt\":" + prompt +
           ",\"completion\":" + completion + "}}";
  };
  const auto cat = ModelCatalog::from_json("{\"data\":[" + entry("x/null-prompt", "null", "\"0.001\"") + "," +
                                           entry("x/null-completion", "\"0.001\"", "null") + "," +
                                           entry("x/free", "\"0\"", "\"0\"") + "]}");
  CHECK(cat.find("x/null-prompt") == nullptr);
  CHECK(cat.find("x/null-completion") == nullptr);
  CHECK(has_warning(cat, "model 'x/null-prompt': pricing.prompt: null"));
  CHECK(has_warning(cat, "model 'x/null-completion': pricing.completion: null"));
  REQUIRE(cat.find("x/free") != nullptr);
  CHECK(cat.find("x/free")->is_free());
}
