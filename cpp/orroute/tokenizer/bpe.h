// Byte-pair encoding of one pre-tokenized piece, exactly as tiktoken merges: repeatedly merge the
// adjacent pair whose concatenation has the lowest rank, leftmost first on ties.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "orroute/tokenizer/vocab.h"

namespace orroute {

// Appends the tokens of `piece` (non-empty) to `out`. A piece that is itself a token gives that
// token (as tiktoken does, even where merging would not reach it). Short pieces merge in place
// (quadratic in a small bound); long ones use a heap over a linked list, O(n log n) in the piece
// length. Thread-safe (no shared state), no failure mode besides allocation.
void bpe_encode(const Vocab& vocab, std::string_view piece, std::vector<uint32_t>& out);

// Number of tokens bpe_encode would append, without building them.
size_t bpe_count(const Vocab& vocab, std::string_view piece);

}  // namespace orroute
