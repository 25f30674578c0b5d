// TextMemo: a bounded, exact, thread-safe memo of values computed from long texts (token counts
// of a conversation's messages, the complexity analyzer's reading of a prompt).
//
// Agents resend their whole conversation on every call: the system prompt and every earlier turn
// come back unchanged, and only the newest message is new. Whatever the router computes from one
// text alone can be computed once per process. A hit is exact: entries are found by a 64-bit hash
// and then compared byte for byte with the stored domain and text, so two texts that share a hash
// never share a value.
//
// Bounded whatever the input: the stored bytes (text + domain + a per-entry overhead) never exceed
// the limit; the least recently used entries go first; a text too long to store in its shard is
// computed each time and not stored, and one shorter than `min_text` is computed directly (there a
// lookup costs about as much as the computation). A lookup costs one hash of the text, one compare
// of it on a hit and one copy of it on a miss: far less than the tokenizer or the analyzer spend.
#pragma once

#include <pthread.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orroute {

struct TextMemoLimits {
  size_t max_bytes = 8u << 20;  // stored bytes at most, over all shards
  size_t min_text = 256;        // shorter texts are not memoised
};

struct TextMemoStats {
  uint64_t hits = 0, misses = 0, evictions = 0;
  size_t entries = 0, bytes = 0;
};

// A 64-bit hash of every byte of `text`, 32 bytes a step in four independent lanes: a call hashes
// each long message once per encoding, and std::hash (one 8-byte lane) was a third of a warm
// plan() of a 20 KiB prompt. Not keyed: a collision costs a miss, never a wrong value (entries
// compare their text), and an index bucket holds at most a shard's entries.
inline uint64_t text_hash(std::string_view text) noexcept {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  auto word = [](const char* p) {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  };
  auto mix = [](uint64_t h, uint64_t w) { return std::rotl(h ^ (w * kMul), 31) * 0xbf58476d1ce4e5b9ull; };
  uint64_t lane[4] = {text.size(), kMul, ~kMul, text.size() * kMul};
  const char* p = text.data();
  size_t n = text.size();
  for (; n >= 32; p += 32, n -= 32) {
    for (int k = 0; k < 4; ++k) lane[k] = mix(lane[k], word(p + 8 * k));
  }
  for (; n >= 8; p += 8, n -= 8) lane[0] = mix(lane[0], word(p));
  if (n > 0) {
    uint64_t last = 0;
    std::memcpy(&last, p, n);
    lane[1] = mix(lane[1], last ^ (uint64_t{n} << 59));
  }
  uint64_t h = lane[0] ^ std::rotl(lane[1], 17) ^ std::rotl(lane[2], 34) ^ std::rotl(lane[3], 51);
  h ^= h >> 32;
  h *= kMul;
  return h ^ (h >> 29);
}

// The hash an entry is found by (tests give one that makes every text collide).
struct TextMemoHash {
  uint64_t operator()(std::string_view domain, std::string_view text) const noexcept {
    return text_hash(text) ^ (text_hash(domain) * 0x9e3779b97f4a7c15ull);
  }
};

// Every live memo's shard locks are taken around fork(), so that a child (which has only the
// forking thread) never starts with a shard locked by a thread that does not exist there: its
// first lookup in that shard would wait forever. Registered once, with pthread_atfork.
class TextMemoForkGuard {
 public:
  using Hook = void (*)(void* memo, bool lock);
  static void add(void* memo, Hook hook) {
    State& st = state();
    std::lock_guard lock(st.mu);
    st.memos.emplace_back(memo, hook);
  }
  static void remove(void* memo) {
    State& st = state();
    std::lock_guard lock(st.mu);
    std::erase_if(st.memos, [memo](const auto& m) { return m.first == memo; });
  }

 private:
  struct State {
    std::mutex mu;
    std::vector<std::pair<void*, Hook>> memos;
  };
  static State& state() {
    static State* st = [] {
      auto* made = new State;  // never destroyed: a fork may come during exit
      pthread_atfork(
          [] {
            state().mu.lock();
            for (const auto& [memo, hook] : state().memos) hook(memo, true);
          },
          [] { release(); }, [] { release(); });
      return made;
    }();
    return *st;
  }
  static void release() {
    for (const auto& [memo, hook] : state().memos) hook(memo, false);
    state().mu.unlock();
  }
};

// `Value` is copied out on every hit: keep it small. Thread-safe: the entries are split over
// kShards shards by hash, each behind its own mutex, held only to look up, refresh or insert
// (never while `compute` runs, never while a text is copied for storing).
template <class Value, class Hash = TextMemoHash>
class TextMemo {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kEntryOverhead = 96;  // list node, map node, bookkeeping (counted as stored)

  explicit TextMemo(TextMemoLimits limits = {}) : limits_(limits) {
    TextMemoForkGuard::add(this, [](void* memo, bool lock) {
      for (Shard& s : static_cast<TextMemo*>(memo)->shards_) lock ? s.mu.lock() : s.mu.unlock();
    });
  }
  ~TextMemo() { TextMemoForkGuard::remove(this); }
  TextMemo(const TextMemo&) = delete;
  TextMemo& operator=(const TextMemo&) = delete;

  // compute(text) for `text` in `domain` (what the value means: an encoding's name...), from the
  // memo when this (domain, text) was computed before. An exception from `compute` propagates and
  // nothing is stored.
  template <class Compute>
  Value get(std::string_view domain, std::string_view text, Compute&& compute) {
    if (text.size() < limits_.min_text) return compute(text);
    const uint64_t h = Hash{}(domain, text);
    Shard& s = shards_[h % kShards];
    {
      std::lock_guard lock(s.mu);
      if (auto it = s.index.find(h); it != s.index.end() && it->second->matches(domain, text)) {
        s.lru.splice(s.lru.begin(), s.lru, it->second);  // most recently used first
        ++s.hits;
        return it->second->value;
      }
      ++s.misses;
    }
    Value v = compute(text);
    const size_t cost = text.size() + domain.size() + kEntryOverhead;
    if (cost > shard_budget() / 4) return v;  // would flush a quarter of its shard
    std::list<Entry> fresh;  // the copy of the text is made before the lock is taken
    fresh.push_back(Entry{h, std::string(domain), std::string(text), v, cost});
    std::lock_guard lock(s.mu);
    if (auto it = s.index.find(h); it != s.index.end()) {
      if (it->second->matches(domain, text)) return v;  // another thread stored it meanwhile
      s.drop(it->second);                                // a different text with the same hash
    }
    s.lru.splice(s.lru.begin(), fresh);
    s.index.emplace(h, s.lru.begin());
    s.bytes += cost;
    while (s.bytes > shard_budget()) {
      s.drop(std::prev(s.lru.end()));
      ++s.evictions;
    }
    return v;
  }

  TextMemoStats stats() const {
    TextMemoStats out;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      out.hits += s.hits;
      out.misses += s.misses;
      out.evictions += s.evictions;
      out.entries += s.lru.size();
      out.bytes += s.bytes;
    }
    return out;
  }

  void clear() {
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      s.index.clear();
      s.lru.clear();
      s.bytes = 0;
    }
  }

  const TextMemoLimits& limits() const noexcept { return limits_; }

 private:
  struct Entry {
    uint64_t hash;
    std::string domain, text;
    Value value;
    size_t cost;
    bool matches(std::string_view d, std::string_view t) const { return text == t && domain == d; }
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // most recently used first
    std::unordered_map<uint64_t, typename std::list<Entry>::iterator> index;
    size_t bytes = 0;
    uint64_t hits = 0, misses = 0, evictions = 0;
    void drop(typename std::list<Entry>::iterator it) {
      bytes -= it->cost;
      index.erase(it->hash);
      lru.erase(it);
    }
  };

  size_t shard_budget() const noexcept { return limits_.max_bytes / kShards; }

  TextMemoLimits limits_;
  std::array<Shard, kShards> shards_;
};

}  // namespace orroute
