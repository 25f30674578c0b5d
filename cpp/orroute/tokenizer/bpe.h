// Byte-pair encoding of one pre-tokenized piece, exactly as tiktoken merges: repeatedly merge the
// adjacent pair whose concatenation has the lowest rank, leftmost first on ties.
#pragma once

#include <array>
#include <bit>
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

// bpe_encode / bpe_count behind a per-thread cache of short pieces (1..16 bytes, up to 3 tokens).
// Natural text repeats a small set of pieces, and a hit costs one access to one table instead of
// lookups in the vocabulary's larger tables and the merges. Results are identical to bpe_encode's. Cheap to construct (one thread-local lookup);
// use one per call on one thread, never shared between threads.
class CachedBpe {
 public:
  explicit CachedBpe(const Vocab& vocab);

  // Where a piece lives in the cache (len kUncached: not cached). Computing it also starts
  // loading that cache line, so callers compute the refs of a block of pieces before encoding
  // them, and the memory latency of one lookup overlaps the others.
  struct Ref {
    uint64_t k0, k1;  // piece bytes, zero-padded
    uint32_t slot;
    uint32_t len;
  };
  static constexpr uint32_t kUncached = 0xFF;  // a Ref's len for pieces over kMaxPiece bytes
  // `readable_end`: bytes up to it may be read (the end of the text the piece is in). With 16
  // bytes readable from the piece's start (all but the last pieces of a text) the key is two
  // loads masked to the piece's length, without a branch on the length: which of several length
  // classes comes next is data-dependent, and those branches were mispredicted on hits.
  Ref ref(std::string_view piece, const char* readable_end) const noexcept {
    const char* p = piece.data();
    const size_t n = piece.size();
    if (readable_end - p < 16) return ref(piece);
    const size_t m = n < kMaxPiece ? n : kMaxPiece;
    Ref r{load<uint64_t>(p) & kLowMask[m], load<uint64_t>(p + 8) & kHighMask[m], 0,
          n <= kMaxPiece ? static_cast<uint32_t>(n) : kUncached};
    locate(r);
    return r;
  }
  // The same for a piece whose text may end with it: reads no byte outside the piece.
  Ref ref(std::string_view piece) const noexcept {
    // Two overlapping fixed-size loads, shifted into place (overlapping bytes are equal, so OR is
    // exact).
    Ref r{0, 0, 0, kUncached};
    const char* p = piece.data();
    const size_t n = piece.size();
    if (n > kMaxPiece) {
      locate(r);
      return r;
    }
    if (n >= 8) {
      r.k0 = load<uint64_t>(p);
      if (n > 8) r.k1 = load<uint64_t>(p + n - 8) >> (8 * (16 - n));
    } else if (n >= 4) {
      r.k0 = load<uint32_t>(p) | (uint64_t{load<uint32_t>(p + n - 4)} << (8 * (n - 4)));
    } else if (n >= 2) {
      r.k0 = load<uint16_t>(p) | (uint64_t{static_cast<unsigned char>(p[n - 1])} << (8 * (n - 1)));
    } else if (n == 1) {
      r.k0 = static_cast<unsigned char>(p[0]);
    }
    r.len = static_cast<uint32_t>(n);
    locate(r);
    return r;
  }
  // Appends the tokens of pieces[0..m) (whose refs are refs[0..m), m <= kMaxBlock) to `out`, as
  // bpe_encode; returns the number of tokens of the last piece. A hit copies the slot's three
  // token fields whole and advances by its count, without a branch on the count, into a buffer
  // appended once per block.
  static constexpr size_t kMaxBlock = 64;
  size_t encode_block(const std::string_view* pieces, const Ref* refs, size_t m,
                      std::vector<uint32_t>& out) {
    uint32_t buffer[kMaxBlock * 3];
    size_t filled = 0, last = 0;
    for (size_t i = 0; i < m; ++i) {
      const Slot& slot = table_.slots[refs[i].slot];
      if (hit(refs[i])) [[likely]] {
        std::memcpy(buffer + filled, slot.tokens, sizeof slot.tokens);
        last = slot.meta >> 8;
        filled += last;
        continue;
      }
      out.insert(out.end(), buffer, buffer + filled);
      filled = 0;
      const size_t before = out.size();
      encode_miss(pieces[i], refs[i], out);
      last = out.size() - before;
    }
    out.insert(out.end(), buffer, buffer + filled);
    return last;
  }
  // Appends the tokens of `piece` (whose ref is `r`), as bpe_encode.
  void encode(std::string_view piece, const Ref& r, std::vector<uint32_t>& out) {
    encode_block(&piece, &r, 1, out);
  }
  // Number of tokens of `piece`, as bpe_count.
  size_t count(std::string_view piece, const Ref& r) {
    if (hit(r)) [[likely]] return table_.slots[r.slot].meta >> 8;
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
  // The low n bytes of the first and of the second 8-byte word of a piece of n bytes.
  static constexpr auto kLowMask = [] {
    std::array<uint64_t, kMaxPiece + 1> m{};
    for (size_t n = 0; n <= kMaxPiece; ++n) m[n] = n >= 8 ? ~uint64_t{0} : (uint64_t{1} << 8 * n) - 1;
    return m;
  }();
  static constexpr auto kHighMask = [] {
    std::array<uint64_t, kMaxPiece + 1> m{};
    for (size_t n = 9; n <= kMaxPiece; ++n) m[n] = n == 16 ? ~uint64_t{0} : (uint64_t{1} << 8 * (n - 8)) - 1;
    return m;
  }();
  // Sets r.slot from the key and starts loading that slot. One multiply: its top bits depend on
  // every bit of the folded key.
  void locate(Ref& r) const noexcept {
    const uint64_t folded = r.k0 ^ std::rotl(r.k1 + r.len, 32);
    r.slot = static_cast<uint32_t>((folded * 0x9E3779B97F4A7C15ull) >> (64 - kBits));
    __builtin_prefetch(&table_.slots[r.slot]);
  }
  // An uncached piece (len kUncached) never hits: no slot stores that length (empty ones 0).
  bool hit(const Ref& r) const noexcept {
    const Slot& slot = table_.slots[r.slot];
    return (slot.meta & 0xFF) == r.len && slot.k0 == r.k0 && slot.k1 == r.k1;
  }
  uint32_t whole_token(const Ref& r) const noexcept;
  // The slow paths: BPE, then remember the result when it fits a slot.
  void encode_miss(std::string_view piece, const Ref& r, std::vector<uint32_t>& out);
  size_t count_miss(std::string_view piece, const Ref& r);
  void remember(const Ref& r, const uint32_t* tokens, size_t n);

  const Vocab& vocab_;
  Table& table_;
};

}  // namespace orroute
