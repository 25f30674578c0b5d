// A BPE vocabulary (mergeable ranks): token bytes by id, the reverse lookup, and the table of
// adjacent-token merges that byte-pair encoding consults.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/tokenizer/huge_pages.h"

namespace orroute {

// Immutable after loading; safe to share across threads. In a tiktoken vocabulary a token's rank is
// its id, so merging two adjacent parts yields the id of their concatenation, which is also the
// merge priority (lower merges first).
class Vocab {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;

  // Parses a tiktoken file (`base64 rank` per line, ranks 0..n-1). Throws NotFound if it cannot
  // be opened, ParseError if malformed (bad base64, duplicate or missing rank, missing bytes).
  static Vocab from_tiktoken_file(const std::string& path);
  // Builds a vocabulary from (token bytes, rank) pairs, the form of tiktoken's mergeable_ranks.
  // Ranks must be 0..n-1, each once, with distinct bytes, and every single byte must be a token;
  // otherwise throws ParseError naming the problem.
  static Vocab from_ranks(std::span<const std::pair<std::string, uint32_t>> ranks);
  // Loads the compact binary form written by save_binary(). Throws NotFound / ParseError.
  static Vocab from_binary_file(const std::string& path);
  // Writes the compact binary form (token bytes + precomputed merge pairs). Throws Error on I/O.
  void save_binary_file(const std::string& path) const;

  // Number of ranks (ids 0..size()-1).
  uint32_t size() const noexcept { return static_cast<uint32_t>(offsets_.size() - 1); }
  // Bytes of token `id` (< size()).
  std::string_view token_bytes(uint32_t id) const noexcept {
    return {blob_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]};
  }
  // Identity of this vocabulary's tables, unique in the process and never reused (caches keyed by
  // it cannot confuse two vocabularies, even one built where another was freed).
  uint64_t id() const noexcept { return id_; }
  // Longest token, in bytes.
  size_t max_token_len() const noexcept { return max_len_; }
  // Id of the token with exactly these bytes, or kNone.
  uint32_t find(std::string_view bytes) const noexcept {
    if (bytes.size() <= kShortMax) return find_short(short_key(bytes));
    return find_long(bytes);
  }
  // Id of the token of kMidMin..kMidMax bytes packed as `k0` (its first 8 bytes) and `k1` (the
  // rest, zero-padded), both little-endian, or kNone. CachedBpe's keys are already in this form,
  // so a miss there asks this table (one access, keys inline) instead of find() (hash the bytes,
  // then compare them in the blob: two more random accesses).
  static constexpr size_t kMidMin = 8, kMidMax = 16;
  uint32_t find_mid(uint64_t k0, uint64_t k1, uint32_t len) const noexcept {
    const uint32_t want = len << 24;
    for (uint64_t i = mid_hash(k0, k1, len) >> mid_shift_;; i = (i + 1) & mid_mask_) {
      const MidSlot& slot = mid_[i];
      if (slot.k0 == k0 && slot.k1 == k1 && (slot.len_id & 0xFF000000u) == want) {
        return slot.len_id & 0xFFFFFFu;
      }
      if (slot.len_id == 0) return kNone;
    }
  }
  // Id of the token of 2..kMidMax bytes packed as find_mid's keys are (`k0` its first 8 bytes,
  // `k1` the rest, zero-padded, both little-endian), or kNone: find() by the key CachedBpe has
  // already made, without reading the bytes again (find packs a short piece byte by byte).
  uint32_t find_key(uint64_t k0, uint64_t k1, uint32_t len) const noexcept {
    if (len <= kShortMax) return find_short(k0 | uint64_t{len} << 56);
    return find_mid(k0, k1, len);
  }
  // Id of the single-byte token `b`.
  uint32_t byte_token(uint8_t b) const noexcept { return byte_tokens_[b]; }
  // merge(byte_token(a), byte_token(b)) from a dense 256x256 table (256 KB, stays in L2): the
  // first round of every merge asks only about byte pairs, and the hashed pair table (8 MB for
  // o200k) cost a cache miss per question.
  uint32_t byte_merge(uint8_t a, uint8_t b) const noexcept {
    return byte_pairs_[(size_t{a} << 8) | b];
  }
  // Id of the concatenation of tokens `left` and `right` if it is a token, else kNone.
  uint32_t merge(uint32_t left, uint32_t right) const noexcept {
    const uint64_t key = (static_cast<uint64_t>(left) << kIdBits) | right;
    if (!may_merge(key)) return kNone;
    for (uint64_t i = pair_slot(key);; i = (i + 1) & pair_mask_) {
      const uint64_t slot = pairs_[i];
      if ((slot >> kIdBits) == key) return static_cast<uint32_t>(slot & kIdMask);
      if (slot == kEmpty) return kNone;
    }
  }
  // Starts loading the pair-table line merge(left, right) reads first, so a merge loop can ask
  // for the lines of questions it expects to ask next and wait for them together (bpe.cpp).
  void prefetch_merge(uint32_t left, uint32_t right) const noexcept {
    const uint64_t key = (static_cast<uint64_t>(left) << kIdBits) | right;
    if (may_merge(key)) __builtin_prefetch(&pairs_[pair_slot(key)]);
  }

 private:
  // Whether the pair `key` may be in the pair table: a blocked Bloom filter of every pair (two
  // bits in one 64-bit word per pair; at most 256 KB, so it stays in L2 where the pair table, 8 MB
  // for o200k, does not). Most questions a merge asks after its first round are answered "no
  // merge", and the filter answers most of those without the table (fastokens' PairFilter). A
  // pair in the table always passes (no false negative), so answers are the table's.
  bool may_merge(uint64_t key) const noexcept {
    const uint64_t h = key * 0xD6E8FEB86659FD93ull;
    const uint64_t bits = (uint64_t{1} << ((h >> 32) & 63)) | (uint64_t{1} << ((h >> 38) & 63));
    return (pair_filter_[h >> filter_shift_] & bits) == bits;
  }
  uint64_t pair_slot(uint64_t key) const noexcept { return mix(key) >> pair_shift_; }
  static constexpr int kIdBits = 21;
  static constexpr uint64_t kIdMask = (uint64_t{1} << kIdBits) - 1;
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t mix(uint64_t x) noexcept { return x * 0x9E3779B97F4A7C15ull; }
  static uint64_t hash_bytes(std::string_view s) noexcept;
  // Tokens of up to 7 bytes live in a table keyed by their bytes packed with their length, so a
  // lookup touches one cache line and never the blob.
  static constexpr size_t kShortMax = 7;
  struct ShortSlot {
    uint64_t key;  // bytes | length << 56; 0 = empty
    uint32_t id;
  };
  static uint64_t short_key(std::string_view s) noexcept {
    uint64_t w = 0;
    for (size_t i = 0; i < s.size(); ++i) w |= uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
    return w | (uint64_t{s.size()} << 56);
  }
  uint32_t find_short(uint64_t key) const noexcept {
    for (uint64_t i = mix(key) >> short_shift_;; i = (i + 1) & short_mask_) {
      const ShortSlot& slot = short_[i];
      if (slot.key == key) return slot.id;
      if (slot.key == 0) return kNone;
    }
  }
  uint32_t find_long(std::string_view bytes) const noexcept;
  struct MidSlot {
    uint64_t k0, k1;
    uint32_t len_id;  // id | length << 24; 0 = empty
  };
  static uint64_t mid_hash(uint64_t k0, uint64_t k1, uint64_t len) noexcept {
    const uint64_t h = (k0 * 0x9E3779B97F4A7C15ull) ^ ((k1 + len) * 0xC2B2AE3D27D4EB4Full);
    return (h ^ (h >> 29)) * 0x165667B19E3779F9ull;
  }
  // Lays blob_ out in rank order from per-rank (start, length) into the current blob_ and builds
  // the tables. Throws ParseError (message prefixed by `where`) for a missing rank.
  void finish(const std::vector<uint32_t>& start_of_rank, const std::vector<uint32_t>& len_of_rank,
              const std::string& where);

  // Builds the lookup tables from offsets_/blob_ and `n_pairs` merge triples (left, right,
  // merged) read from `triples` (unaligned bytes). Inserting them in the order sorted_triples()
  // gives keeps the fill sequential in memory; any order is correct.
  void build(const char* triples, size_t n_pairs);
  std::vector<uint32_t> find_merge_triples() const;
  static std::vector<uint32_t> sorted_triples(const std::vector<uint32_t>& triples);

  uint64_t id_ = 0;
  // Token bytes and their offsets: a whole-token lookup of a longer piece reads both at random.
  std::vector<uint32_t, TableAllocator<uint32_t>> offsets_;  // id -> start in blob_; size() + 1
  std::basic_string<char, std::char_traits<char>, TableAllocator<char>> blob_;
  size_t max_len_ = 0;
  uint32_t byte_tokens_[256] = {};
  std::vector<uint32_t> byte_pairs_;  // 65536 entries: byte_merge(a, b) at a << 8 | b
  std::vector<ShortSlot, TableAllocator<ShortSlot>> short_;
  uint64_t short_mask_ = 0;
  int short_shift_ = 64;
  std::vector<uint64_t, TableAllocator<uint64_t>> slots_;  // bytes -> id for longer tokens: (hash high 32 bits << 32) | id, open addressing
  uint64_t slot_mask_ = 0;
  int slot_shift_ = 64;
  // Tokens of kMidMin..kMidMax bytes with their bytes inline (find_mid), open addressing.
  std::vector<MidSlot, TableAllocator<MidSlot>> mid_;
  uint64_t mid_mask_ = 0;
  int mid_shift_ = 64;
  std::vector<uint64_t, TableAllocator<uint64_t>> pairs_;  // (left << 42 | right << 21 | merged), open addressing
  std::vector<uint64_t> pair_filter_;  // may_merge's words
  int filter_shift_ = 63;
  uint64_t pair_mask_ = 0;
  int pair_shift_ = 64;
};

// Parses tiktoken's text format (`base64(bytes) rank` per line; CR and blank lines ignored) into
// (bytes, rank) pairs in file order. Throws ParseError naming `where` and the line number for a
// malformed line. Ranks are not checked here (Vocab::from_ranks does).
std::vector<std::pair<std::string, uint32_t>> parse_tiktoken_ranks(std::string_view data,
                                                                  std::string_view where);

}  // namespace orroute
