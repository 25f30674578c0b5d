// read_plain_reply (a reply read in one pass for what the engine takes from it) against
// plain_reply_of (the same read from a document): the same answers on every reply, hostile ones
// included; and the cost read exactly from its digits.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/plain_reply.h"
#include "orroute/json.h"

using namespace orroute;

namespace {

// What the document path gives for `text`: nothing where read_plain_reply must give nothing too
// (not JSON, not an object, an error reply).
std::optional<PlainReply> by_document(const std::string& text) {
  rapidjson::Document doc;
  if (parse_json_text(text, doc) != JsonParse::kOk || !doc.IsObject()) return std::nullopt;
  const ReplyMembers m = reply_members(doc);
  if (m.error && m.error->IsObject()) return std::nullopt;
  return plain_reply_of(doc);
}

// The document path as the engine takes it for a metered reply: parsed in place, the cost read
// from its digits.
std::optional<PlainReply> by_document_in_place(const std::string& text) {
  std::string copy = text;
  rapidjson::Document doc;
  if (parse_json_in_place(copy, doc) != JsonParse::kOk || !doc.IsObject()) return std::nullopt;
  const ReplyMembers m = reply_members(doc);
  if (m.error && m.error->IsObject()) return std::nullopt;
  return plain_reply_of(doc, true);
}

std::optional<PlainReply> in_one_pass(const std::string& text) {
  std::string copy = text;
  return read_plain_reply(copy, kMaxJsonBytes);
}

// Two amounts one double's rounding apart at most (the document's cost went through a double).
bool within_a_double(Money a, Money b) {
  const Money d = a > b ? a - b : b - a;
  const Money m = a.is_negative() ? -a : a;
  return d.units() <= m.units() / 1'000'000'000'000'000 + 1;
}

void check_same(const std::optional<PlainReply>& want, const std::optional<PlainReply>& got, bool exact_costs) {
  REQUIRE(want.has_value() == got.has_value());
  if (!want) return;
  CHECK(got->served_model == want->served_model);
  CHECK(got->provider == want->provider);
  CHECK(got->summary.id == want->summary.id);
  CHECK(got->summary.content == want->summary.content);
  CHECK(got->summary.parts == want->summary.parts);
  REQUIRE(got->usage.has_value() == want->usage.has_value());
  if (!want->usage) return;
  const Usage& g = *got->usage;
  const Usage& w = *want->usage;
  CHECK(g.present == w.present);
  CHECK(g.prompt_tokens == w.prompt_tokens);
  CHECK(g.completion_tokens == w.completion_tokens);
  CHECK(g.total_tokens == w.total_tokens);
  CHECK(g.cached_tokens == w.cached_tokens);
  CHECK(g.cache_write_tokens == w.cache_write_tokens);
  CHECK(g.audio_tokens == w.audio_tokens);
  CHECK(g.reasoning_tokens == w.reasoning_tokens);
  CHECK(g.audio_output_tokens == w.audio_output_tokens);
  CHECK(g.image_output_tokens == w.image_output_tokens);
  CHECK(g.token_problem == w.token_problem);
  CHECK(g.cost_reported == w.cost_reported);
  CHECK(g.cost_problem == w.cost_problem);
  REQUIRE(g.cost.has_value() == w.cost.has_value());
  if (!g.cost) return;
  if (exact_costs) {
    CHECK(g.cost->to_string() == w.cost->to_string());
  } else {
    CHECK(within_a_double(*g.cost, *w.cost));
  }
}

// One pass against the document (its cost one double's rounding apart at most), and against the
// document parsed in place (the same cost, exactly).
void check_same(const std::string& text, bool exact_costs = true) {
  INFO(text);
  const std::optional<PlainReply> got = in_one_pass(text);
  check_same(by_document(text), got, exact_costs);
  check_same(by_document_in_place(text), got, true);
}

const char* const kReply =
    R"({"id":"gen-1","provider":"M","model":"m/a","object":"chat.completion","created":1796558676,)"
    R"("system_fingerprint":null,"choices":[{"index":0,"logprobs":null,"finish_reason":"length",)"
    R"("message":{"role":"assistant","content":"You said: \"Say hi\".","refusal":null,"reasoning":null}}],)"
    R"("usage":{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26,"cost":0.000042,"is_byok":false,)"
    R"("prompt_tokens_details":{"cached_tokens":3,"cache_write_tokens":2,"audio_tokens":1,"video_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":4,"image_tokens":5,"audio_tokens":6},)"
    R"("cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.00001}}})";

// A random value of a random shape, `depth` levels at most.
std::string any_value(std::mt19937_64& rng, int depth);

std::string any_scalar(std::mt19937_64& rng) {
  static const char* const kScalars[] = {
      "null", "true", "false", "0", "-1", "7", "16", "1.5", "2.0", "1e2", "-0", "-0.0", "1e300", "1e-400",
      "18446744073709551615", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
      "0.000042", "0.12345678901234567", "1000000001", "\"\"", "\"text\"", "\"m/b\"", "\"0.5\"", "\"abc\"",
      "\"caf\\u00e9\"", "\"a\\\"b\"", "\"t\\u0065xt\""};
  return kScalars[rng() % std::size(kScalars)];
}

std::string any_key(std::mt19937_64& rng) {
  static const char* const kKeys[] = {
      "id", "choices", "usage", "model", "provider", "error", "message", "content", "text", "type",
      "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details",
      "cost", "cached_tokens", "cache_write_tokens", "audio_tokens", "reasoning_tokens", "image_tokens",
      "delta", "index", "co\\u0073t", "\\u0069d", "usage ", "x", "reasoning", "refusal", "reasoning_details",
      "summary", "tool_calls", "function", "name", "arguments", "me\\u0073sage"};
  return kKeys[rng() % std::size(kKeys)];
}

std::string any_object(std::mt19937_64& rng, int depth) {
  std::string out = "{";
  const int n = static_cast<int>(rng() % 6);
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += rng() % 4 == 0 ? " , " : ",";
    out += "\"" + any_key(rng) + "\"" + (rng() % 4 == 0 ? " :\n " : ":") + any_value(rng, depth - 1);
  }
  return out + "}";
}

std::string any_value(std::mt19937_64& rng, int depth) {
  const auto pick = depth <= 0 ? 0 : rng() % 4;
  if (pick == 1) return any_object(rng, depth);
  if (pick == 2) {
    std::string out = "[";
    const int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) out += (i > 0 ? "," : "") + any_value(rng, depth - 1);
    return out + "]";
  }
  return any_scalar(rng);
}

// A random reply shaped as generated_text reads one, each level usually the shape it reads
// (choices, a choice, a message, its texts, parts, reasoning details, tool calls, functions) and
// else any value, members repeated and in any order: the random values above rarely nest deep
// enough to reach a tool call's arguments.
class ShapedReply {
 public:
  explicit ShapedReply(std::mt19937_64& rng) : rng_(rng) {}
  std::string reply() {
    return object({{"choices", [this] { return array([this] { return choice(); }); }},
                   {"usage", [this] { return any_value(rng_, 2); }}});
  }

 private:
  using Member = std::pair<const char*, std::function<std::string()>>;
  bool usual() { return rng_() % 6 != 0; }
  std::string text() {
    static const char* const kTexts[] = {"\"\"", "\"a\"", "\"caf\\u00e9\"", "\"q\\\"x\\n\"", "\"\\ud83d\\ude00\"",
                                         "\"0123456789abcdef0123\"", "null", "7", "true"};
    return kTexts[rng_() % std::size(kTexts)];
  }
  std::string object(const std::vector<Member>& members) {
    if (!usual()) return any_value(rng_, 2);
    std::string out = "{";
    const int n = static_cast<int>(rng_() % 5);
    for (int i = 0; i < n; ++i) {
      const Member& m = members[rng_() % members.size()];
      if (i > 0) out += ",";
      out += rng_() % 8 == 0 ? "\"x\":" + any_value(rng_, 1) : "\"" + std::string(m.first) + "\":" + m.second();
    }
    return out + "}";
  }
  std::string array(const std::function<std::string()>& element) {
    if (!usual()) return any_value(rng_, 2);
    std::string out = "[";
    const int n = static_cast<int>(rng_() % 4);
    for (int i = 0; i < n; ++i) out += (i > 0 ? "," : "") + (usual() ? element() : any_value(rng_, 1));
    return out + "]";
  }
  std::string choice() {
    const auto message = [this] { return this->message(); };
    return object({{"message", message}, {"message", message}, {"message", message}, {"delta", message},
                   {"index", [this] { return text(); }}});
  }
  std::string texts() {
    if (rng_() % 2 == 0) return text();
    return array([this] { return object({{"text", [this] { return text(); }}, {"type", [this] { return text(); }}}); });
  }
  std::string message() {
    return object({{"content", [this] { return texts(); }},
                   {"reasoning", [this] { return texts(); }},
                   {"refusal", [this] { return texts(); }},
                   {"role", [this] { return text(); }},
                   {"reasoning_details", [this] {
                      return array([this] {
                        return object({{"text", [this] { return text(); }}, {"summary", [this] { return text(); }},
                                       {"data", [this] { return text(); }}});
                      });
                    }},
                   {"tool_calls", [this] {
                      return array([this] {
                        return object({{"id", [this] { return text(); }}, {"function", [this] {
                                         return object({{"name", [this] { return text(); }},
                                                        {"arguments", [this] { return text(); }}});
                                       }}});
                      });
                    }}});
  }
  std::mt19937_64& rng_;
};

// `reply` with one to three random edits: a byte changed to a JSON character, a cut, a splice.
std::string edited(const std::string& reply, std::mt19937_64& rng) {
  std::string s = reply;
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rng() % s.size();
    switch (rng() % 3) {
      case 0: s[at] = "{}[]\",:0123456789.e-ntfu\\ "[rng() % 27]; break;
      case 1: s.erase(at, 1 + rng() % 8); break;
      default: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 24)); break;
    }
  }
  return s;
}

// A reply metered by its text read in one pass: what the unmetered pass gives, and the generated
// text its document gives (generated_text(doc, "message"), which the engine counted before).
void check_generated(const std::string& text) {
  INFO(text);
  std::string copy = text;
  std::string generated = "stale";
  const std::optional<PlainReply> got = read_plain_reply(copy, kMaxJsonBytes, generated);
  check_same(in_one_pass(text), got, true);
  if (!got) return;
  std::string placed = text;
  rapidjson::Document doc;
  REQUIRE(parse_json_in_place(placed, doc) == JsonParse::kOk);
  CHECK(generated == generated_text(doc, "message"));
}

const char* const kMeteredReplies[] = {
    kReply,
    R"({"choices":[{"message":{"content":"a","reasoning":"b","refusal":"c"}}]})",
    R"({"choices":[{"message":{"refusal":"c","reasoning":"b","content":"a"}}]})",
    R"({"choices":[{"message":{"content":[{"text":"p1"},"x",{"text":2},{"text":"p2","text":"p3"}],"content":"q"}}]})",
    R"({"choices":[{"message":{"reasoning":[{"text":"r1"}],"refusal":[{"text":"f1"},{"type":"x"}]}}]})",
    R"({"choices":[{"message":{"reasoning_details":[{"text":"t1","summary":"s1","text":"t2"},{"summary":"s2"},7],)"
    R"("content":"c"}}]})",
    R"({"choices":[{"message":{"reasoning":"r","reasoning_details":[{"text":"repeated"}],"content":"c"}}]})",
    R"({"choices":[{"message":{"reasoning":null,"reasoning_details":[{"text":"d"}],"reasoning":"r2"}}]})",
    R"({"choices":[{"message":{"reasoning_details":[{"text":"d"}],"reasoning":{"x":"y"},"reasoning":"late"}}]})",
    R"({"choices":[{"message":{"reasoning_details":[{"text":"d1"}],"reasoning_details":[{"summary":"d2"}]}}]})",
    R"({"choices":[{"message":{"tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{\"a\":1}","name":"g"}},)"
    R"({"function":{"arguments":"x"},"function":{"name":"h"}},"bad",{"function":"nope"}],"content":null}}]})",
    R"({"choices":[{"message":{"content":"one"}},{"message":{"content":"two"},"message":{"content":"three"}},5],)"
    R"("choices":[{"message":{"content":"four"}}],"choices":{"message":{"content":"no"}}})",
    R"({"choices":[{"delta":{"content":"not a message"},"message":"a string","message":{"content":"yes"}}]})",
    R"({"choices":[{"message":{"content":"caf\u00e9 \"q\" \u0000 end","me\u0073sage":1}}]})",
    R"({"choices":[{"message":{"nested":{"content":"no"},"content":[[{"text":"no"}],{"text":{"t":"no"}},{"text":"yes"}]}}]})",
    R"({"usage":{"cost":0.5},"choices":[[{"message":{"content":"no"}}],{"message":{"content":"yes"}}]})",
    R"({"x":{"choices":[{"message":{"content":"no"}}]},"choices":[]})",
    R"({"error":{"message":"an error reply"},"choices":[{"message":{"content":"x"}}]})",
    R"([{"choices":[{"message":{"content":"x"}}]}])", "{", "",
};

}  // namespace

TEST_CASE("a metered reply's generated text read in one pass is its document's", "[plain_reply]") {
  SECTION("usual and hostile replies") {
    for (const char* text : kMeteredReplies) check_generated(text);
  }
  SECTION("random replies of every shape") {
    std::mt19937_64 rng(15);
    for (int i = 0; i < 20'000; ++i) check_generated(any_object(rng, 7));
  }
  SECTION("random replies shaped as the generated text is read") {
    std::mt19937_64 rng(19);
    ShapedReply shaped(rng);
    for (int i = 0; i < 30'000; ++i) check_generated(shaped.reply());
  }
  SECTION("a reply with every kind of text cut or changed byte by byte") {
    std::mt19937_64 rng(7);
    const std::string reply =
        R"({"id":"g","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"Hi"}],)"
        R"("reasoning":null,"refusal":"no","reasoning_details":[{"type":"reasoning.text","text":"think","summary":"s"}],)"
        R"("tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]}}],)"
        R"("usage":{"prompt_tokens":3,"completion_tokens":9,"cost":0.00001}})";
    for (int i = 0; i < 5'000; ++i) check_generated(edited(reply, rng));
  }
}

TEST_CASE("a plain reply read in one pass gives what its document gives", "[plain_reply]") {
  SECTION("a usual reply") {
    check_same(kReply);
    const std::optional<PlainReply> r = in_one_pass(kReply);
    REQUIRE(r);
    CHECK(r->summary.content == "You said: \"Say hi\".");
    CHECK(r->usage->cost == Money::parse("0.000042"));
    CHECK(r->usage->reasoning_tokens == 4);
    CHECK(r->usage->audio_output_tokens == 6);
  }
  SECTION("repeated members: the first usage, model, provider and error; the last id and choices") {
    for (const char* text : {
             R"({"id":"a","id":"b","model":"m1","model":"m2","provider":5,"provider":"P"})",
             R"({"usage":{"prompt_tokens":1,"cost":0.5},"usage":{"prompt_tokens":2,"cost":0.25}})",
             R"({"usage":[1],"usage":{"prompt_tokens":2}})",
             R"({"usage":{"prompt_tokens":1,"prompt_tokens":"x","cost":null,"cost":0.5}})",
             R"({"usage":{"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":{"cached_tokens":2}}})",
             R"({"usage":{"prompt_tokens_details":7,"prompt_tokens_details":{"cached_tokens":2}}})",
             R"({"usage":{"completion_tokens_details":{"reasoning_tokens":1,"reasoning_tokens":-1}}})",
             R"({"choices":[{"message":{"content":"one"}}],"choices":[{"message":{"content":"two"}}]})",
             R"({"choices":[{"message":{"content":"one"}}],"choices":{"0":{"message":{"content":"x"}}}})",
             R"({"choices":[{"message":{"content":"one"}}],"choices":[]})",
             R"({"choices":[{"message":{"content":"one"},"message":"two"}]})",
             R"({"choices":[{"message":{"content":"one"},"message":{"role":"r"}}]})",
             R"({"choices":[{"message":{"content":"one","content":["a",{"text":"b"},{"text":1},{"text":"c","text":"d"}]}}]})",
             R"({"choices":[{"message":{"content":["a"],"content":{"text":"x"}}}]})",
             R"({"choices":[[{"message":{"content":"x"}}],{"message":{"content":"y"}}]})",
             R"({"choices":[{"message":{"content":[[{"text":"x"}],{"text":"y"}]}}]})",
             R"({"choices":[{"x":{"message":{"content":"deep"}}}]})",
             R"({"error":"not an object","choices":[{"message":{"content":"ok"}}]})",
             R"({"error":null,"error":{"message":"the second"}})",
             R"({"error":{"message":"an error reply"}})",
             R"([{"usage":{}}])", "5", "\"text\"", "{", R"({"id":"x"} junk)", "",
             R"({"co\u0073t":1,"usage":{"co\u0073t":0.12345678901234567,"\u0063ost":1}})",
             R"({"usage":{"cost" :  0.000042 }})", R"({"usage":{"cost":-0.5}})", R"({"usage":{"cost":1e-400}})",
             R"({"usage":{"cost":"0.25"}})", R"({"usage":{"cost":1e300}})", R"({"usage":{"cost":18446744073709551615}})",
             R"({"usage":{"cost":1000000000.5}})", R"({"usage":{"cost":[0.5]}})", R"({"usage":{"cost":{}}})",
         }) {
      check_same(text);
    }
  }
  SECTION("random replies of every shape") {
    std::mt19937_64 rng(21);
    for (int i = 0; i < 20'000; ++i) {
      check_same(any_object(rng, 6), false);
    }
  }
  SECTION("a usual reply cut or changed byte by byte") {
    std::mt19937_64 rng(5);
    const std::string reply = kReply;
    for (int i = 0; i < 5'000; ++i) check_same(edited(reply, rng), false);
  }
}

TEST_CASE("a plain reply's cost is the decimal the upstream wrote, not its nearest double", "[plain_reply]") {
  // 17 significant digits and more: a double holds ~16; the document's reading books the double's
  // shortest form, one read in one pass the upstream's digits (rounded half-even past Money's 18
  // decimals).
  const struct {
    const char* written;
    const char* booked;
  } kCases[] = {
      {"0.12345678901234567", "0.12345678901234567"},
      {"0.000012345678901234567", "0.000012345678901235"},
      {"0.1234567890123456789", "0.123456789012345679"},
      {"1.2345678901234567e-5", "0.000012345678901235"},
      {"9.9999999999999999E-4", "0.001"},
      {"0.000042", "0.000042"},
      {"-0.000042", "-0.000042"},
  };
  for (const auto& c : kCases) {
    INFO(c.written);
    const std::string text = std::string(R"({"usage":{"prompt_tokens":1,"cost":)") + c.written + "}}";
    // read in one pass, and as a document parsed in place (a reply metered by its text)
    for (const std::optional<PlainReply>& r : {in_one_pass(text), by_document_in_place(text)}) {
      REQUIRE(r);
      REQUIRE(r->usage);
      REQUIRE(r->usage->cost);
      CHECK(r->usage->cost->to_string() == Money::parse(c.booked).to_string());
    }
  }
}

TEST_CASE("a plain reply read in one pass refuses what the guard of a parse refuses", "[plain_reply]") {
  // The one pass reads without the guard's pass before it: too deep, a NUL that would end the
  // text early, a control byte in a string and an oversized text are refused as it reads, and
  // read as a document (the same answer: none).
  const std::string reply = kReply;
  const auto nested = [&](int levels) {
    return reply.substr(0, reply.size() - 1) + ",\"x\":" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  SECTION("as deep as the guard allows, and one level deeper") {
    check_same(nested(kMaxJsonDepth - 1));
    CHECK(in_one_pass(nested(kMaxJsonDepth - 1)).has_value());
    check_same(nested(kMaxJsonDepth));
    CHECK_FALSE(in_one_pass(nested(kMaxJsonDepth)).has_value());
    CHECK_FALSE(in_one_pass(nested(100'000)).has_value());  // ends at the limit: no deep recursion
  }
  SECTION("a NUL after the reply, inside it, or inside a string") {
    for (const std::string& s : {reply + std::string(1, '\0') + "{}", reply + std::string(1, '\0'),
                                 std::string(1, '\0') + reply, reply.substr(0, 20) + std::string(1, '\0') + reply.substr(20),
                                 reply.substr(0, 10) + std::string(1, '\0') + reply.substr(10)}) {
      check_same(s);
      CHECK_FALSE(in_one_pass(s).has_value());
    }
  }
  SECTION("every control byte raw in a string (RapidJSON's SSE2 scan lets 0x1A-0x1F through)") {
    const size_t in_content = reply.find("You said");
    for (int b = 1; b < 0x20; ++b) {
      std::string s = reply;
      s.insert(in_content + 3, 1, static_cast<char>(b));
      check_same(s);
      CHECK_FALSE(in_one_pass(s).has_value());
    }
  }
  SECTION("a reply above the size allowed") {
    std::string s = reply;
    CHECK(read_plain_reply(s, reply.size()).has_value());
    s = reply;
    CHECK_FALSE(read_plain_reply(s, reply.size() - 1).has_value());
  }
}

TEST_CASE("a metered reply past the depth limit, or holding a NUL or a raw control byte, is refused", "[plain_reply]") {
  // The reply's generated text is read beside the plain reader (JsonTee): whichever of the two
  // guards the depth, neither may go past it, in what it reads (a message's content parts) or in
  // what it skips; a NUL or a control byte is refused as by the unmetered reading. None of them
  // is read in one pass: the document's parse says why.
  const auto metered = [](std::string text) {
    std::string generated;
    return read_plain_reply(text, kMaxJsonBytes, generated);
  };
  // `levels` arrays opened in a message's content (read) or in an unknown member (skipped): the
  // reply nests 5 (root, choices, a choice, the message, content) or 1 deeper than `levels`.
  const auto in_content = [](int levels) {
    return R"({"choices":[{"message":{"content":[)" + std::string(levels, '[') + std::string(levels, ']') +
           R"(,{"text":"t"}]}}]})";
  };
  const auto in_unknown = [](int levels) {
    return R"({"choices":[{"message":{"content":"c"}}],"x":)" + std::string(levels, '[') + std::string(levels, ']') +
           "}";
  };
  SECTION("as deep as the limit: read, its text its document's") {
    check_generated(in_content(kMaxJsonDepth - 5));
    CHECK(metered(in_content(kMaxJsonDepth - 5)).has_value());
    check_generated(in_unknown(kMaxJsonDepth - 1));
    CHECK(metered(in_unknown(kMaxJsonDepth - 1)).has_value());
  }
  SECTION("one level deeper, and far deeper: refused") {
    for (const std::string& text : {in_content(kMaxJsonDepth - 4), in_unknown(kMaxJsonDepth), in_content(100'000),
                                    in_unknown(100'000)}) {
      CHECK_FALSE(metered(text).has_value());
    }
  }
  SECTION("a NUL, or any control byte raw in a string") {
    const std::string reply = in_content(1);
    const size_t in_text = reply.find("\"t\"") + 1;
    for (const std::string& s : {reply + std::string(1, '\0') + "{}", std::string(1, '\0') + reply,
                                 reply.substr(0, in_text) + std::string(1, '\0') + reply.substr(in_text)}) {
      CHECK_FALSE(metered(s).has_value());
    }
    for (int b = 1; b < 0x20; ++b) {
      std::string s = reply;
      s.insert(in_text, 1, static_cast<char>(b));
      CHECK_FALSE(metered(s).has_value());
    }
  }
}
