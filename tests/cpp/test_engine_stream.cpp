// The engine's streaming hand-off (ChunkQueue: bounded, pauses the producer, one wake-up per
// batch) and the request body each attempt sends (the caller's fields pass through).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <thread>

#include "orroute/engine.h"
#include "orroute/error.h"
#include "orroute/net/chunk_queue.h"

using namespace orroute;

TEST_CASE("a full chunk queue tells the producer to pause and take() resumes it", "[engine_stream]") {
  ChunkQueue q(3);
  int resumed = 0;
  q.set_resume([&] { ++resumed; });
  CHECK(q.push("a") == ChunkAction::kContinue);
  CHECK(q.push("b") == ChunkAction::kContinue);
  CHECK(q.push("c") == ChunkAction::kPause);
  CHECK(q.push("d") == ChunkAction::kContinue);  // already told; what was read is still taken
  CHECK(q.size() == 4);
  CHECK(q.pauses() == 1);
  CHECK(resumed == 0);
  CHECK(q.take() == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(resumed == 1);
  CHECK(q.take().empty());
  CHECK(resumed == 1);  // not paused any more: no second resume
  CHECK(q.push("e") == ChunkAction::kContinue);
  CHECK(q.take_sse() == "data: e\n\n");
}

TEST_CASE("a resume function set after the queue drained runs at once", "[engine_stream]") {
  ChunkQueue q(1);
  CHECK(q.push("x") == ChunkAction::kPause);
  CHECK(q.take().size() == 1);
  int resumed = 0;
  q.set_resume([&] { ++resumed; });
  CHECK(resumed == 1);
}

TEST_CASE("take_sse frames each chunk as an event without touching its text", "[engine_stream]") {
  ChunkQueue q;
  q.push(R"({"id":"1","choices":[{"delta":{"content":"h\u00e9"}}]})");
  q.push(R"({"id":"1","choices":[],"usage":{"cost":0.5}})");
  CHECK(q.take_sse() ==
        "data: {\"id\":\"1\",\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\"}}]}\n\n"
        "data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"cost\":0.5}}\n\n");
  CHECK_FALSE(q.finished());
  q.finish();
  CHECK(q.finished());
}

TEST_CASE("a closed chunk queue cancels the producer and drops what it held", "[engine_stream]") {
  ChunkQueue q(8);
  q.push("a");
  q.close();
  CHECK(q.size() == 0);
  CHECK(q.push("b") == ChunkAction::kCancel);
  CHECK_THROWS_AS(ChunkQueue(0), InvalidArgument);
}

TEST_CASE("the consumer is woken once per batch, and at once when armed late", "[engine_stream]") {
  ChunkQueue q;
  auto n = std::make_shared<Notifier>();
  q.arm(n, 7);
  CHECK(n->drain().empty());
  q.push("a");
  q.push("b");  // one-shot: the second push does not notify again
  CHECK(n->drain() == std::vector<uint64_t>{7});
  CHECK(n->drain().empty());
  q.arm(n, 8);  // chunks are waiting: notified at once
  CHECK(n->drain() == std::vector<uint64_t>{8});
  CHECK(q.take().size() == 2);
  q.arm(n, 9);
  q.finish();
  CHECK(n->drain() == std::vector<uint64_t>{9});
}

TEST_CASE("a producer thread never outruns a slow consumer by more than the capacity",
          "[engine_stream]") {
  // The producer honours kPause by waiting for the resume call, as the engine does by pausing the
  // transfer; the queue never holds more than capacity chunks.
  ChunkQueue q(4);
  std::atomic<int> paused{0};  // kPause and resume may arrive in either order: count them
  q.set_resume([&] { --paused; });
  size_t most = 0;
  std::thread producer([&] {
    for (int i = 0; i < 2000; ++i) {
      while (paused > 0) std::this_thread::yield();
      if (q.push(std::to_string(i)) == ChunkAction::kPause) ++paused;
    }
    q.finish();
  });
  std::vector<std::string> got;
  while (!q.finished()) {
    most = std::max(most, q.size());
    for (auto& s : q.take()) got.push_back(std::move(s));
    std::this_thread::yield();
  }
  producer.join();
  REQUIRE(got.size() == 2000);
  for (int i = 0; i < 2000; ++i) CHECK(got[static_cast<size_t>(i)] == std::to_string(i));
  CHECK(most <= 4);
}

TEST_CASE("each attempt's body keeps every field the caller sent but model", "[engine_stream]") {
  const std::string request = R"({
    "model": "orroute/auto",
    "messages": [{"role": "user", "content": "hi"}],
    "provider": {"order": ["openai", "azure"], "allow_fallbacks": false, "sort": "price"},
    "transforms": ["middle-out"],
    "models": ["a/b", "c/d"],
    "reasoning": {"effort": "high", "exclude": true},
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "temperature": 0.25,
    "max_tokens": 100,
    "user": "u-1",
    "stream_options": {"include_usage": false},
    "usage": {"include": false},
    "x_custom": [1, 2.5, null, "s"]
  })";
  rapidjson::Document in;
  in.Parse(request.c_str());
  rapidjson::Document out;
  const std::string body = chat_attempt_body(request, "openai/gpt-4o-mini", true, {"x/y"});
  out.Parse(body.c_str());
  REQUIRE(out.IsObject());
  CHECK(std::string(out["model"].GetString()) == "openai/gpt-4o-mini");
  CHECK(out["stream"].GetBool());
  for (const char* field : {"messages", "provider", "transforms", "models", "reasoning",
                            "response_format", "tools", "tool_choice", "temperature", "max_tokens",
                            "user", "stream_options", "usage", "x_custom"}) {
    INFO(field);
    REQUIRE(out.HasMember(field));
    CHECK(out[field] == in[field]);  // the caller's own values, even where the engine has defaults
  }
  CHECK(out.MemberCount() == in.MemberCount() + 1);  // + stream

  // Without them, the engine asks for usage (settling needs it) and adds the server-side list.
  const std::string bare = chat_attempt_body(
      R"({"messages": [{"role": "user", "content": "hi"}], "seed": 7})", "m/1", true, {"m/2"});
  rapidjson::Document b;
  b.Parse(bare.c_str());
  CHECK(b["seed"].GetInt() == 7);
  CHECK(b["stream_options"]["include_usage"].GetBool());
  CHECK(b["usage"]["include"].GetBool());
  REQUIRE(b["models"].Size() == 2);
  CHECK(std::string(b["models"][1].GetString()) == "m/2");
  CHECK_THROWS_AS(chat_attempt_body("[1]", "m/1", false, {}), InvalidArgument);
}
