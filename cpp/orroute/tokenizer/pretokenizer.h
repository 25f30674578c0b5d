// Pre-tokenization: splits text into the pieces tiktoken's split patterns produce, with a
// hand-written scanner (no regex at run time) over the generated Unicode tables.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace orroute {

// The split patterns of the supported encodings.
//   kCl100k: '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+
//            |\s++$|\s*[\r\n]|\s+(?!\S)|\s
//   kO200k:  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//            |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//            |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   kR50k:   '(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s
//            (GPT-2, r50k_base, p50k_base, p50k_edit)
enum class SplitPattern { kCl100k, kO200k, kR50k };

// tiktoken's regex source for `pattern` (its `_pat_str`).
std::string_view pattern_regex(SplitPattern pattern) noexcept;

// The pattern whose regex is `regex`: tiktoken's pat_str of cl100k_base, o200k_base or r50k_base,
// or the original GPT-2 release's equivalent form. nullopt for any other regex (orroute has no
// general regex engine; its scanners are hand-written per pattern). No failure mode.
std::optional<SplitPattern> pattern_from_regex(std::string_view regex) noexcept;

// End offset (> pos) of the piece that starts at byte `pos` (< text.size()) of `text`, with the
// leftmost-first backtracking semantics of tiktoken's regex engine; `$` is the end of `text`.
// Invalid UTF-8 bytes are scanned as one-byte characters of no category. Thread-safe, no failure.
size_t next_piece_end(SplitPattern pattern, std::string_view text, size_t pos) noexcept;

// Ends of up to `max` consecutive pieces starting at byte `pos` (< text.size()) of `text`, written
// to `ends`; returns how many (at least 1). next_piece_end in a loop, without a call and a pattern
// dispatch per piece. Thread-safe, no failure.
size_t next_piece_ends(SplitPattern pattern, std::string_view text, size_t pos, size_t* ends,
                       size_t max) noexcept;

// Calls `sink(std::string_view piece)` for every piece of `text`, in order.
template <class Sink>
void split_pieces(SplitPattern pattern, std::string_view text, Sink&& sink) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = next_piece_end(pattern, text, pos);
    sink(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace orroute
