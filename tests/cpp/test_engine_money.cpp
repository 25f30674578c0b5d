// The request carries what was reserved: chat_attempt_body sends the reserved max_tokens when the
// caller bounded neither max_tokens nor max_completion_tokens, and validate_chat_request refuses
// output bounds the engine's integers cannot hold, before anything is sent.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "orroute/engine.h"
#include "orroute/error.h"
#include "orroute/net/protocol.h"

using namespace orroute;

namespace {

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str(), s.size());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

void validate(const std::string& body) { validate_chat_request(parse(body)); }

}  // namespace

TEST_CASE("an attempt carries the reserved max_tokens when the caller set no bound", "[engine_money]") {
  const std::string hi = R"({"messages": [{"role": "user", "content": "hi"}])";
  SECTION("absent: the reservation's bound is sent") {
    const auto d = parse(chat_attempt_body(hi + "}", "m/a", false, {}, 512));
    CHECK(d["max_tokens"].GetInt64() == 512);
  }
  SECTION("null counts as absent") {
    const auto d = parse(chat_attempt_body(hi + R"(, "max_tokens": null})", "m/a", false, {}, 64));
    CHECK(d["max_tokens"].GetInt64() == 64);
  }
  SECTION("the caller's own bound is kept") {
    const auto d = parse(chat_attempt_body(hi + R"(, "max_tokens": 7})", "m/a", false, {}, 64));
    CHECK(d["max_tokens"].GetInt64() == 7);
    const auto e =
        parse(chat_attempt_body(hi + R"(, "max_completion_tokens": 9})", "m/a", false, {}, 64));
    CHECK_FALSE(e.HasMember("max_tokens"));
    CHECK(e["max_completion_tokens"].GetInt64() == 9);
  }
  SECTION("no ledger, no bound added") {
    CHECK_FALSE(parse(chat_attempt_body(hi + "}", "m/a", false, {})).HasMember("max_tokens"));
  }
}

TEST_CASE("output bounds that do not fit the engine's integers are refused before sending",
          "[engine_money]") {
  const std::string head = R"({"model": "m/a", "messages": [{"role": "user", "content": "hi"}], )";
  const char* bad = GENERATE("9223372036854775808", "18446744073709551615", "2147483648", "0",
                             "-1", "1.5", "1e300", "\"100\"", "true", "[]");
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    INFO(field << " = " << bad);
    CHECK_THROWS_AS(validate(head + "\"" + field + "\": " + bad + "}"), InvalidArgument);
  }
  CHECK_NOTHROW(validate(head + R"("max_tokens": 2147483647})"));
  CHECK_NOTHROW(validate(head + R"("max_tokens": null})"));
}
