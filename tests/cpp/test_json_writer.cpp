// JsonWriter writes the bytes rapidjson's Writer writes, its plain strings copied in one step.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "orroute/json_writer.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"
#include "orroute/utf8.h"

using namespace orroute;

namespace {

template <typename Writer>
std::string written(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  REQUIRE(v.Accept(w));
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

TEST_CASE("the json writer writes what rapidjson's writer writes", "[json_writer]") {
  const std::string texts[] = {
      R"({"messages":[{"role":"user","content":"Say hi"}],"max_tokens":16,"t":0.7,"n":null,"b":true})",
      R"({"":"","k\"ey":"q\"uote","b\\s":"back\\slash","c":"\n\t\r\b\f\u0001\u001f\u007f","u":"café ☕ 😀"})",
      R"([["a"],{"x":[1,-2,3.5e-7,1e300]},"a long text of more than sixteen bytes without escapes","and one with\" a quote past the sixteenth byte"])",
      R"("just a string")",
  };
  for (const std::string& text : texts) {
    CAPTURE(text);
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(written<JsonWriter>(d) == written<rapidjson::Writer<rapidjson::StringBuffer>>(d));
  }
  SECTION("a string with a NUL inside is escaped, not cut") {
    rapidjson::Document d;
    d.SetString("a\0b", 3, d.GetAllocator());
    CHECK(written<JsonWriter>(d) == "\"a\\u0000b\"");
  }
}

namespace {

// `text` as JSON escapes it (RFC 8259 section 7, with rapidjson's choice of escapes: \b \t \n \f
// \r by name, the other control bytes as \u00XX with upper-case digits), written the slow way.
std::string expected_json_string(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\f') {
      out += "\\f";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04X", c);
      out += u;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

// rapidjson 1.1.0's SSE2 string scan (`Writer<StringBuffer>::ScanWriteUnescapedString`, compiled
// in with RAPIDJSON_SSE2) tests bytes against 0x19, so 0x1A-0x1F in a string of 16 bytes or more
// went out raw: invalid JSON. ESC (0x1B) is in every terminal colour code an agent pipes back.
TEST_CASE("every control byte is escaped, wherever it lies in a long string", "[json_writer]") {
  for (int c = 0; c < 0x20; ++c) {
    for (size_t at : {size_t{0}, size_t{5}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{40}}) {
      std::string text(48, 'a');
      text[at] = static_cast<char>(c);
      CAPTURE(c, at);
      rapidjson::Document d;
      d.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), d.GetAllocator());
      const std::string want = expected_json_string(text);
      CHECK(written<JsonWriter>(d) == want);
      CHECK(to_json(d) == want);
      std::string appended;
      append_json_string(appended, text);
      CHECK(appended == want);
    }
  }
  SECTION("a terminal colour code in a message") {
    const std::string text = "build output: \x1b[31merror\x1b[0m in main.cpp line 12";
    rapidjson::Document d;
    d.SetObject();
    d.AddMember("content", rapidjson::Value(text.c_str(), d.GetAllocator()), d.GetAllocator());
    const std::string json = to_json(d);
    CHECK(json.find('\x1b') == std::string::npos);
    rapidjson::Document back;
    back.Parse(json.data(), json.size());
    REQUIRE_FALSE(back.HasParseError());
    CHECK(std::string(back["content"].GetString()) == text);
  }
}

// A string an upstream sent may hold bytes that are not UTF-8 once parsed: the reply's bytes are
// made valid (repair_utf8) before the parse, but rapidjson 1.1.0 decodes the escape of a lone low
// surrogate ("\udc00", six ASCII bytes) to ED B0 80, and refuses only a lone high one. Such a
// string written again (the gateway's /v1/messages reply, the Anthropic adapter's replies and
// chunks, a stream assembled) went out as invalid UTF-8 (pybind11 raised UnicodeDecodeError on
// it). Every writer writes each ill-formed subpart as U+FFFD, as upstream_str decodes it.
TEST_CASE("a string that is not UTF-8 is written with U+FFFD, never raw", "[json_writer]") {
  const std::string fffd = "\xEF\xBF\xBD";
  SECTION("a lone low surrogate's escape, parsed") {
    rapidjson::Document d;
    REQUIRE(parse_json_text(std::string_view(R"({"content":"lone \udc00 low, \udfff too"})"), d) == JsonParse::kOk);
    const std::string got = to_json(d);
    CHECK(utf8_valid(got));
    CHECK(got == "{\"content\":\"lone " + fffd + fffd + fffd + " low, " + fffd + fffd + fffd + " too\"}");
    CHECK(written<JsonWriter>(d) == got);
  }
  const std::string bad[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", std::string(20, 'a') + "\x80\"\x1b"};
  const std::string want[] = {
      "\"" + fffd + "\"", "\"a" + fffd + "\"", "\"" + fffd + fffd + fffd + "\"", "\"" + fffd + fffd + "\"",
      "\"" + std::string(20, 'a') + fffd + "\\\"\\u001B\""};
  for (size_t i = 0; i < std::size(bad); ++i) {
    CAPTURE(i);
    rapidjson::Document d;
    d.SetString(bad[i].data(), static_cast<rapidjson::SizeType>(bad[i].size()), d.GetAllocator());
    CHECK(written<JsonWriter>(d) == want[i]);
    std::string appended;
    append_json_string(appended, bad[i]);
    CHECK(appended == want[i]);
    rapidjson::Document keyed;
    keyed.SetObject();
    rapidjson::Value name(bad[i].data(), static_cast<rapidjson::SizeType>(bad[i].size()), keyed.GetAllocator());
    keyed.AddMember(name, rapidjson::Value(1), keyed.GetAllocator());
    CHECK(to_json(keyed) == "{" + want[i] + ":1}");
  }
  SECTION("a quote, a backslash, DEL and a letter beyond ASCII, wherever they lie") {
    for (const std::string piece : {"\"", "\\", "\x7f", "\xc3\xa9", "\xf0\x9f\x98\x80"}) {
      for (size_t at = 0; at <= 24; ++at) {
        std::string text(24, 'a');
        text.insert(at, piece);
        CAPTURE(piece, at);
        rapidjson::Document d;
        d.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), d.GetAllocator());
        CHECK(written<JsonWriter>(d) == expected_json_string(text));
        CHECK(written<JsonWriter>(d) == written<rapidjson::Writer<rapidjson::StringBuffer>>(d));
      }
    }
  }
  SECTION("valid text beyond ASCII is written as it is") {
    const std::string text = "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80 \"q\"";
    rapidjson::Document d;
    d.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), d.GetAllocator());
    CHECK(written<JsonWriter>(d) == "\"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80 \\\"q\\\"\"");
  }
}
