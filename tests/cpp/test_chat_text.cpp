// reply_summary: the id and first message text a manager result shows, read from the network
// thread's parse of the reply.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "orroute/engine/chat_text.h"

using orroute::reply_summary;

TEST_CASE("reply_summary reads the id and the first choice's message text", "[chat_text]") {
  SECTION("string content") {
    const auto s = reply_summary(std::string(
        R"({"id":"gen-1","choices":[{"message":{"role":"assistant","content":"Hi \u00e9"}},)"
        R"({"message":{"content":"second"}}]})"));
    CHECK(s.id == "gen-1");
    CHECK(s.content == "Hi \xc3\xa9");
  }
  SECTION("text parts joined, other parts and non-string texts skipped") {
    const auto s = reply_summary(std::string(
        R"({"id":"x","choices":[{"message":{"content":[{"type":"text","text":"Hel"},)"
        R"({"type":"image_url"},"loose",{"type":"text","text":5},{"type":"text","text":"lo"}]}}]})"));
    CHECK(s.content == "Hello");
  }
  SECTION("no content, null content, tool calls only") {
    CHECK(reply_summary(std::string(R"({"id":"x","choices":[{"message":{"role":"assistant"}}]})")).content.empty());
    CHECK(reply_summary(std::string(R"({"id":"x","choices":[{"message":{"content":null}}]})")).content.empty());
    CHECK(reply_summary(std::string(
              R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f"}}]}}]})"))
              .content.empty());
  }
  SECTION("odd shapes give empty fields, never a throw") {
    for (const char* text : {"", "not json", "[]", "{}", R"({"id":5,"choices":"x"})",
                             R"({"choices":[]})", R"({"choices":[3]})", R"({"choices":[{"message":"m"}]})",
                             R"({"choices":[{"delta":{"content":"d"}}]})"}) {
      INFO(text);
      const auto s = reply_summary(std::string(text));
      CHECK(s.id.empty());
      CHECK(s.content.empty());
    }
  }
}

// The caller's `response` is Python's json.loads of the same text, where the last of duplicate
// keys wins: the summary must agree with it, or a hostile upstream shows a verifier one text
// (TaskResult.content) and the caller's response another.
TEST_CASE("reply_summary takes the last of duplicate keys, as the caller's response does", "[chat_text]") {
  const auto s = reply_summary(std::string(
      R"({"id":"first","id":"last","choices":[{"message":{"content":"shadowed"}}],)"
      R"("choices":[{"message":{"content":"a","content":"b"},"message":{"content":"real"}}]})"));
  CHECK(s.id == "last");
  CHECK(s.content == "real");
  CHECK(reply_summary(std::string(R"({"choices":[{"message":{"content":[{"text":"x","text":"y"}]}}]})"))
            .content == "y");
  CHECK(reply_summary(std::string(R"({"id":"x","id":7})")).id.empty());  // Python: 7, not a string
}

TEST_CASE("generated_text counts every member of a repeated key, which the caller may read", "[chat_text]") {
  // The answer's tokens are counted from this text under a ledger (the usage checked against it):
  // a reply naming a key twice gives the caller the last (json.loads, reply_summary), so a short
  // first must not stand for a long last; each is counted (more than sent only for such a reply).
  const auto text = [](const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    REQUIRE(!d.HasParseError());
    return orroute::generated_text(d, "message");
  };
  CHECK(text(R"({"choices":[{"message":{"content":"ok"}}],"choices":[{"message":{"content":"long"}}]})") == "oklong");
  CHECK(text(R"({"choices":[{"message":{"content":"ok"},"message":{"content":"long"}}]})") == "oklong");
  CHECK(text(R"({"choices":[{"message":{"content":"ok","content":"long"}}]})") == "oklong");
  CHECK(text(R"({"choices":[{"message":{"content":[{"text":"ok","text":"long"}]}}]})") == "oklong");
  CHECK(text(R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"1","arguments":"22"}}]}}]})") ==
        "f122");
  CHECK(text(R"({"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]})") == "ab");  // as before
  CHECK(text(R"({"choices":7,"choices":[{"message":{"content":"x"}}]})") == "x");
}
