#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "orroute/net/sse_parser.h"

namespace {

// Feeds `payload` in two pieces split at `cut` and returns the event data in order.
std::vector<std::string> parse_split(const std::string& payload, size_t cut) {
  orroute::SseParser p;
  std::vector<std::string> out;
  auto sink = [&](orroute::SseEvent&& ev) {
    out.push_back(ev.data);
    return true;
  };
  p.feed(std::string_view(payload).substr(0, cut), sink);
  p.feed(std::string_view(payload).substr(cut), sink);
  return out;
}

// Feeds one byte at a time.
std::vector<std::string> parse_bytewise(const std::string& payload) {
  orroute::SseParser p;
  std::vector<std::string> out;
  for (char c : payload) {
    p.feed(std::string_view(&c, 1), [&](orroute::SseEvent&& ev) {
      out.push_back(ev.data);
      return true;
    });
  }
  return out;
}

}  // namespace

TEST_CASE("sse parser yields the same events wherever the bytes are split", "[sse]") {
  using V = std::vector<std::string>;
  const auto [payload, expected] = GENERATE(table<std::string, V>({
      {": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n", V{"{\"a\":1}", "[DONE]"}},
      {"data: {\"a\":1}\r\n\r\n: OPENROUTER PROCESSING\r\n\r\ndata: {\"b\":2}\r\n\r\n", V{"{\"a\":1}", "{\"b\":2}"}},
      {"data: line one\ndata: line two\n\n", V{"line one\nline two"}},
      {"data:no-space\r\rdata:  two spaces\r\r", V{"no-space", " two spaces"}},
      {"event: message\nid: 7\ndata: x\n\n", V{"x"}},
      {"retry: 100\nunknown: y\n\ndata\n\n", V{""}},
      {": only comments\n: more\n\n", V{}},
      {"data: {\"delta\":\"é漢\"}\n\n", V{"{\"delta\":\"é漢\"}"}},
  }));
  for (size_t cut = 0; cut <= payload.size(); ++cut) {
    INFO("split at " << cut);
    REQUIRE(parse_split(payload, cut) == expected);
  }
  REQUIRE(parse_bytewise(payload) == expected);
}

TEST_CASE("sse parser keeps an unfinished event until its blank line arrives", "[sse]") {
  orroute::SseParser p;
  int events = 0;
  auto sink = [&](orroute::SseEvent&&) {
    ++events;
    return true;
  };
  p.feed("data: {\"partial\":", sink);
  REQUIRE(events == 0);
  REQUIRE(p.has_partial());
  p.feed("true}\n", sink);
  REQUIRE(events == 0);
  p.feed("\n", sink);
  REQUIRE(events == 1);
  REQUIRE_FALSE(p.has_partial());
}

TEST_CASE("sse parser stops when the sink returns false", "[sse]") {
  orroute::SseParser p;
  std::vector<std::string> seen;
  const bool more = p.feed("data: 1\n\ndata: 2\n\n", [&](orroute::SseEvent&& ev) {
    seen.push_back(ev.data);
    return false;
  });
  REQUIRE_FALSE(more);
  REQUIRE(seen == std::vector<std::string>{"1"});
}

TEST_CASE("sse parser reports event name and id", "[sse]") {
  orroute::SseParser p;
  orroute::SseEvent got;
  p.feed("event: error\nid: 42\ndata: boom\n\n", [&](orroute::SseEvent&& ev) {
    got = std::move(ev);
    return true;
  });
  REQUIRE(got.event == "error");
  REQUIRE(got.id == "42");
  REQUIRE(got.data == "boom");
  REQUIRE(orroute::is_done_marker("[DONE]"));
  REQUIRE_FALSE(orroute::is_done_marker("[DONE] "));
}
