// TextMemo: exact hits, bounded bytes, least recently used out, safe under threads.
#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "orroute/text_memo.h"

using orroute::TextMemo;
using orroute::TextMemoLimits;

namespace {

// A text of `n` bytes that differs from every other (id, n) pair in its first bytes.
std::string text_of(int id, size_t n) {
  std::string s = "text " + std::to_string(id) + ":";
  while (s.size() < n) s += static_cast<char>('a' + (s.size() * 7 + static_cast<size_t>(id)) % 26);
  s.resize(n);
  return s;
}

// The value a text is memoised with in these tests (its length and first bytes' sum).
int64_t value_of(std::string_view s) {
  int64_t v = static_cast<int64_t>(s.size()) * 1000;
  for (size_t i = 0; i < s.size() && i < 16; ++i) v += static_cast<unsigned char>(s[i]);
  return v;
}

// Every text collides: only the stored text tells two entries apart.
struct OneHash {
  uint64_t operator()(std::string_view, std::string_view) const noexcept { return 42; }
};

}  // namespace

TEST_CASE("text memo computes once per domain and text, then answers from memory", "[text_memo]") {
  TextMemo<int64_t> memo(TextMemoLimits{1u << 20, 64});
  int computed = 0;
  auto compute = [&](std::string_view s) {
    ++computed;
    return value_of(s);
  };
  const std::string a = text_of(1, 500), b = text_of(2, 500);
  CHECK(memo.get("cl100k_base", a, compute) == value_of(a));
  CHECK(memo.get("cl100k_base", a, compute) == value_of(a));
  CHECK(computed == 1);
  SECTION("another domain is another entry") {
    CHECK(memo.get("o200k_base", a, compute) == value_of(a));
    CHECK(computed == 2);
  }
  SECTION("another text is another entry") {
    CHECK(memo.get("cl100k_base", b, compute) == value_of(b));
    CHECK(computed == 2);
  }
  SECTION("short texts are computed every time and not stored") {
    const std::string shorter(63, 'x');
    memo.get("cl100k_base", shorter, compute);
    memo.get("cl100k_base", shorter, compute);
    CHECK(computed == 3);
    CHECK(memo.stats().entries == 1);
  }
  CHECK(memo.stats().hits >= 1);
}

TEST_CASE("text memo hits are exact when every text shares one hash", "[text_memo]") {
  TextMemo<int64_t, OneHash> memo(TextMemoLimits{1u << 20, 1});
  const std::string a = text_of(1, 300);
  std::string same_length = a;
  same_length[150] = static_cast<char>(same_length[150] ^ 1);  // one bit in the middle differs
  std::string last = a;
  last.back() = static_cast<char>(last.back() ^ 1);
  auto shifted = [](std::string_view s) { return value_of(s) + static_cast<unsigned char>(s[s.size() / 2]) +
                                                 static_cast<unsigned char>(s.back()); };
  // Each text twice (the second from the memo), then the next, which finds the previous one's entry.
  for (int round = 0; round < 3; ++round) {
    for (const std::string* t : std::initializer_list<const std::string*>{&a, &same_length, &last}) {
      CHECK(memo.get("d", *t, shifted) == shifted(*t));
      CHECK(memo.get("d", *t, shifted) == shifted(*t));
    }
  }
  // The same text in another domain is another value.
  auto in_e = [&](std::string_view s) { return shifted(s) + 1; };
  CHECK(memo.get("d", a, shifted) == shifted(a));
  CHECK(memo.get("e", a, in_e) == shifted(a) + 1);
  CHECK(memo.get("d", a, shifted) == shifted(a));
  CHECK(memo.stats().hits >= 9);
  CHECK(memo.stats().entries == 1);  // one slot per hash: each new text took it over
}

TEST_CASE("text memo keeps its bytes under the limit and drops the least recently used", "[text_memo]") {
  // Per shard 128 KiB / 16 = 8 KiB: seven 1,000-byte texts fit (each costs 1,000 + 1 + overhead).
  TextMemo<int64_t> memo(TextMemoLimits{128u << 10, 1});
  const size_t shard_budget = (128u << 10) / TextMemo<int64_t>::kShards;
  int computed = 0;
  auto compute = [&](std::string_view s) {
    ++computed;
    return value_of(s);
  };
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i) texts.push_back(text_of(i, 1000));
  for (const std::string& t : texts) memo.get("d", t, compute);
  const auto st = memo.stats();
  CHECK(st.bytes <= (128u << 10));
  CHECK(st.entries * (1000 + 1 + TextMemo<int64_t>::kEntryOverhead) == st.bytes);
  CHECK(st.evictions == 2000 - st.entries);
  CHECK(st.entries <= TextMemo<int64_t>::kShards * (shard_budget / 1000));

  SECTION("a text bigger than a quarter of its shard is computed and not stored") {
    const int before = computed;
    const std::string huge = text_of(7, shard_budget);
    memo.get("d", huge, compute);
    memo.get("d", huge, compute);
    CHECK(computed == before + 2);
  }
}

TEST_CASE("text memo evicts in least-recently-used order within a shard", "[text_memo]") {
  // 16 shards of 4,500 bytes: at most four 1,000-byte entries (1,097 bytes each) per shard.
  TextMemo<int64_t> memo(TextMemoLimits{16 * 4500, 1});
  std::vector<std::string> same_shard;
  for (int i = 0; same_shard.size() < 5; ++i) {
    std::string t = text_of(i, 1000);
    if (orroute::TextMemoHash{}("d", t) % 16 == 0) same_shard.push_back(std::move(t));
  }
  int computed = 0;
  auto compute = [&](std::string_view s) {
    ++computed;
    return value_of(s);
  };
  memo.get("d", same_shard[0], compute);
  memo.get("d", same_shard[1], compute);
  memo.get("d", same_shard[2], compute);
  memo.get("d", same_shard[3], compute);
  memo.get("d", same_shard[0], compute);  // [0] is now the most recently used: [1] goes next
  CHECK(computed == 4);
  memo.get("d", same_shard[4], compute);
  CHECK(memo.stats().evictions == 1);
  for (size_t kept : {0, 2, 3, 4}) memo.get("d", same_shard[kept], compute);
  CHECK(computed == 5);  // all still there
  memo.get("d", same_shard[1], compute);
  CHECK(computed == 6);  // [1] was the one dropped
}

TEST_CASE("text memo: a compute that throws stores nothing", "[text_memo]") {
  TextMemo<int64_t> memo(TextMemoLimits{1u << 20, 1});
  const std::string t = text_of(3, 400);
  CHECK_THROWS_AS(memo.get("d", t, [](std::string_view) -> int64_t { throw std::runtime_error("no"); }),
                  std::runtime_error);
  CHECK(memo.stats().entries == 0);
  CHECK(memo.get("d", t, value_of) == value_of(t));
}

TEST_CASE("text memo answers exactly from many threads at once, within its bounds", "[text_memo]") {
  TextMemo<int64_t> memo(TextMemoLimits{1u << 20, 16});
  std::vector<std::string> texts;
  for (int i = 0; i < 600; ++i) texts.push_back(text_of(i, 200 + static_cast<size_t>(i % 7) * 150));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 20000; ++k) {
        const std::string& s = texts[static_cast<size_t>((k * 31 + t * 17) % 600)];
        const char* domain = (k & 1) ? "a" : "b";
        const int64_t want = value_of(s) + (k & 1);
        if (memo.get(domain, s, [&](std::string_view x) { return value_of(x) + (k & 1); }) != want) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  const auto st = memo.stats();
  CHECK(st.bytes <= (1u << 20));
  CHECK(st.hits + st.misses == 8u * 20000u);
  CHECK(st.hits > st.misses);
}

TEST_CASE("text_hash reads every byte: one changed byte anywhere changes it", "[text_memo]") {
  // Lengths around the 8- and 32-byte steps, a byte flipped at every offset.
  for (size_t n : {1u, 7u, 8u, 9u, 31u, 32u, 33u, 63u, 64u, 65u, 100u, 1000u}) {
    const std::string t = text_of(static_cast<int>(n), n);
    const uint64_t h = orroute::text_hash(t);
    for (size_t i = 0; i < n; ++i) {
      std::string u = t;
      u[i] = static_cast<char>(u[i] ^ 0x20);
      INFO("length " << n << ", byte " << i);
      CHECK(orroute::text_hash(u) != h);
    }
    CHECK(orroute::text_hash(t + std::string(1, '\0')) != h);  // a trailing zero byte counts
  }
}

TEST_CASE("a child forked while other threads use a memo can use it", "[text_memo]") {
  // A fork while another thread holds a shard's lock left that lock held in the child, where no
  // thread would ever release it: the child's first lookup in that shard waited forever (an alarm
  // ends it here).
#if defined(__SANITIZE_ADDRESS__)
  WARN("skipped under AddressSanitizer (its allocator is not fork-safe)");
  return;
#endif
  TextMemo<int64_t> memo(TextMemoLimits{1u << 20, 1});
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t) {
    busy.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) memo.get("busy", text_of(t * 100000 + i % 5000, 40), value_of);
    });
  }
  for (int i = 0; i < 40; ++i) {
    std::fflush(nullptr);  // nothing buffered is written twice
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      alarm(10);
      bool ok = true;
      for (int k = 0; k < 200; ++k) {  // texts in every shard
        const std::string text = text_of(k, 32);
        ok = ok && memo.get("child", text, value_of) == value_of(text);
      }
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("child " << i << " status " << status);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  for (std::thread& t : busy) t.join();
}
