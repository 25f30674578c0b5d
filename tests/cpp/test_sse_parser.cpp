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
      // bytes that are not UTF-8 become U+FFFD (WHATWG's decode), wherever the read split them
      {"data: a\xFF" "b\xC3\n\ndata: \xE6\xBC\n\n", V{"a\xEF\xBF\xBD" "b\xEF\xBF\xBD", "\xEF\xBF\xBD"}},
      {"event: e\xFE\nid: \xC0\xAF\ndata: \xED\xA0\x80\n\n", V{"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}},
  }));
  for (size_t cut = 0; cut <= payload.size(); ++cut) {
    INFO("split at " << cut);
    REQUIRE(parse_split(payload, cut) == expected);
  }
  REQUIRE(parse_bytewise(payload) == expected);
}

TEST_CASE("sse parser skips a byte order mark at the start of the stream, wherever split", "[sse]") {
  // WHATWG: one leading U+FEFF is dropped; it used to make the first line an unknown field, and
  // the stream's first event was lost.
  const std::string payload = "\xEF\xBB\xBF" "data: first\n\ndata: \xEF\xBB\xBFsecond\n\n";
  const std::vector<std::string> expected = {"first", "\xEF\xBB\xBFsecond"};
  for (size_t cut = 0; cut <= payload.size(); ++cut) {
    INFO("split at " << cut);
    REQUIRE(parse_split(payload, cut) == expected);
  }
  REQUIRE(parse_bytewise(payload) == expected);
  REQUIRE(parse_split("\xEF\xBB" "data: x\n\n", 1).empty());  // a broken mark is no mark
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

TEST_CASE("sse parser repairs every field of an event and reports what an unfinished one holds", "[sse]") {
  orroute::SseParser p;
  std::vector<orroute::SseEvent> got;
  auto sink = [&](orroute::SseEvent&& ev) {
    got.push_back(std::move(ev));
    return true;
  };
  p.feed("event: e\xFE\nid: i\xFF\ndata: d", sink);
  REQUIRE(got.empty());
  REQUIRE(p.pending_bytes() == std::string("e\xFE" "i\xFF" "data: d").size());
  p.feed("\xF0\x9F", sink);
  p.feed("\x98\x80\n\n", sink);  // a four-byte character split across reads stays whole
  REQUIRE(got.size() == 1);
  CHECK(got[0].event == "e\xEF\xBF\xBD");
  CHECK(got[0].id == "i\xEF\xBF\xBD");
  CHECK(got[0].data == "d\xF0\x9F\x98\x80");
  CHECK(p.pending_bytes() == 2);  // the id is kept for later events, as the standard says
}

TEST_CASE("[DONE] ends a stream: events after it are refused and the transfer counts as ended well",
          "[sse]") {
  orroute::DoneMarker m;
  CHECK(m.admits(R"({"choices":[]})"));
  CHECK_FALSE(m.admits("[DONE]"));
  CHECK_FALSE(m.closed());  // nothing after it yet: the upstream may end the transfer itself
  orroute::TransferResult stopped;
  stopped.status = orroute::TransferStatus::kCancelled;
  stopped.error = "stopped";
  CHECK(m.counted(stopped).status == orroute::TransferStatus::kOk);
  CHECK_FALSE(m.admits(R"({"usage":{"completion_tokens":9999}})"));
  CHECK(m.closed());
  m.reset();
  CHECK(m.counted(stopped).status == orroute::TransferStatus::kCancelled);  // no [DONE]: as it came
  CHECK(m.admits(""));
}

TEST_CASE("a stream that ends inside an event of the answer was cut; one that ends after [DONE] was not",
          "[sse]") {
  auto ends_inside = [](const std::string& stream) {
    orroute::SseParser p;
    p.feed(stream, [](orroute::SseEvent&&) { return true; });
    return p.ends_inside_event();
  };
  const std::string event = "data: {\"choices\":[]}\n\n";
  SECTION("cut") {
    CHECK(ends_inside(event + "data: {\"choi"));       // inside a data line
    CHECK(ends_inside(event + "data"));                // a data field without its colon yet
    CHECK(ends_inside(event + "data: {}\n"));          // data without its blank line
    CHECK(ends_inside(event + "data: [DONE]\ndata: "));  // a second data line: not [DONE]
    CHECK(ends_inside(event + "event: x\ndata: {}\r"));  // a CR line end, no blank line
  }
  SECTION("not cut") {
    CHECK_FALSE(ends_inside(""));
    CHECK_FALSE(ends_inside(event));
    CHECK_FALSE(ends_inside(event + ": keep-alive"));  // a comment is no part of the answer
    CHECK_FALSE(ends_inside(event + "event: message"));
    CHECK_FALSE(ends_inside(event + "data: [DONE]"));  // [DONE] without its line end
    CHECK_FALSE(ends_inside(event + "data: [DONE]\n"));  // nor its blank line
    CHECK_FALSE(ends_inside(event + "data: [DONE]\n: bye"));
  }
  SECTION("the transfer as it counts") {
    orroute::SseParser p;
    orroute::DoneMarker m;
    auto sink = [&](orroute::SseEvent&& ev) { return m.admits(ev.data); };
    p.feed(event + "data: {\"choi", sink);
    const orroute::TransferResult ended_well;
    CHECK(m.counted(ended_well, p).status == orroute::TransferStatus::kConnectError);
    CHECK(m.counted(ended_well).status == orroute::TransferStatus::kOk);  // without the parser: as before
    orroute::TransferResult timed_out;
    timed_out.status = orroute::TransferStatus::kTimeout;
    CHECK(m.counted(timed_out, p).status == orroute::TransferStatus::kTimeout);  // its own failure stands
    p.reset();
    p.feed("data: [DONE]\n\ndata: {\"choi", sink);  // after [DONE] nothing is part of the answer
    CHECK(m.counted(ended_well, p).status == orroute::TransferStatus::kOk);
  }
}
