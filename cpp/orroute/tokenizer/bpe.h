// Byte-pair encoding of one pre-tokenized piece, exactly as tiktoken merges: repeatedly merge the
// adjacent pair whose concatenation has the lowest rank, leftmost first on ties.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "orroute/tokenizer/vocab.h"

namespace orroute {

// Appends the tokens of `piece` (non-empty) to `out`. A piece that is itself a token gives that
// token (as tiktoken does, even where merging would not reach it). Short pieces merge in place
// (quadratic in a small bound); long ones use a heap over a linked list, O(n log n) in the piece
// length. Thread-safe (no shared state), no failure mode besides allocation.
void bpe_encode(const Vocab& vocab, std::string_view piece, std::vector<uint32_t>& out);

// Appends the tokens merging gives for `piece` (non-empty), without first looking the whole piece
// up: tiktoken's byte_pair_encode, which encode_with_unstable uses. Same guarantees as bpe_encode.
void bpe_merge(const Vocab& vocab, std::string_view piece, std::vector<uint32_t>& out);

// Number of tokens bpe_encode would append, without building them.
size_t bpe_count(const Vocab& vocab, std::string_view piece);

// bpe_encode / bpe_count behind a per-thread cache of short pieces (2..16 bytes, up to 3 tokens).
// Natural text repeats a small set of pieces, and a hit costs one access to one table instead of
// lookups in the vocabulary's larger tables and the merges. Results are identical to bpe_encode's. Cheap to construct (one thread-local lookup);
// use one per call on one thread, never shared between threads.
class CachedBpe {
 public:
  explicit CachedBpe(const Vocab& vocab);

  // Where a piece lives in the cache (len 0: not cached). Computing it also starts loading that
  // cache line, so callers compute the refs of a block of pieces before encoding them, and the
  // memory latency of one lookup overlaps the others.
  struct Ref {
    uint64_t k0, k1;  // piece bytes, zero-padded
    uint32_t slot;
    uint32_t len;
  };
  Ref ref(std::string_view piece) const noexcept {
    // The piece's bytes zero-padded to 16, read without touching a byte outside it: two
    // overlapping fixed-size loads, shifted into place (overlapping bytes are equal, so OR is exact).
    Ref r{0, 0, 0, 0};
    const char* p = piece.data();
    const size_t n = piece.size();
    if (n < 2 || n > kMaxPiece) return r;
    if (n >= 8) {
      r.k0 = load<uint64_t>(p);
      if (n > 8) r.k1 = load<uint64_t>(p + n - 8) >> (8 * (16 - n));
    } else if (n >= 4) {
      r.k0 = load<uint32_t>(p) | (uint64_t{load<uint32_t>(p + n - 4)} << (8 * (n - 4)));
    } else {
      r.k0 = load<uint16_t>(p) | (uint64_t{static_cast<unsigned char>(p[n - 1])} << (8 * (n - 1)));
    }
    const uint64_t h = (r.k0 * 0x9E3779B97F4A7C15ull) ^ ((r.k1 + n) * 0xC2B2AE3D27D4EB4Full);
    r.slot = static_cast<uint32_t>((h ^ (h >> 29)) * 0x165667B19E3779F9ull >> (64 - kBits));
    r.len = static_cast<uint32_t>(n);
    __builtin_prefetch(&table_.slots[r.slot]);
    return r;
  }
  // Appends the tokens of `piece` (whose ref is `r`), as bpe_encode.
  void encode(std::string_view piece, const Ref& r, std::vector<uint32_t>& out) {
    if (hit(r)) {
      // Most hits are one token: push_back is inline, where a range insert calls memmove.
      const Slot& slot = table_.slots[r.slot];
      out.push_back(slot.tokens[0]);
      if (const uint32_t n = slot.meta >> 8; n > 1) {
        out.insert(out.end(), slot.tokens + 1, slot.tokens + n);
      }
      return;
    }
    if (piece.size() == 1) {  // a quarter of all pieces (spaces, punctuation): not cached
      out.push_back(vocab_.byte_token(static_cast<uint8_t>(piece[0])));
      return;
    }
    encode_miss(piece, r, out);
  }
  // Number of tokens of `piece`, as bpe_count.
  size_t count(std::string_view piece, const Ref& r) {
    if (hit(r)) return table_.slots[r.slot].meta >> 8;
    if (piece.size() == 1) return 1;
    return count_miss(piece, r);
  }
  void encode(std::string_view piece, std::vector<uint32_t>& out) { encode(piece, ref(piece), out); }
  size_t count(std::string_view piece) { return count(piece, ref(piece)); }

  static constexpr size_t kMaxPiece = 16;
  static constexpr int kBits = 16;  // 64K slots, 2 MB: measured best of 4K..256K on real text
  struct Slot {
    uint64_t k0, k1;
    uint32_t meta;  // length | token count << 8; 0 = empty
    uint32_t tokens[3];
  };
  struct Table {
    Slot slots[size_t{1} << kBits];  // first: exactly 2 MB from a 2 MB boundary, one huge page
    uint64_t vocab_id = 0;
  };

 private:
  template <class T>
  static T load(const char* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);  // a single unaligned load
    return v;
  }
  bool hit(const Ref& r) const noexcept {
    const Slot& slot = table_.slots[r.slot];
    return r.len != 0 && (slot.meta & 0xFF) == r.len && slot.k0 == r.k0 && slot.k1 == r.k1;
  }
  // The slow paths: BPE, then remember the result when it fits a slot.
  void encode_miss(std::string_view piece, const Ref& r, std::vector<uint32_t>& out);
  size_t count_miss(std::string_view piece, const Ref& r);
  void remember(const Ref& r, const uint32_t* tokens, size_t n);

  const Vocab& vocab_;
  Table& table_;
};

}  // namespace orroute
