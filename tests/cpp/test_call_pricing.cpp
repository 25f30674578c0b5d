// CallPricer: one test per pricing rule of a call that can spend (catalog ids, :free, :online,
// :nitro / :floor, routers priced "-1", `models` lists, unknown ids) and which model a reply's
// tokens are priced on.
#include <catch2/catch.hpp>

#include "orroute/cost/call_pricing.h"

using namespace orroute;

namespace {

// Prices are USD per token: $1 / $2 per million for x/cheap, $10 / $30 for y/dear.
const ModelCatalog& catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/cheap", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "y/dear", "context_length": 1000, "pricing": {"prompt": "0.00001", "completion": "0.00003", "web_search": "0.05"}},
    {"id": "x/cheap:free", "context_length": 1000, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "z/vision", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002", "image": "0.001"}},
    {"id": "f/files", "context_length": 1000, "architecture": {"input_modalities": ["text", "file"], "output_modalities": ["text"]},
     "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "openrouter/auto", "context_length": 1000, "pricing": {"prompt": "-1", "completion": "-1"}}
  ]})");
  return cat;
}

Money usd(const char* s) { return Money::parse(s); }

Money worst(const CallPricer& p, const char* id, RequestShape shape = {}) {
  std::string why;
  auto w = p.worst_case(id, shape, 1000, 1000, &why);
  INFO(why);
  REQUIRE(w.has_value());
  return *w;
}

}  // namespace

TEST_CASE("a catalog id is bounded by its own prices", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap") == usd("0.003"));  // 1000 x 1e-6 + 1000 x 2e-6
  CHECK(p.bound("x/cheap").pricing() == &catalog().find("x/cheap")->pricing);  // not a copy
}

TEST_CASE("a :free variant costs nothing, listed or not", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap:free").is_zero());  // listed
  CHECK(worst(p, "y/dear:free").is_zero());   // derived from the suffix
}

TEST_CASE("an :online variant adds the web plugin's fee to the base prices", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap:online") == usd("0.003") + usd("0.02"));  // default fee
  CHECK(worst(p, "y/dear:online") == usd("0.04") + usd("0.05"));    // the model lists a dearer one
  RequestShape web;
  web.web_plugin = true;
  CHECK(worst(p, "x/cheap", web) == usd("0.023"));
}

TEST_CASE(":nitro and :floor are bounded by the base model's dearest endpoint", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap:nitro") == usd("0.006"));  // 200% of the listed price
  CHECK(worst(p, "x/cheap:floor") == usd("0.006"));
  PricingPolicy policy;
  policy.endpoint_markup_pct = 300;
  CHECK(worst(CallPricer(catalog(), policy), "x/cheap:nitro") == usd("0.009"));
}

TEST_CASE("a router priced -1 is bounded by the dearest model it may choose", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "openrouter/auto") == usd("0.04"));  // y/dear
  RequestShape only_x;
  only_x.allowed_models = {"x/*"};
  CHECK(worst(p, "openrouter/auto", only_x) == usd("0.003"));
}

TEST_CASE("a models list is bounded by its dearest member", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  RequestShape shape;
  shape.models = {"x/cheap", "y/dear"};
  CHECK(worst(p, "x/cheap", shape) == usd("0.04"));
  shape.models = {"x/cheap", "nobody/knows"};
  std::string why;
  CHECK_FALSE(p.worst_case("x/cheap", shape, 10, 10, &why).has_value());
  CHECK(why.find("nobody/knows") != std::string::npos);
}

TEST_CASE("an unknown id is refused, naming the id and the setting, unless priced by policy",
          "[call_pricing]") {
  std::string why;
  CHECK_FALSE(CallPricer(catalog(), {}).worst_case("acme/secret", {}, 10, 10, &why).has_value());
  CHECK(why.find("acme/secret") != std::string::npos);
  CHECK(why.find("unpriced_model_price") != std::string::npos);
  CHECK_FALSE(CallPricer(catalog(), {}).worst_case("nope/x:nitro", {}, 10, 10, &why));
  PricingPolicy policy;
  PriceSet fixed;
  fixed.prompt = usd("0.00005");
  fixed.completion = usd("0.0001");
  policy.unpriced_model_price = fixed;
  CHECK(worst(CallPricer(catalog(), policy), "acme/secret") == usd("0.15"));
}

TEST_CASE("a reply's tokens are priced on the served model only if the request could reach it",
          "[call_pricing]") {
  const CallPricer p(catalog(), {});
  UsageCounts u;
  u.prompt_tokens = 1000;
  u.completion_tokens = 1000;
  CHECK(*p.price("openrouter/auto", "x/cheap", {}, u) == usd("0.003"));  // the router's pick
  // A variant answered under its base id keeps the variant's price (":free" stays free).
  CHECK(*p.price("x/cheap:nitro", "x/cheap", {}, u) == usd("0.006"));
  CHECK(p.price("y/dear:free", "y/dear", {}, u)->is_zero());
  RequestShape list;
  list.models = {"x/cheap", "y/dear"};
  CHECK(*p.price("x/cheap", "y/dear", list, u) == usd("0.04"));  // a fallback that answered
  // An upstream naming a cheap model it was never asked for is priced as what was asked.
  CHECK(*p.price("y/dear", "x/cheap:free", {}, u) == usd("0.04"));
  RequestShape auto_x;
  auto_x.allowed_models = {"x/*"};
  CHECK(*p.price("openrouter/auto", "y/dear", auto_x, u) == usd("0.003"));  // not allowed: bound
}

// A router is never billed a free model's nothing: an upstream naming a ":free" variant (or a
// free model) as its pick had the call booked at zero. Such a pick is outside the router's
// reach: the tokens are priced at its bound, the dearest model it may pick.
TEST_CASE("a router naming a free model as its pick is priced at the router's bound", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  UsageCounts u;
  u.prompt_tokens = 1000;
  u.completion_tokens = 1000;
  CHECK_FALSE(p.router_may_pick("x/cheap:free", {}));
  CHECK(p.router_may_pick("x/cheap", {}));
  CHECK(*p.price("openrouter/auto", "x/cheap:free", {}, u) == usd("0.04"));  // y/dear's prices
  RequestShape auto_x;
  auto_x.allowed_models = {"x/*"};
  CHECK(*p.price("openrouter/auto", "x/cheap:free", auto_x, u) == usd("0.003"));  // x/cheap's
  CHECK(p.priced_id("openrouter/auto", "x/cheap:free", auto_x) == "openrouter/auto");
}

TEST_CASE("allowed_models patterns are globs with *", "[call_pricing]") {
  CHECK(model_pattern_matches("anthropic/*", "anthropic/claude-opus-5"));
  CHECK(model_pattern_matches("*", "x/y"));
  CHECK(model_pattern_matches("*/gpt-*-mini", "openai/gpt-4o-mini"));
  CHECK_FALSE(model_pattern_matches("anthropic/*", "openai/gpt-4o"));
  CHECK_FALSE(model_pattern_matches("x/y", "x/yz"));
}

TEST_CASE("request_shape reads models, the web plugin and auto-router patterns, ignoring junk",
          "[call_pricing]") {
  const RequestShape s = request_shape(
      R"({"models": ["a/b", 3], "plugins": [{"id": "web"}, {"id": "auto-router", "allowed_models": ["x/*"]}, 7]})");
  CHECK(s.models == std::vector<std::string>{"a/b"});
  CHECK(s.web_plugin);
  CHECK(s.allowed_models == std::vector<std::string>{"x/*"});
  CHECK_FALSE(request_shape(R"({"plugins": [{"id": "web", "enabled": false}]})").web_plugin);
  CHECK(request_shape("not json").models.empty());
}

TEST_CASE("request_shape_of a parsed body reads what request_shape reads from its text",
          "[call_pricing]") {
  for (const char* body :
       {R"({"models": ["a/b", 3], "plugins": [{"id": "web"}, {"id": "auto-router", "allowed_models": ["x/*"]}, 7]})",
        R"({"web_search_options": {}, "models": []})", R"({"plugins": [{"id": "web", "enabled": false}]})",
        R"({"plugins": "web", "models": "a/b"})", "[1, 2]", "{}"}) {
    rapidjson::Document d;
    d.Parse(body);
    REQUIRE_FALSE(d.HasParseError());
    const RequestShape text = request_shape(body), parsed = request_shape_of(d);
    CHECK(parsed.models == text.models);
    CHECK(parsed.web_plugin == text.web_plugin);
    CHECK(parsed.allowed_models == text.allowed_models);
  }
}

TEST_CASE("the web plugin's fee grows with the results it asks for", "[call_pricing]") {
  // OpenRouter bills web results ($4 per 1000 with its default engine); max_results 100 cost
  // twenty times the five a reservation used to assume.
  const CallPricer p(catalog(), {});
  const auto shape = [](const char* body) { return request_shape(body); };
  CHECK(worst(p, "x/cheap", shape(R"({"plugins": [{"id": "web"}]})")) == usd("0.023"));
  CHECK(worst(p, "x/cheap", shape(R"({"plugins": [{"id": "web", "max_results": 5}]})")) == usd("0.023"));
  CHECK(worst(p, "x/cheap", shape(R"({"plugins": [{"id": "web", "max_results": 6}]})")) == usd("0.043"));
  CHECK(worst(p, "x/cheap", shape(R"({"plugins": [{"id": "web", "max_results": 100}]})")) == usd("0.403"));
  // fewer than five pay the fee of five (the fee is per request)
  CHECK(worst(p, "x/cheap", shape(R"({"plugins": [{"id": "web", "max_results": 1}]})")) == usd("0.023"));
  // a model's own dearer web_search price, per five results
  CHECK(worst(p, "y/dear", shape(R"({"plugins": [{"id": "web", "max_results": 10}]})")) == usd("0.14"));
  for (const char* junk : {R"("100")", "0", "-5", "2.5", "1e9", "1001", "{}"}) {
    const RequestShape s = shape((std::string(R"({"plugins": [{"id": "web", "max_results": )") + junk + "}]}").c_str());
    std::string why;
    INFO(junk);
    CHECK_FALSE(p.worst_case("x/cheap", s, 1000, 1000, &why).has_value());
    CHECK(why.find("max_results") != std::string::npos);
  }
}

TEST_CASE("a tool the upstream runs and bills per use is refused; function and custom tools are not",
          "[call_pricing]") {
  const CallPricer p(catalog(), {});
  const RequestShape fine = request_shape(
      R"({"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "custom", "custom": {"name": "g"}}, {"function": {"name": "h"}}]})");
  CHECK(fine.unbounded.empty());
  CHECK(worst(p, "x/cheap", fine) == usd("0.003"));
  const RequestShape server = request_shape(
      R"({"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "openrouter:web_search"}]})");
  std::string why;
  CHECK_FALSE(p.worst_case("x/cheap", server, 1000, 1000, &why).has_value());
  CHECK(why.find("'openrouter:web_search'") != std::string::npos);
  // the same from a parsed body (the engine's plan)
  rapidjson::Document d;
  d.Parse(R"({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})");
  CHECK_FALSE(request_shape_of(d).unbounded.empty());
}

TEST_CASE("images sent are reserved and booked at a model's per-image price", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  const RequestShape shape = request_shape(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},)"
      R"({"type": "image_url", "image_url": {"url": "u"}}, {"type": "image_url", "image_url": {"url": "v"}}]},)"
      R"({"role": "user", "content": "no parts"}, {"role": "user", "content": [{"type": "image_url"}]}]})");
  CHECK(shape.images == 3);
  CHECK(worst(p, "z/vision", shape) == usd("0.003") + usd("0.003"));  // tokens + 3 x $0.001
  CHECK(worst(p, "x/cheap", shape) == usd("0.003"));                   // no image price listed
  UsageCounts used;
  used.prompt_tokens = 1000;
  used.completion_tokens = 1000;
  CHECK(p.price("z/vision", "", shape, used) == usd("0.006"));  // the images, reported or not
  CHECK(p.price("z/vision", "", RequestShape{}, used) == usd("0.003"));
}

TEST_CASE("a predicted output is reserved as output on top of max_tokens", "[call_pricing]") {
  // OpenAI bills the predicted tokens the model rejects as output, beyond max_tokens: at most one
  // token per byte of the prediction.
  const CallPricer p(catalog(), {});
  const std::string text(500, 'x');
  CHECK(worst(p, "x/cheap", request_shape(R"({"prediction": {"type": "content", "content": ")" + text + R"("}})")) ==
        usd("0.003") + usd("0.001"));  // 500 more output tokens at $2/M
  CHECK(worst(p, "x/cheap", request_shape(R"({"prediction": {"type": "content", "content": [{"type": "text", "text": ")" +
                                          text + R"("}, {"type": "text", "text": ")" + text + R"("}]}})")) ==
        usd("0.003") + usd("0.002"));
  CHECK(request_shape(R"({"prediction": "junk"})").prediction_bytes == 0);
}

TEST_CASE("n completions are reserved n outputs, the prompt once", "[call_pricing]") {
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap", request_shape(R"({"n": 3})")) == usd("0.001") + usd("0.006"));
  CHECK(worst(p, "x/cheap", request_shape(R"({"n": 1})")) == usd("0.003"));
  CHECK(request_shape(R"({"n": "3"})").choices == 1);  // refused by check_chat_request anyway
  // a hostile n cannot wrap the bound into a small number
  std::string why;
  const auto huge = p.worst_case("x/cheap", request_shape(R"({"n": 9223372036854775807})"), 1000, 1000, &why);
  CHECK((!huge || *huge > usd("1000")));
}

TEST_CASE("a file, a video or an image at its original size reserves the whole context window",
          "[call_pricing]") {
  // The upstream extracts a PDF's text (or samples a video, or tiles a full-size image): its
  // tokens are known only there, bounded by what the model can read.
  const CallPricer p(catalog(), {});
  for (const char* part : {R"({"type": "file", "file": {"file_data": "https://example.com/a.pdf"}})",  // parsed free
                                                                                                       // (below)
                           R"({"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}})",
                           R"({"type": "image_url", "image_url": {"url": "u", "detail": "original"}})"}) {
    const RequestShape shape = request_shape(
        std::string(R"({"plugins": [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}],)"
                    R"( "messages": [{"role": "user", "content": [)") + part + "]}]}");
    INFO(part);
    CHECK(shape.unsized_parts == 1);
    // 1000-token window at $1/M, 1000 output tokens at $2/M, whatever prompt was counted
    std::string why;
    CHECK(p.worst_case("x/cheap", shape, 10, 1000, &why) == usd("0.003"));
  }
  CHECK(request_shape(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]})")
            .unsized_parts == 0);
  // no context length to bound them: refused
  const ModelCatalog unknown_window = ModelCatalog::from_json(
      R"({"data": [{"id": "w/x", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]})");
  const CallPricer q(unknown_window, {});
  std::string why;
  CHECK_FALSE(q.worst_case("w/x", request_shape(R"({"plugins": [{"id": "file-parser", "pdf": {"engine": "native"}}],)"
                                                R"( "messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]})"),
                           10, 10, &why));
  CHECK(why.find("context length") != std::string::npos);
}

TEST_CASE("a direct provider's prices are held to the request's shape", "[call_pricing]") {
  // RoutedPrices prices a provider's call with shaped_worst_case: the same rules as the catalog's.
  const Pricing& cheap = catalog().find("x/cheap")->pricing;
  std::string why;
  CHECK(shaped_worst_case(cheap, request_shape(R"({"n": 3})"), 1000, 1000, 1000, "x/cheap", &why) ==
        usd("0.007"));
  CHECK(shaped_worst_case(cheap, request_shape(R"({"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]})"),
                          10, 1000, 1000, "x/cheap", &why) == usd("0.003"));
  CHECK_FALSE(shaped_worst_case(cheap, request_shape(R"({"tools": [{"type": "openrouter:web_search"}]})"), 10, 10,
                                1000, "x/cheap", &why));
  CHECK(why.find("openrouter:web_search") != std::string::npos);
}

TEST_CASE("a file sent through OpenRouter is refused when it may be parsed at a per-page fee", "[call_pricing]") {
  // OpenRouter's file-parser: "cloudflare-ai" free ("pdf-text" redirected to it), "native" as
  // input tokens, "mistral-ocr" per page (a count known only once parsed); with no engine named, a
  // model that takes files natively gets the file as it is, any other may have it OCR'd.
  const CallPricer p(catalog(), {});
  const auto with = [](const char* plugins) {
    return request_shape(std::string(R"({)") + plugins +
                         R"("messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "u"}}]}]})");
  };
  std::string why;
  CHECK_FALSE(p.worst_case("x/cheap", with(""), 10, 1000, &why));  // no engine, no native file input
  CHECK(why.find("mistral-ocr") != std::string::npos);
  CHECK(why.find("cloudflare-ai") != std::string::npos);
  CHECK(with("").files == 1);
  for (const char* free_engine : {"cloudflare-ai", "pdf-text", "native"}) {
    INFO(free_engine);
    const std::string plugins =
        std::string(R"("plugins": [{"id": "file-parser", "pdf": {"engine": ")") + free_engine + R"("}}], )";
    CHECK(p.worst_case("x/cheap", with(plugins.c_str()), 10, 1000, &why) == usd("0.003"));  // the window
  }
  // the model takes files natively: no engine needed, but the OCR engine is still refused
  CHECK(p.worst_case("f/files", with(""), 10, 1000, &why) == usd("0.003"));
  why.clear();
  CHECK_FALSE(p.worst_case("f/files", with(R"("plugins": [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}], )"),
                           10, 1000, &why));
  CHECK(why.find("per page") != std::string::npos);
  CHECK_FALSE(p.worst_case("x/cheap", with(R"("plugins": [{"id": "file-parser", "pdf": {"engine": "new-ocr"}}], )"),
                           10, 1000, &why));
  CHECK(why.find("new-ocr") != std::string::npos);
  // a disabled plugin names no engine; a router's pick is not known; a fallback list is bounded by
  // every member
  CHECK_FALSE(p.worst_case(
      "x/cheap", with(R"("plugins": [{"id": "file-parser", "enabled": false, "pdf": {"engine": "cloudflare-ai"}}], )"), 10,
      1000, &why));
  CHECK_FALSE(p.worst_case("openrouter/auto", with(""), 10, 1000, &why));
  CHECK_FALSE(p.worst_case("f/files", with(R"("models": ["f/files", "x/cheap"], )"), 10, 1000, &why));
  CHECK(why.find("x/cheap") != std::string::npos);
  // an engine that is not a string: which fee applies cannot be told
  CHECK_FALSE(p.worst_case("f/files", with(R"("plugins": [{"id": "file-parser", "pdf": {"engine": 7}}], )"), 10, 1000, &why));
  CHECK_FALSE(p.worst_case("f/files", with(R"("plugins": [{"id": "file-parser", "pdf": "native"}], )"), 10, 1000, &why));
  // a direct provider parses nothing for a fee: its prices bound the file as tokens
  CHECK(shaped_worst_case(catalog().find("x/cheap")->pricing, with(""), 10, 1000, 1000, "x/cheap", &why) ==
        usd("0.003"));
}

TEST_CASE("a reasoning budget is reserved as output on top of max_tokens", "[call_pricing]") {
  // Whether OpenRouter raises max_tokens to fit reasoning.max_tokens is not documented: the
  // reservation assumes it may.
  const CallPricer p(catalog(), {});
  CHECK(worst(p, "x/cheap", request_shape(R"({"reasoning": {"max_tokens": 500}})")) == usd("0.003") + usd("0.001"));
  CHECK(worst(p, "x/cheap", request_shape(R"({"reasoning": {"effort": "high"}})")) == usd("0.003"));
  std::string why;
  CHECK_FALSE(p.worst_case("x/cheap", request_shape(R"({"reasoning": {"max_tokens": "lots"}})"), 10, 10, &why));
  CHECK(why.find("reasoning.max_tokens") != std::string::npos);
  CHECK_FALSE(p.worst_case("x/cheap", request_shape(R"({"reasoning": {"max_tokens": -1}})"), 10, 10, &why));
  const auto huge = p.worst_case("x/cheap", request_shape(R"({"reasoning": {"max_tokens": 9223372036854775807}})"), 10,
                                 1000, &why);
  CHECK((!huge || *huge > usd("1000")));  // saturates, never wraps small
}

TEST_CASE("audio is reserved at the window and at the model's audio price", "[call_pricing]") {
  // An input_audio part's tokens are billed at the `audio` price (voxtral: 1,000x its text price)
  // and known only upstream (a low-bitrate codec packs an hour into kilobytes).
  const ModelCatalog voices = ModelCatalog::from_json(R"({"data": [
    {"id": "x/cheap", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "a/voice", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002", "audio": "0.0001"}}
  ]})");
  const CallPricer p(voices, {});
  const RequestShape shape = request_shape(
      R"({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]})");
  CHECK(shape.audio_parts == 1);
  CHECK(shape.unsized_parts == 1);
  std::string why;
  // 1000-token window at $100/M + 1000 output tokens at $2/M, whatever few tokens were counted
  CHECK(p.worst_case("a/voice", shape, 10, 1000, &why) == usd("0.102"));
  CHECK(p.worst_case("x/cheap", shape, 10, 1000, &why) == usd("0.003"));  // no audio price: the text price
  CHECK(shaped_worst_case(voices.find("a/voice")->pricing, shape, 10, 1000, 1000, "a/voice", &why) == usd("0.102"));
  // booked at the audio price of the audio tokens reported
  UsageCounts used;
  used.prompt_tokens = 100;
  used.audio_tokens = 90;
  CHECK(p.price("a/voice", "", shape, used) == usd("0.00901"));  // 10 x $1/M + 90 x $100/M
}

TEST_CASE("an OpenRouter preset is refused, even with a price for unknown models", "[call_pricing]") {
  // A preset (`"preset": "x"`, `"model": "@preset/x"`, `"model": "a/b@preset/x"`) brings its own
  // model, fallbacks, server tools and parameters from OpenRouter's side: nothing here bounds them.
  PricingPolicy policy;
  policy.unpriced_model_price = PriceSet{};
  policy.unpriced_model_price->prompt = usd("0.001");
  policy.unpriced_model_price->completion = usd("0.001");
  const CallPricer p(catalog(), policy);
  std::string why;
  CHECK_FALSE(p.worst_case("x/cheap", request_shape(R"({"preset": "dear-one"})"), 10, 10, &why));
  CHECK(why.find("preset") != std::string::npos);
  for (const char* id : {"@preset/dear-one", "x/cheap@preset/dear-one"}) {
    INFO(id);
    why.clear();
    CHECK_FALSE(p.worst_case(id, RequestShape{}, 10, 10, &why));
    CHECK(why.find("preset") != std::string::npos);
  }
  CHECK_FALSE(p.worst_case("x/cheap", request_shape(R"({"models": ["x/cheap", "@preset/dear-one"]})"), 10, 10, &why));
  CHECK(p.worst_case("acme/unknown", RequestShape{}, 10, 10, &why));  // the policy still prices plain unknown ids
  CHECK(request_shape(R"({"preset": null})").unbounded.empty());
}
