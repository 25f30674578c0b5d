#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "orroute/error.h"
#include "orroute/provider/wire_adapter.h"

namespace {

orroute::ProviderConfig config(orroute::ProviderKind kind) {
  orroute::ProviderConfig c;
  c.name = "p";
  c.kind = kind;
  c.base_url = "https://example.test/v1";
  c.api_keys = {"sk-secret-0123456789abcdef"};
  return c;
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

const char* const kChat =
    R"({"model":"anthropic/claude-sonnet-4.5","messages":[{"role":"user","content":"hi"}],"max_tokens":9,
        "models":["a/b"],"provider":{"order":["x"]},"stream":false})";

}  // namespace

TEST_CASE("wire adapter: OpenAI-compatible kinds pass through with the provider's model", "[provider]") {
  const auto openai = orroute::WireAdapter::for_provider(config(orroute::ProviderKind::kOpenAI));
  const auto req = openai->request(kChat, "gpt-4o", true);
  REQUIRE(req.path == "/chat/completions");
  const auto body = parse(req.body);
  REQUIRE(std::string(body["model"].GetString()) == "gpt-4o");
  REQUIRE(body["stream"].GetBool());
  REQUIRE(body["stream_options"]["include_usage"].GetBool());
  REQUIRE_FALSE(body.HasMember("models"));
  REQUIRE_FALSE(body.HasMember("provider"));
  REQUIRE(body["max_tokens"].GetInt() == 9);

  const auto openrouter = orroute::WireAdapter::for_provider(config(orroute::ProviderKind::kOpenRouter));
  const auto kept = parse(openrouter->request(kChat, "anthropic/claude-sonnet-4.5", false).body);
  REQUIRE(kept.HasMember("models"));
  REQUIRE_FALSE(kept.HasMember("stream"));  // a plain call sends no stream flag
  REQUIRE_FALSE(kept.HasMember("stream_options"));

  auto tr = openai->stream_translator(0);
  std::vector<std::string> out;
  REQUIRE(tr->translate(R"({"choices":[]})", out));
  REQUIRE(out == std::vector<std::string>{R"({"choices":[]})"});
  REQUIRE(tr->complete());

  SECTION("replies: usage read, a 200 carrying an error is an error, junk is a 502") {
    const auto ok = openai->reply(R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})", 0);
    REQUIRE_FALSE(ok.error);
    REQUIRE(ok.usage->completion_tokens == 4);
    const auto err = openai->reply(R"({"error":{"code":429,"message":"slow down"}})", 0);
    REQUIRE(err.error->status == 429);
    REQUIRE(openai->reply("<html>", 0).error->status == 502);
  }
}

TEST_CASE("wire adapter: Anthropic translates request, reply, stream and errors", "[provider]") {
  const auto a = orroute::WireAdapter::for_provider(config(orroute::ProviderKind::kAnthropic));
  const auto req = a->request(kChat, "claude-sonnet-4-5", true);
  REQUIRE(req.path == "/messages");
  const auto body = parse(req.body);
  REQUIRE(std::string(body["model"].GetString()) == "claude-sonnet-4-5");
  REQUIRE(body["stream"].GetBool());
  REQUIRE(body["max_tokens"].GetInt() == 9);
  REQUIRE_FALSE(parse(a->request(kChat, "c", false).body).HasMember("stream"));
  REQUIRE_THROWS_AS(a->request("[1]", "c", false), orroute::InvalidArgument);

  auto tr = a->stream_translator(0);
  std::vector<std::string> out;
  REQUIRE(tr->translate(R"({"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1,"output_tokens":0}}})", out));
  REQUIRE_FALSE(tr->complete());
  REQUIRE(tr->error()->message.find("truncated") != std::string::npos);  // ended here: an error
  REQUIRE(tr->translate(R"({"type":"message_stop"})", out));
  REQUIRE(tr->complete());
  REQUIRE_FALSE(tr->error());

  const auto reply = a->reply(R"({"id":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
                                 "usage":{"input_tokens":2,"output_tokens":3}})", 0);
  REQUIRE(reply.usage->total_tokens == 5);
  REQUIRE(std::string(parse(reply.completion_json)["choices"][0]["message"]["content"].GetString()) == "hi");
  const auto err = a->error(529, {}, R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})", 0);
  REQUIRE(err.code_json == "\"overloaded_error\"");
}
