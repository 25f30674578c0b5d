// SelectorFeed: what the network thread notes when a call ends, and what plan() feeds the
// selector from before it ranks.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "orroute/engine/selector_feed.h"
#include "orroute/error.h"

using namespace orroute;

namespace {
Instant at(int64_t ms) { return Instant(std::chrono::milliseconds(ms)); }
}  // namespace

TEST_CASE("the feed gives each noted model once, with its latest time, in the order first noted",
          "[selector_feed]") {
  SelectorFeed feed;
  CHECK(feed.take().empty());
  feed.note("m/a", at(10));
  feed.note("m/b", at(20));
  feed.note("m/a", at(30));
  feed.note("m/a", at(25));  // an older note does not move the time back
  const auto got = feed.take();
  REQUIRE(got.size() == 2);
  CHECK(got[0].first == "m/a");
  CHECK(got[0].second == at(30));
  CHECK(got[1].first == "m/b");
  CHECK(got[1].second == at(20));
  CHECK(feed.take().empty());  // taken: nothing until the next note
  feed.note("m/b", at(40));
  const auto again = feed.take();
  REQUIRE(again.size() == 1);
  CHECK(again[0].first == "m/b");
  CHECK(again[0].second == at(40));
}

TEST_CASE("notes from several threads while another takes: every model is given", "[selector_feed]") {
  SelectorFeed feed;
  std::set<std::string> seen;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&feed, w] {
      for (int i = 0; i < 2000; ++i) feed.note("m/" + std::to_string(w) + "-" + std::to_string(i % 50), at(i));
    });
  }
  for (int i = 0; i < 200; ++i) {
    for (const auto& [model, when] : feed.take()) seen.insert(model);
  }
  for (auto& t : writers) t.join();
  for (const auto& [model, when] : feed.take()) seen.insert(model);
  CHECK(seen.size() == 4 * 50);
}

TEST_CASE("a model whose router state cannot be read is fed again by the next ranking", "[selector_feed]") {
  // What Engine::Impl::feed_selector does before each ranking: update_selector reads the model's
  // breaker and hold from the router state, which throws while a shared store is down.
  SelectorFeed feed;
  feed.note("m/a", at(10));
  feed.note("m/down", at(20));
  feed.note("m/c", at(30));
  bool store_down = true;
  std::vector<std::string> fed;
  auto update_selector = [&](const std::string& model, Instant) {
    if (model == "m/down" && store_down) throw Error("router state: the store is down");
    fed.push_back(model);
  };
  CHECK(feed.apply(update_selector) == 1);
  CHECK(fed == std::vector<std::string>{"m/a", "m/c"});  // the others are fed all the same
  store_down = false;  // the next ranking, with the store back
  fed.clear();
  std::vector<Instant> times;
  CHECK(feed.apply([&](const std::string& model, Instant when) {
    update_selector(model, when);
    times.push_back(when);
  }) == 0);
  CHECK(fed == std::vector<std::string>{"m/down"});
  CHECK(times == std::vector<Instant>{at(20)});
  CHECK(feed.take().empty());
}

TEST_CASE("a caller naming a new model on every call keeps the feed bounded", "[selector_feed]") {
  SelectorFeed feed;
  for (int i = 0; i < 100'000; ++i) feed.note("m/" + std::to_string(i), at(i));
  const auto noted = feed.take();
  REQUIRE(noted.size() == SelectorFeed::kMaxModels);
  CHECK(noted.front().first == "m/0");
  feed.note("m/0", at(200'000));  // a model noted before is still fed
  REQUIRE(feed.take().size() == 1);
}
