#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "orroute/catalog/catalog.h"
#include "orroute/error.h"
#include "orroute/provider/model_map.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/provider/provider.h"

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string& litellm() {
  static const std::string text = read(ORROUTE_SOURCE_DIR "/tests/data/litellm_model_prices_subset.json");
  return text;
}

const orroute::ModelCatalog& catalog() {
  static const auto c = orroute::ModelCatalog::from_file(ORROUTE_SOURCE_DIR "/python/orroute/data/openrouter_models.json");
  return c;
}

}  // namespace

TEST_CASE("price book reads a provider's prices exactly from LiteLLM's table", "[provider]") {
  const auto book = orroute::ProviderPrices::from_litellm_json(litellm(), "anthropic");
  REQUIRE(book.size() > 10);
  const auto* p = book.find("claude-sonnet-4-5");
  REQUIRE(p != nullptr);
  REQUIRE(p->base.prompt.to_string() == "0.000003");
  REQUIRE(p->base.completion.to_string() == "0.000015");
  REQUIRE(p->base.input_cache_read->to_string() == "0.0000003");
  REQUIRE(p->base.input_cache_write->to_string() == "0.00000375");
  REQUIRE(p->base.input_cache_write_1h->to_string() == "0.000006");
  // "above 200k" prices are a tier from 200,001 prompt tokens.
  REQUIRE(p->tiers.size() == 1);
  REQUIRE(*p->tiers[0].min_prompt_tokens == 200'001);
  REQUIRE(p->tiers[0].prices.prompt.to_string() == "0.000006");
  REQUIRE(p->tiers[0].prices.completion.to_string() == "0.0000225");
  REQUIRE(p->for_call(200'000, std::nullopt).prompt.to_string() == "0.000003");
  REQUIRE(p->for_call(200'001, std::nullopt).prompt.to_string() == "0.000006");

  SECTION("an exact call cost at the provider's prices") {
    orroute::UsageCounts u;
    u.prompt_tokens = 100'000;
    u.completion_tokens = 100'000;
    u.cached_tokens = 50'000;
    // 50k * 3e-6 + 50k * 3e-7 + 100k * 1.5e-5 = 0.15 + 0.015 + 1.5
    REQUIRE(orroute::price_call(*p, u, "claude-sonnet-4-5").to_string() == "1.665");
    // Past 200k prompt tokens every price is the tier's: 500k * 6e-6 + 500k * 6e-7 + 1M * 2.25e-5
    u.prompt_tokens = 1'000'000;
    u.completion_tokens = 1'000'000;
    u.cached_tokens = 500'000;
    REQUIRE(orroute::price_call(*p, u, "claude-sonnet-4-5").to_string() == "25.8");
  }
  SECTION("prefixed keys lose the provider prefix") {
    const auto gemini = orroute::ProviderPrices::from_litellm_json(litellm(), "gemini");
    REQUIRE(gemini.find("gemini-2.5-flash") != nullptr);
    REQUIRE(gemini.find("gemini-2.5-flash")->base.prompt.to_string() == "0.0000003");
    REQUIRE(gemini.find("gemini/gemini-2.5-flash") == nullptr);
  }
  SECTION("bad prices are skipped and named; junk is a parse error") {
    const auto b = orroute::ProviderPrices::from_litellm_json(
        R"({"x":{"litellm_provider":"p","input_cost_per_token":"abc","output_cost_per_token":1},
            "y":{"litellm_provider":"p","input_cost_per_token":1e-6,"output_cost_per_token":2e-6},
            "z":{"litellm_provider":"p","mode":"embedding","input_cost_per_token":1e-6,"output_cost_per_token":0},
            "q":{"litellm_provider":"p","input_cost_per_token":-1,"output_cost_per_token":0}})",
        "p");
    REQUIRE(b.size() == 1);
    REQUIRE(b.find("y")->base.completion.to_string() == "0.000002");
    REQUIRE(b.warnings().size() == 2);
    REQUIRE_THROWS_AS(orroute::ProviderPrices::from_litellm_json("[1]", "p"), orroute::ParseError);
    REQUIRE_THROWS_AS(orroute::ProviderPrices::from_litellm_json(std::string(500, '['), "p"), orroute::ParseError);
  }
}

TEST_CASE("model map derives each provider's name for a model from the catalog and price list", "[provider]") {
  const auto anthropic = orroute::ProviderPrices::from_litellm_json(litellm(), "anthropic");
  const auto openai = orroute::ProviderPrices::from_litellm_json(litellm(), "openai");
  const auto gemini = orroute::ProviderPrices::from_litellm_json(litellm(), "gemini");
  orroute::ModelMap map;
  map.set("anthropic/claude-haiku-4.5", "anthropic", "my-haiku-alias");  // an override set first wins
  REQUIRE(map.derive(catalog(), {}, "openrouter", orroute::ProviderKind::kOpenRouter) > 300);
  REQUIRE(map.derive(catalog(), anthropic, "anthropic", orroute::ProviderKind::kAnthropic) >= 5);
  map.derive(catalog(), openai, "openai", orroute::ProviderKind::kOpenAI);
  map.derive(catalog(), gemini, "google", orroute::ProviderKind::kGemini);

  REQUIRE(map.native("anthropic/claude-sonnet-4.5", "openrouter") == "anthropic/claude-sonnet-4.5");
  REQUIRE(map.native("anthropic/claude-sonnet-4.5", "anthropic") == "claude-sonnet-4-5");
  REQUIRE(map.native("anthropic/claude-haiku-4.5", "anthropic") == "my-haiku-alias");
  REQUIRE(map.native("openai/gpt-4o", "openai") == "gpt-4o");
  REQUIRE(map.native("google/gemini-2.5-flash", "google") == "gemini-2.5-flash");
  REQUIRE(map.native("openai/gpt-4o", "anthropic") == std::nullopt);  // Anthropic does not serve it
  REQUIRE(map.native("anthropic/claude-sonnet-4.5:batch", "anthropic") == std::nullopt);
  REQUIRE(map.model_for("anthropic", "claude-sonnet-4-5") == "anthropic/claude-sonnet-4.5");
  SECTION("a later override replaces the derived name in both directions") {
    map.set("anthropic/claude-sonnet-4.5", "anthropic", "claude-sonnet-4-5-20250929");
    REQUIRE(map.native("anthropic/claude-sonnet-4.5", "anthropic") == "claude-sonnet-4-5-20250929");
    REQUIRE(map.model_for("anthropic", "claude-sonnet-4-5") == std::nullopt);
    REQUIRE(map.model_for("anthropic", "claude-sonnet-4-5-20250929") == "anthropic/claude-sonnet-4.5");
  }
}

TEST_CASE("provider config: kinds, defaults, auth headers and Azure deployment paths", "[provider]") {
  using orroute::ProviderKind;
  REQUIRE(orroute::parse_provider_kind("anthropic") == ProviderKind::kAnthropic);
  REQUIRE(orroute::parse_provider_kind("openai-compatible") == ProviderKind::kOpenAICompatible);
  REQUIRE_THROWS_AS(orroute::parse_provider_kind("bedrock"), orroute::InvalidArgument);
  REQUIRE(orroute::wire_format(ProviderKind::kAnthropic) == orroute::WireFormat::kAnthropicMessages);
  REQUIRE(orroute::wire_format(ProviderKind::kGemini) == orroute::WireFormat::kChatCompletions);

  orroute::ProviderConfig a;
  a.name = "anthropic";
  a.kind = ProviderKind::kAnthropic;
  a.api_keys = {"sk-ant-test-1234567890"};
  const auto ca = orroute::client_config(a);
  REQUIRE(ca.base_url == "https://api.anthropic.com/v1");
  REQUIRE(ca.auth_header == "x-api-key");
  REQUIRE(ca.auth_prefix.empty());
  REQUIRE(ca.headers.get("anthropic-version") == "2023-06-01");
  REQUIRE(orroute::chat_path(a, "claude-sonnet-4-5") == "/messages");

  orroute::ProviderConfig z;
  z.name = "azure-eu";
  z.kind = ProviderKind::kAzure;
  REQUIRE_THROWS_AS(orroute::client_config(z), orroute::InvalidArgument);  // no default URL
  z.base_url = "https://my-resource.openai.azure.com";
  z.api_version = "2024-10-21";
  REQUIRE(orroute::client_config(z).auth_header == "api-key");
  REQUIRE(orroute::chat_path(z, "gpt 4o/prod") ==
          "/openai/deployments/gpt%204o%2Fprod/chat/completions?api-version=2024-10-21");

  orroute::ProviderConfig g;
  g.name = "google";
  g.kind = ProviderKind::kGemini;
  REQUIRE(orroute::client_config(g).base_url == "https://generativelanguage.googleapis.com/v1beta/openai");
  REQUIRE(orroute::client_config(g).auth_header == "Authorization");

  SECTION("header injection and bad values are refused without showing keys") {
    orroute::ProviderConfig bad = a;
    bad.api_keys = {"sk-ant-secret\r\nX-Evil: 1"};
    try {
      orroute::validate(bad);
      FAIL("accepted a key with a line break");
    } catch (const orroute::InvalidArgument& e) {
      REQUIRE(std::string(e.what()).find("secret") == std::string::npos);
    }
    bad = a;
    bad.headers.add("X-Ok", "a\nb");
    REQUIRE_THROWS_AS(orroute::validate(bad), orroute::InvalidArgument);
    bad = a;
    bad.base_url = "ftp://x";
    REQUIRE_THROWS_AS(orroute::validate(bad), orroute::InvalidArgument);
  }
}
