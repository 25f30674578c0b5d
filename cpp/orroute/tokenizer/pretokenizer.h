// Pre-tokenization: splits text into the pieces tiktoken's split patterns produce, with a
// hand-written scanner (no regex at run time) over the generated Unicode tables.
#pragma once

#include <cstddef>
#include <cstdint>
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
// The general scanner, one piece per call: the reference the PieceScanner's fast paths are tested
// against.
size_t next_piece_end(SplitPattern pattern, std::string_view text, size_t pos) noexcept;

// How the scanner classifies the bytes of its 64-byte windows (see pretokenizer.cpp): with SSE2
// on x86-64, else (and on request, so the tests exercise both) one table lookup per byte. Both
// give identical bitmaps.
enum class ByteClassifier { kBest, kScalar };

// The ASCII classes of up to 64 bytes of text from `base`, one bitmap per class (bit j = byte
// base + j); bytes past the text's end are in no class. The scanner's state between calls.
struct ByteWindow {
  const unsigned char* base = nullptr;
  unsigned lim = 0;     // bytes of text in the window (1..64)
  bool at_end = false;  // base + lim is the end of the text (else the window cut the text)
  uint64_t upper = 0;     // [A-Z]
  uint64_t lower = 0;     // [a-z]
  uint64_t digit = 0;     // [0-9]
  uint64_t space = 0;     // \s in ASCII: \t \n \v \f \r and ' '
  uint64_t newline = 0;   // [\r\n]
  uint64_t other = 0;     // ASCII [^\s\p{L}\p{N}]
  uint64_t nonascii = 0;  // bytes >= 0x80
  uint64_t blank = 0;     // ' '
  uint64_t slash = 0;     // '/'
  uint64_t quote = 0;     // '\''
  bool operator==(const ByteWindow&) const = default;
};

// The window of `text` at byte `pos` (< text.size()) as the scanner classifies it. For tests.
ByteWindow classify_window(std::string_view text, size_t pos, ByteClassifier classifier) noexcept;

// Pre-tokenizes one text a block of pieces at a time: the pieces next_piece_end gives, in order,
// decided from 64-byte windows of classified bytes where they are ASCII (the window kept from one
// call to the next) and by next_piece_end's scanner elsewhere. Thread-compatible (one per thread).
class PieceScanner {
 public:
  PieceScanner(SplitPattern pattern, std::string_view text, size_t pos = 0,
               ByteClassifier classifier = ByteClassifier::kBest) noexcept;
  // Ends (offsets in the text) of up to `max` (>= 1) next pieces, written to `ends`; returns how
  // many, 0 once the text is done. No failure mode.
  size_t next(size_t* ends, size_t max) noexcept;

 private:
  SplitPattern pattern_;
  std::string_view text_;
  size_t pos_;
  ByteClassifier classifier_;
  ByteWindow window_;
  uint64_t pending_ = 0;  // piece ends decided in window_ and not yet returned (bit i: base + i)
};

// Calls `sink(std::string_view piece)` for every piece of `text`, in order.
template <class Sink>
void split_pieces(SplitPattern pattern, std::string_view text, Sink&& sink) {
  constexpr size_t kBlock = 16;
  size_t ends[kBlock];
  PieceScanner scanner(pattern, text);
  size_t pos = 0;
  for (size_t m; (m = scanner.next(ends, kBlock)) > 0;) {
    for (size_t i = 0; i < m; pos = ends[i++]) sink(text.substr(pos, ends[i] - pos));
  }
}

}  // namespace orroute
