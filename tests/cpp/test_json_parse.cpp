// The shared JSON guard (orroute/json.h) and every call site class that parses outside bytes:
// hostile nesting (a million levels, closed or not) is refused cleanly, never by a stack overflow.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>

#include "orroute/catalog/catalog.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/engine.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"
#include "orroute/provider/json_read.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/select/quality_priors.h"
#include "orroute/tokenizer/token_count.h"
#include "orroute/verify/json_check.h"

using orroute::JsonParse;
using orroute::parse_json_text;

namespace {

constexpr size_t kMillion = 1'000'000;

std::string arrays(size_t depth, bool closed = true) {
  return std::string(depth, '[') + (closed ? std::string(depth, ']') : std::string());
}

std::string objects(size_t depth) {
  std::string s;
  s.reserve(depth * 6);
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(depth, '}');
  return s;
}

}  // namespace

TEST_CASE("the shared parser refuses a million levels of nesting without recursing", "[json]") {
  rapidjson::Document doc;
  CHECK(parse_json_text(arrays(kMillion), doc) == JsonParse::kTooDeep);
  CHECK(doc.IsNull());
  CHECK(parse_json_text(arrays(kMillion, false), doc) == JsonParse::kTooDeep);
  CHECK(parse_json_text(objects(kMillion), doc) == JsonParse::kTooDeep);
  CHECK(parse_json_text(std::string(20'000'000, '['), doc) == JsonParse::kTooDeep);
  // Without a depth limit the parse is still iterative: refused as invalid, not a crash.
  CHECK(parse_json_text(arrays(kMillion, false), doc, orroute::kMaxJsonBytes, std::numeric_limits<int>::max()) ==
        JsonParse::kInvalid);
}

TEST_CASE("the shared parser accepts nesting up to the limit and counts only real brackets", "[json]") {
  rapidjson::Document doc;
  REQUIRE(parse_json_text(arrays(127), doc) == JsonParse::kOk);
  CHECK(doc.IsArray());
  CHECK(parse_json_text(objects(127), doc) == JsonParse::kOk);
  CHECK(parse_json_text(arrays(orroute::kMaxJsonDepth), doc) == JsonParse::kOk);
  CHECK(parse_json_text(arrays(orroute::kMaxJsonDepth + 1), doc) == JsonParse::kTooDeep);
  // Brackets inside strings (escaped quotes included) do not count.
  const std::string in_string = "{\"s\":\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}";
  REQUIRE(parse_json_text(in_string, doc) == JsonParse::kOk);
  CHECK(doc["s"].GetStringLength() == 2001);
  CHECK(parse_json_text("{\"a\":", doc) == JsonParse::kInvalid);
  CHECK(doc.IsNull());
  CHECK(parse_json_text("[1,2]", doc, 3) == JsonParse::kTooLarge);
  CHECK(std::string(orroute::json_parse_reason(JsonParse::kTooDeep)) == "nested too deeply");
}

TEST_CASE("upstream error bodies nested a million deep give a plain HTTP error", "[json][net]") {
  const auto err = orroute::error_from_response(500, orroute::Headers{}, std::string(20'000'000, '['), 0);
  CHECK(err.status == 500);
  CHECK(err.message.rfind("HTTP 500: [[[", 0) == 0);
  const auto err2 = orroute::error_from_response(502, orroute::Headers{}, "{\"error\":" + objects(kMillion) + "}", 0);
  CHECK(err2.status == 502);
}

TEST_CASE("files and tables nested a million deep are parse errors", "[json][catalog]") {
  CHECK_THROWS_AS(orroute::ModelCatalog::from_json(objects(kMillion)), orroute::ParseError);
  CHECK_THROWS_WITH(orroute::ModelCatalog::from_json(arrays(kMillion, false)), Catch::Contains("nested too deeply"));
  CHECK_THROWS_AS(orroute::QualityPriors::from_json(arrays(kMillion)), orroute::ParseError);
  CHECK_THROWS_WITH(orroute::ProviderPrices::from_litellm_json(objects(kMillion), "anthropic"),
                    Catch::Contains("nested too deeply"));
}

TEST_CASE("requests nested a million deep are refused by every request reader", "[json][engine]") {
  CHECK_THROWS_AS(orroute::count_chat_tokens_json("openai/gpt-4o", arrays(kMillion), ""), orroute::ParseError);
  CHECK_THROWS_AS(orroute::count_chat_tokens_json("openai/gpt-4o", "[]", arrays(kMillion)), orroute::ParseError);
  CHECK(orroute::request_shape("{\"models\":" + arrays(kMillion) + "}").models.empty());
  CHECK_THROWS_WITH(orroute::chat_attempt_body(objects(kMillion), "m", false, {}), Catch::Contains("nested too deeply"));
  const std::string ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"x\":" + arrays(100) + "}";
  CHECK(orroute::chat_attempt_body(ok, "m", false, {}).find("\"model\":\"m\"") != std::string::npos);
}

TEST_CASE("provider adapters share the guard and verify parses iteratively", "[json][provider][verify]") {
  rapidjson::Document doc;
  CHECK_FALSE(orroute::parse_json(arrays(kMillion), doc));
  CHECK(orroute::parse_json(arrays(127), doc));
  CHECK(orroute::check_json_reply(std::string(20'000'000, '[')).outcome == orroute::VerdictOutcome::kFail);
  CHECK(orroute::check_json_reply(arrays(kMillion)).outcome == orroute::VerdictOutcome::kPass);
}

TEST_CASE("retry delays from absurd or non-finite seconds convert without undefined behaviour", "[json][net]") {
  const double inf = std::numeric_limits<double>::infinity();
  const orroute::RetryPolicy open{3, 0.5, inf, inf};
  CHECK(open.delay(0, 1e300, 0.5)->count() == 1'000'000'000'000);
  CHECK(open.delay(0, inf, 0.5)->count() == 1'000'000'000'000);
  CHECK_FALSE(open.delay(0, std::nan(""), 0.5).has_value());
  CHECK(open.delay(40, std::nullopt, 0.999)->count() > 0);
  const orroute::RetryPolicy nan_cap{3, 0.5, std::nan(""), 60.0};
  CHECK(nan_cap.delay(2, std::nullopt, 0.5)->count() >= 0);
}

TEST_CASE("every entry point refuses the bytes JSON never holds raw, at their offset", "[json]") {
  // RapidJSON 1.1's fast readers let two through: a control byte 0x1A-0x1F inside a string (its SSE2
  // scan tests up to 0x19) and a NUL after the root (read as the end of the text).
  const auto each_entry = [](const std::string& text, JsonParse want, size_t offset) {
    INFO("text of " << text.size() << " bytes");
    rapidjson::Document doc;
    CHECK(parse_json_text(std::string_view(text), doc) == want);
    if (want == JsonParse::kInvalid) CHECK(doc.GetErrorOffset() == offset);
    CHECK(parse_json_text(text, doc) == want);  // the C-string read
    if (want == JsonParse::kInvalid) CHECK(doc.GetErrorOffset() == offset);
    std::string copy = text;
    CHECK(orroute::parse_json_in_place(copy, doc) == want);
    if (want == JsonParse::kInvalid) CHECK(doc.GetErrorOffset() == offset);
    CHECK(parse_json_text(std::string_view(text), doc, orroute::kMaxJsonBytes, 1 << 20) == want);  // iterative
  };
  // Long strings, so the byte falls in a sixteen-byte block the SSE2 scan reads whole.
  const std::string pad(40, 'a');
  for (int byte = 0x01; byte < 0x20; ++byte) {
    const std::string head = "{\"k\":\"" + pad;
    const std::string text = head + static_cast<char>(byte) + pad + "\"}";
    INFO("byte " << byte);
    each_entry(text, JsonParse::kInvalid, head.size());
    // Escaped, the same byte is fine.
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
    each_entry(head + escaped + pad + "\"}", JsonParse::kOk, 0);
  }
  // A NUL after the root, between values, inside a string: refused where it lies.
  const std::string root = R"({"k":")" + pad + R"("})";
  each_entry(root + std::string(1, '\0') + R"({"x":1})", JsonParse::kInvalid, root.size());
  each_entry(root + std::string(1, '\0'), JsonParse::kInvalid, root.size());
  each_entry(std::string(R"({"k":)") + '\0' + "1}", JsonParse::kInvalid, 5);
  each_entry(R"({"k":")" + pad + '\0' + pad + R"("})", JsonParse::kInvalid, 6 + pad.size());
  // The whitespace JSON allows raw still parses; so does text with none of these bytes.
  each_entry("\t{\r\n\"k\" : [1,\n2]}\n", JsonParse::kOk, 0);
  each_entry(root, JsonParse::kOk, 0);
}

TEST_CASE("an empty view with no buffer is refused as an empty text is, by every entry point", "[json]") {
  // std::string_view{} has a null data(): nothing may pass it where a buffer is required (memchr's
  // argument is declared never null; the sanitized build stops there).
  rapidjson::Document doc;
  CHECK(parse_json_text(std::string_view{}, doc) == JsonParse::kInvalid);
  CHECK(parse_json_text(std::string_view{}, doc, orroute::kMaxJsonBytes, 1 << 20) == JsonParse::kInvalid);
  CHECK(parse_json_text(std::string_view{}, doc, 0) == JsonParse::kInvalid);
  CHECK(orroute::json_depth_ok(std::string_view{}, 0));
  CHECK(orroute::json_depth_ok(std::string_view{}, -1));
}

TEST_CASE("the depth scan skips strings by their real end: escaped quotes and backslash runs",
          "[json]") {
  using orroute::json_depth_ok;
  // Brackets inside strings never count, whatever escapes precede the closing quote.
  CHECK(json_depth_ok(R"(["[[[[", "\"[[[[\"", "\\", "\\\"[[[["])", 1));
  // An even run of backslashes before a quote ends the string: the brackets after it count.
  CHECK_FALSE(json_depth_ok(R"(["a\\\\", [[ ]]])", 2));
  CHECK(json_depth_ok(R"(["a\\\\", [[ ]]])", 3));
  // An odd run escapes the quote: the string goes on and its brackets do not count.
  CHECK(json_depth_ok(R"(["a\\\" [[[[ ", 1])", 1));
  // An unterminated string hides nothing after it, and nothing before it is forgotten.
  CHECK(json_depth_ok(R"([["abc)", 2));
  CHECK_FALSE(json_depth_ok(R"([[["abc)", 2));
  // Against a plain byte-by-byte reference on random texts of quotes, backslashes and brackets.
  const auto reference = [](std::string_view t, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (const char c : t) {
      if (in_string) {
        if (escaped) escaped = false;
        else if (c == '\\') escaped = true;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '[' || c == '{') {
        if (++depth > max_depth) return false;
      } else if (c == ']' || c == '}') {
        --depth;
      }
    }
    return true;
  };
  uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  const char alphabet[] = {'"', '\\', '[', ']', '{', '}', 'a', ' '};
  // Short and long texts (the count of opening brackets that settles most texts at once reads
  // 16 bytes a step), shallow and deep limits.
  for (int round = 0; round < 20000; ++round) {
    std::string t(next() % (round % 2 ? 40 : 120), ' ');
    for (char& c : t) c = alphabet[next() % sizeof alphabet];
    const int max_depth = static_cast<int>(next() % (round % 3 ? 5 : 40));
    INFO(t << " max_depth " << max_depth);
    REQUIRE(json_depth_ok(t, max_depth) == reference(t, max_depth));
  }
  // Long texts: their brackets are counted in sums of 512 bytes; a limit just under, at and over
  // the count, brackets nested or in a row, near a sum's end.
  for (const size_t size : {511, 512, 513, 1500, 4099}) {
    for (const int opens : {3, 40, 128, 129}) {
      std::string t(size, ' ');
      for (int k = 0; k < opens; ++k) t[(static_cast<size_t>(next()) % (size - 1))] = k % 2 ? '[' : '{';
      for (const int max_depth : {opens - 1, opens, opens + 1, 128}) {
        INFO("size " << size << " opens " << opens << " max_depth " << max_depth);
        REQUIRE(json_depth_ok(t, max_depth) == reference(t, max_depth));
      }
    }
  }
}
