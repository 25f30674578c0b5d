// What a prompt may be billed, per model family (cost/prompt_bounds.h): an image of unknown size
// at its model's most, reserved and audited on every path (the catalog's and a direct provider's
// prices), and a 32k byte-fallback vocabulary's text bounded by its bytes.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "orroute/cost/prompt_bounds.h"
#include "orroute/cost/usage_audit.h"
#include "orroute/net/protocol.h"
#include "orroute/tokenizer/token_count.h"

using namespace orroute;

namespace {

Money usd(const char* s) { return Money::parse(s); }

// gpt-4o-mini's prices and window; a vision model no rule covers; a Mistral model.
const ModelCatalog& catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "openai/gpt-4o-mini", "context_length": 128000,
     "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
    {"id": "meta-llama/llama-4-maverick", "context_length": 100000,
     "pricing": {"prompt": "0.0000002", "completion": "0.0000008"}},
    {"id": "mistralai/mistral-7b-instruct", "context_length": 32768,
     "pricing": {"prompt": "0.0000001", "completion": "0.0000001"}}
  ]})");
  return cat;
}

RequestShape with_images(const std::string& parts) {
  return request_shape(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "What is it?"},)" +
                       parts + "]}]}");
}

const char* const kImage = R"({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})";
const char* const kLowImage = R"({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}})";

AuditedCharge charge(const std::string& model, const RequestShape& shape, int64_t reported_prompt,
                     int64_t counted_prompt) {
  static const CallPricer pricer(catalog(), {});
  const std::string usage = R"({"prompt_tokens": )" + std::to_string(reported_prompt) + R"(, "completion_tokens": 20})";
  rapidjson::Document d;
  d.Parse(usage.c_str(), usage.size());
  const Usage u = parse_usage(d);
  ChargeInput in;
  in.requested = model;
  in.served = model;
  in.usage = &u;
  in.shape = &shape;
  in.counted_prompt_tokens = counted_prompt;
  in.counted_completion_tokens = 20;
  in.context_length = catalog().find(model)->context_length;
  in.reserved = usd("1");
  return audit_charge(pricer, in);
}

}  // namespace

TEST_CASE("each model family's most for an image of unknown size", "[prompt_bounds]") {
  // OpenAI's tile formula is largest at 8 tiles (768x2048): nothing the formula sizes exceeds it
  CHECK(prompt_bounds("openai/gpt-4o").image_tokens == 85 + 8 * 170);
  for (int32_t w = 64; w <= 8192; w += 64) {
    for (int32_t h : {1, 100, 512, 768, 1000, 2048, 4096, 9000}) {
      REQUIRE(image_tokens("high", w, h) <= 1445);
    }
  }
  // gpt-4o-mini bills an image ~33x gpt-4o's tokens (the same dollars at its price)
  for (const char* id : {"openai/gpt-4o-mini", "gpt-4o-mini", "openai/gpt-4o-mini:batch",
                         "openai/gpt-4o-mini@openai", "openai/gpt-4o-mini-2024-07-18", "OpenAI/GPT-4o-Mini"}) {
    INFO(id);
    CHECK(prompt_bounds(id).image_tokens == 2833 + 8 * 5667);  // 48,169
    CHECK(prompt_bounds(id).low_detail_image_tokens == 2833);
  }
  CHECK(prompt_bounds("openai/gpt-4o-2024-08-06").image_tokens == 1445);
  CHECK(prompt_bounds("openai/gpt-4.1-nano").image_tokens == 3779);  // 1536 patches x 2.46
  CHECK(prompt_bounds("openai/gpt-4.1-nano").low_detail_image_tokens == 3779);  // detail changes nothing
  CHECK(prompt_bounds("openai/o4-mini").image_tokens == 2642);
  CHECK(prompt_bounds("openai/gpt-5").image_tokens == 70 + 8 * 140);
  CHECK_FALSE(prompt_bounds("openai/gpt-5.1").image_tokens);  // not gpt-5's row: no documented rule
  // rev23: OpenRouter's composites of GPT-5 (Mini) and GPT Image 1 (Mini) were gpt-5's row (1,190)
  CHECK_FALSE(prompt_bounds("openai/gpt-5-image").image_tokens);
  CHECK_FALSE(prompt_bounds("openai/gpt-5-image-mini").image_tokens);
  // Claude: ~1,600 and its padding before Opus 4.7, 4,784 from it; both spellings of a version
  for (const char* id : {"anthropic/claude-sonnet-4.5", "claude-sonnet-4-5", "anthropic/claude-3.5-sonnet"}) {
    CHECK(prompt_bounds(id).image_tokens == 1685);
  }
  for (const char* id : {"anthropic/claude-opus-4.7", "claude-opus-4-7", "anthropic/claude-opus-4.7-fast",
                         "anthropic/claude-sonnet-5"}) {
    CHECK(prompt_bounds(id).image_tokens == 4784);
  }
  CHECK(prompt_bounds("google/gemini-2.5-pro").image_tokens == 16 * 258);
  CHECK_FALSE(prompt_bounds("meta-llama/llama-4-maverick").image_tokens);
  CHECK_FALSE(prompt_bounds("x/m").image_tokens);
  // the text bound: byte fallback for 32k vocabularies
  CHECK(prompt_bounds("mistralai/mistral-7b-instruct").text == TextBound::kUtf8Bytes);
  CHECK(prompt_bounds("meta-llama/llama-2-70b-chat").text == TextBound::kUtf8Bytes);
  CHECK(prompt_bounds("meta-llama/llama-3.1-8b-instruct").text == TextBound::kTwiceCount);
  CHECK(prompt_bounds("openai/gpt-4o").text == TextBound::kTwiceCount);
}

TEST_CASE("a Claude version no row names takes the larger bound; snapshots keep their version's", "[prompt_bounds]") {
  // A row is a version and its dated snapshots, not a later minor version of it: Opus 4.9 is not
  // Opus 4's 1,685 (rev23: the "claude-opus-4" row caught every later Opus 4), and fails closed at
  // 4,784, as every Claude from Opus 4.7 on.
  for (const char* id : {"claude-opus-4-9", "anthropic/claude-opus-4.9", "anthropic/claude-opus-4.10",
                         "claude-sonnet-4-7", "anthropic/claude-sonnet-4.7", "anthropic/claude-haiku-4.6",
                         "claude-opus-4-7-20260101", "claude-3-9-sonnet", "claude-3-8-sonnet",
                         "anthropic/claude-sonnet-4.6.1", "anthropic/claude-opus-6", "claude-2",
                         "anthropic/claude-opus-4.8-fast", "claude-opus-5-1", "anthropic/claude-fable-5"}) {
    INFO(id);
    CHECK(prompt_bounds(id).image_tokens == 4784);
  }
  // the versions before Opus 4.7, in both spellings and as dated snapshots, keep the standard rule
  for (const char* id : {"anthropic/claude-opus-4", "claude-opus-4-20250514", "claude-opus-4-0",
                         "anthropic/claude-opus-4.1", "claude-opus-4-1-20250805", "anthropic/claude-opus-4.5",
                         "anthropic/claude-opus-4.6:batch", "anthropic/claude-sonnet-4", "claude-sonnet-4-20250514",
                         "claude-sonnet-4-0", "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5-20250929",
                         "anthropic/claude-sonnet-4.6", "anthropic/claude-haiku-4.5", "claude-haiku-4-5-20251001",
                         "anthropic/claude-3-haiku", "claude-3-haiku-20240307", "claude-3-opus-20240229",
                         "anthropic/claude-3-opus", "anthropic/claude-3.5-haiku", "claude-3-5-sonnet-20241022",
                         "anthropic/claude-3.7-sonnet", "anthropic/claude-3.7-sonnet:thinking"}) {
    INFO(id);
    CHECK(prompt_bounds(id).image_tokens == 1685);
  }
}

TEST_CASE("a byte-fallback vocabulary's text is reserved at its bytes, within the window", "[prompt_bounds]") {
  // rev23: the audit believed such a count up to the bytes; the reservation held our count
  const RequestShape shape = request_shape(R"({"messages": [{"role": "user", "content": "abcdefgh"}]})");
  CHECK(text_prompt_tokens("openai/gpt-4o", shape, 10, 128000) == 10);
  CHECK(text_prompt_tokens("mistralai/mistral-7b-instruct", shape, 10, 32768) == 8 + kPromptOverheadTokens);
  CHECK(text_prompt_tokens("mistralai/mistral-7b-instruct", shape, 600, 32768) == 600);
  CHECK(text_prompt_tokens("mistralai/mistral-7b-instruct", shape, 10, 300) == 300);  // what the window holds
  CHECK(text_prompt_tokens("mistralai/mistral-7b-instruct", shape, 10, 0) == 8 + kPromptOverheadTokens);
}

TEST_CASE("Qwen VL and Pixtral images are bounded by their documented most", "[prompt_bounds]") {
  for (const char* id : {"qwen/qwen2.5-vl-72b-instruct", "qwen/qwen-2.5-vl-7b-instruct", "qwen/qwen3-vl-235b-a22b-instruct",
                         "qwen/qwen-vl-max", "qwen/qwen-vl-plus:free", "qwen2-vl-7b-instruct"}) {
    INFO(id);
    CHECK(prompt_bounds(id).image_tokens == 16384 + 2);
    CHECK(prompt_bounds(id).low_detail_image_tokens == 16384 + 2);
  }
  for (const char* id : {"mistralai/pixtral-12b", "mistralai/pixtral-large-2411"}) {
    INFO(id);
    CHECK(prompt_bounds(id).image_tokens == 64 * 64 + 64);
    CHECK(prompt_bounds(id).text == TextBound::kUtf8Bytes);
  }
  CHECK_FALSE(prompt_bounds("qwen/qwen3-235b-a22b").image_tokens);  // not a VL model
  CHECK_FALSE(prompt_bounds("mistralai/mistral-small-3.2-24b-instruct").image_tokens);
}

TEST_CASE("images in a model's context: its rule, or gpt-4o's where it has none", "[prompt_bounds]") {
  using orroute::ImageParts;
  CHECK(image_context_tokens("openai/gpt-4o", ImageParts{}) == 0);
  CHECK(image_context_tokens("x/unknown", ImageParts{}) == 0);
  CHECK(image_context_tokens("openai/gpt-4o", ImageParts{10, 0}) == 14450);
  CHECK(image_context_tokens("openai/gpt-4o-mini", ImageParts{10, 0}) == 481690);
  CHECK(image_context_tokens("openai/gpt-4o-mini", ImageParts{10, 4}) == 6 * 48169 + 4 * 2833);
  CHECK(image_context_tokens("anthropic/claude-opus-4.9", ImageParts{2, 0}) == 2 * 4784);
  // no rule (the reservation holds the window): gpt-4o's figures, for fitting only
  CHECK(image_context_tokens("meta-llama/llama-4-maverick", ImageParts{3, 1}) == 2 * 1445 + 85);
  CHECK(image_context_tokens("openai/gpt-5.1", ImageParts{1, 0}) == 1445);
  CHECK(image_context_tokens("x/unknown", ImageParts{2, 9}) == 2 * 85);  // "low" clamped to the images
}

TEST_CASE("a request's images are bounded on each model by its rule", "[prompt_bounds]") {
  const RequestShape two = with_images(std::string(kImage) + "," + kLowImage);
  CHECK(two.images == 2);
  CHECK(two.low_detail_images == 1);
  CHECK(image_prompt_tokens("openai/gpt-4o-mini", two) == 48169 + 2833);
  CHECK(image_prompt_tokens("openai/gpt-4o", two) == 1445 + 85);
  CHECK_FALSE(image_prompt_tokens("meta-llama/llama-4-maverick", two));
  CHECK(image_prompt_tokens("meta-llama/llama-4-maverick", request_shape(R"({"messages": []})")) == 0);
}

// A gpt-4o-mini request with an image was reserved 1,445 prompt tokens for it (gpt-4o's figure:
// the tokenizer's family), on OpenRouter and at a direct provider alike: gpt-4o-mini may bill 48,169.
TEST_CASE("an image is reserved at what its model may bill for it, at the catalog's and a provider's prices",
          "[prompt_bounds][call_pricing]") {
  const CallPricer pricer(catalog(), {});
  const RequestShape shape = with_images(kImage);
  const int64_t text = 20;  // our count of the text
  // (20 + 48,169) x $0.15/M + 100 x $0.6/M
  const Money expected = usd("0.00722835") + usd("0.00006");
  CHECK(pricer.worst_case("openai/gpt-4o-mini", shape, text, 100, nullptr) == expected);
  const Pricing& direct = catalog().find("openai/gpt-4o-mini")->pricing;
  CHECK(shaped_worst_case(direct, shape, text, 100, 128000, "openai/gpt-4o-mini@openai", nullptr) == expected);
  // no rule for the model's images: its window, as a file's
  CHECK(pricer.worst_case("meta-llama/llama-4-maverick", shape, text, 100, nullptr) ==
        usd("0.02") + usd("0.00008"));  // 100,000 x $0.2/M + 100 x $0.8/M
  // without an image nothing is added
  CHECK(pricer.worst_case("openai/gpt-4o-mini", request_shape(R"({"messages": []})"), text, 100, nullptr) ==
        usd("0.000003") + usd("0.00006"));
}

TEST_CASE("reported prompt tokens are believed up to our count's bound plus the images' most", "[prompt_bounds][usage_audit]") {
  const RequestShape shape = with_images(kImage);
  // a 1024-pixel square on gpt-4o-mini: 25,501 tokens, booked as reported (not at 2 x 20 + 512)
  const AuditedCharge honest = charge("openai/gpt-4o-mini", shape, 25501 + 20, 20);
  CHECK_FALSE(honest.counts_capped);
  CHECK(honest.counts.prompt_tokens == 25521);
  // past the image's most and our bound: capped there
  const AuditedCharge lying = charge("openai/gpt-4o-mini", shape, 100000, 20);
  CHECK(lying.counts_capped);
  CHECK(lying.counts.prompt_tokens == 2 * 20 + 512 + 48169);
  CHECK(lying.problem == "usage.prompt_tokens 100000 is more than twice the 20 prompt tokens counted, and 512 more, "
                         "and 48169 for its images");
  // a model without a rule for images: the window bounds the prompt
  CHECK_FALSE(charge("meta-llama/llama-4-maverick", shape, 90000, 20).counts_capped);
  // no usage: our count of the text and the image at its most, as reserved
  static const CallPricer pricer(catalog(), {});
  ChargeInput in;
  in.requested = "openai/gpt-4o-mini";
  in.shape = &shape;
  in.counted_prompt_tokens = 20;
  in.context_length = 128000;
  in.reserved = usd("1");
  const AuditedCharge none = audit_charge(pricer, in);
  CHECK(none.source == "tokenizer");
  CHECK(none.counts.prompt_tokens == 20 + 48169);
}

// Real counts (tools/prompt_cap_scripts.py): Mistral 7B's own tokenizer (32,000 tokens, byte
// fallback; Llama 2's counts the same) spells 1,024 no-break spaces in 1,025 tokens, where cl100k
// (our count for Mistral models, x1.10) takes 128; 1,024 halfwidth katakana middle dots in 3,073
// (cl100k: 512). Twice our count and 512 booked 808 and 1,654; the text's bytes bound both.
TEST_CASE("a 32k byte-fallback vocabulary's prompt is believed up to its text's bytes", "[prompt_bounds][usage_audit]") {
  struct Real {
    const char* text;
    int64_t mistral_tokens;
  };
  for (const Real& r : {Real{"\u00a0", 1025}, Real{"\uff65", 3073}}) {
    std::string text;
    for (int i = 0; i < 1024; ++i) text += r.text;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
    const RequestShape shape =
        request_shape(std::string(R"({"messages": [{"role": "user", "content": )") + buf.GetString() + "}]}");
    CHECK(shape.text_bytes == static_cast<int64_t>(text.size()));
    const int64_t ours = count_text_tokens("mistralai/mistral-7b-instruct", text).tokens + 7;
    INFO(r.mistral_tokens << " real tokens, " << ours << " counted");
    CHECK(r.mistral_tokens > 2 * ours + 512);  // what the old cap booked less than the bill
    const AuditedCharge c = charge("mistralai/mistral-7b-instruct", shape, r.mistral_tokens + 7, ours);
    CHECK_FALSE(c.counts_capped);
    CHECK(c.counts.prompt_tokens == r.mistral_tokens + 7);
    // a lie past the bytes is still capped
    CHECK(charge("mistralai/mistral-7b-instruct", shape, 30000, ours).counts.prompt_tokens ==
          static_cast<int64_t>(text.size()) + 512);
  }
}
