// read_json_in_place (the reply's reader) against parse_json_in_place (RapidJSON's): the same
// texts accepted, the same documents (types, integer or double, every byte of every string),
// on a table of edge cases, on every prefix of a reply, and on random mutations of replies.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "orroute/json.h"
#include "orroute/json_reader.h"

using orroute::JsonParse;

namespace {

bool same(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.GetType() != b.GetType()) return false;
  switch (a.GetType()) {
    case rapidjson::kNullType:
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return true;
    case rapidjson::kNumberType: {
      if (a.IsInt() != b.IsInt() || a.IsUint() != b.IsUint() || a.IsInt64() != b.IsInt64() ||
          a.IsUint64() != b.IsUint64() || a.IsDouble() != b.IsDouble()) {
        return false;
      }
      if (a.IsDouble()) {
        const double x = a.GetDouble(), y = b.GetDouble();
        return std::memcmp(&x, &y, sizeof x) == 0;  // -0.0 apart from 0.0
      }
      return a.IsUint64() ? a.GetUint64() == b.GetUint64() : a.GetInt64() == b.GetInt64();
    }
    case rapidjson::kStringType:
      return a.GetStringLength() == b.GetStringLength() &&
             std::memcmp(a.GetString(), b.GetString(), a.GetStringLength()) == 0;
    case rapidjson::kArrayType: {
      if (a.Size() != b.Size()) return false;
      for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
        if (!same(a[i], b[i])) return false;
      }
      return true;
    }
    case rapidjson::kObjectType: {
      if (a.MemberCount() != b.MemberCount()) return false;
      for (auto x = a.MemberBegin(), y = b.MemberBegin(); x != a.MemberEnd(); ++x, ++y) {
        if (!same(x->name, y->name) || !same(x->value, y->value)) return false;
      }
      return true;
    }
  }
  return false;
}

struct Both {
  JsonParse ours;
  JsonParse theirs;
  bool same_document;
};

// Both readers on copies of `text` (each changes its own in place).
Both read_both(const std::string& text, int max_depth = orroute::kMaxJsonDepth) {
  std::string a = text, b = text;
  rapidjson::Document ours, theirs;
  const JsonParse x = orroute::read_json_in_place(a, ours, orroute::kMaxJsonBytes, max_depth);
  const JsonParse y = orroute::parse_json_in_place(b, theirs, orroute::kMaxJsonBytes, max_depth);
  return {x, y, same(ours, theirs)};
}

// Where RapidJSON 1.1 accepts text that is not JSON and this reader does not (as Python's json
// does not): anything after a NUL byte that follows the root value (its sized reader takes a NUL
// for the end), and the control bytes 0x1A-0x1F inside a string that its SSE2 scan misses (it
// tests for bytes up to 0x19; its byte-by-byte scan refuses them, so it depends on where the
// string lies in memory).
bool rapidjson_lenient_on(const std::string& text) {
  for (const char c : text) {
    if (c == '\0' || (c >= 0x1A && c <= 0x1F)) return true;
  }
  return false;
}

// Accepted or refused alike (but for RapidJSON's leniency above: refused by this reader only);
// when both accept, the same document.
void check_agrees(const std::string& text) {
  INFO("text: " << text);
  const Both r = read_both(text);
  if (r.ours != JsonParse::kOk && r.theirs == JsonParse::kOk && rapidjson_lenient_on(text)) return;
  REQUIRE((r.ours == JsonParse::kOk) == (r.theirs == JsonParse::kOk));
  REQUIRE(r.same_document);
}

const std::string kReply =
    R"({"id":"gen-1796515003-c209629f6fbed82c07cd","provider":"M","model":"m/a","object":"chat.completion",)"
    R"("created":1796515003,"system_fingerprint":null,"choices":[{"index":0,"logprobs":null,)"
    R"("finish_reason":"length","native_finish_reason":"length","message":{"role":"assistant",)"
    R"("content":"You said: \"Say hi\". Described constraints the the the next","refusal":null,)"
    R"("reasoning":null}}],"usage":{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26,)"
    R"("cost":0.000042,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,)"
    R"("audio_tokens":0,"video_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,)"
    R"("image_tokens":0,"audio_tokens":0},"cost_details":{"upstream_inference_cost":null,)"
    R"("upstream_inference_prompt_cost":0.00001,"upstream_inference_completions_cost":0.000032}}})";

// Escapes of every kind, surrogates, long and short strings, numbers at every integer limit,
// nesting and white space.
const std::string kTricky =
    "{ \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\" : \"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\udc00 tail\",\n"
    "\t\"long\": \"0123456789abcdef0123456789abcdef\\n0123456789abcdef\",\r\n"
    "\"nums\": [0, -0, 1, -1, 2147483647, 2147483648, -2147483648, -2147483649, 4294967295,"
    " 4294967296, 999999999999999999, -999999999999999999, 9223372036854775807,"
    " 9223372036854775808, -9223372036854775808, -9223372036854775809, 18446744073709551615,"
    " 18446744073709551616, 1.5, -0.0, 1e3, 1E-3, 2.5e+10, 0.1, 123456789012345678901234567890,"
    " 1.7976931348623157e308, 4.9e-324, 1e-400],\n"
    "  \"empty\": {}, \"none\": [], \"deep\": [[[{\"x\": [true, false, null]}]]], \"\": \"\\u0000\" }";

}  // namespace

TEST_CASE("the reply reader reads a chat reply as RapidJSON does", "[json][reader]") {
  check_agrees(kReply);
  check_agrees(kTricky);
  std::string text = kReply;
  rapidjson::Document doc;
  REQUIRE(orroute::read_json_in_place(text, doc) == JsonParse::kOk);
  REQUIRE(std::string(doc["choices"][0]["message"]["content"].GetString()) ==
          "You said: \"Say hi\". Described constraints the the the next");
  REQUIRE(doc["usage"]["total_tokens"].GetInt() == 26);
  REQUIRE(doc["usage"]["cost"].GetDouble() == 0.000042);
}

TEST_CASE("the reply reader refuses what RapidJSON refuses", "[json][reader]") {
  const std::vector<std::string> refused = {
      "", " ", "{", "}", "[", "]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "[1,]", "[,1]", "[1 2]",
      "{\"a\" 1}", "{a:1}", "{'a':1}", "\"abc", "\"a\\\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
      "\"\\ud800\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"a\nb\"", std::string("\"a\0b\"", 5),
      std::string("{\"a\":1}\0", 8), "01", "-", "-a", "+1", ".5", "1.", "1.e3", "1e", "1e+", "--1",
      "1e309", "-1e309", "0e400", "tru", "truex", "nul", "nulll", "falsey", "NaN", "Infinity",
      "[1]]", "{}}", "{} {}", "1 2", "\xef\xbb\xbf{}", "[\"a\",\t]"};
  for (const std::string& text : refused) {
    INFO("text: " << text);
    const Both r = read_both(text);
    REQUIRE(r.ours != JsonParse::kOk);
    if (!rapidjson_lenient_on(text)) REQUIRE(r.theirs != JsonParse::kOk);
  }
  // not JSON, which RapidJSON 1.1 may accept (rapidjson_lenient_on) and Python's json refuses
  for (const std::string& text : {std::string("{}\0x", 4), std::string("\"0123456789abcdef\x1f\"")}) {
    std::string copy = text;
    rapidjson::Document doc;
    REQUIRE(orroute::read_json_in_place(copy, doc) == JsonParse::kInvalid);
  }
  const std::vector<std::string> accepted = {
      "0", "-0", "1", "\"\"", "null", " true ", "[]", "{}", "[[]]", "\"\\u0000\"", "\"\xff\xfe\"",
      "\"\\udc00\"", "1e-400", "-0.0", "\t\r\n[ 1 ,\n2 ]\n"};
  for (const std::string& text : accepted) check_agrees(text);
}

TEST_CASE("the reply reader stops at the depth limit without recursing past it", "[json][reader]") {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  REQUIRE(read_both(nested(orroute::kMaxJsonDepth)).ours == JsonParse::kOk);
  const Both over = read_both(nested(orroute::kMaxJsonDepth + 1));
  REQUIRE(over.ours == JsonParse::kTooDeep);
  REQUIRE(over.theirs == JsonParse::kTooDeep);
  REQUIRE(read_both(std::string(1'000'000, '[')).ours == JsonParse::kTooDeep);
  REQUIRE(read_both(std::string(500'000, '{') , 4).ours != JsonParse::kOk);
  std::string objects;
  for (int i = 0; i < 200; ++i) objects += "{\"a\":";
  objects += "1" + std::string(200, '}');
  REQUIRE(read_both(objects).ours == JsonParse::kTooDeep);
  std::string big = "\"" + std::string(100, 'x') + "\"";
  rapidjson::Document doc;
  REQUIRE(orroute::read_json_in_place(big, doc, 50) == JsonParse::kTooLarge);
  REQUIRE(doc.IsNull());
}

TEST_CASE("the reply reader agrees with RapidJSON on every prefix of a reply", "[json][reader]") {
  for (const std::string* seed : {&kReply, &kTricky}) {
    for (size_t n = 0; n <= seed->size(); ++n) check_agrees(seed->substr(0, n));
  }
}

TEST_CASE("the reply reader agrees with RapidJSON on mutated replies", "[json][reader]") {
  // Mutations that reach the readers' edges: the grammar's bytes, escapes, digits, controls.
  const std::string alphabet = "{}[]\":,\\/u0123456789abcdefABCDEF-+.eEtrunlsx \t\r\n\x01\x1f\x7f\x80\xff";
  std::mt19937 rng(20261205);
  auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (const std::string* seed : {&kReply, &kTricky}) {
    for (int round = 0; round < 20000; ++round) {
      std::string text = *seed;
      const int edits = 1 + static_cast<int>(pick(4));
      for (int e = 0; e < edits && !text.empty(); ++e) {
        const size_t at = pick(text.size());
        switch (pick(4)) {
          case 0: text[at] = alphabet[pick(alphabet.size())]; break;
          case 1: text.insert(at, 1, alphabet[pick(alphabet.size())]); break;
          case 2: text.erase(at, 1 + pick(3)); break;
          default: text.insert(at, text.substr(pick(text.size()), 1 + pick(12))); break;
        }
      }
      check_agrees(text);
    }
  }
}
