#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "orroute/error.h"
#include "orroute/net/keys.h"
#include "orroute/net/protocol.h"

namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

}  // namespace

TEST_CASE("error bodies map to status, code, message, metadata and retry hints", "[net]") {
  orroute::Headers h;
  h.add("Retry-After", "3");
  h.add("X-Generation-Id", "gen-1");
  const auto err = orroute::error_from_response(
      429, h, R"({"error":{"code":429,"message":"Rate limit exceeded","metadata":{"provider_name":"OpenAI"}}})", 0);
  REQUIRE(err.status == 429);
  REQUIRE(err.code_json == "429");
  REQUIRE(err.message.find("Rate limit exceeded") != std::string::npos);
  REQUIRE(err.message.find("OpenAI") != std::string::npos);
  REQUIRE(err.metadata_json == R"({"provider_name":"OpenAI"})");
  REQUIRE(err.retry_after == Approx(3.0));
  REQUIRE(err.generation_id == "gen-1");

  SECTION("a body that is not JSON still gives a message") {
    const auto e = orroute::error_from_response(502, {}, "<html>bad gateway</html>", 0);
    REQUIRE(e.message.find("502") != std::string::npos);
  }
  SECTION("the upstream's raw error is kept in the message") {
    const auto e = orroute::error_from_response(
        502, {}, R"({"error":{"code":502,"message":"Provider returned error","metadata":{"raw":"overloaded"}}})", 0);
    REQUIRE(e.message.find("overloaded") != std::string::npos);
  }
}

TEST_CASE("retry hints come from Retry-After or X-RateLimit-Reset", "[net]") {
  const int64_t now_ms = 1'700'000'000'000;
  orroute::Headers h;
  SECTION("reset in epoch milliseconds") {
    h.add("X-RateLimit-Reset", std::to_string(now_ms + 2500));
    REQUIRE(*orroute::retry_after_seconds(h, now_ms) == Approx(2.5));
  }
  SECTION("reset in epoch seconds") {
    h.add("X-RateLimit-Reset", std::to_string(now_ms / 1000 + 4));
    REQUIRE(*orroute::retry_after_seconds(h, now_ms) == Approx(4.0));
  }
  SECTION("no hint") { REQUIRE_FALSE(orroute::retry_after_seconds(h, now_ms).has_value()); }
  SECTION("a hint years away is an hour at most, the longest the engine holds a model") {
    const auto [name, value] = GENERATE(table<std::string, std::string>({
        {"Retry-After", "1e9"},
        {"Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT"},
        {"X-RateLimit-Reset", "1e300"},
    }));
    h.add(name, value);
    REQUIRE(*orroute::retry_after_seconds(h, now_ms) == Approx(3600.0));
  }
}

TEST_CASE("only transient statuses are retried", "[net]") {
  const auto [status, retry] = GENERATE(table<int, bool>(
      {{400, false}, {401, false}, {402, false}, {403, false}, {404, false}, {408, true}, {429, true},
       {500, true}, {502, true}, {503, true}}));
  REQUIRE(orroute::is_retryable_status(status) == retry);
}

TEST_CASE("backoff is full jitter under an exponential cap and honours Retry-After", "[net]") {
  const orroute::RetryPolicy p{3, 0.5, 8.0, 60.0};
  REQUIRE(p.delay(0, std::nullopt, 0.999)->count() <= 500);
  REQUIRE(p.delay(2, std::nullopt, 0.999)->count() <= 2000);
  REQUIRE(p.delay(2, std::nullopt, 0.999)->count() > 1000);
  REQUIRE(p.delay(10, std::nullopt, 0.999)->count() <= 8000);
  REQUIRE(p.delay(0, std::nullopt, 0.0)->count() == 0);
  REQUIRE(p.delay(0, 2.0, 0.5)->count() == 2000);
  REQUIRE_FALSE(p.delay(0, 120.0, 0.5).has_value());
}

TEST_CASE("usage keeps OpenRouter's cost and token details", "[net]") {
  const auto d = parse(R"({"prompt_tokens":29,"completion_tokens":33,"total_tokens":62,"cost":0.00002415,
      "prompt_tokens_details":{"cached_tokens":5,"cache_write_tokens":7,"audio_tokens":3,"video_tokens":0},
      "completion_tokens_details":{"reasoning_tokens":11,"image_tokens":13,"audio_tokens":2}})");
  const auto u = orroute::parse_usage(d);
  REQUIRE(u.prompt_tokens == 29);
  REQUIRE(u.completion_tokens == 33);
  REQUIRE(u.cached_tokens == 5);
  REQUIRE(u.cache_write_tokens == 7);
  REQUIRE(u.audio_tokens == 3);
  REQUIRE(u.reasoning_tokens == 11);
  REQUIRE(u.image_output_tokens == 13);
  REQUIRE(u.audio_output_tokens == 2);
  REQUIRE(u.cost->to_string() == "0.00002415");
}

TEST_CASE("chat requests are validated before sending", "[net]") {
  REQUIRE_NOTHROW(orroute::validate_chat_request(parse(R"({"model":"a/b","messages":[{"role":"user","content":"hi"}]})")));
  REQUIRE_THROWS_AS(orroute::validate_chat_request(parse(R"({"model":"a/b"})")), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::validate_chat_request(parse(R"({"model":"a/b","messages":[]})")), orroute::InvalidArgument);
  REQUIRE_THROWS_AS(orroute::validate_chat_request(parse(R"({"messages":[{"role":"user"}]})")), orroute::InvalidArgument);
  REQUIRE_THROWS_WITH(
      orroute::validate_chat_request(parse(R"({"model":"a","models":["b","c","d","e"],"messages":[{"role":"user"}]})")),
      Catch::Contains("at most 3"));
}

TEST_CASE("stream accumulator joins text and tool-call deltas and keeps the usage", "[net]") {
  orroute::StreamAccumulator acc;
  const char* chunks[] = {
      R"({"id":"gen-1","model":"m/a","provider":"P","created":5,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]})",
      R"({"id":"gen-1","choices":[{"index":0,"delta":{"content":"lo","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\""}}]}}]})",
      R"({"id":"gen-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]})",
      R"({"id":"gen-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"cost":0.5}})",
  };
  for (const char* c : chunks) REQUIRE(acc.add(parse(c)));
  REQUIRE(acc.text() == "Hello");
  REQUIRE(acc.has_usage());
  const auto done = parse(acc.completion_json());
  const auto& msg = done["choices"][0]["message"];
  REQUIRE(std::string(msg["content"].GetString()) == "Hello");
  REQUIRE(std::string(msg["tool_calls"][0]["function"]["arguments"].GetString()) == "{\"a\":1}");
  REQUIRE(std::string(msg["tool_calls"][0]["id"].GetString()) == "call_1");
  REQUIRE(std::string(done["choices"][0]["finish_reason"].GetString()) == "tool_calls");
  REQUIRE(done["usage"]["total_tokens"].GetInt() == 5);
  REQUIRE(std::string(done["provider"].GetString()) == "P");
}

TEST_CASE("stream accumulator keeps tool-call deltas without an index apart by their ids", "[net]") {
  // Gemini's OpenAI-compatible stream: each call whole, no index; a piece without id goes on with
  // the call before it; an index given wins.
  orroute::StreamAccumulator acc;
  const char* chunks[] = {
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c1","type":"function","function":{"name":"glob","arguments":"{\"a\":1}"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","function":{"name":"glob","arguments":"{\"b\""}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":":2"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","index":null,"function":{"arguments":"}"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":""}}]}}]})",
  };
  for (const char* c : chunks) REQUIRE(acc.add(parse(c)));
  const auto done = parse(acc.completion_json());
  const auto& calls = done["choices"][0]["message"]["tool_calls"];
  REQUIRE(calls.Size() == 2);
  CHECK(std::string(calls[0]["id"].GetString()) == "c1");
  CHECK(std::string(calls[0]["function"]["name"].GetString()) == "glob");
  CHECK(std::string(calls[0]["function"]["arguments"].GetString()) == "{\"a\":1}");
  CHECK(std::string(calls[1]["id"].GetString()) == "c2");
  CHECK(std::string(calls[1]["function"]["name"].GetString()) == "glob");
  CHECK(std::string(calls[1]["function"]["arguments"].GetString()) == "{\"b\":2}");
  SECTION("an id after a first piece without one names that call") {
    orroute::StreamAccumulator a2;
    REQUIRE(a2.add(parse(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{"}}]}}]})")));
    REQUIRE(a2.add(parse(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c9","function":{"arguments":"}"}}]}}]})")));
    const auto d2 = parse(a2.completion_json());
    REQUIRE(d2["choices"][0]["message"]["tool_calls"].Size() == 1);
    CHECK(std::string(d2["choices"][0]["message"]["tool_calls"][0]["id"].GetString()) == "c9");
    CHECK(std::string(d2["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].GetString()) == "{}");
  }
  SECTION("new ids without an index stop growing the list at 1024 calls") {
    orroute::StreamAccumulator a3;
    for (int i = 0; i < 1100; ++i) {
      REQUIRE(a3.add(parse(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c)" + std::to_string(i) +
                           R"(","function":{"name":"f","arguments":""}}]}}]})")));
    }
    CHECK(parse(a3.completion_json())["choices"][0]["message"]["tool_calls"].Size() == 1024);
  }
}

TEST_CASE("stream accumulator numbers tool-call deltas without an index as it files them", "[net]") {
  // What a consumer keeping calls apart by index reads must be what the accumulator assembled:
  // each delta is numbered before it is added, the numbers written are the slots it is filed under.
  orroute::StreamAccumulator acc;
  auto numbered = [&acc](const std::string& text, std::vector<int64_t>& indexes) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    const bool changed = acc.number_tool_calls(d);
    for (const auto& tc : d["choices"][0]["delta"]["tool_calls"].GetArray()) {
      indexes.push_back(tc.IsObject() && tc.HasMember("index") ? tc["index"].GetInt64() : -1);
    }
    REQUIRE(acc.add(d));
    return changed;
  };
  auto deltas = [](const std::string& calls) {
    return R"({"choices":[{"index":0,"delta":{"tool_calls":[)" + calls + "]}}]}";
  };
  std::vector<int64_t> got;
  // two whole calls in one delta, then pieces without an id, an id repeated, a null index
  CHECK(numbered(deltas(R"({"id":"a","function":{"name":"f","arguments":"{}"}},{"id":"b","function":{"name":"g","arguments":"{"}})"), got));
  CHECK(numbered(deltas(R"({"function":{"arguments":"\"x\""}},{"id":"b","index":null,"function":{"arguments":":1}"}})"), got));
  CHECK_FALSE(numbered(deltas(R"({"index":0,"function":{"arguments":""}},7)"), got));  // given, or no object
  CHECK(numbered(deltas(R"({"id":"c","function":{"name":"h","arguments":"[]"}})"), got));
  CHECK(got == std::vector<int64_t>{0, 1, 1, 1, 0, -1, 2});
  const auto done = parse(acc.completion_json());
  const auto& calls = done["choices"][0]["message"]["tool_calls"];
  REQUIRE(calls.Size() == 3);
  CHECK(std::string(calls[0]["function"]["arguments"].GetString()) == "{}");
  CHECK(std::string(calls[1]["function"]["arguments"].GetString()) == "{\"x\":1}");
  CHECK(std::string(calls[2]["id"].GetString()) == "c");
  SECTION("a chunk without tool calls is left as it came") {
    rapidjson::Document d;
    d.Parse(R"({"choices":[{"index":0,"delta":{"content":"hi"}},7],"usage":{}})");
    CHECK_FALSE(acc.number_tool_calls(d));
  }
}

TEST_CASE("a tool-call index that is no place in the list is filed and relayed as a delta without one", "[net]") {
  orroute::StreamAccumulator acc;
  auto relayed = [&acc](const std::string& call) {
    rapidjson::Document d;
    d.Parse((R"({"choices":[{"index":0,"delta":{"tool_calls":[)" + call + "]}}]}").c_str());
    acc.number_tool_calls(d);
    REQUIRE(acc.add(d));
    return d["choices"][0]["delta"]["tool_calls"][0]["index"].GetInt64();
  };
  CHECK(relayed(R"({"index":2147483648,"id":"a","function":{"name":"f","arguments":"{"}})") == 0);
  CHECK(relayed(R"({"index":2147483648,"function":{"arguments":"}"}})") == 0);  // goes on with it
  CHECK(relayed(R"({"index":-1,"id":"b","function":{"name":"g","arguments":""}})") == 1);
  CHECK(relayed(R"({"index":"1","function":{"arguments":"[1"}})") == 1);
  CHECK(relayed(R"({"index":1e9,"function":{"arguments":"]"}})") == 1);
  CHECK(relayed(R"({"index":9,"id":"c","function":{"name":"h","arguments":"{}"}})") == 2);  // past a gap
  CHECK(relayed(R"({"index":0,"function":{"arguments":""}})") == 0);  // a place: as sent
  // thousands of calls at indexes far apart: the answer keeps 1024, every index relayed within them
  for (int i = 0; i < 3000; ++i) {
    const int64_t index = relayed(R"({"index":)" + std::to_string(1'000'000 + 7 * i) + R"(,"id":"x)" +
                                  std::to_string(i) + R"(","function":{"name":"n","arguments":"{}"}})");
    REQUIRE(index == std::min<int64_t>(3 + i, 1023));
  }
  const auto done = parse(acc.completion_json());
  const auto& calls = done["choices"][0]["message"]["tool_calls"];
  REQUIRE(calls.Size() == 1024);
  CHECK(std::string(calls[0]["function"]["arguments"].GetString()) == "{}");
  CHECK(std::string(calls[1]["function"]["arguments"].GetString()) == "[1]");
  CHECK(std::string(calls[2]["id"].GetString()) == "c");
}

TEST_CASE("a mid-stream error event is reported after its content is folded in", "[net]") {
  orroute::StreamAccumulator acc;
  REQUIRE(acc.add(parse(R"({"id":"gen-2","choices":[{"index":0,"delta":{"content":"par"}}]})")));
  REQUIRE_FALSE(acc.add(parse(
      R"({"id":"gen-2","error":{"code":502,"message":"Provider disconnected"},"choices":[{"index":0,"delta":{"content":"tial"},"finish_reason":"error"}]})")));
  REQUIRE(acc.text() == "partial");
  REQUIRE(acc.error()->status == 502);
  REQUIRE(acc.error()->message.find("Provider disconnected") != std::string::npos);
  REQUIRE(acc.error()->generation_id == "gen-2");
  SECTION("a string error code is accepted") {
    orroute::StreamAccumulator a2;
    REQUIRE_FALSE(a2.add(parse(R"({"error":{"code":"server_error","message":"x"}})")));
    REQUIRE(a2.error()->code_json == "\"server_error\"");
  }
}

TEST_CASE("keys rotate round-robin and rejected keys are set aside", "[net]") {
  orroute::KeyRing ring({"sk-or-v1-test-aaaaaaaa-1111", "sk-or-v1-test-bbbbbbbb-2222", ""});
  REQUIRE(ring.size() == 2);
  const auto k1 = *ring.next();
  const auto k2 = *ring.next();
  REQUIRE(k1 != k2);
  REQUIRE(*ring.next() == k1);
  REQUIRE(ring.set_aside(k1, 401) == 1);
  REQUIRE(*ring.next() == k2);
  REQUIRE(*ring.next() == k2);
  REQUIRE(ring.set_aside(k2, 402) == 0);
  REQUIRE_FALSE(ring.next().has_value());
  const std::string msg = ring.exhausted_message();
  REQUIRE(msg.find("aaaaaaaa") == std::string::npos);
  REQUIRE(msg.find("sk-or-v1-...1111: 401") != std::string::npos);
  REQUIRE(orroute::mask_key("sk-or-v1-test-456789abcdef0123") == "sk-or-v1-...0123");
  REQUIRE(orroute::mask_key("short") == "***");
}

TEST_CASE("a chat request's first broken rule names its field", "[net]") {
  auto field = [](const char* body, orroute::ChatRequestRules rules = {}) {
    auto p = orroute::check_chat_request(parse(body), rules);
    return p ? p->field : std::string("ok");
  };
  const char* hi = R"("messages":[{"role":"user","content":"hi"}])";
  REQUIRE(field((std::string("{\"model\":\"a/b\",") + hi + "}").c_str()) == "ok");
  REQUIRE(field("[1]") == "body");
  REQUIRE(field(R"({"models":["a/b"],"messages":[{"role":"user","content":"hi"}]})") == "ok");
  REQUIRE(field(R"({"models":["a/b"],"messages":[{"role":"user","content":"hi"}]})", {true, 0}) == "model");
  REQUIRE(field(R"({"model":" ","messages":[{"role":"user","content":"hi"}]})") == "model");
  REQUIRE(field(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})") == "messages[0].role");
  REQUIRE(field(R"({"model":"m","messages":[{"role":"user","content":5}]})") == "messages[0].content");
  REQUIRE(field(R"({"model":"m","messages":[{"role":"user"}]})") == "messages[0].content");
  REQUIRE(field(R"({"model":"m","messages":[{"role":"assistant","tool_calls":[1]}]})") ==
          "messages[0].tool_calls");
  REQUIRE(field((std::string("{\"model\":\"m\",\"n\":9,") + hi + "}").c_str(), {true, 8}) == "n");
  REQUIRE(field((std::string("{\"model\":\"m\",\"n\":9,") + hi + "}").c_str()) == "ok");
  REQUIRE(field((std::string("{\"model\":\"m\",\"temperature\":2.5,") + hi + "}").c_str()) == "temperature");
  REQUIRE(field((std::string("{\"model\":\"m\",\"tools\":null,") + hi + "}").c_str()) == "tools");
  REQUIRE(field((std::string("{\"model\":\"m\",\"tools\":[{\"function\":{}}],") + hi + "}").c_str()) ==
          "tools[0].function");
  REQUIRE(field((std::string("{\"model\":\"m\",\"stop\":[1],") + hi + "}").c_str()) == "stop");
  REQUIRE(field((std::string("{\"model\":\"m\",\"response_format\":\"json\",") + hi + "}").c_str()) ==
          "response_format");
  REQUIRE(field((std::string("{\"model\":\"m\",\"max_tokens\":1.5,") + hi + "}").c_str()) == "max_tokens");
}

TEST_CASE("a chat request naming a key twice is refused, at any depth", "[net]") {
  // RapidJSON finds the first of two equal keys, the upstream's parser keeps the last: a request
  // could be counted and reserved for one prompt and answered for another.
  auto problem = [](const std::string& body) { return orroute::check_chat_request(parse(body)); };
  const std::string hi = R"("messages":[{"role":"user","content":"hi"}])";
  auto p = problem(R"({"model":"m",)" + hi + R"(,"max_tokens":5,"max_tokens":4000})");
  REQUIRE(p);
  REQUIRE(p->field == "body");
  REQUIRE(p->message.find("'max_tokens' twice") != std::string::npos);
  p = problem(R"({"model":"m",)" + hi + "," + hi + "}");
  REQUIRE(p);
  REQUIRE(p->message.find("'messages' twice") != std::string::npos);
  p = problem(R"({"model":"m","messages":[{"role":"user","content":"hi"},)"
              R"({"role":"user","content":"short","content":"long"}]})");
  REQUIRE(p);
  REQUIRE(p->field == "messages[1]");
  p = problem(R"({"model":"m",)" + hi +
              R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","type":"x"}}}]})");
  REQUIRE(p);
  REQUIRE(p->field == "tools[0].function.parameters");
  // a large object is sorted, not compared pairwise; keys equal but for a byte past a NUL differ
  std::string many = R"({"model":"m",)" + hi + R"(,"metadata":{)";
  for (int i = 0; i < 5000; ++i) many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  REQUIRE_FALSE(problem(many + R"("k5000":0}})"));
  p = problem(many + R"("k4321":0}})");
  REQUIRE(p);
  REQUIRE(p->field == "metadata");
  REQUIRE_FALSE(problem(R"({"model":"m",)" + hi + R"(,"metadata":{"a\u0000b":1,"a\u0000c":2}})"));
  REQUIRE(problem(R"({"model":"m",)" + hi + R"(,"metadata":{"a\u0000b":1,"a\u0000b":2}})"));
  // the key and the path are client text: cut in the message
  const std::string long_key(5000, 'k');
  p = problem(R"({"model":"m",)" + hi + R"(,")" + long_key + R"(":1,")" + long_key + R"(":2})");
  REQUIRE(p);
  REQUIRE(p->message.size() < 400);
}

TEST_CASE("a header value cannot end its line", "[net]") {
  REQUIRE_NOTHROW(orroute::check_header_value("app_name", "My App\t(v2)"));
  for (const std::string& v : {std::string("a\r\nX-Injected: 1"), std::string("a\nb"), std::string("nul\0x", 5)}) {
    REQUIRE_THROWS_WITH(orroute::check_header_value("app_name", v), Catch::Contains("app_name"));
  }
}

TEST_CASE("a chat request problem quoting the client's text stays valid UTF-8", "[net]") {
  // "x" and 14 x "模" (3 bytes each): the 40-byte cut of the quoted value falls inside a character
  std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":"x)";
  for (int i = 0; i < 14; ++i) body += "\xe6\xa8\xa1";
  body += "\"}";
  auto p = orroute::check_chat_request(parse(body));
  REQUIRE(p);
  REQUIRE(p->field == "max_tokens");
  const std::string& m = p->message;
  size_t i = 0;  // every multi-byte sequence complete
  while (i < m.size()) {
    const auto c = static_cast<unsigned char>(m[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    REQUIRE(i + n <= m.size());
    for (size_t k = 1; k < n; ++k) REQUIRE((static_cast<unsigned char>(m[i + k]) & 0xC0) == 0x80);
    i += n;
  }
}
