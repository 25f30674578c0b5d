#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "orroute/net/api_client.h"
#include "orroute/net/keys.h"

namespace {

const std::string kKey = "sk-or-v1-abcdef0123456789";

std::shared_ptr<orroute::ApiClient> client() {
  orroute::ClientConfig cfg;
  cfg.base_url = "http://127.0.0.1:9/api/v1";
  cfg.api_keys = {kKey};
  return orroute::ApiClient::create(std::move(cfg));
}

// JSON text spelling `s` with one \u00XX escape per character.
std::string escaped(const std::string& s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "\\u%04x", c);
    out += buf;
  }
  return out;
}

}  // namespace

TEST_CASE("scrub masks an echoed key, plain or spelled with JSON escapes", "[net][scrub]") {
  const auto c = client();
  const std::string masked = orroute::mask_key(kKey);
  SECTION("plain") { CHECK(c->scrub("bad key " + kKey + "!") == "bad key " + masked + "!"); }
  SECTION("every character escaped") {
    CHECK(c->scrub("{\"m\":\"" + escaped(kKey) + "\"}") == "{\"m\":\"" + masked + "\"}");
  }
  SECTION("a few characters escaped, the rest of the JSON keeps its escapes") {
    const std::string text = "{\"m\":\"\\u00e9 \\\\u0073 " + escaped("sk") + kKey.substr(2) + "\"}";
    CHECK(c->scrub(text) == "{\"m\":\"\\u00e9 \\\\u0073 " + masked + "\"}");
  }
  SECTION("an escaped backslash before u0073 is text, not an escape") {
    const std::string text = "\\\\u0073k-or-v1-abcdef0123456789";
    CHECK(c->scrub(text) == text);
  }
  SECTION("text without a key comes back as it was") {
    const std::string text = "{\"m\":\"\\u0041\\u00e9 fine\"}";
    CHECK(c->scrub(text) == text);
  }
  SECTION("every field of an error") {
    orroute::ApiError e;
    e.message = "m " + kKey;
    e.body = "{\"error\":\"" + escaped(kKey) + "\"}";
    e.code_json = "\"" + kKey + "\"";
    e.metadata_json = "{\"raw\":\"" + escaped(kKey) + "\"}";
    const orroute::ApiError s = c->scrub(e);
    for (const std::string* f : {&s.message, &s.body, &s.code_json, &s.metadata_json}) {
      CHECK(f->find(kKey) == std::string::npos);
      CHECK(f->find(escaped(kKey)) == std::string::npos);
      CHECK(f->find(masked) != std::string::npos);
    }
  }
}

TEST_CASE("scrub finds the key at every offset, next to look-alikes", "[net][scrub]") {
  // the search matches a key's first and last bytes 16 positions at a time, then the rest:
  // every offset of a step, a step's end and the bytes after the last whole step
  const auto c = client();
  const std::string masked = orroute::mask_key(kKey);
  const std::string look_alike = kKey.front() + std::string(kKey.size() - 2, '0') + kKey.back();
  for (size_t before = 0; before < 40; ++before) {
    for (size_t after : {0u, 1u, 14u, 15u, 16u, 17u, 40u}) {
      const std::string pad(before, kKey.front());
      const std::string tail(after, kKey.back());
      CHECK(c->scrub(pad + look_alike + kKey + tail) == pad + look_alike + masked + tail);
    }
  }
}

TEST_CASE("scrub finds a key split over a tool call's id and name at every offset", "[net][scrub]") {
  // A reply with no whole key is let through unless it holds one of the key's halves (both are
  // searched for in one pass, 16 positions a step): one half whole in the id or in the name, at
  // every offset of a step and in the bytes after the last whole step (each length of text after
  // it: the last positions of each half are searched apart).
  const auto c = client();
  const size_t half = kKey.size() / 2;
  for (size_t cut : {size_t{3}, kKey.size() - 3}) {
    const std::string whole_half = cut < half ? kKey.substr(half) : kKey.substr(0, half);
    for (size_t before = 0; before < 64; ++before) {
      for (size_t after = 0; after < 48; ++after) {
        const std::string body = R"({"choices":[{"message":{"tool_calls":[{"id":")" + std::string(before, 'x') +
                                 kKey.substr(0, cut) + R"(","function":{"name":")" + kKey.substr(cut) +
                                 std::string(after, 'y') + R"("}}]}}]})";
        const std::string out = c->scrub(body);
        INFO(body);
        CHECK(out != body);
        CHECK(out.find(whole_half) == std::string::npos);
      }
    }
  }
}
