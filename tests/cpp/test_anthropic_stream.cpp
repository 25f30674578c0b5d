#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "orroute/net/protocol.h"
#include "orroute/net/sse_parser.h"
#include "orroute/provider/anthropic_stream.h"

namespace {

// A recorded-shape Anthropic stream: text, then a tool call whose input arrives in pieces.
const char* const kStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":20,"
    "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":1000,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
    "\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

struct Result {
  orroute::StreamAccumulator acc;
  std::vector<std::string> chunks;
  bool finished = false;
  bool ok = true;
};

// Parses `payload` as SSE split at `cut`, translates every event and folds the chunks.
void run(const std::string& payload, size_t cut, Result& r) {
  orroute::SseParser parser;
  orroute::AnthropicStreamTranslator tr(1700000000);
  auto sink = [&](orroute::SseEvent&& ev) {
    std::vector<std::string> out;
    r.ok = tr.translate(ev.data, out) && r.ok;
    for (const auto& c : out) {
      rapidjson::Document d;
      d.Parse(c.c_str());
      REQUIRE_FALSE(d.HasParseError());
      r.acc.add(d);
      r.chunks.push_back(c);
    }
    return true;
  };
  parser.feed(std::string_view(payload).substr(0, cut), sink);
  parser.feed(std::string_view(payload).substr(cut), sink);
  r.finished = tr.finished();
}

}  // namespace

TEST_CASE("anthropic stream becomes chat chunks with text, tool call, finish reason and usage", "[anthropic]") {
  const std::string payload = kStream;
  // The same bytes split at every offset give the same completion.
  for (size_t cut = 0; cut <= payload.size(); cut += (cut < 64 ? 1 : 7)) {
    Result r;
    run(payload, cut, r);
    REQUIRE(r.ok);
    REQUIRE(r.finished);
    REQUIRE(r.acc.text() == "Hello");
    rapidjson::Document c;
    c.Parse(r.acc.completion_json().c_str());
    const auto& msg = c["choices"][0]["message"];
    REQUIRE(std::string(c["choices"][0]["finish_reason"].GetString()) == "tool_calls");
    REQUIRE(std::string(msg["tool_calls"][0]["id"].GetString()) == "toolu_1");
    REQUIRE(std::string(msg["tool_calls"][0]["function"]["name"].GetString()) == "get_weather");
    REQUIRE(std::string(msg["tool_calls"][0]["function"]["arguments"].GetString()) == "{\"city\": \"Paris\"}");
    rapidjson::Document u;
    u.Parse(r.acc.usage_json().c_str());
    const auto usage = orroute::parse_usage(u);
    REQUIRE(usage.prompt_tokens == 1120);  // input + cache writes + cache reads
    REQUIRE(usage.cached_tokens == 1000);
    REQUIRE(usage.cache_write_tokens == 100);
    REQUIRE(usage.completion_tokens == 42);  // message_delta's cumulative count, not 1 + 42
    REQUIRE(usage.total_tokens == 1162);
  }
}

TEST_CASE("anthropic stream error events end the stream as a mid-stream error", "[anthropic]") {
  orroute::AnthropicStreamTranslator tr(0);
  std::vector<std::string> out;
  REQUIRE(tr.translate(R"({"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3,"output_tokens":0}}})", out));
  REQUIRE(tr.translate(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"par"}})", out));
  REQUIRE_FALSE(tr.translate(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", out));
  REQUIRE(tr.error()->status == 529);
  REQUIRE(tr.error()->kind == orroute::ApiError::Kind::kStream);
  orroute::StreamAccumulator acc;
  bool ok = true;
  for (const auto& c : out) {
    rapidjson::Document d;
    d.Parse(c.c_str());
    ok = acc.add(d) && ok;
  }
  REQUIRE_FALSE(ok);
  REQUIRE(acc.error()->status == 529);
  REQUIRE(acc.error()->message == "Overloaded");
  REQUIRE(acc.text() == "par");
  REQUIRE_FALSE(tr.finished());
}

TEST_CASE("anthropic stream refuses events out of order or malformed", "[anthropic]") {
  auto fails = [](std::vector<std::string> events) {
    orroute::AnthropicStreamTranslator tr(0);
    std::vector<std::string> out;
    for (const auto& e : events) {
      if (!tr.translate(e, out)) return tr.error().has_value() && tr.error()->status == 502;
    }
    return false;
  };
  const std::string start = R"({"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3,"output_tokens":0}}})";
  REQUIRE(fails({"not json"}));
  REQUIRE(fails({R"({"no":"type"})"}));
  REQUIRE(fails({R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})"}));
  REQUIRE(fails({start, start}));
  REQUIRE(fails({start, R"({"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{"}})"}));
  REQUIRE(fails({start, R"({"type":"message_delta","delta":{},"usage":{"output_tokens":-4}})"}));
  REQUIRE(fails({start, R"({"type":"message_delta","delta":{},"usage":{"output_tokens":1e300}})"}));
  REQUIRE(fails({start, R"({"type":"message_stop"})", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})"}));
  SECTION("unknown event and delta types are ignored") {
    orroute::AnthropicStreamTranslator tr(0);
    std::vector<std::string> out;
    REQUIRE(tr.translate(start, out));
    REQUIRE(tr.translate(R"({"type":"brand_new_event"})", out));
    REQUIRE(tr.translate(R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}})", out));
    REQUIRE(out.size() == 1);
  }
}
