// The response cache: the key rule (normalisation, eligibility), SHA-256, stream replay and the
// store (SQLite and Redis: hit, miss, TTL, size limits, stats, clear).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ledger_test_util.h"
#include "orroute/cache/cache_key.h"
#include "orroute/cache/replay.h"
#include "orroute/cache/response_cache.h"
#include "orroute/cache/sha256.h"
#ifdef ORROUTE_HAVE_REDIS
#include "redis_server.h"
#endif

using namespace orroute;

namespace {

std::string key_of(const std::string& json, const std::string& scope = "s",
                   bool allow_sampling = false) {
  const CacheKey k = cache_key(json, scope, CachePolicy{allow_sampling});
  return k.cacheable ? k.key : "not cacheable: " + k.reason;
}

CachedReply reply(const std::string& text, const char* cost = "0.001") {
  CachedReply r;
  r.completion_json = R"({"id":"g","choices":[{"index":0,"message":{"role":"assistant","content":")" +
                      text + R"("},"finish_reason":"stop"}]})";
  r.model = "m/a";
  r.prompt_tokens = 10;
  r.completion_tokens = 5;
  r.cost = Money::parse(cost);
  return r;
}

constexpr TimeUs kT0 = 1'700'000'000LL * 1'000'000;

// The same checks for every backend; `open` gives a fresh cache on one location.
template <class Open>
void check_store(Open open) {
  CacheLimits limits;
  limits.ttl_s = 60;
  limits.max_entries = 3;
  limits.max_bytes = 1'000;
  auto c = open(limits);
  c->clear();
  CHECK_FALSE(c->get("k1", kT0).has_value());  // miss
  REQUIRE(c->put("k1", reply("one"), kT0));
  auto hit = c->get("k1", kT0 + 1'000'000);
  REQUIRE(hit.has_value());
  CHECK(hit->completion_json == reply("one").completion_json);
  CHECK(hit->model == "m/a");
  CHECK(hit->prompt_tokens == 10);
  CHECK(hit->completion_tokens == 5);
  CHECK(hit->cost == Money::parse("0.001"));
  CHECK(hit->stored_at == kT0);
  CHECK(open(limits)->get("k1", kT0 + 2'000'000)->hits == 1);  // another process sees it
  // TTL: 60 s after the store it is gone.
  CHECK_FALSE(c->get("k1", kT0 + 61'000'000).has_value());
  // Entry limit: the least recently used goes (k1, expired, is dropped on the first put).
  const TimeUs t = kT0 + 100'000'000;
  c->put("a", reply("a"), t + 100);
  c->put("b", reply("b"), t + 200);
  c->put("c", reply("c"), t + 300);
  CHECK(c->get("a", t + 400).has_value());  // a is now the most recently used
  c->put("d", reply("d"), t + 500);
  CHECK_FALSE(c->get("b", t + 600).has_value());
  CHECK(c->get("a", t + 700).has_value());
  CHECK(c->get("d", t + 800).has_value());
  // Byte limit: a reply above max_bytes is refused; a big one evicts the least recently used.
  CHECK_FALSE(c->put("huge", reply(std::string(2'000, 'x')), t + 900));
  CHECK(c->put("big", reply(std::string(800, 'y')), t + 1'000));
  CHECK(c->get("big", t + 1'050).has_value());
  const CacheStats s = c->stats();
  CHECK(s.bytes <= 1'000);
  CHECK(s.evictions >= 2);
  CHECK(s.hits == 6);
  CHECK(s.misses == 3);
  CHECK(s.saved_nanos == 6 * 1'000'000);  // six hits of $0.001
  CHECK(s.stores == 6);
  CHECK(c->clear() >= 1);
  CHECK(c->stats().hits == 0);
  CHECK_FALSE(c->get("big", t + 1'100).has_value());
}

}  // namespace

TEST_CASE("sha256 matches the FIPS test vectors", "[cache]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1'000'000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("the key ignores what does not change the answer", "[cache]") {
  const std::string base = key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  REQUIRE(base.size() == 64);
  // key order, spacing, stream flags, user, metadata, null fields
  CHECK(key_of(R"({ "messages" : [{"content":"hi","role":"user"}], "model":"m", "stream":true,
                   "stream_options":{"include_usage":true}, "user":"u", "metadata":{"a":1},
                   "temperature":null})") == base);
  // a single text part is the same content as a string
  CHECK(key_of(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})") ==
        base);
  // 1.0 and 1 are the same number
  CHECK(key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":10})") ==
        key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":10.0})"));
}

TEST_CASE("the key changes with what changes the answer", "[cache]") {
  const std::string base = key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  for (const char* other : {
           R"({"model":"n","messages":[{"role":"user","content":"hi"}]})",
           R"({"model":"m","messages":[{"role":"user","content":"hi!"}]})",
           R"({"model":"m","messages":[{"role":"system","content":"hi"}]})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"seed":1})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[]})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}],"some_new_field":1})",
       }) {
    CAPTURE(other);
    CHECK(key_of(other) != base);
  }
  CHECK(key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", "other scope") != base);
}

TEST_CASE("sampling requests are cacheable only when allowed", "[cache]") {
  const std::string hot = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7})";
  CHECK_FALSE(cache_key(hot, "s").cacheable);
  CHECK(cache_key(hot, "s").reason.find("temperature") != std::string::npos);
  CHECK(cache_key(hot, "s", CachePolicy{true}).cacheable);
  CHECK(cache_key(R"({"messages":[{"role":"user","content":"hi"}],"temperature":0})", "s").cacheable);
  CHECK_FALSE(cache_key(R"({"messages":[{"role":"user","content":"hi"}],"temperature":"hot"})", "s").cacheable);
}

TEST_CASE("hostile requests are refused as values", "[cache]") {
  for (const std::string& bad : {std::string(""), std::string("[]"), std::string("{"),
                                std::string(R"({"messages":[]})"), std::string(R"({"model":"m"})"),
                                std::string(200'000, '['), std::string(R"({"messages":"hi"})")}) {
    const CacheKey k = cache_key(bad, "s");
    CHECK_FALSE(k.cacheable);
    CHECK_FALSE(k.reason.empty());
  }
  SECTION("a key given twice: no key (a second `messages` that is not an array read as one crashed)") {
    // found by libFuzzer (fuzz_cache_key): the first `messages` passed the check, the canonical
    // writer then read every member named so as an array
    for (const std::string& twice : {
             std::string(R"({"messages":[{"role":"user","content":"hi"}],"model":"a/b","messages":"u"})"),
             std::string(R"({"messages":[{"role":"user","content":"hi"}],"messages":[{"role":"user","content":"x"}]})"),
             std::string(R"({"messages":[{"role":"user","content":"hi","content":"there"}]})")}) {
      CAPTURE(twice);
      const CacheKey k = cache_key(twice, "s");
      CHECK_FALSE(k.cacheable);
      CHECK(k.reason == "the request names a key twice in one object");
      CHECK_FALSE(canonical_request(twice, nullptr).has_value());
    }
  }
}

TEST_CASE("a request's canonical text keys as the request does, numbers aside", "[cache]") {
  // rapidjson's default number parse is not correctly rounded, so a double of 16-17 digits can
  // come back from its own shortest text as its neighbour (and rapidjson 1.1.0's full-precision
  // parse is broken: see json.h); everything else about the canonical text is a fixed point
  const std::string request =
      R"({"stream":false,"messages":[{"content":[{"type":"text","text":"hi"}],"role":"user"}],"max_tokens":7,"temperature":0,"user":"u"})";
  const auto canonical = canonical_request(request, nullptr);
  REQUIRE(canonical.has_value());
  CHECK(canonical_request(*canonical, nullptr) == canonical);
  CHECK(cache_key(*canonical, "s").key == cache_key(request, "s").key);
  SECTION("a number of many digits keys the same every time, and is still cacheable") {
    const std::string many = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":0.0072927700900931384})";
    CHECK(cache_key(many, "s").key == cache_key(many, "s").key);
    CHECK(cache_key(*canonical_request(many, nullptr), "s").cacheable);
  }
}

TEST_CASE("a cached completion replays as chunks that add up to it", "[cache]") {
  const std::string completion =
      R"({"id":"gen-1","model":"m/a","provider":"P","created":5,"choices":[{"index":0,"message":)"
      R"({"role":"assistant","content":"h\u00e9llo w\u00f6rld \u2603 and more"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":3,"completion_tokens":4}})";
  const auto chunks = replay_chunks(completion, 4);
  REQUIRE(chunks.size() > 3);
  std::string text;
  int with_usage = 0;
  std::string finish;
  for (const auto& c : chunks) {
    rapidjson::Document d;
    d.Parse(c.c_str(), c.size());
    REQUIRE(d.IsObject());
    CHECK(std::string(d["object"].GetString()) == "chat.completion.chunk");
    CHECK(std::string(d["id"].GetString()) == "gen-1");
    CHECK(std::string(d["provider"].GetString()) == "P");
    with_usage += d.HasMember("usage");
    for (const auto& ch : d["choices"].GetArray()) {
      if (ch["delta"].HasMember("content")) text += ch["delta"]["content"].GetString();
      if (ch["finish_reason"].IsString()) finish = ch["finish_reason"].GetString();
    }
  }
  CHECK(text == "h\xC3\xA9llo w\xC3\xB6rld \xE2\x98\x83 and more");  // no UTF-8 sequence split
  CHECK(finish == "stop");
  CHECK(with_usage == 1);
  CHECK(replay_chunks("not json").empty());
}

TEST_CASE("the SQLite response cache: hit, miss, TTL, limits, stats", "[cache]") {
  test::TempLedgerFile file;
  check_store([&](const CacheLimits& l) { return open_response_cache(file.path, l); });
}

TEST_CASE("the Redis response cache: hit, miss, TTL, limits, stats", "[cache][redis]") {
#ifdef ORROUTE_HAVE_REDIS
  auto* server = test::RedisServer::shared();
  if (!server) {
    WARN("skipped: no redis-server binary");
    return;
  }
  const std::string url = server->url("cache");
  check_store([&](const CacheLimits& l) { return open_response_cache(url, l); });
#else
  CHECK_THROWS_AS(open_response_cache("redis://127.0.0.1:1"), InvalidArgument);
#endif
}

TEST_CASE("cache limits are checked", "[cache]") {
  CacheLimits l;
  l.ttl_s = 0;
  CHECK_THROWS_AS(open_response_cache(":memory:", l), InvalidArgument);
}

// ---- the engine's gate -------------------------------------------------------------------------

#include "orroute/cost/open_ledger.h"
#include "orroute/engine/cache_gate.h"

namespace {

std::shared_ptr<const ModelCatalog> one_model_catalog() {
  return std::make_shared<const ModelCatalog>(ModelCatalog::from_json(R"({"data": [
    {"id": "x/m", "context_length": 8000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
  ]})"));
}

EngineTask hello_task(const std::string& project) {
  EngineTask t;
  t.request_json = R"({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 10})";
  t.fallbacks = {"x/m"};
  t.scope.project = project;
  return t;
}

}  // namespace

TEST_CASE("the engine answers a hit before reserving: $0, recorded with its saving", "[cache]") {
  test::TempLedgerFile file;
  auto ledger = open_ledger(file.path);
  BudgetSpec spent;  // a budget of $0: any reservation is refused
  spent.limit = Money::zero();
  ledger->set_budget(spent);
  EngineConfig cfg;
  cfg.client.base_url = "http://127.0.0.1:9";  // nothing listens: a request would fail
  cfg.client.api_keys = {"sk-test"};
  Engine engine(cfg, one_model_catalog(), ledger);
  auto cache = open_response_cache(":memory:");
  engine.set_response_cache(cache);

  const EngineTask task = hello_task("p");
  {  // without the entry: refused by the budget, nothing recorded
    const EngineResult miss = engine.run(task);
    CHECK_FALSE(miss.route->ok);
    CHECK(miss.route->budget_refused);
  }
  const EnginePlan plan = engine.plan(task);
  const std::string key = cache_key_for(CacheGate{cache, {}}, task, cfg.client.base_url, plan.candidates);
  REQUIRE(key.size() == 64);
  cache->put(key, reply("cached answer", "0.000123"));

  const EngineResult hit = engine.run(task);
  REQUIRE(hit.route->ok);
  CHECK(hit.route->cost == Money::zero());
  CHECK(hit.route->charge.source == "cache");
  CHECK(hit.route->model == "m/a");
  CHECK(hit.route->attempts.empty());  // nothing sent
  rapidjson::Document body;
  body.Parse(hit.completion_json.c_str());
  REQUIRE(body.IsObject());
  CHECK(body["usage"]["cost"].GetInt() == 0);
  CHECK(std::string(body["orroute_cache"]["saved"].GetString()) == Money::parse("0.000123").to_string());
  CHECK(std::string(body["choices"][0]["message"]["content"].GetString()) == "cached answer");

  const auto calls = ledger->calls(CallQuery{});
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].outcome == kCacheHitOutcome);
  CHECK(calls[0].cost == Money::zero());
  CHECK(calls[0].estimated_cost == Money::parse("0.000123"));
  CHECK(calls[0].scope.project == "p");
  CHECK(ledger->live_reservations().first == 0);

  SECTION("another project does not see it") {
    CHECK_FALSE(engine.run(hello_task("q")).route->ok);
  }
  SECTION("a task that opts out does not use it") {
    EngineTask t = hello_task("p");
    t.use_cache = false;
    CHECK_FALSE(engine.run(t).route->ok);
  }
  SECTION("a stream gets the reply replayed as chunks") {
    EngineTask t = hello_task("p");
    t.stream = true;
    std::string text;
    int chunks = 0;
    std::promise<EngineResult> done;
    engine.submit(t, engine.plan(t), [&](const std::string& c) {
      ++chunks;
      rapidjson::Document d;
      d.Parse(c.c_str());
      for (const auto& ch : d["choices"].GetArray()) {
        if (ch["delta"].HasMember("content")) text += ch["delta"]["content"].GetString();
      }
      return ChunkAction::kContinue;
    }, [&](std::unique_ptr<EngineResult> r) { done.set_value(std::move(*r)); });
    CHECK(done.get_future().get().route->ok);
    CHECK(text == "cached answer");
    CHECK(chunks >= 2);
  }
}

TEST_CASE("a completion without content (tool calls only) replays its calls", "[cache]") {
  const auto chunks = replay_chunks(
      R"({"id":"g","choices":[{"index":0,"message":{"role":"assistant","content":null,)"
      R"("tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},)"
      R"("finish_reason":"tool_calls"}]})");
  REQUIRE(chunks.size() == 3);  // role, tool calls, finish
  rapidjson::Document calls, last;
  calls.Parse(chunks[1].c_str());
  last.Parse(chunks[2].c_str());
  CHECK(std::string(calls["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].GetString()) == "f");
  CHECK(calls["choices"][0]["delta"]["tool_calls"][0]["index"].GetInt() == 0);
  CHECK(std::string(last["choices"][0]["finish_reason"].GetString()) == "tool_calls");
}

TEST_CASE("an entry that cannot be served is a miss, never a crash", "[cache]") {
  // What a store returns is hostile (a file anyone may edit, a shared Redis).
  auto c = open_response_cache(":memory:");
  std::vector<CachedReply> bad(5, reply("x"));
  bad[0].completion_json = "not json {";
  bad[1].completion_json = "[1,2]";
  bad[2].prompt_tokens = -1;
  bad[3].completion_tokens = std::numeric_limits<int64_t>::max();  // its sum would overflow
  bad[4].cost = Money::parse("-5");  // a negative saving
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string key = "bad" + std::to_string(i);
    REQUIRE(c->put(key, bad[i], kT0));
    CHECK_FALSE(c->get(key, kT0 + 1).has_value());
  }
  REQUIRE(c->put("good", reply("x"), kT0));
  CHECK(c->get("good", kT0 + 1).has_value());
  CHECK(c->stats().hits == 1);
  CHECK(c->stats().saved_nanos == 1'000'000);
}
