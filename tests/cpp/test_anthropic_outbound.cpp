// Chat-completions replies -> Anthropic Messages replies and stream events (anthropic_outbound.h):
// the translation's edge cases, and hostile upstream replies, which must end as a ParseError (the
// gateway's 502) or an error event, never as a crash or a malformed message.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "orroute/error.h"
#include "orroute/provider/anthropic_outbound.h"

namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string str(const rapidjson::Value& v) { return std::string(v.GetString(), v.GetStringLength()); }

struct Event {
  std::string type;
  rapidjson::Document data;
};

// `event: <type>\ndata: <json>\n\n` texts, each data checked to be JSON whose `type` is the event's.
std::vector<Event> events(const std::string& sse) {
  std::vector<Event> out;
  size_t at = 0;
  while (at < sse.size()) {
    const size_t end = sse.find("\n\n", at);
    REQUIRE(end != std::string::npos);
    const std::string one = sse.substr(at, end - at);
    REQUIRE(one.rfind("event: ", 0) == 0);
    const size_t nl = one.find("\ndata: ");
    REQUIRE(nl != std::string::npos);
    Event e{one.substr(7, nl - 7), parse(one.substr(nl + 7))};
    REQUIRE(str(e.data["type"]) == e.type);
    out.push_back(std::move(e));
    at = end + 2;
  }
  return out;
}

std::vector<std::string> types(const std::vector<Event>& es) {
  std::vector<std::string> out;
  for (const Event& e : es) out.push_back(e.type);
  return out;
}

std::string completion(const std::string& message, const std::string& finish = "stop",
                       const std::string& usage = R"({"prompt_tokens":10,"completion_tokens":5})") {
  return R"({"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"message":)" + message +
         R"(,"finish_reason":")" + finish + R"("}],"usage":)" + usage + "}";
}

}  // namespace

TEST_CASE("a chat completion becomes a Messages message: text, tool calls, usage", "[anthropic_outbound]") {
  const auto m = parse(orroute::anthropic_message_from_chat(completion(
      R"({"role":"assistant","content":"Let me check.","reasoning":"hidden",
          "tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"call_2","type":"function","function":{"name":"time","arguments":""}}]})",
      "tool_calls",
      R"({"prompt_tokens":3210,"completion_tokens":50,"prompt_tokens_details":{"cached_tokens":3000,"cache_write_tokens":200}})")));
  CHECK(str(m["id"]) == "msg_gen-1");
  CHECK(str(m["type"]) == "message");
  CHECK(str(m["role"]) == "assistant");
  CHECK(str(m["model"]) == "openai/gpt-4o");
  CHECK(str(m["stop_reason"]) == "tool_use");
  CHECK(m["stop_sequence"].IsNull());
  const auto& content = m["content"];
  REQUIRE(content.Size() == 3);  // the reasoning is dropped
  CHECK(str(content[0]["type"]) == "text");
  CHECK(str(content[0]["text"]) == "Let me check.");
  CHECK(str(content[1]["type"]) == "tool_use");
  CHECK(str(content[1]["id"]) == "call_1");
  CHECK(str(content[1]["name"]) == "weather");
  CHECK(str(content[1]["input"]["city"]) == "Paris");  // parsed, not a string
  CHECK(content[2]["input"].IsObject());               // no arguments: an empty input
  CHECK(content[2]["input"].MemberCount() == 0);
  // Anthropic's input_tokens excludes what the cache read and wrote
  CHECK(m["usage"]["input_tokens"].GetInt64() == 10);
  CHECK(m["usage"]["cache_read_input_tokens"].GetInt64() == 3000);
  CHECK(m["usage"]["cache_creation_input_tokens"].GetInt64() == 200);
  CHECK(m["usage"]["output_tokens"].GetInt64() == 50);
}

TEST_CASE("message ids, empty content and finish reasons", "[anthropic_outbound]") {
  SECTION("an id already msg_ is kept; none is msg_orroute") {
    std::string body = completion(R"({"content":"hi"})");
    body.replace(body.find("gen-1"), 5, "msg_abc");
    CHECK(str(parse(orroute::anthropic_message_from_chat(body))["id"]) == "msg_abc");
    body.replace(body.find(R"("id":"msg_abc",)"), 15, "");
    CHECK(str(parse(orroute::anthropic_message_from_chat(body))["id"]) == "msg_orroute");
  }
  SECTION("empty or null content: no text block") {
    CHECK(parse(orroute::anthropic_message_from_chat(completion(R"({"content":""})")))["content"].Empty());
    CHECK(parse(orroute::anthropic_message_from_chat(completion(R"({"content":null})")))["content"].Empty());
  }
  SECTION("stop reasons") {
    CHECK(std::string(orroute::anthropic_stop_reason("stop")) == "end_turn");
    CHECK(std::string(orroute::anthropic_stop_reason("length")) == "max_tokens");
    CHECK(std::string(orroute::anthropic_stop_reason("tool_calls")) == "tool_use");
    CHECK(std::string(orroute::anthropic_stop_reason("function_call")) == "tool_use");
    CHECK(std::string(orroute::anthropic_stop_reason("content_filter")) == "refusal");
    CHECK(std::string(orroute::anthropic_stop_reason("")) == "end_turn");
    CHECK(std::string(orroute::anthropic_stop_reason("something new")) == "end_turn");
    CHECK(str(parse(orroute::anthropic_message_from_chat(completion(R"({"content":"x"})", "length")))["stop_reason"]) ==
          "max_tokens");
  }
  SECTION("cache counts above the prompt never make input_tokens negative") {
    const auto m = parse(orroute::anthropic_message_from_chat(completion(
        R"({"content":"x"})", "stop",
        R"({"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}})")));
    CHECK(m["usage"]["input_tokens"].GetInt64() == 0);
  }
}

TEST_CASE("a hostile or broken chat completion is a ParseError, never a crash", "[anthropic_outbound]") {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      "null",
      R"({"choices":"x","usage":{}})",
      R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}})",
      R"({"choices":[7],"usage":{"prompt_tokens":1,"completion_tokens":1}})",
      R"({"choices":[{"message":{"content":"x"}}]})",                // no usage
      R"({"choices":[{"message":{"content":"x"}}],"usage":[1]})",    // usage not an object
      R"({"choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}})",  // no message
      completion(R"({"content":"x"})", "stop", R"({"prompt_tokens":-4,"completion_tokens":1})"),
      completion(R"({"content":"x"})", "stop", R"({"prompt_tokens":"lots","completion_tokens":1})"),
      // the upstream failed after output began: not a finished turn
      R"({"choices":[{"message":{"content":"half"},"finish_reason":"error","error":{"message":"boom"}}],
          "usage":{"prompt_tokens":1,"completion_tokens":1}})",
      // tool calls the Messages API cannot express
      completion(R"({"tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1,2]"}}]})"),
      completion(R"({"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{\"a\":"}}]})"),
      completion(R"({"tool_calls":[{"id":"c","function":{"name":"f","arguments":"\"text\""}}]})"),
      completion(R"({"tool_calls":[{"function":{"name":"f","arguments":"{}"}}]})"),  // no id
      completion(R"({"tool_calls":[{"id":"c","function":{"arguments":"{}"}}]})"),  // no name
      completion(R"({"tool_calls":[{"id":"c"}]})"),                                // no function
      completion(R"({"tool_calls":[5]})"),
  };
  for (const std::string& body : bad) {
    INFO(body);
    CHECK_THROWS_AS(orroute::anthropic_message_from_chat(body), orroute::ParseError);
  }
  const auto said = [] {
    try {
      orroute::anthropic_message_from_chat(
          R"({"choices":[{"message":{},"finish_reason":"error","error":{"message":"rate limited"}}],
              "usage":{"prompt_tokens":1,"completion_tokens":1}})");
    } catch (const orroute::ParseError& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK(said.find("rate limited") != std::string::npos);
}

TEST_CASE("error types and bodies follow Anthropic's", "[anthropic_outbound]") {
  const std::vector<std::pair<int, std::string>> expected = {
      {400, "invalid_request_error"}, {401, "authentication_error"}, {402, "billing_error"},
      {403, "permission_error"},      {404, "not_found_error"},      {413, "request_too_large"},
      {429, "rate_limit_error"},      {500, "api_error"},            {502, "api_error"},
      {503, "overloaded_error"},      {504, "timeout_error"},        {529, "overloaded_error"},
      {0, "api_error"},               {-1, "api_error"},             {999, "api_error"}};
  for (const auto& [status, type] : expected) {
    INFO(status);
    CHECK(std::string(orroute::anthropic_error_type(status)) == type);
  }
  // a message with quotes, newlines and control characters stays one valid JSON string
  const std::string message = "bad \"thing\"\n\t\x01 \\ end";
  const auto body = parse(orroute::anthropic_error_body(429, message));
  CHECK(str(body["type"]) == "error");
  CHECK(str(body["error"]["type"]) == "rate_limit_error");
  CHECK(str(body["error"]["message"]) == message);
}

TEST_CASE("stream events: text, then tool calls, then the closing events", "[anthropic_outbound]") {
  orroute::AnthropicEventWriter w("orroute/auto");
  std::string sse;
  sse += w.chunk(R"({"id":"gen-9","model":"openai/gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})");
  CHECK(sse.empty());  // nothing to say before the first content
  sse += w.chunk(R"({"id":"gen-9","choices":[{"index":0,"delta":{"content":"Hel"}}]})");
  sse += w.chunk(R"({"id":"gen-9","choices":[{"index":0,"delta":{"content":"lo"}}]})");
  sse += w.chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"weather","arguments":""}}]}}]})");
  sse += w.chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})");
  sse += w.chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})");
  sse += w.chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})");
  sse += w.chunk(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}})");
  sse += w.finish();
  const auto es = events(sse);
  CHECK(types(es) == std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                              "content_block_delta", "content_block_stop", "content_block_start",
                                              "content_block_delta", "content_block_delta", "content_block_stop",
                                              "message_delta", "message_stop"});
  CHECK(str(es[0].data["message"]["id"]) == "msg_gen-9");
  CHECK(str(es[0].data["message"]["model"]) == "openai/gpt-4o");  // the model that answered
  CHECK(str(es[1].data["content_block"]["type"]) == "text");
  CHECK(es[1].data["index"].GetInt64() == 0);
  CHECK(str(es[2].data["delta"]["text"]) + str(es[3].data["delta"]["text"]) == "Hello");
  CHECK(es[4].data["index"].GetInt64() == 0);  // the text block stops before the tool block
  CHECK(es[5].data["index"].GetInt64() == 1);
  CHECK(str(es[5].data["content_block"]["type"]) == "tool_use");
  CHECK(str(es[5].data["content_block"]["id"]) == "call_1");
  CHECK(str(es[5].data["content_block"]["name"]) == "weather");
  CHECK(str(es[6].data["delta"]["partial_json"]) + str(es[7].data["delta"]["partial_json"]) ==
        R"({"city":"Paris"})");
  CHECK(es[8].data["index"].GetInt64() == 1);
  CHECK(str(es[9].data["delta"]["stop_reason"]) == "tool_use");
  CHECK(es[9].data["usage"]["input_tokens"].GetInt64() == 10);
  CHECK(es[9].data["usage"]["cache_read_input_tokens"].GetInt64() == 2);
  CHECK(es[9].data["usage"]["output_tokens"].GetInt64() == 7);
  CHECK(w.finish().empty());  // finished once
  CHECK(w.chunk(R"({"choices":[{"delta":{"content":"late"}}]})").empty());
}

TEST_CASE("stream events for hostile chunks", "[anthropic_outbound]") {
  SECTION("no chunk at all: still a whole message") {
    orroute::AnthropicEventWriter w("m");
    const auto es = events(w.finish());
    CHECK(types(es) == std::vector<std::string>{"message_start", "message_delta", "message_stop"});
    CHECK(str(es[0].data["message"]["model"]) == "m");
    CHECK(str(es[1].data["delta"]["stop_reason"]) == "end_turn");
  }
  SECTION("chunks that are not objects, or carry nothing usable, are ignored") {
    orroute::AnthropicEventWriter w("m");
    for (const char* c : {"", "not json", "[1,2]", "null", "42", R"({"choices":"x"})", R"({"choices":[3]})",
                          R"({"choices":[{"delta":"x"}]})", R"({"choices":[{"delta":{"content":7}}]})",
                          R"({"usage":{"prompt_tokens":-1,"completion_tokens":2}})",
                          R"({"choices":[{"delta":{"tool_calls":"x"}}]})"}) {
      INFO(c);
      CHECK(w.chunk(c).empty());
    }
    const auto es = events(w.finish());
    CHECK(types(es) == std::vector<std::string>{"message_start", "message_delta", "message_stop"});
    CHECK(es[1].data["usage"]["input_tokens"].GetInt64() == 0);  // the invalid usage was not taken
  }
  SECTION("an error chunk is an error event, and nothing is written after it") {
    orroute::AnthropicEventWriter w("m");
    CHECK_FALSE(w.chunk(R"({"choices":[{"delta":{"content":"partial"}}]})").empty());
    const auto es = events(w.chunk(R"({"error":{"code":429,"message":"slow down"}})"));
    REQUIRE(es.size() == 1);
    CHECK(es[0].type == "error");
    CHECK(str(es[0].data["error"]["type"]) == "rate_limit_error");
    CHECK(str(es[0].data["error"]["message"]) == "slow down");
    CHECK(w.chunk(R"({"choices":[{"delta":{"content":"more"}}]})").empty());
    CHECK(w.finish().empty());
    CHECK(w.fail(500, "again").empty());
  }
  SECTION("an error code outside 400-599 is a 500 api_error") {
    for (const char* c : {R"({"error":{"code":200,"message":"x"}})", R"({"error":{"code":"429"}})",
                          R"({"error":{"code":1e300}})", R"({"error":{}})"}) {
      INFO(c);
      orroute::AnthropicEventWriter w("m");
      const auto es = events(w.chunk(c));
      REQUIRE(es.size() == 1);
      CHECK(str(es[0].data["error"]["type"]) == "api_error");
    }
  }
  SECTION("an endless number of tool calls ends with an error, memory bounded") {
    orroute::AnthropicEventWriter w("m");
    std::string last;
    for (size_t i = 0; i <= orroute::AnthropicEventWriter::kMaxBlocks; ++i) {
      last = w.chunk(R"({"choices":[{"delta":{"tool_calls":[{"index":)" + std::to_string(i) +
                     R"(,"function":{"name":"f"}}]}}]})");
    }
    const auto es = events(last);
    REQUIRE_FALSE(es.empty());
    CHECK(es.back().type == "error");
    CHECK(str(es.back().data["error"]["type"]) == "api_error");
    CHECK(w.finish().empty());
  }
  SECTION("a huge id or model name is cut to a bounded, still valid, prefix") {
    orroute::AnthropicEventWriter w("m");
    const std::string big(100000, 'x');
    const std::string model = std::string(199, 'a') + "\xC3\xA9" + big;  // a 2-byte character at byte 199
    const auto es = events(w.chunk(R"({"id":")" + big + R"(","model":")" + model +
                                   R"(","choices":[{"delta":{"content":"hi"}}]})"));
    REQUIRE(es.size() >= 1);
    CHECK(str(es[0].data["message"]["id"]).size() <= 204);          // "msg_" + at most 200 bytes
    CHECK(str(es[0].data["message"]["model"]) == std::string(199, 'a'));  // not half a character
  }
  SECTION("a tool call with no id gets one; a late id does not start a new block") {
    orroute::AnthropicEventWriter w("m");
    auto es = events(w.chunk(R"({"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]})"));
    REQUIRE(es.size() == 3);  // message_start, content_block_start, input_json_delta
    CHECK(str(es[1].data["content_block"]["id"]) == "toolu_0");
    es = events(w.chunk(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"late","function":{"arguments":" "}}]}}]})"));
    REQUIRE(es.size() == 1);
    CHECK(es[0].type == "content_block_delta");
  }
}
