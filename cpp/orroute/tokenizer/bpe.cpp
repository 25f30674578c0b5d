#include "orroute/tokenizer/bpe.h"

#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <queue>

#include "orroute/tokenizer/huge_pages.h"

namespace orroute {
namespace {

constexpr uint32_t kNone = Vocab::kNone;
// Pieces up to this many bytes merge in stack arrays by repeated minimum search, which beats a
// heap on the short pieces that make up nearly all text.
constexpr size_t kSmallPiece = 64;

// A short piece being merged in stack arrays: its tokens so far and the rank of each adjacent
// pair (ranks[i]: ids[i] with ids[i + 1]; kNone past the last pair). Arrays are shifted with plain
// loops: the pieces are short, and a libc memmove call per merge cost more than the moves.
struct SmallMerge {
  uint32_t ids[kSmallPiece];
  uint32_t ranks[kSmallPiece];
  size_t n;
  size_t at;  // where the last merge happened: its two neighbouring pairs are asked next

  // The first round: every pair is a byte pair, answered by the dense byte-pair table.
  void start(const Vocab& v, const unsigned char* piece, size_t len) {
    n = len;
    for (size_t i = 0; i + 1 < n; ++i) {
      ids[i] = v.byte_token(piece[i]);
      ranks[i] = v.byte_merge(piece[i], piece[i + 1]);
    }
    ids[n - 1] = v.byte_token(piece[n - 1]);
    ranks[n - 1] = kNone;  // the shift below copies it, never compares it
  }
  // The lowest (rank << 32 | position), leftmost on ties, without a branch per pair: which pair
  // is lowest is data-dependent, and a mispredicted branch per comparison cost more than the scan.
  uint64_t lowest_pair() const {
    uint64_t low = uint64_t{ranks[0]} << 32;
    for (size_t i = 1; i + 1 < n; ++i) low = std::min(low, (uint64_t{ranks[i]} << 32) | i);
    return low;
  }
  // Merges the lowest pair (leftmost on ties); false when no pair merges any more. The new
  // token's two neighbouring pairs are left for ask_neighbours.
  bool merge_lowest() {
    if (n < 2) return false;
    const uint64_t low = lowest_pair();
    const auto best = static_cast<uint32_t>(low >> 32);
    if (best == kNone) return false;
    at = static_cast<size_t>(static_cast<uint32_t>(low));
    ids[at] = best;
    --n;
    for (size_t i = at + 1; i < n; ++i) {
      ids[i] = ids[i + 1];
      ranks[i] = ranks[i + 1];
    }
    return true;
  }
  // Guesses the next merge before the new token's two pairs are known: the lowest of the other
  // pairs (half the questions are answered "no merge", so it is often right), and starts loading
  // the pair-table lines that merge would ask about, so its wait overlaps this one's.
  void prefetch_guess(const Vocab& v) {
    if (at > 0) ranks[at - 1] = kNone;  // unknown until ask_neighbours
    if (at + 1 < n) ranks[at] = kNone;
    const uint64_t low = lowest_pair();
    const auto guess = static_cast<uint32_t>(low >> 32);
    if (guess == kNone) return;
    const auto g = static_cast<size_t>(static_cast<uint32_t>(low));
    if (g + 2 < n) v.prefetch_merge(guess, ids[g + 2]);
    if (g > 0) v.prefetch_merge(ids[g - 1], guess);
  }
  void ask_neighbours(const Vocab& v) {
    if (at + 1 < n) ranks[at] = v.merge(ids[at], ids[at + 1]);
    if (at > 0) ranks[at - 1] = v.merge(ids[at - 1], ids[at]);
  }
};

// Merges the `n` bytes of `piece` into `m.ids`; returns the number of tokens. After each merge
// only the two neighbouring pairs are asked again.
size_t merge_small(const Vocab& v, const unsigned char* piece, SmallMerge& m, size_t n) {
  m.start(v, piece, n);
  while (m.merge_lowest()) {
    m.prefetch_guess(v);
    m.ask_neighbours(v);
  }
  return m.n;
}

// Long pieces: doubly linked list of parts, min-heap of (rank, position) with lazy deletion. A heap
// entry is live if the pair starting at that position still has that rank; since positions are
// byte offsets in list order, popping the minimum (rank, position) merges the leftmost lowest pair,
// the same choice as tiktoken's linear scan.
template <class Emit>
void merge_large(const Vocab& v, std::string_view piece, Emit&& emit) {
  const size_t n = piece.size();
  std::vector<uint32_t> ids(n), rank(n, kNone), next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = v.byte_token(static_cast<uint8_t>(piece[i]));
    next[i] = static_cast<uint32_t>(i + 1);
    prev[i] = static_cast<uint32_t>(i - 1);  // wraps for i == 0; never read there
  }
  std::vector<uint64_t> heap;
  heap.reserve(n);
  auto key = [](uint32_t r, size_t i) { return (uint64_t{r} << 32) | i; };
  for (size_t i = 0; i + 1 < n; ++i) {
    rank[i] = v.byte_merge(static_cast<uint8_t>(piece[i]), static_cast<uint8_t>(piece[i + 1]));
    if (rank[i] != kNone) heap.push_back(key(rank[i], i));
  }
  auto cmp = std::greater<uint64_t>();
  std::make_heap(heap.begin(), heap.end(), cmp);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto r = static_cast<uint32_t>(top >> 32);
    const auto i = static_cast<uint32_t>(top);
    if (rank[i] != r) continue;  // stale
    const uint32_t j = next[i];  // merged into i
    ids[i] = r;
    ids[j] = kNone;
    rank[j] = kNone;
    next[i] = next[j];
    if (next[i] < n) prev[next[i]] = i;
    rank[i] = next[i] < n ? v.merge(ids[i], ids[next[i]]) : kNone;
    if (rank[i] != kNone) {
      heap.push_back(key(rank[i], i));
      std::push_heap(heap.begin(), heap.end(), cmp);
    }
    if (i > 0) {
      const uint32_t p = prev[i];
      rank[p] = v.merge(ids[p], ids[i]);
      if (rank[p] != kNone) {
        heap.push_back(key(rank[p], p));
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
  }
  for (size_t i = 0; i < n; i = next[i]) emit(ids[i]);
}

template <class Emit, class EmitMany>
void encode_piece(const Vocab& v, std::string_view piece, Emit&& emit, EmitMany&& emit_many,
                  bool whole_first = true) {
  if (piece.size() == 1) {
    emit(v.byte_token(static_cast<uint8_t>(piece[0])));
    return;
  }
  if (const uint32_t whole = whole_first ? v.find(piece) : kNone; whole != kNone) {
    emit(whole);
    return;
  }
  if (piece.size() <= kSmallPiece) {
    SmallMerge m;
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
    emit_many(m.ids, merge_small(v, bytes, m, piece.size()));
    return;
  }
  merge_large(v, piece, emit);
}

}  // namespace

void bpe_encode(const Vocab& vocab, std::string_view piece, std::vector<uint32_t>& out) {
  encode_piece(
      vocab, piece, [&](uint32_t id) { out.push_back(id); },
      [&](const uint32_t* ids, size_t n) { out.insert(out.end(), ids, ids + n); });
}

namespace {

// Tables live on a huge page (huge_pages.h): a piece's lookup is one random access into 2 MB, and
// with 4 KB pages that access usually missed the TLB too. Zeroed once when created.
// Table is an aggregate, hence an implicit-lifetime type: the allocation creates it (C++20).
struct FreeTable {
  void operator()(CachedBpe::Table* t) const noexcept { free_table_memory(t); }
};
using TablePtr = std::unique_ptr<CachedBpe::Table, FreeTable>;

TablePtr new_table() {
  static_assert(std::is_aggregate_v<CachedBpe::Table> &&
                std::is_trivially_destructible_v<CachedBpe::Table>);
  auto* t = static_cast<CachedBpe::Table*>(alloc_table_memory(sizeof(CachedBpe::Table)));
  std::memset(static_cast<void*>(t), 0, sizeof(CachedBpe::Table));
  return TablePtr(t);
}

struct ThreadTables;
thread_local ThreadTables* this_threads_tables = nullptr;  // made on the thread's first use

// Tables of threads that have ended, kept warm for the next threads (a fresh table each time
// would make every short-lived thread start cold). Bounded; leaked at exit so that threads ending
// during shutdown can still use it. `live` lists every thread's tables, so that a forked child
// can take back those of the threads it does not have.
struct TablePool {
  std::mutex mu;
  std::vector<TablePtr> free;
  std::vector<ThreadTables*> live;
};
TablePool& table_pool();
constexpr size_t kPooledTables = 8;

// Under the pool's lock: keeps `t` warm in the pool if there is room, else frees it.
void give_back(TablePool& pool, TablePtr& t) {
  if (t && pool.free.size() < kPooledTables) pool.free.push_back(std::move(t));
  t.reset();
}

// A thread's two tables (e.g. cl100k and o200k in one process); the older one is reused when a
// third vocabulary comes along. They go back to the pool when the thread ends.
struct ThreadTables {
  TablePtr tables[2];
  unsigned next = 0;
};

// Run when a thread that has tables ends. Through a pthread key rather than a thread_local
// object's destructor: glibc records those in a heap node per thread, which a forked child could
// neither reach nor free.
void end_thread_tables(void* p) {
  auto* mine = static_cast<ThreadTables*>(p);
  this_threads_tables = nullptr;
  {
    TablePool& pool = table_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    std::erase(pool.live, mine);
    for (auto& t : mine->tables) give_back(pool, t);
  }
  delete mine;
}

pthread_key_t thread_tables_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    if (pthread_key_create(&k, end_thread_tables) != 0) throw std::bad_alloc();
    return k;
  }();
  return key;
}

ThreadTables& thread_tables() {
  if (this_threads_tables != nullptr) return *this_threads_tables;
  auto mine = std::make_unique<ThreadTables>();
  {
    TablePool& pool = table_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    pool.live.push_back(mine.get());
  }
  pthread_setspecific(thread_tables_key(), mine.get());
  return *(this_threads_tables = mine.release());
}

// fork(): the pool's lock is held across it, so the child's copy is consistent; the child, which
// has only the thread that forked, takes back the tables of every other thread (they would
// otherwise stay allocated and unreachable) and makes the lock anew.
void pool_before_fork() { table_pool().mu.lock(); }
void pool_after_fork_in_parent() { table_pool().mu.unlock(); }
void pool_after_fork_in_child() {
  TablePool& pool = table_pool();
  for (ThreadTables* t : pool.live) {
    if (t == this_threads_tables) continue;
    for (auto& table : t->tables) give_back(pool, table);
    delete t;
  }
  pool.live.clear();
  if (this_threads_tables != nullptr) pool.live.push_back(this_threads_tables);
  new (&pool.mu) std::mutex();
}

TablePool& table_pool() {
  static TablePool* const pool = [] {
    pthread_atfork(pool_before_fork, pool_after_fork_in_parent, pool_after_fork_in_child);
    return new TablePool;
  }();
  return *pool;
}
// Made while the library loads, before any thread of ours exists.
[[maybe_unused]] const TablePool& pool_at_load = table_pool();
[[maybe_unused]] const pthread_key_t key_at_load = thread_tables_key();

// This thread's cache table for `vocab`: its own, else a pooled one (one already for `vocab` if
// any), else a new one.
CachedBpe::Table& table_for(const Vocab& vocab) {
  ThreadTables& mine = thread_tables();
  for (auto& t : mine.tables) {
    if (t && t->vocab_id == vocab.id()) return *t;
  }
  auto& slot = mine.tables[mine.next++ % 2];
  {
    TablePool& pool = table_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    auto it = std::find_if(pool.free.begin(), pool.free.end(),
                           [&](const auto& t) { return t->vocab_id == vocab.id(); });
    if (it == pool.free.end() && !pool.free.empty() && !slot) it = pool.free.end() - 1;
    if (it != pool.free.end()) {
      TablePtr taken = std::move(*it);
      pool.free.erase(it);
      give_back(pool, slot);
      slot = std::move(taken);
    }
  }
  if (!slot) {
    slot = new_table();
  } else if (slot->vocab_id != vocab.id()) {
    std::memset(slot->slots, 0, sizeof slot->slots);  // another vocabulary's entries
  }
  slot->vocab_id = vocab.id();
  return *slot;
}

}  // namespace

CachedBpe::CachedBpe(const Vocab& vocab) : vocab_(vocab), table_(table_for(vocab)) {}

// A cached piece of kMidMin.. bytes is a whole token only if find_mid knows it: every cached
// length must be in the mid table's range.
static_assert(CachedBpe::kMaxPiece <= Vocab::kMidMax);

// The keys are the piece's bytes as little-endian words, as Vocab::find_key's.
static_assert(std::endian::native == std::endian::little);

// The token of a cacheable piece that is one, else kNone: a lookup by the key already made (one
// access to a table with its keys inline), then merging if it is not a token.
uint32_t CachedBpe::whole_token(const Ref& r) const noexcept {
  if (r.len == 1) return vocab_.byte_token(static_cast<uint8_t>(r.k0));
  return vocab_.find_key(r.k0, r.k1, r.len);
}

void CachedBpe::encode_miss(std::string_view piece, const Ref& r, std::vector<uint32_t>& out) {
  if (r.len == kUncached) {
    bpe_encode(vocab_, piece, out);
    return;
  }
  const size_t before = out.size();
  if (const uint32_t id = whole_token(r); id != kNone) {
    out.push_back(id);
  } else {
    bpe_merge(vocab_, piece, out);
  }
  remember(r, out.data() + before, out.size() - before);
}

void CachedBpe::remember(const Ref& r, const uint32_t* tokens, size_t n) {
  if (r.len == kUncached || n > 3) return;
  Slot& slot = table_.slots[r.slot];
  slot.k0 = r.k0;
  slot.k1 = r.k1;
  slot.meta = static_cast<uint32_t>(r.len | n << 8);
  std::memcpy(slot.tokens, tokens, n * sizeof(uint32_t));
}

size_t CachedBpe::count_miss(std::string_view piece, const Ref& r) {
  if (r.len == kUncached) return bpe_count(vocab_, piece);
  uint32_t tokens[kMaxPiece];
  size_t made = 0;
  if (const uint32_t whole = whole_token(r); whole != kNone) {
    tokens[made++] = whole;
  } else {
    encode_piece(
        vocab_, piece, [&](uint32_t id) { tokens[made++] = id; },
        [&](const uint32_t* ids, size_t m) {
          std::memcpy(tokens + made, ids, m * sizeof(uint32_t));
          made += m;
        },
        /*whole_first=*/false);
  }
  remember(r, tokens, made);
  return made;
}

void bpe_merge(const Vocab& vocab, std::string_view piece, std::vector<uint32_t>& out) {
  encode_piece(
      vocab, piece, [&](uint32_t id) { out.push_back(id); },
      [&](const uint32_t* ids, size_t n) { out.insert(out.end(), ids, ids + n); },
      /*whole_first=*/false);
}

size_t bpe_count(const Vocab& vocab, std::string_view piece) {
  size_t count = 0;
  encode_piece(
      vocab, piece, [&](uint32_t) { ++count; }, [&](const uint32_t*, size_t n) { count += n; });
  return count;
}

}  // namespace orroute
