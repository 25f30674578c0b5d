#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"
#include "orroute/net/stream_scrub.h"

namespace {

const std::string kKey = "sk-or-v1-abcdef0123456789";

std::shared_ptr<orroute::ApiClient> client() {
  orroute::ClientConfig cfg;
  cfg.base_url = "http://127.0.0.1:9/api/v1";
  cfg.api_keys = {kKey, "other-key-with-another-start-0000"};
  return orroute::ApiClient::create(std::move(cfg));
}

// A chunk of one choice whose delta `fill(delta, allocator)` writes.
template <class Fill>
rapidjson::Document one_choice(Fill fill, const char* finish) {
  rapidjson::Document d;
  d.SetObject();
  auto& a = d.GetAllocator();
  rapidjson::Value delta(rapidjson::kObjectType);
  fill(delta, a);
  rapidjson::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("delta", delta, a);
  if (finish) choice.AddMember("finish_reason", rapidjson::StringRef(finish), a);
  rapidjson::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  return d;
}

rapidjson::Document chunk(const std::string& content, const char* finish = nullptr) {
  return one_choice([&](rapidjson::Value& delta, auto& a) {
    delta.AddMember("content", rapidjson::Value(content.c_str(), a), a);
  }, finish);
}

std::string content(const rapidjson::Document& d) {
  std::string out;
  for (const auto& c : d["choices"].GetArray()) {
    if (c.HasMember("delta") && c["delta"].HasMember("content")) out += c["delta"]["content"].GetString();
  }
  return out;
}

// What a consumer joins from `pieces` streamed through one scrubber (and its flush at the end).
// Each event is scrubbed whole first, as the reader of a stream does (Call, ChatSink).
std::string streamed(const orroute::ApiClient& keys, const std::vector<std::string>& pieces) {
  orroute::StreamScrubber s;
  std::string out;
  for (const std::string& p : pieces) {
    rapidjson::Document d = chunk(keys.scrub(p));
    s.scrub(d, keys);
    out += content(d);
  }
  rapidjson::Document end;
  if (s.flush(end, orroute::StreamAccumulator())) out += content(end);
  return out;
}

}  // namespace

TEST_CASE("a key split anywhere over two stream events reaches the consumer masked", "[net][scrub]") {
  const auto c = client();
  const std::string text = "your key is " + kKey + " ok";
  const std::string expected = "your key is " + orroute::mask_key(kKey) + " ok";
  for (size_t i = 0; i <= text.size(); ++i) {
    INFO("split at " << i);
    CHECK(streamed(*c, {text.substr(0, i), text.substr(i)}) == expected);
  }
  SECTION("one character per event") {
    std::vector<std::string> pieces;
    for (char ch : text) pieces.emplace_back(1, ch);
    CHECK(streamed(*c, pieces) == expected);
  }
}

TEST_CASE("streamed text that only looks like a key's start comes through whole", "[net][scrub]") {
  const auto c = client();
  SECTION("released by the next event") {
    CHECK(streamed(*c, {"ask sk-or", "-v2 is not it"}) == "ask sk-or-v2 is not it");
  }
  SECTION("released at the end of the stream") {
    CHECK(streamed(*c, {"a prefix: sk-or-v1-abc"}) == "a prefix: sk-or-v1-abc");
  }
  SECTION("released when its choice finishes, in that chunk") {
    orroute::StreamScrubber s;
    rapidjson::Document first = chunk("ends with sk-or");
    REQUIRE(s.scrub(first, *c));
    CHECK(content(first) == "ends with ");
    rapidjson::Document last = chunk("", "stop");
    REQUIRE(s.scrub(last, *c));
    CHECK(content(last) == "sk-or");
    CHECK_FALSE(s.holding());
  }
}

TEST_CASE("a stream scrubber holds back less than a key and changes nothing else", "[net][scrub]") {
  const auto c = client();
  orroute::StreamScrubber s;
  rapidjson::Document d = chunk("x" + kKey.substr(0, kKey.size() - 1));
  REQUIRE(s.scrub(d, *c));
  CHECK(content(d) == "x");
  rapidjson::Document plain = chunk("nothing to see here");
  CHECK_FALSE(orroute::StreamScrubber().scrub(plain, *c));
  CHECK(c->key_start_at_end("x" + kKey) == 0);  // a whole key is scrub()'s, not held
  CHECK(c->key_start_at_end("other-k") == 7);
  CHECK(c->key_start_at_end("") == 0);
}

namespace {

// A chunk carrying `args` as the arguments of tool call `tool`.
rapidjson::Document tool_chunk(size_t tool, const std::string& args, const char* finish = nullptr) {
  return one_choice([&](rapidjson::Value& delta, auto& a) {
    rapidjson::Value function(rapidjson::kObjectType);
    function.AddMember("arguments", rapidjson::Value(args.c_str(), a), a);
    rapidjson::Value call(rapidjson::kObjectType);
    call.AddMember("index", static_cast<uint64_t>(tool), a);
    call.AddMember("function", function, a);
    rapidjson::Value calls(rapidjson::kArrayType);
    calls.PushBack(call, a);
    delta.AddMember("tool_calls", calls, a);
  }, finish);
}

// Appends the arguments `d` carries to `out[tool]` (as a consumer joins them, by index).
void join_arguments(const rapidjson::Document& d, std::map<size_t, std::string>& out) {
  for (const auto& c : d["choices"].GetArray()) {
    if (!c.HasMember("delta") || !c["delta"].HasMember("tool_calls")) continue;
    for (const auto& call : c["delta"]["tool_calls"].GetArray()) {
      out[call["index"].GetUint64()] += call["function"]["arguments"].GetString();
    }
  }
}

// What a consumer joins per tool call from `pieces` (tool index, arguments) through one scrubber.
std::map<size_t, std::string> streamed_calls(const orroute::ApiClient& keys,
                                             const std::vector<std::pair<size_t, std::string>>& pieces,
                                             const char* finish = nullptr) {
  orroute::StreamScrubber s;
  std::map<size_t, std::string> out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const bool last = finish && i + 1 == pieces.size();
    rapidjson::Document d = tool_chunk(pieces[i].first, keys.scrub(pieces[i].second), last ? finish : nullptr);
    s.scrub(d, keys);
    join_arguments(d, out);
  }
  rapidjson::Document end;
  if (s.flush(end, orroute::StreamAccumulator())) join_arguments(end, out);
  return out;
}

}  // namespace

TEST_CASE("a key split over two tool-call argument deltas reaches the consumer masked", "[net][scrub]") {
  const auto c = client();
  const std::string args = R"({"note":")" + kKey + R"("})";
  const std::string expected = R"({"note":")" + orroute::mask_key(kKey) + R"("})";
  for (size_t i = 0; i <= args.size(); ++i) {
    INFO("split at " << i);
    CHECK(streamed_calls(*c, {{0, args.substr(0, i)}, {0, args.substr(i)}}) ==
          std::map<size_t, std::string>{{0, expected}});
    // the second of two tool calls, the first one done before it
    CHECK(streamed_calls(*c, {{0, "{}"}, {1, args.substr(0, i)}, {1, args.substr(i)}}, "tool_calls") ==
          std::map<size_t, std::string>{{0, "{}"}, {1, expected}});
  }
}

TEST_CASE("held tool-call arguments go out when the next tool call begins or the choice finishes",
          "[net][scrub]") {
  const auto c = client();
  orroute::StreamScrubber s;
  rapidjson::Document first = tool_chunk(0, R"({"a":"sk-or)");
  REQUIRE(s.scrub(first, *c));
  std::map<size_t, std::string> got;
  join_arguments(first, got);
  CHECK(got[0] == R"({"a":")");
  rapidjson::Document second = tool_chunk(1, R"({"b":"other-k)");  // tool call 0 is done
  REQUIRE(s.scrub(second, *c));
  join_arguments(second, got);
  CHECK(got == std::map<size_t, std::string>{{0, R"({"a":"sk-or)"}, {1, R"({"b":")"}});
  rapidjson::Document last = chunk("", "tool_calls");
  REQUIRE(s.scrub(last, *c));
  join_arguments(last, got);
  CHECK(got[1] == R"({"b":"other-k)");
  CHECK_FALSE(s.holding());
}

TEST_CASE("a stream scrubber never withholds a key's length or more of any text", "[net][scrub]") {
  // Pieces that keep ending in starts of a key (and sometimes complete none): after every chunk,
  // each text delivered so far lags what was fed by less than the longest key.
  const auto c = client();
  const size_t longest = std::string("other-key-with-another-start-0000").size();
  const std::vector<std::string> pieces = {"s", "k-", "or-v1-", "abc", "x sk-or-v1-abcdef01", "2", "other-",
                                           "key-with-", "sk", "-or-v1-abcdef012345678"};
  orroute::StreamScrubber s;
  std::string fed_text, got_text;
  std::map<size_t, std::string> fed_args, got_args;
  bool held_args = false;
  for (size_t round = 0; round < 200; ++round) {
    const std::string& p = pieces[(round * 7) % pieces.size()];
    const size_t tool = (round / 5) % 3;  // tool calls one after another, then again
    rapidjson::Document text = chunk(p);
    fed_text += p;
    s.scrub(text, *c);
    got_text += content(text);
    rapidjson::Document args = tool_chunk(tool, p);
    fed_args[tool] += p;
    s.scrub(args, *c);
    join_arguments(args, got_args);
    INFO("round " << round);
    REQUIRE(got_text.size() + longest > fed_text.size());
    for (const auto& [t, fed] : fed_args) {
      REQUIRE(got_args[t].size() + longest > fed.size());
      held_args |= got_args[t].size() < fed.size();
    }
  }
  CHECK(held_args);  // the bound was tested on arguments actually held back
}

TEST_CASE("what a failed stream held back is never released", "[net][scrub]") {
  const auto c = client();
  SECTION("a choice that ends in an error releases nothing") {
    orroute::StreamScrubber s;
    rapidjson::Document first = chunk("your key is " + kKey.substr(0, 20));
    s.scrub(first, *c);
    CHECK(content(first) == "your key is ");
    rapidjson::Document failed = chunk("", "error");
    s.scrub(failed, *c);
    CHECK(content(failed).empty());
    CHECK(s.holding());
  }
  SECTION("discard() drops it: the end of the stream has nothing to release") {
    orroute::StreamScrubber s;
    rapidjson::Document first = chunk("your key is " + kKey.substr(0, 20));
    rapidjson::Document args = tool_chunk(0, kKey.substr(0, 9));
    s.scrub(first, *c);
    s.scrub(args, *c);
    REQUIRE(s.holding());
    s.discard();
    rapidjson::Document end;
    CHECK_FALSE(s.flush(end, orroute::StreamAccumulator()));
  }
}

namespace {

// A chunk of tool call 0 carrying `name`, and `id` with empty arguments when `id` is not null.
rapidjson::Document id_name_chunk(const char* id, const std::string& name) {
  return one_choice([&](rapidjson::Value& delta, auto& a) {
    rapidjson::Value function(rapidjson::kObjectType);
    function.AddMember("name", rapidjson::Value(name.c_str(), a), a);
    if (id) function.AddMember("arguments", "", a);  // as the first delta of a tool call has them
    rapidjson::Value call(rapidjson::kObjectType);
    call.AddMember("index", 0, a);
    if (id) call.AddMember("id", rapidjson::Value(id, a), a);
    call.AddMember("function", function, a);
    rapidjson::Value calls(rapidjson::kArrayType);
    calls.PushBack(call, a);
    delta.AddMember("tool_calls", calls, a);
  }, nullptr);
}

// What a consumer shows of tool call 0 streamed as `id` with the first name piece, then the other
// pieces (and the end of the stream): its id (the last one given) beside the joined name.
std::string id_beside_name(const orroute::ApiClient& keys, const std::string& id,
                           const std::vector<std::string>& names) {
  orroute::StreamScrubber s;
  std::string got_id, got_name;
  auto read = [&](const rapidjson::Document& d) {
    for (const auto& c : d["choices"].GetArray()) {
      if (!c.HasMember("delta") || !c["delta"].HasMember("tool_calls")) continue;
      for (const auto& call : c["delta"]["tool_calls"].GetArray()) {
        if (call.HasMember("id")) got_id = call["id"].GetString();
        if (call.HasMember("function") && call["function"].HasMember("name")) {
          got_name += call["function"]["name"].GetString();
        }
      }
    }
  };
  for (size_t i = 0; i < names.size(); ++i) {
    rapidjson::Document d = id_name_chunk(i == 0 ? id.c_str() : nullptr, keys.scrub(names[i]));
    s.scrub(d, keys);
    read(d);
  }
  rapidjson::Document end;
  if (s.flush(end, orroute::StreamAccumulator())) read(end);
  return got_id + "|" + got_name;
}

}  // namespace

TEST_CASE("a key split over a streamed tool call's id and name reaches the consumer masked", "[net][scrub]") {
  const auto c = client();
  const std::string masked = orroute::mask_key(kKey);
  for (size_t i = 1; i < kKey.size(); ++i) {
    INFO("split at " << i);
    const std::string id = "call_" + kKey.substr(0, i), rest = kKey.substr(i) + "_fn";
    const std::string shown = id_beside_name(*c, id, {rest});
    CHECK(shown.find(kKey.substr(0, i) + "|") == std::string::npos);  // the id lost the key's start
    CHECK(std::string(shown).erase(shown.find('|'), 1) == "call_" + masked + "_fn");
    for (size_t j = 0; j <= rest.size(); ++j) {  // the name over two events
      INFO("name split at " << j);
      const std::string two = id_beside_name(*c, id, {rest.substr(0, j), rest.substr(j)});
      CHECK(std::string(two).erase(two.find('|'), 1) == "call_" + masked + "_fn");
    }
  }
  SECTION("ids and names that only look like a key's start come through whole") {
    CHECK(id_beside_name(*c, "call_s", {"k-means"}) == "call_s|k-means");
    CHECK(id_beside_name(*c, "call_s", {"k-", "means"}) == "call_s|k-means");
    CHECK(id_beside_name(*c, "call_" + kKey.substr(0, 12), {"get_weather"}) ==
          "call_" + kKey.substr(0, 12) + "|get_weather");
    CHECK(id_beside_name(*c, "call_sk-or", {"-v1-ab"}) == "call_sk-or|-v1-ab");  // released at the end
  }
}

TEST_CASE("a key split over a reply's tool call id and name is masked, nothing else is", "[net][scrub]") {
  const auto c = client();
  auto reply = [](const std::string& id, const std::string& name) {
    return R"({"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":")" + id +
           R"(","type":"function","function":{"name":")" + name + R"(","arguments":"{}"}}]}}]})";
  };
  for (size_t i = 1; i < kKey.size(); ++i) {
    INFO("split at " << i);
    CHECK(c->scrub(reply("call_" + kKey.substr(0, i), kKey.substr(i) + "_fn")) ==
          reply("call_", orroute::mask_key(kKey) + "_fn"));
  }
  const std::string innocent = reply("call_" + kKey.substr(0, 12), "get_" + kKey.substr(12, 3));
  CHECK(c->scrub(innocent) == innocent);
}
