#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "orroute/utf8.h"

// Expected outputs are Python's bytes.decode("utf-8", "replace").encode() of each input (the
// WHATWG / Unicode "maximal subpart" rule that Python and browsers follow).
TEST_CASE("repair_utf8 replaces each maximal ill-formed subpart with one U+FFFD, as Python does", "[utf8]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("", 0), std::string("", 0)},
      {std::string("plain ascii", 11), std::string("plain ascii", 11)},
      {std::string("h\xC3\xA9llo \xE2\x82\xAC\xF0\x9D\x84\x9E", 14), std::string("h\xC3\xA9llo \xE2\x82\xAC\xF0\x9D\x84\x9E", 14)},
      {std::string("\xFF", 1), std::string("\xEF\xBF\xBD", 3)},
      {std::string("a\xFF" "b", 3), std::string("a\xEF\xBF\xBD" "b", 5)},
      {std::string("\xC3", 1), std::string("\xEF\xBF\xBD", 3)},
      {std::string("\xC3(", 2), std::string("\xEF\xBF\xBD(", 4)},
      {std::string("\xE2\x82", 2), std::string("\xEF\xBF\xBD", 3)},
      {std::string("\xE2\x82(", 3), std::string("\xEF\xBF\xBD(", 4)},
      {std::string("\xF0\x9D\x84", 3), std::string("\xEF\xBF\xBD", 3)},
      {std::string("\xF0\x9D\x84x", 4), std::string("\xEF\xBF\xBDx", 4)},
      {std::string("\xC0\xAF", 2), std::string("\xEF\xBF\xBD\xEF\xBF\xBD", 6)},
      {std::string("\xE0\x80\xAF", 3), std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9)},
      {std::string("\xED\xA0\x80", 3), std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9)},
      {std::string("\xED\xB2\x80", 3), std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9)},
      {std::string("\xF4\x90\x80\x80", 4), std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12)},
      {std::string("\xF5\x80", 2), std::string("\xEF\xBF\xBD\xEF\xBF\xBD", 6)},
      {std::string("\x80\x80", 2), std::string("\xEF\xBF\xBD\xEF\xBF\xBD", 6)},
      {std::string("12345678\xFE" "12345678", 17), std::string("12345678\xEF\xBF\xBD" "12345678", 19)},
      {std::string("\xF0\x80\x80\x80", 4), std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12)},
      {std::string("\xE1\x80\xE2\x82\xAC", 5), std::string("\xEF\xBF\xBD\xE2\x82\xAC", 6)},
      {std::string("\xF4\x8F\xBF\xBF", 4), std::string("\xF4\x8F\xBF\xBF", 4)},
      {std::string("\xEF\xBF\xBD", 3), std::string("\xEF\xBF\xBD", 3)},
  };
  for (const auto& [in, want] : cases) {
    std::string s = in;
    const bool changed = orroute::repair_utf8(s);
    INFO("input of " << in.size() << " bytes");
    CHECK(s == want);
    CHECK(changed == (in != want));
    CHECK(orroute::utf8_valid(want));
    CHECK(orroute::utf8_valid(in) == (in == want));
  }
}

TEST_CASE("repair_utf8 output is always valid and repairing twice changes nothing", "[utf8]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) {
      const unsigned r = rng() % 4;
      c = static_cast<char>(r == 0 ? 'a' + rng() % 26 : r == 1 ? 0x80 + rng() % 64 : 0xC0 + rng() % 64);
    }
    orroute::repair_utf8(s);
    REQUIRE(orroute::utf8_valid(s));
    std::string again = s;
    REQUIRE_FALSE(orroute::repair_utf8(again));
    REQUIRE(again == s);
  }
}

TEST_CASE("repair_json_surrogates rewrites the escape of a lone surrogate as \\ufffd", "[utf8]") {
  using orroute::repair_json_surrogates;
  const auto repaired = [](std::string s) {
    repair_json_surrogates(s);
    return s;
  };
  CHECK(repaired(R"({"c":"\udc00"})") == R"({"c":"\ufffd"})");
  CHECK(repaired(R"({"c":"\uD800x"})") == R"({"c":"\ufffdx"})");
  CHECK(repaired(R"("\ud800\ud800\udc00")") == R"("\ufffd\ud800\udc00")");  // the second one pairs
  CHECK(repaired(R"("\udc00\ud800")") == R"("\ufffd\ufffd")");            // low before high: no pair
  CHECK(repaired(R"("\ud83d\ude00 ok \u00e9 \n \"\\")") == R"("\ud83d\ude00 ok \u00e9 \n \"\\")");
  CHECK(repaired(R"("\\udc00")") == R"("\\udc00")");  // an escaped backslash, then text
  CHECK(repaired(R"("\\\udc00")") == R"("\\\ufffd")");
  CHECK(repaired(R"("\ud800")") == R"("\ufffd")");    // at the end of the text
  CHECK(repaired("\"\\ud800\\u") == "\"\\ufffd\\u");  // cut: left as it is, never read past
  CHECK(repaired("\\udc0") == "\\udc0");
  CHECK(repaired("\\") == "\\");
  CHECK(repaired("\\uzzzz\\udfff") == "\\uzzzz\\ufffd");
  std::string same = R"({"a":"plain","b":"\u0041"})";
  CHECK_FALSE(repair_json_surrogates(same));
  std::string lone = R"("\uDFFF")";
  CHECK(repair_json_surrogates(lone));
  // every cut of a text of escapes: never throws, never grows, never reads past the end
  const std::string text = R"("\ud83d\ude00\udc00\\\ud800\u12)";
  for (size_t n = 0; n <= text.size(); ++n) {
    std::string t = text.substr(0, n);
    repair_json_surrogates(t);
    CHECK(t.size() == n);
  }
}
