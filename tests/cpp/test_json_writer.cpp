// JsonWriter writes the bytes rapidjson's Writer writes, its plain strings copied in one step.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <catch2/catch.hpp>

#include <string>

#include "orroute/json_writer.h"

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
