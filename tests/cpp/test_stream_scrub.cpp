#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

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

rapidjson::Document chunk(const std::string& content, const char* finish = nullptr) {
  rapidjson::Document d;
  d.SetObject();
  auto& a = d.GetAllocator();
  rapidjson::Value delta(rapidjson::kObjectType);
  delta.AddMember("content", rapidjson::Value(content.c_str(), a), a);
  rapidjson::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("delta", delta, a);
  if (finish) choice.AddMember("finish_reason", rapidjson::StringRef(finish), a);
  rapidjson::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  return d;
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
