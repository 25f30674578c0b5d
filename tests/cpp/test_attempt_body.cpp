// chat_attempt_body: a request whose body only gains members gets them appended to its text; the
// result is the body written from the request's parse, byte for byte when the text is as a writer
// writes it (the manager's requests), the same document otherwise.
#include <rapidjson/document.h>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "orroute/engine/attempt_body.h"
#include "orroute/error.h"

using namespace orroute;

namespace {

// The body written from the parse of `text` (the path that writes the whole document).
std::string written(const std::string& text, const std::string& model, bool stream,
                    const std::vector<std::string>& servers, std::optional<int64_t> reserved) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  REQUIRE(d.IsObject());
  return chat_attempt_body(d, model, stream, servers, reserved);
}

bool same_document(const std::string& a, const std::string& b) {
  rapidjson::Document x, y;
  x.Parse(a.data(), a.size());
  y.Parse(b.data(), b.size());
  return !x.HasParseError() && !y.HasParseError() && x == y;
}

}  // namespace

TEST_CASE("an attempt body appended to the request is the one written from its parse", "[attempt_body]") {
  const std::vector<std::string> canonical = {
      R"({"messages":[{"role":"user","content":"Say hi"}],"max_tokens":16})",
      R"({"messages":[{"role":"user","content":"Say hi"}]})",
      R"({"messages":[{"role":"user","content":"café \"q\" \\ \n \u001F"}],"temperature":0.7})",
      R"({"messages":[{"role":"user","content":"x"}],"usage":{"include":false},"models":["p/q"]})",
      R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":false}})",
      R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":5})",
      R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":null})",
      // members set in place: written, not appended
      R"({"model":"a/b","messages":[{"role":"user","content":"x"}]})",
      R"({"messages":[{"role":"user","content":"x"}],"stream":true})",
      R"({"messages":[{"role":"user","content":"x"}],"max_tokens":null})",
  };
  for (const std::string& text : canonical) {
    for (const bool stream : {false, true}) {
      for (const auto& servers : {std::vector<std::string>{}, std::vector<std::string>{"m/b", "m/a", "m/c", "m/d"}}) {
        for (const auto reserved : {std::optional<int64_t>{}, std::optional<int64_t>{64}}) {
          for (const std::string model : {"m/a", "we\"ird\\model\n", "c\x01\x1f\x7f\b\t\f\r/caf\xc3\xa9"}) {
            CAPTURE(text, stream, servers.size(), reserved.has_value(), model);
            const std::string body = chat_attempt_body(text, model, stream, servers, reserved);
            CHECK(body == written(text, model, stream, servers, reserved));
          }
        }
      }
    }
  }
}

TEST_CASE("an attempt body keeps a request's own spelling and refuses a NUL after it", "[attempt_body]") {
  SECTION("whitespace and escapes as sent: the same document as the written body") {
    const std::string text = " {\n \"messages\" : [ {\"role\":\"user\",\"content\":\"caf\\u00e9\"} ] ,\"n\" : 1 }\n\t";
    const std::string body = chat_attempt_body(text, "m/a", false, {"m/b"}, 32);
    CHECK(same_document(body, written(text, "m/a", false, {"m/b"}, 32)));
    CHECK(body.find("\\u00e9") != std::string::npos);
  }
  SECTION("a NUL after the request is not valid JSON: refused, nothing after it sent") {
    std::string text = R"({"messages":[{"role":"user","content":"x"}]})";
    text += std::string(1, '\0') + R"(,"evil":1})";
    CHECK_THROWS_AS(chat_attempt_body(text, "m/a", false, {}, std::nullopt), orroute::InvalidArgument);
  }
  SECTION("not an object: refused") {
    CHECK_THROWS(chat_attempt_body(std::string("[1]"), "m/a", false, {}, std::nullopt));
  }
}
