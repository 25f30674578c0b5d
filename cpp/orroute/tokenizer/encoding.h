// A tiktoken-compatible encoding (cl100k_base, o200k_base): pre-tokenizer + BPE vocabulary +
// special tokens, and the registry that loads the bundled vocabularies lazily.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/tokenizer/pretokenizer.h"
#include "orroute/tokenizer/vocab.h"

namespace orroute {

// A special token: its text and id.
struct SpecialToken {
  std::string text;
  uint32_t id;
};

// How special-token text inside the input is treated (tiktoken's allowed_special /
// disallowed_special after "all" has been resolved to concrete sets).
struct SpecialPolicy {
  // Special tokens whose text is encoded as the special token. Unknown strings are ignored.
  std::vector<std::string> allowed;
  // Strings whose presence in the text is an error (InvalidArgument naming the first one found).
  std::vector<std::string> disallowed;
};

// Immutable after construction; every method is safe to call from many threads at once.
class Encoding {
 public:
  Encoding(std::string name, SplitPattern pattern, Vocab vocab, std::vector<SpecialToken> specials);

  const std::string& name() const noexcept { return name_; }
  SplitPattern pattern() const noexcept { return pattern_; }
  const Vocab& vocab() const noexcept { return vocab_; }
  // Largest token id + 1, special tokens included (tiktoken's n_vocab).
  uint32_t n_vocab() const noexcept { return n_vocab_; }
  // Id of <|endoftext|>.
  uint32_t eot_token() const noexcept { return eot_; }
  const std::vector<SpecialToken>& special_tokens() const noexcept { return specials_; }

  // Tokens of `text`, special-token text encoded as ordinary text. Any bytes are accepted
  // (invalid UTF-8 is scanned byte by byte). No failure mode besides allocation.
  std::vector<uint32_t> encode_ordinary(std::string_view text) const;
  // Number of tokens encode_ordinary would return; allocates no token vector.
  size_t count_ordinary(std::string_view text) const;
  // Tokens of `text` under `policy`. Throws InvalidArgument if a disallowed string occurs.
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

  // Concatenated bytes of `tokens`. Throws NotFound for an id that is neither a rank nor a
  // special token.
  std::string decode_bytes(std::span<const uint32_t> tokens) const;
  // Bytes of one token; same failure mode.
  std::string_view token_bytes(uint32_t token) const;

 private:
  template <class Sink>
  void encode_ordinary_into(std::string_view text, Sink& sink) const;
  template <class Sink>
  void encode_into(std::string_view text, const SpecialPolicy& policy, Sink& sink) const;

  std::string name_;
  SplitPattern pattern_;
  Vocab vocab_;
  std::vector<SpecialToken> specials_;
  uint32_t n_vocab_ = 0;
  uint32_t eot_ = 0;
};

// Names of the encodings get_encoding() knows: "cl100k_base", "o200k_base".
std::vector<std::string> encoding_names();

// The named encoding, loaded on first use (compact binary vocabulary if found, else the bundled
// .tiktoken file) and cached for the life of the process. Thread-safe. Throws NotFound for an
// unknown name or when no vocabulary file is found, ParseError for a corrupt one.
std::shared_ptr<const Encoding> get_encoding(std::string_view name);

// Adds a directory searched first for <name>.bin / <name>.tiktoken (besides $ORROUTE_VOCAB_DIR,
// the `data` directory next to the binary holding this code, and the build/source trees).
// Thread-safe; affects encodings not yet loaded.
void add_vocab_dir(std::string dir);

}  // namespace orroute
