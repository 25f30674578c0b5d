// The in-place parse's own string scan (json_in_place.h) against RapidJSON's in-place parse.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/engine/chat_text.h"
#include "orroute/json.h"
#include "orroute/json_in_place.h"

using orroute::JsonParse;
using orroute::json_detail::InPlaceStream;

namespace {

// Pieces a string is made of: plain bytes, every kind of escape (the in-place decoding then
// writes behind the read position), multi-byte UTF-8, bytes JSON refuses raw, a stray quote.
const std::vector<std::string> kPieces = {
    "a", "Z", " ", "/", "\\\"", "\\\\", "\\n", "\\t", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\u0000",
    "\xC3\xA9", "\xF0\x9F\x98\x80", "\x7F", "\xFF", "\\x", "\\u12", "\x01", "\x19", "\x1F", "\"", "\t"};

// Control bytes RapidJSON's SSE2 string scan lets through (it tests bytes up to 0x19): ours refuses
// them as its byte-by-byte scan does.
constexpr std::string_view kLetThrough = "\x1A\x1B\x1C\x1D\x1E\x1F";

std::string random_string(std::mt19937& rng, size_t pieces) {
  std::string s;
  std::uniform_int_distribution<size_t> pick(0, kPieces.size() - 1);
  std::uniform_int_distribution<int> plain(0, 2);
  for (size_t i = 0; i < pieces; ++i) s += plain(rng) != 0 ? kPieces[rng() % 2] : kPieces[pick(rng)];
  return s;
}

// `text` with its bytes outside printable ASCII as \xHH (a failure's message).
std::string shown(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

// What a parse gave: its error and offset, or the document written out (every string's bytes).
std::string outcome(const rapidjson::Document& d) {
  if (d.HasParseError()) {
    return "error " + std::to_string(d.GetParseError()) + " at " + std::to_string(d.GetErrorOffset());
  }
  return orroute::json_text(d);
}

std::string ours(std::string text) {
  rapidjson::Document d;
  InPlaceStream stream(text.data(), text.size());
  d.ParseStream<rapidjson::kParseInsituFlag>(stream);
  return outcome(d);
}

std::string theirs(std::string text) {
  rapidjson::Document d;
  d.ParseInsitu(text.data());
  return outcome(d);
}

// The same text through the shared entry point (its checks first) and the copying parse.
void same_through_entry_points(const std::string& text) {
  std::string placed = text;
  rapidjson::Document a;
  rapidjson::Document b;
  const JsonParse in_place = orroute::parse_json_in_place(placed, a);
  REQUIRE(in_place == orroute::parse_json_text(text, b));
  if (in_place == JsonParse::kOk) REQUIRE(orroute::json_text(a) == orroute::json_text(b));
}

}  // namespace

TEST_CASE("the in-place parse reads every string as RapidJSON's own in-place parse does", "[json]") {
  std::mt19937 rng(20261206);
  int compared = 0;
  for (int round = 0; round < 1000; ++round) {
    const std::string s1 = random_string(rng, rng() % 40);
    const std::string s2 = random_string(rng, rng() % 24);
    const std::vector<std::string> texts = {
        "\"" + s1 + "\"",
        "{\"" + s2 + "\":\"" + s1 + "\",\"k\":[\"" + s2 + "\",1,\"" + s1 + "\"]}",
        "[\"" + s1 + "\",\"" + s2 + "\"]",
        "{\"" + s1 + "\":{\"" + s2 + "\":\"\"}}",
    };
    for (const std::string& text : texts) {
      // Each string at every position against a 16-byte boundary (the leading spaces shift it),
      // and cut short anywhere in its last 20 bytes (a string running into the text's end).
      for (size_t shift = 0; shift < 16; ++shift) {
        const std::string shifted = std::string(shift, ' ') + text;
        const size_t cut_from = shifted.size() > 20 ? shifted.size() - 20 : 0;
        for (size_t len = cut_from; len <= shifted.size(); len += (shift % 4 == 0 ? 1 : 7)) {
          const std::string t = shifted.substr(0, len);
          INFO(shown(t));
          if (t.find_first_of(kLetThrough) == std::string::npos) {
            REQUIRE(ours(t) == theirs(t));
          } else {  // RapidJSON's SSE2 scan passes these (the entry point parses such a text copying)
            REQUIRE(ours(t).starts_with("error"));
          }
          ++compared;
        }
      }
      same_through_entry_points(text);
    }
  }
  CHECK(compared > 100000);
}

TEST_CASE("the in-place parse's string scan reads nothing past its text's end", "[json]") {
  // The text's NUL is the last byte before a page that cannot be read: a load past it faults.
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* map = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  char* const guard = static_cast<char*>(map) + page;
  REQUIRE(mprotect(guard, page, PROT_NONE) == 0);
  for (size_t n = 0; n < 80; ++n) {
    const std::string tail(n, 'a');
    for (const std::string& text : {"\"" + tail, "\"" + tail + "\"", "{\"" + tail + "\":\"" + tail, "\"\\n" + tail,
                                    "[\"\\u00e9" + tail + "\"]"}) {
      char* const at = guard - text.size() - 1;
      std::memcpy(at, text.data(), text.size());
      at[text.size()] = '\0';
      rapidjson::Document d;
      InPlaceStream stream(at, text.size());
      d.ParseStream<rapidjson::kParseInsituFlag>(stream);
      INFO(shown(text));
      CHECK(outcome(d) == theirs(text));
    }
  }
  munmap(map, 2 * page);
}
