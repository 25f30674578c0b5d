#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "orroute/catalog/pricing.h"
#include "orroute/provider/anthropic_error.h"
#include "orroute/provider/anthropic_reply.h"

TEST_CASE("anthropic reply becomes a chat completion with tool calls and cache usage", "[anthropic]") {
  const auto r = orroute::chat_completion_from_anthropic(
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
          "content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Let me check."},
                     {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
          "stop_reason":"tool_use","stop_sequence":null,
          "usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,
                   "output_tokens":50}})",
      1700000000);
  REQUIRE_FALSE(r.error);
  rapidjson::Document d;
  d.Parse(r.completion_json.c_str());
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(std::string(d["object"].GetString()) == "chat.completion");
  REQUIRE(std::string(d["id"].GetString()) == "msg_1");
  const auto& choice = d["choices"][0];
  REQUIRE(std::string(choice["finish_reason"].GetString()) == "tool_calls");
  REQUIRE(std::string(choice["message"]["content"].GetString()) == "Let me check.");
  REQUIRE(std::string(choice["message"]["reasoning"].GetString()) == "hmm");
  const auto& call = choice["message"]["tool_calls"][0];
  REQUIRE(std::string(call["function"]["arguments"].GetString()) == R"({"city":"Paris"})");
  REQUIRE(r.usage.prompt_tokens == 3210);
  REQUIRE(r.usage.cached_tokens == 3000);
  REQUIRE(r.usage.cache_write_tokens == 200);
  REQUIRE(r.usage.completion_tokens == 50);
  REQUIRE(d["usage"]["prompt_tokens"].GetInt64() == 3210);

  SECTION("the usage prices exactly at Anthropic's own rates") {
    orroute::Pricing p;
    p.base.prompt = orroute::Money::parse("3e-06");
    p.base.completion = orroute::Money::parse("1.5e-05");
    p.base.input_cache_read = orroute::Money::parse("3e-07");
    p.base.input_cache_write = orroute::Money::parse("3.75e-06");
    orroute::UsageCounts u;
    u.prompt_tokens = r.usage.prompt_tokens;
    u.completion_tokens = r.usage.completion_tokens;
    u.cached_tokens = r.usage.cached_tokens;
    u.cache_write_tokens = r.usage.cache_write_tokens;
    // 10*3e-6 + 3000*3e-7 + 200*3.75e-6 + 50*1.5e-5 = 0.00003 + 0.0009 + 0.00075 + 0.00075
    REQUIRE(orroute::price_call(p, u, "claude").to_string() == "0.00243");
  }
}

TEST_CASE("anthropic reply finish reasons", "[anthropic]") {
  using orroute::finish_reason_from_anthropic;
  REQUIRE(std::string(finish_reason_from_anthropic("end_turn")) == "stop");
  REQUIRE(std::string(finish_reason_from_anthropic("stop_sequence")) == "stop");
  REQUIRE(std::string(finish_reason_from_anthropic("max_tokens")) == "length");
  REQUIRE(std::string(finish_reason_from_anthropic("tool_use")) == "tool_calls");
  REQUIRE(std::string(finish_reason_from_anthropic("refusal")) == "content_filter");
}

TEST_CASE("anthropic replies that cannot be priced or read are errors, not completions", "[anthropic]") {
  for (const char* body : {"", "[]", "{\"content\":[]}", R"({"content":[],"usage":{"input_tokens":1}})",
                           R"({"content":[{"type":"text"}],"usage":{"input_tokens":1,"output_tokens":1}})",
                           R"({"content":[{"type":"tool_use","id":"x","name":"f","input":"s"}],
                               "usage":{"input_tokens":1,"output_tokens":1}})",
                           R"({"content":[],"usage":{"input_tokens":1,"output_tokens":1.5}})",
                           R"({"content":[],"usage":{"input_tokens":1,"output_tokens":10000000000000}})"}) {
    INFO(body);
    const auto r = orroute::chat_completion_from_anthropic(body, 0);
    REQUIRE(r.error);
    REQUIRE(r.error->status == 502);
    REQUIRE(r.completion_json.empty());
  }
}

TEST_CASE("anthropic error bodies map to status, type and retry-after", "[anthropic]") {
  orroute::Headers h;
  h.add("retry-after", "7");
  h.add("request-id", "req_1");
  const auto e = orroute::anthropic_error_from_response(
      529, h, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", 0);
  REQUIRE(e.status == 529);
  REQUIRE(e.message == "Overloaded");
  REQUIRE(e.code_json == "\"overloaded_error\"");
  REQUIRE(e.retry_after == Approx(7.0));
  REQUIRE(e.generation_id == "req_1");
  REQUIRE(orroute::is_retryable_status(e.status));
  SECTION("not Anthropic's shape") {
    const auto x = orroute::anthropic_error_from_response(503, {}, "<html>", 0);
    REQUIRE(x.message.find("503") != std::string::npos);
    REQUIRE(x.code_json == "503");
  }
  SECTION("types map to documented statuses") {
    REQUIRE(orroute::anthropic_status_for_error_type("rate_limit_error") == 429);
    REQUIRE(orroute::anthropic_status_for_error_type("authentication_error") == 401);
    REQUIRE(orroute::anthropic_status_for_error_type("invalid_request_error") == 400);
    REQUIRE(orroute::anthropic_status_for_error_type("something_new") == 500);
  }
  SECTION("a type with quotes stays valid JSON") {
    const auto q = orroute::anthropic_error_from_response(400, {}, R"({"error":{"type":"a\"b","message":"m"}})", 0);
    rapidjson::Document d;
    d.Parse(q.code_json.c_str());
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(std::string(d.GetString()) == "a\"b");
  }
}
