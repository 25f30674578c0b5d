// A tiktoken-compatible encoding (cl100k_base, o200k_base, o200k_harmony, or one built from a
// user's mergeable ranks): pre-tokenizer + BPE vocabulary + special tokens, and the registry that
// loads the bundled vocabularies lazily.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/tokenizer/pretokenizer.h"
#include "orroute/tokenizer/vocab.h"

namespace orroute {

// A special token: its text and id.
struct SpecialToken {
  std::string text;
  uint32_t id;
};

// How special-token text inside the input is treated: tiktoken's allowed_special /
// disallowed_special. The default policy treats special-token text as ordinary text.
struct SpecialPolicy {
  // Special tokens whose text is encoded as the special token. Strings that are not special
  // tokens are ignored.
  std::vector<std::string> allowed;
  // Strings whose presence anywhere in the text is an error (InvalidArgument naming the leftmost).
  std::vector<std::string> disallowed;
  // tiktoken's allowed_special="all": every special token is allowed (`allowed` is ignored).
  bool allow_all = false;
  // tiktoken's disallowed_special="all": every special token that is not allowed is disallowed
  // (`disallowed` is ignored).
  bool disallow_others = false;
};

// Finds the leftmost occurrence of any of a set of strings (longest at a tie). Immutable.
class StringSetMatcher {
 public:
  explicit StringSetMatcher(std::span<const std::string> strings);
  // (position, index into the strings) of the leftmost match at or after `from`, or nullopt.
  std::optional<std::pair<size_t, size_t>> find(std::string_view text, size_t from) const noexcept;
  // Index of the first string equal to `s`, or nullopt.
  std::optional<size_t> index_of(std::string_view s) const noexcept;
  bool empty() const noexcept { return lengths_.empty(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  bool first_[256] = {};
  int n_first_ = 0;
  int single_first_ = -1;  // the only first byte, when all strings share one (memchr fast path)
  std::vector<size_t> lengths_;  // distinct lengths, longest first
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;
  std::vector<std::string> strings_;
};

// The tokens of many texts in one buffer: text i's tokens are tokens[offsets[i], offsets[i + 1]).
struct FlatTokens {
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> offsets;  // texts + 1 entries, offsets[0] == 0
};

// Immutable after construction; every method is safe to call from many threads at once.
class Encoding {
 public:
  // Throws InvalidArgument if two special tokens share a text.
  Encoding(std::string name, SplitPattern pattern, std::shared_ptr<const Vocab> vocab,
           std::vector<SpecialToken> specials);

  const std::string& name() const noexcept { return name_; }
  SplitPattern pattern() const noexcept { return pattern_; }
  const Vocab& vocab() const noexcept { return *vocab_; }
  // Largest token id + 1, special tokens included (tiktoken's n_vocab).
  uint32_t n_vocab() const noexcept { return n_vocab_; }
  // Id of <|endoftext|>, nullopt if the encoding has none.
  std::optional<uint32_t> eot_token() const noexcept { return eot_; }
  const std::vector<SpecialToken>& special_tokens() const noexcept { return specials_; }
  // True if `token` is the id of a special token.
  bool is_special_token(uint32_t token) const noexcept;

  // Tokens of `text`, special-token text encoded as ordinary text. Any bytes are accepted
  // (invalid UTF-8 is scanned byte by byte). No failure mode besides allocation.
  std::vector<uint32_t> encode_ordinary(std::string_view text) const;
  // Number of tokens encode_ordinary would return; allocates no token vector.
  size_t count_ordinary(std::string_view text) const;
  // Tokens of `text` under `policy`. Throws InvalidArgument if a disallowed string occurs, with
  // tiktoken's message.
  std::vector<uint32_t> encode(std::string_view text, const SpecialPolicy& policy) const;
  // Number of tokens encode would return; same failure mode.
  size_t count(std::string_view text, const SpecialPolicy& policy) const;
  // Many texts on up to `threads` threads (0 = hardware concurrency). Same failure mode as encode
  // (the first error is rethrown after all threads finish).
  std::vector<std::vector<uint32_t>> encode_batch(std::span<const std::string> texts,
                                                  const SpecialPolicy& policy,
                                                  unsigned threads = 0) const;
  std::vector<size_t> count_batch(std::span<const std::string> texts, const SpecialPolicy& policy,
                                  unsigned threads = 0) const;
  // The same over views (the bindings pass views of Python strings, without copying them).
  std::vector<std::vector<uint32_t>> encode_batch(std::span<const std::string_view> texts,
                                                  const SpecialPolicy& policy,
                                                  unsigned threads = 0) const;
  std::vector<size_t> count_batch(std::span<const std::string_view> texts,
                                  const SpecialPolicy& policy, unsigned threads = 0) const;
  // encode_batch into one flat buffer: no vector per text, and the threads share the work by
  // bytes (runs of consecutive texts of ~64 KB), so a few long texts among many short ones still
  // keep every thread busy. Same failure mode as encode_batch.
  FlatTokens encode_batch_flat(std::span<const std::string_view> texts, const SpecialPolicy& policy,
                               unsigned threads = 0) const;

  // tiktoken's _encode_bytes: tokens of arbitrary bytes. The longest valid UTF-8 prefix is
  // encoded as ordinary text; the tokens of its last piece (widened over trailing white-space
  // tokens) are re-merged together with the invalid remainder by BPE. No failure mode.
  std::vector<uint32_t> encode_bytes(std::string_view bytes) const;
  // tiktoken's encode_with_unstable: the tokens of `text` that further text cannot change, and
  // every token sequence that may continue them (sorted, distinct), computed as tiktoken does
  // (its own docs call the API unstable). Same failure mode as encode.
  std::pair<std::vector<uint32_t>, std::vector<std::vector<uint32_t>>> encode_with_unstable(
      std::string_view text, const SpecialPolicy& policy) const;
  // BPE of `bytes` as one piece, without pre-tokenizing (tiktoken's _encode_single_piece).
  std::vector<uint32_t> encode_single_piece(std::string_view bytes) const;
  // Id of the token with exactly these bytes, ordinary or special (tiktoken's
  // encode_single_token); nullopt if there is none.
  std::optional<uint32_t> encode_single_token(std::string_view bytes) const noexcept;

  // Concatenated bytes of `tokens`. Throws NotFound for an id that is neither a rank nor a
  // special token.
  std::string decode_bytes(std::span<const uint32_t> tokens) const;
  // decode_bytes of each list; same failure mode.
  std::vector<std::string> decode_bytes_batch(std::span<const std::vector<uint32_t>> batch) const;
  // Bytes of one token; same failure mode.
  std::string_view token_bytes(uint32_t token) const;
  // Bytes of `tokens` and, per token, the index (in code points) of the first character that
  // holds bytes of it: tiktoken's decode_with_offsets. Same failure mode as decode_bytes.
  std::pair<std::string, std::vector<size_t>> decode_with_offsets(
      std::span<const uint32_t> tokens) const;
  // Bytes of every ordinary token, sorted bytewise (tiktoken's token_byte_values).
  std::vector<std::string_view> token_byte_values() const;

 private:
  template <class Sink>
  void encode_ordinary_into(std::string_view text, Sink& sink) const;
  template <class Sink>
  void encode_into(std::string_view text, const SpecialPolicy& policy, Sink& sink) const;
  // Throws InvalidArgument if a string `policy` disallows occurs in `text`.
  void check_disallowed(std::string_view text, const SpecialPolicy& policy) const;
  const SpecialToken* special_by_id(uint32_t token) const noexcept;
  // Widens the last piece's token count over preceding all-white-space tokens (tiktoken's
  // _increase_last_piece_token_len).
  size_t widen_last_piece(const std::vector<uint32_t>& tokens, size_t last) const noexcept;
  // token_byte_values(), sorted once on first use.
  const std::vector<std::string_view>& sorted_token_bytes() const;

  std::string name_;
  SplitPattern pattern_;
  std::shared_ptr<const Vocab> vocab_;
  std::vector<SpecialToken> specials_;
  std::vector<std::string> special_texts_;  // same order as specials_
  std::vector<size_t> by_id_;               // indices of specials_ sorted by id
  StringSetMatcher special_matcher_;
  uint32_t n_vocab_ = 0;
  std::optional<uint32_t> eot_;
  mutable std::once_flag sorted_once_;
  mutable std::vector<std::string_view> sorted_;
};

// Names of the encodings get_encoding() knows: "cl100k_base", "o200k_base", "o200k_harmony".
std::vector<std::string> encoding_names();

// The named encoding, loaded on first use (compact binary vocabulary if found, else the bundled
// .tiktoken file) and cached for the life of the process; encodings over one vocabulary share it.
// Thread-safe. Throws NotFound for an unknown name or when no vocabulary file is found,
// ParseError for a corrupt one.
std::shared_ptr<const Encoding> get_encoding(std::string_view name);

// get_encoding's encoding by reference, for hot paths (the engine counts every chat message
// through it): a loaded encoding lives for the process, so once loaded it is found without the
// registry's lock or a reference count. Same failure modes; thread-safe.
const Encoding& encoding_named(std::string_view name);

// An encoding built from a user's tiktoken parameters (tiktoken.Encoding's constructor):
// `pat_str` must be one of the split patterns orroute implements (see pattern_from_regex), else
// InvalidArgument listing them; `ranks` as Vocab::from_ranks (ParseError); special-token texts
// must be distinct (InvalidArgument). Thread-safe; the result is not cached.
std::shared_ptr<const Encoding> make_encoding(std::string name, std::string_view pat_str,
                                              std::span<const std::pair<std::string, uint32_t>> ranks,
                                              std::vector<SpecialToken> specials);

// Adds a directory searched first for <name>.bin / <name>.tiktoken (besides $ORROUTE_VOCAB_DIR,
// the `data` directory next to the binary holding this code, and the build/source trees).
// Thread-safe; affects encodings not yet loaded.
void add_vocab_dir(std::string dir);

}  // namespace orroute
