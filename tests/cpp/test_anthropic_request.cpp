#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "orroute/error.h"
#include "orroute/net/protocol.h"
#include "orroute/provider/anthropic_request.h"

namespace {

rapidjson::Document translate(const std::string& chat, int64_t default_max = 0) {
  const std::string out = orroute::anthropic_request_from_chat(chat, {"claude-sonnet-4-5", default_max});
  rapidjson::Document d;
  d.Parse(out.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

}  // namespace

TEST_CASE("anthropic request: system, turns, max_tokens, stop and sampling", "[anthropic]") {
  const auto d = translate(R"({"model":"anthropic/claude-sonnet-4.5","max_tokens":100,"temperature":0.2,
      "top_p":0.9,"stop":"END","stream":true,"user":"u1","frequency_penalty":1,
      "messages":[{"role":"system","content":"be brief"},{"role":"developer","content":"really"},
                  {"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"there"}]},
                  {"role":"assistant","content":"hello"}]})");
  REQUIRE(std::string(d["model"].GetString()) == "claude-sonnet-4-5");
  REQUIRE(d["max_tokens"].GetInt64() == 100);
  REQUIRE(d["system"].Size() == 2);
  REQUIRE(std::string(d["system"][1]["text"].GetString()) == "really");
  REQUIRE(d["messages"].Size() == 2);  // consecutive user turns merged
  REQUIRE(std::string(d["messages"][0]["role"].GetString()) == "user");
  REQUIRE(d["messages"][0]["content"].Size() == 2);
  REQUIRE(std::string(d["messages"][0]["content"][1]["text"].GetString()) == "there");
  REQUIRE(std::string(d["stop_sequences"][0].GetString()) == "END");
  REQUIRE(d["temperature"].GetDouble() == Approx(0.2));
  REQUIRE(d["stream"].GetBool());
  REQUIRE(std::string(d["metadata"]["user_id"].GetString()) == "u1");
  REQUIRE_FALSE(d.HasMember("frequency_penalty"));
}

TEST_CASE("anthropic request: max_tokens is required, from the request or the default", "[anthropic]") {
  const std::string chat = R"({"messages":[{"role":"user","content":"hi"}]})";
  REQUIRE_THROWS_AS(orroute::anthropic_request_from_chat(chat, {"m", 0}), orroute::InvalidArgument);
  REQUIRE(translate(chat, 4096)["max_tokens"].GetInt64() == 4096);
  REQUIRE(translate(R"({"max_completion_tokens":7,"messages":[{"role":"user","content":"hi"}]})", 4096)["max_tokens"]
              .GetInt64() == 7);
  const std::string negative = R"({"max_tokens":-1,"messages":[{"role":"user","content":"x"}]})";
  REQUIRE_THROWS_AS(orroute::anthropic_request_from_chat(negative, {"m", 10}), orroute::InvalidArgument);
}

TEST_CASE("anthropic request: images become base64 or url sources", "[anthropic]") {
  const auto d = translate(R"({"max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
      {"type":"image_url","image_url":{"url":"https://x.test/a.jpg"}},
      {"type":"text","text":"what is this","cache_control":{"type":"ephemeral"}}]}]})");
  const auto& c = d["messages"][0]["content"];
  REQUIRE(std::string(c[0]["source"]["type"].GetString()) == "base64");
  REQUIRE(std::string(c[0]["source"]["media_type"].GetString()) == "image/png");
  REQUIRE(std::string(c[0]["source"]["data"].GetString()) == "iVBORw0KGgo=");
  REQUIRE(std::string(c[1]["source"]["url"].GetString()) == "https://x.test/a.jpg");
  REQUIRE(std::string(c[2]["cache_control"]["type"].GetString()) == "ephemeral");
  const std::string ftp =
      R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]})";
  REQUIRE_THROWS_AS(orroute::anthropic_request_from_chat(ftp, {"m", 0}), orroute::InvalidArgument);
}

TEST_CASE("anthropic request: tools, tool_choice, tool calls and tool results", "[anthropic]") {
  const auto d = translate(R"({"max_tokens":50,"parallel_tool_calls":false,
      "tools":[{"type":"function","function":{"name":"get_weather","description":"w",
                "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
      "tool_choice":"required",
      "messages":[{"role":"user","content":"weather?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
          "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"sunny"},
        {"role":"user","content":"thanks"}]})");
  REQUIRE(std::string(d["tools"][0]["name"].GetString()) == "get_weather");
  REQUIRE(std::string(d["tools"][0]["input_schema"]["properties"]["city"]["type"].GetString()) == "string");
  REQUIRE(std::string(d["tool_choice"]["type"].GetString()) == "any");
  REQUIRE(d["tool_choice"]["disable_parallel_tool_use"].GetBool());
  const auto& m = d["messages"];
  REQUIRE(m.Size() == 3);
  REQUIRE(std::string(m[1]["content"][0]["type"].GetString()) == "tool_use");
  REQUIRE(std::string(m[1]["content"][0]["input"]["city"].GetString()) == "Paris");
  REQUIRE(std::string(m[2]["content"][0]["type"].GetString()) == "tool_result");
  REQUIRE(std::string(m[2]["content"][0]["tool_use_id"].GetString()) == "call_1");
  REQUIRE(std::string(m[2]["content"][1]["text"].GetString()) == "thanks");  // merged into the same user turn

  SECTION("a named function and none") {
    auto named = translate(R"({"max_tokens":5,"tool_choice":{"type":"function","function":{"name":"f"}},
        "tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]})");
    REQUIRE(std::string(named["tool_choice"]["type"].GetString()) == "tool");
    REQUIRE(std::string(named["tool_choice"]["name"].GetString()) == "f");
    REQUIRE(std::string(named["tools"][0]["input_schema"]["type"].GetString()) == "object");
    REQUIRE(std::string(translate(R"({"max_tokens":5,"tool_choice":"none","messages":[{"role":"user","content":"x"}]})")
                            ["tool_choice"]["type"]
                                .GetString()) == "none");
  }
  SECTION("tool arguments that are not an object are refused") {
    REQUIRE_THROWS_AS(orroute::anthropic_request_from_chat(
                          R"({"max_tokens":5,"messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1]"}}]}]})",
                          {"m", 0}),
                      orroute::InvalidArgument);
  }
}

TEST_CASE("anthropic request: input it cannot express is refused with the field named", "[anthropic]") {
  auto refuses = [](const std::string& chat, const std::string& needle) {
    try {
      orroute::anthropic_request_from_chat(chat, {"m", 10});
    } catch (const orroute::InvalidArgument& e) {
      INFO(e.what());
      REQUIRE(std::string(e.what()).find(needle) != std::string::npos);
      return;
    }
    FAIL("no exception for " << chat);
  };
  refuses("not json", "JSON object");
  refuses(std::string(200, '[') + std::string(200, ']'), "nested");
  refuses(R"({"messages":[]})", "messages");
  refuses(R"({"messages":[{"role":"user","content":[{"type":"input_audio"}]}]})", "messages[0].content[0]");
  refuses(R"({"messages":[{"role":"wizard","content":"x"}]})", "wizard");
  refuses(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})", "response_format");
  refuses(R"({"messages":[{"role":"system","content":"only system"}]})", "no user or assistant");
}
