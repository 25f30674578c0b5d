#include "orroute/tokenizer/encoding.h"

#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <filesystem>
#include <map>
#include <new>
#include <mutex>
#include <thread>

#include "orroute/error.h"
#include "orroute/no_destructor.h"
#include "orroute/tokenizer/batch_threads.h"
#include "orroute/tokenizer/bpe.h"
#include "orroute/tokenizer/unicode_tables.h"

namespace orroute {

namespace {

std::vector<std::string> texts_of(const std::vector<SpecialToken>& specials) {
  std::vector<std::string> texts;
  texts.reserve(specials.size());
  for (const SpecialToken& s : specials) texts.push_back(s.text);
  return texts;
}

// Python's repr() of a str, for tiktoken's error message (non-ASCII is kept as is, as repr does
// for printable characters).
std::string py_repr(std::string_view s) {
  const bool dq = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char quote = dq ? '"' : '\'';
  std::string out(1, quote);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += quote;
  return out;
}

[[noreturn]] void raise_disallowed(std::string_view token) {
  const std::string r = py_repr(token);
  throw InvalidArgument("Encountered text corresponding to disallowed special token " + r +
                        ".\nIf you want this text to be encoded as a special token, pass it to "
                        "`allowed_special`, e.g. `allowed_special={" + r + ", ...}`.\n"
                        "If you want this text to be encoded as normal text, disable the check "
                        "for this token by passing `disallowed_special=(enc.special_tokens_set - {" +
                        r + "})`.\nTo disable this check for all special tokens, pass "
                        "`disallowed_special=()`.\n");
}

// Length of the longest prefix of `s` that is valid UTF-8 (Rust's Utf8Error::valid_up_to:
// no overlong forms, surrogates or code points above U+10FFFF).
size_t utf8_valid_prefix(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return n;
}

}  // namespace

StringSetMatcher::StringSetMatcher(std::span<const std::string> strings)
    : strings_(strings.begin(), strings.end()) {
  for (size_t i = 0; i < strings_.size(); ++i) {
    const std::string& s = strings_[i];
    index_.emplace(s, i);  // the first of duplicate strings wins
    if (std::find(lengths_.begin(), lengths_.end(), s.size()) == lengths_.end()) {
      lengths_.push_back(s.size());
    }
    if (s.empty()) continue;
    const auto b = static_cast<unsigned char>(s[0]);
    if (!first_[b]) {
      first_[b] = true;
      ++n_first_;
      single_first_ = b;
    }
  }
  std::sort(lengths_.begin(), lengths_.end(), std::greater<>());
  if (n_first_ != 1) single_first_ = -1;
}

std::optional<size_t> StringSetMatcher::index_of(std::string_view s) const noexcept {
  const auto it = index_.find(s);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::pair<size_t, size_t>> StringSetMatcher::find(std::string_view text,
                                                                 size_t from) const noexcept {
  if (lengths_.empty() || from > text.size()) return std::nullopt;
  const size_t n = text.size();
  auto match_at = [&](size_t pos) -> std::optional<std::pair<size_t, size_t>> {
    for (const size_t len : lengths_) {  // longest first
      if (len > n - pos) continue;
      if (const auto it = index_.find(text.substr(pos, len)); it != index_.end()) {
        return std::pair{pos, it->second};
      }
    }
    return std::nullopt;
  };
  if (lengths_.back() == 0) {
    // "" matches at once, so the match is at `from`; which string it names follows the order
    // given, as a regex alternation does (tiktoken's error names that one).
    for (size_t i = 0; i < strings_.size(); ++i) {
      if (text.substr(from).starts_with(strings_[i])) return std::pair{from, i};
    }
  }
  for (size_t pos = from; pos < n; ++pos) {
    if (single_first_ >= 0) {
      const void* hit = std::memchr(text.data() + pos, single_first_, n - pos);
      if (!hit) return std::nullopt;
      pos = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    } else if (!first_[static_cast<unsigned char>(text[pos])]) {
      continue;
    }
    if (auto m = match_at(pos)) return m;
  }
  return std::nullopt;
}

Encoding::Encoding(std::string name, SplitPattern pattern, std::shared_ptr<const Vocab> vocab,
                   std::vector<SpecialToken> specials)
    : name_(std::move(name)),
      pattern_(pattern),
      vocab_(std::move(vocab)),
      specials_(std::move(specials)),
      special_texts_(texts_of(specials_)),
      special_matcher_(special_texts_) {
  n_vocab_ = vocab_->size();
  for (size_t i = 0; i < specials_.size(); ++i) {
    const SpecialToken& s = specials_[i];
    if (s.text.empty()) throw InvalidArgument("a special token's text is empty");
    if (special_matcher_.index_of(s.text) != i) {
      throw InvalidArgument("special token " + py_repr(s.text) + " is given twice");
    }
    if (s.id == Vocab::kNone) throw InvalidArgument("special token id out of range");
    n_vocab_ = std::max(n_vocab_, s.id + 1);
    if (s.text == "<|endoftext|>") eot_ = s.id;
    by_id_.push_back(i);
  }
  // Stable: when two texts share an id (o200k_harmony's 200018), the first listed decodes it.
  std::stable_sort(by_id_.begin(), by_id_.end(),
                   [&](size_t a, size_t b) { return specials_[a].id < specials_[b].id; });
}

const SpecialToken* Encoding::special_by_id(uint32_t token) const noexcept {
  const auto it = std::lower_bound(by_id_.begin(), by_id_.end(), token,
                                   [&](size_t i, uint32_t t) { return specials_[i].id < t; });
  return it != by_id_.end() && specials_[*it].id == token ? &specials_[*it] : nullptr;
}

bool Encoding::is_special_token(uint32_t token) const noexcept {
  return special_by_id(token) != nullptr;
}

namespace {
// Whether `text` is one ASCII word short enough for the piece cache: upper-case letters, then
// lower-case ones ("user", "assistant", "Yes", "OK"). Every split pattern makes such a text one
// piece (o200k's [U]*[W]+ or [U]+[W]*, cl100k's `\p{L}++`, r50k's ` ?\p{L}++`), so it needs no
// scanning: a chat message's role is counted with every message.
inline bool one_ascii_word(std::string_view text) noexcept {
  if (text.empty() || text.size() > CachedBpe::kMaxPiece) return false;
  size_t i = 0;
  while (i < text.size() && text[i] >= 'A' && text[i] <= 'Z') ++i;
  while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
  return i == text.size();
}
}  // namespace

template <class Sink>
void Encoding::encode_ordinary_into(std::string_view text, Sink& sink) const {
  if (one_ascii_word(text)) {
    const CachedBpe::Ref ref = sink.bpe.ref(text);
    sink.pieces(&text, &ref, 1);
    return;
  }
  // Pre-tokenizes a block of pieces, requests the cache lines their lookups will touch, then
  // encodes them: the memory latency of one piece overlaps the others' (a lookup that waited for
  // memory was half the time of encoding). 64 pieces (a typical document in one block) gave the
  // first lookups of a block time to arrive: against 16, count 1.13-1.16x; 128 the same, 256 0.97x.
  constexpr size_t kBlock = CachedBpe::kMaxBlock;
  size_t ends[kBlock];
  // Left uninitialized: string_view's constructor would zero all 64 (~130 instructions, a third
  // of counting a short text); only the first m of a block are written and read.
  union Pieces {
    Pieces() {}
    std::string_view at[kBlock];
  } pieces;
  CachedBpe::Ref refs[kBlock];
  const char* data = text.data();
  const char* const data_end = data + text.size();
  PieceScanner scanner(pattern_, text);
  for (size_t pos = 0; pos < text.size();) {  // (not once more to be told the text is done)
    const size_t m = scanner.next(ends, kBlock);
    for (size_t i = 0; i < m; pos = ends[i++]) {
      pieces.at[i] = std::string_view(data + pos, ends[i] - pos);
      refs[i] = sink.bpe.ref(pieces.at[i], data_end);
    }
    sink.pieces(pieces.at, refs, m);
  }
}

void Encoding::check_disallowed(std::string_view text, const SpecialPolicy& policy) const {
  if (policy.disallow_others) {
    if (policy.allow_all) return;
    // Every special token not allowed: the leftmost special-token text that is not in `allowed`.
    for (size_t from = 0;;) {
      const auto m = special_matcher_.find(text, from);
      if (!m) return;
      const std::string& t = special_texts_[m->second];
      if (std::find(policy.allowed.begin(), policy.allowed.end(), t) == policy.allowed.end()) {
        raise_disallowed(t);
      }
      from = m->first + 1;
    }
  }
  if (policy.disallowed.empty()) return;
  const StringSetMatcher disallowed(policy.disallowed);
  if (const auto m = disallowed.find(text, 0)) raise_disallowed(policy.disallowed[m->second]);
}

template <class Sink>
void Encoding::encode_into(std::string_view text, const SpecialPolicy& policy, Sink& sink) const {
  check_disallowed(text, policy);
  if (specials_.empty() || (!policy.allow_all && policy.allowed.empty())) {
    encode_ordinary_into(text, sink);
    return;
  }
  // As tiktoken: find special-token text left to right, skip the ones not allowed, and split the
  // text at the allowed ones; each segment is pre-tokenized on its own.
  std::vector<bool> allowed(specials_.size(), policy.allow_all);
  if (!policy.allow_all) {
    for (const std::string& a : policy.allowed) {
      if (const auto i = special_matcher_.index_of(a)) allowed[*i] = true;
    }
  }
  size_t pos = 0;
  for (size_t from = 0;;) {
    const auto m = special_matcher_.find(text, from);
    if (!m) break;
    if (!allowed[m->second]) {
      from = m->first + 1;
      continue;
    }
    encode_ordinary_into(text.substr(pos, m->first - pos), sink);
    sink.special(specials_[m->second].id);
    pos = from = m->first + specials_[m->second].text.size();
  }
  encode_ordinary_into(text.substr(pos), sink);
}

namespace {

struct VectorSink {
  std::vector<uint32_t>& out;
  CachedBpe bpe;
  size_t last_piece = 0;  // tokens of the last piece (tiktoken's last_piece_token_len)
  void pieces(const std::string_view* p, const CachedBpe::Ref* r, size_t m) {
    last_piece = bpe.encode_block(p, r, m, out);
  }
  void special(uint32_t id) {
    out.push_back(id);
    last_piece = 0;
  }
};

struct CountSink {
  CachedBpe bpe;
  size_t n = 0;
  void pieces(const std::string_view* p, const CachedBpe::Ref* r, size_t m) {
    for (size_t i = 0; i < m; ++i) n += bpe.count(p[i], r[i]);
  }
  void special(uint32_t) { ++n; }
};

// Runs fn(i) for i in [0, n) on up to `threads` threads (the caller and helpers); rethrows the
// first exception.
template <class Fn>
void parallel_for(size_t n, unsigned threads, Fn&& fn) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, n));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mu;
  const std::function<void(size_t)> unit = [&](size_t i) {
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  };
  // At most one helper per further core: more cannot speed up this work, and each keeps its
  // piece caches (up to 4 MB) for the life of the process.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  run_units(n, std::min(threads, cores) - 1, unit);
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<uint32_t> Encoding::encode_ordinary(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 4);
  VectorSink sink{out, CachedBpe(*vocab_)};
  encode_ordinary_into(text, sink);
  return out;
}

size_t Encoding::count_ordinary(std::string_view text) const {
  CountSink sink{CachedBpe(*vocab_)};
  encode_ordinary_into(text, sink);
  return sink.n;
}

std::vector<uint32_t> Encoding::encode(std::string_view text, const SpecialPolicy& policy) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 4);
  VectorSink sink{out, CachedBpe(*vocab_)};
  encode_into(text, policy, sink);
  return out;
}

size_t Encoding::count(std::string_view text, const SpecialPolicy& policy) const {
  CountSink sink{CachedBpe(*vocab_)};
  encode_into(text, policy, sink);
  return sink.n;
}

std::vector<std::vector<uint32_t>> Encoding::encode_batch(std::span<const std::string_view> texts,
                                                          const SpecialPolicy& policy,
                                                          unsigned threads) const {
  std::vector<std::vector<uint32_t>> out(texts.size());
  parallel_for(texts.size(), threads, [&](size_t i) { out[i] = encode(texts[i], policy); });
  return out;
}


namespace {
// Consecutive texts of about this many bytes form one unit of batch work: large enough that a
// unit's bookkeeping is negligible, small enough that two threads finish within one unit of each
// other.
constexpr size_t kBatchChunkBytes = 64 * 1024;

// [begin, end) index ranges of consecutive texts of about kBatchChunkBytes each.
std::vector<std::pair<size_t, size_t>> byte_chunks(std::span<const std::string_view> texts) {
  std::vector<std::pair<size_t, size_t>> chunks;
  size_t begin = 0, bytes = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    bytes += texts[i].size() + 16;  // + a per-text cost, so many empty texts still split
    if (bytes >= kBatchChunkBytes) {
      chunks.emplace_back(begin, i + 1);
      begin = i + 1;
      bytes = 0;
    }
  }
  if (begin < texts.size()) chunks.emplace_back(begin, texts.size());
  return chunks;
}
}  // namespace

FlatTokens Encoding::encode_batch_flat(std::span<const std::string_view> texts,
                                       const SpecialPolicy& policy, unsigned threads) const {
  const auto chunks = byte_chunks(texts);
  FlatTokens flat;
  flat.offsets.assign(texts.size() + 1, 0);
  // Each chunk encodes into its own buffer and records its texts' token counts in offsets[i + 1];
  // the buffers are then concatenated in order and the counts summed into offsets.
  std::vector<std::vector<uint32_t>> parts(chunks.size());
  parallel_for(chunks.size(), threads, [&](size_t c) {
    const auto [begin, end] = chunks[c];
    size_t bytes = 0;
    for (size_t i = begin; i < end; ++i) bytes += texts[i].size();
    std::vector<uint32_t>& out = parts[c];
    out.reserve(bytes / 3 + 4);
    VectorSink sink{out, CachedBpe(*vocab_)};
    for (size_t i = begin; i < end; ++i) {
      const size_t before = out.size();
      encode_into(texts[i], policy, sink);
      flat.offsets[i + 1] = out.size() - before;
    }
  });
  for (size_t i = 0; i < texts.size(); ++i) flat.offsets[i + 1] += flat.offsets[i];
  flat.tokens.reserve(flat.offsets.back());
  for (const std::vector<uint32_t>& part : parts) {
    flat.tokens.insert(flat.tokens.end(), part.begin(), part.end());
  }
  return flat;
}

std::vector<size_t> Encoding::count_batch(std::span<const std::string_view> texts,
                                          const SpecialPolicy& policy, unsigned threads) const {
  const auto chunks = byte_chunks(texts);
  std::vector<size_t> out(texts.size());
  parallel_for(chunks.size(), threads, [&](size_t c) {
    CountSink sink{CachedBpe(*vocab_)};  // one cache handle per chunk, not per text
    for (size_t i = chunks[c].first; i < chunks[c].second; ++i) {
      const size_t before = sink.n;
      encode_into(texts[i], policy, sink);
      out[i] = sink.n - before;
    }
  });
  return out;
}

namespace {
std::vector<std::string_view> views(std::span<const std::string> texts) {
  return {texts.begin(), texts.end()};
}
}  // namespace

std::vector<std::vector<uint32_t>> Encoding::encode_batch(std::span<const std::string> texts,
                                                          const SpecialPolicy& policy,
                                                          unsigned threads) const {
  return encode_batch(views(texts), policy, threads);
}

std::vector<size_t> Encoding::count_batch(std::span<const std::string> texts,
                                          const SpecialPolicy& policy, unsigned threads) const {
  return count_batch(views(texts), policy, threads);
}

std::vector<uint32_t> Encoding::encode_single_piece(std::string_view bytes) const {
  std::vector<uint32_t> out;
  if (!bytes.empty()) bpe_encode(*vocab_, bytes, out);
  return out;
}

std::optional<uint32_t> Encoding::encode_single_token(std::string_view bytes) const noexcept {
  if (const uint32_t id = vocab_->find(bytes); id != Vocab::kNone) return id;
  if (const auto i = special_matcher_.index_of(bytes)) return specials_[*i].id;
  return std::nullopt;
}

std::vector<uint32_t> Encoding::encode_bytes(std::string_view bytes) const {
  const size_t valid = utf8_valid_prefix(bytes);
  if (valid == bytes.size()) return encode_ordinary(bytes);
  std::vector<uint32_t> tokens;
  VectorSink sink{tokens, CachedBpe(*vocab_)};
  encode_ordinary_into(bytes.substr(0, valid), sink);
  const size_t last = widen_last_piece(tokens, sink.last_piece);
  std::string unstable;
  if (!tokens.empty() && last > 0) {
    unstable = decode_bytes(std::span(tokens).last(last));
    tokens.resize(tokens.size() - last);
  }
  unstable += bytes.substr(valid);
  bpe_encode(*vocab_, unstable, tokens);
  return tokens;
}

size_t Encoding::widen_last_piece(const std::vector<uint32_t>& tokens, size_t last) const noexcept {
  // A split before white space can disappear once more text follows (cl100k's \s*[\r\n] turns
  // "\n" + " " into "\n \n"), so tiktoken counts preceding all-white-space tokens as unstable too.
  auto all_space = [&](uint32_t t) {
    if (t >= vocab_->size()) return false;
    for (const char c : vocab_->token_bytes(t)) {
      if (c != ' ' && c != '\n' && c != '\t') return false;
    }
    return true;
  };
  if (last > 0 && all_space(tokens[tokens.size() - last])) {
    while (last < tokens.size() && all_space(tokens[tokens.size() - last - 1])) ++last;
  }
  return last;
}

const std::vector<std::string_view>& Encoding::sorted_token_bytes() const {
  std::call_once(sorted_once_, [&] {
    sorted_.reserve(vocab_->size());
    for (uint32_t id = 0; id < vocab_->size(); ++id) sorted_.push_back(vocab_->token_bytes(id));
    std::sort(sorted_.begin(), sorted_.end());
  });
  return sorted_;
}

std::pair<std::vector<uint32_t>, std::vector<std::vector<uint32_t>>>
Encoding::encode_with_unstable(std::string_view text, const SpecialPolicy& policy) const {
  std::pair<std::vector<uint32_t>, std::vector<std::vector<uint32_t>>> result;
  auto& [tokens, completions] = result;
  VectorSink sink{tokens, CachedBpe(*vocab_)};
  encode_into(text, policy, sink);
  if (sink.last_piece == 0) return result;  // ends with a special token: nothing unstable
  const size_t last = widen_last_piece(tokens, sink.last_piece);
  const std::string unstable = decode_bytes(std::span(tokens).last(last));
  tokens.resize(tokens.size() - last);
  if (unstable.empty()) return result;

  std::vector<std::vector<uint32_t>> found;
  const std::vector<std::string_view>& sorted = sorted_token_bytes();
  // Every token that starts with the unstable bytes.
  for (auto it = std::lower_bound(sorted.begin(), sorted.end(), std::string_view(unstable));
       it != sorted.end() && it->starts_with(unstable); ++it) {
    found.push_back({vocab_->find(*it)});
  }
  // Every token that could straddle the end: unstable[:i] + a token starting with unstable[i:],
  // re-encoded, cut after the tokens that cover the unstable bytes.
  for (size_t i = 1; i < unstable.size(); ++i) {
    const std::string_view prefix = std::string_view(unstable).substr(0, i);
    const std::string_view suffix = std::string_view(unstable).substr(i);
    for (auto it = std::lower_bound(sorted.begin(), sorted.end(), suffix);
         it != sorted.end() && it->starts_with(suffix); ++it) {
      const std::string possibility = std::string(prefix) + std::string(*it);
      std::vector<uint32_t> encoded;
      if (utf8_valid_prefix(possibility) == possibility.size()) {
        encoded = encode_ordinary(possibility);
      } else {
        bpe_merge(*vocab_, possibility, encoded);
      }
      std::vector<uint32_t> seq;
      size_t covered = 0;
      for (const uint32_t t : encoded) {
        seq.push_back(t);
        covered += vocab_->token_bytes(t).size();
        if (covered >= unstable.size()) break;
      }
      found.push_back(std::move(seq));
    }
  }
  // White space at the end can gain a split once text follows ("\n\n" + "0" -> "\n", "\n", "0").
  if (unstable.size() > 1) {
    size_t start = unstable.size() - 1;  // start of the last character
    while (start > 0 && unstable.size() - start < 4 &&
           (static_cast<unsigned char>(unstable[start]) & 0xC0) == 0x80) {
      --start;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(unstable.data());
    const unicode::Char c = unicode::decode_utf8(p + start, p + unstable.size());
    if (start > 0 && c.cp != 0xFFFFFFFFu && start + c.len == unstable.size() &&
        unicode::char_class(c) == unicode::kSpace) {
      std::vector<uint32_t> reencoded;
      bpe_merge(*vocab_, std::string_view(unstable).substr(0, start), reencoded);
      bpe_merge(*vocab_, std::string_view(unstable).substr(start), reencoded);
      found.push_back(std::move(reencoded));
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  completions = std::move(found);
  return result;
}

std::string_view Encoding::token_bytes(uint32_t token) const {
  if (token < vocab_->size()) return vocab_->token_bytes(token);
  if (const SpecialToken* s = special_by_id(token)) return s->text;
  throw NotFound("Invalid token for decoding: " + std::to_string(token));
}

std::string Encoding::decode_bytes(std::span<const uint32_t> tokens) const {
  std::string out;
  out.reserve(tokens.size() * 4);
  for (uint32_t t : tokens) out += token_bytes(t);
  return out;
}

std::vector<std::string> Encoding::decode_bytes_batch(
    std::span<const std::vector<uint32_t>> batch) const {
  std::vector<std::string> out;
  out.reserve(batch.size());
  for (const std::vector<uint32_t>& tokens : batch) out.push_back(decode_bytes(tokens));
  return out;
}

std::pair<std::string, std::vector<size_t>> Encoding::decode_with_offsets(
    std::span<const uint32_t> tokens) const {
  std::pair<std::string, std::vector<size_t>> out;
  auto& [bytes, offsets] = out;
  offsets.reserve(tokens.size());
  size_t chars = 0;  // code points so far: bytes that are not UTF-8 continuation bytes
  auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  for (const uint32_t t : tokens) {
    const std::string_view b = token_bytes(t);
    // A token that starts inside a character belongs to the character it continues.
    const bool inside = !b.empty() && continuation(b[0]);
    offsets.push_back(inside && chars > 0 ? chars - 1 : chars);
    for (const char c : b) chars += continuation(c) ? 0 : 1;
    bytes += b;
  }
  return out;
}

std::vector<std::string_view> Encoding::token_byte_values() const { return sorted_token_bytes(); }

// ---- registry -------------------------------------------------------------------------------

namespace {

struct Spec {
  std::string_view name;  // a view: comparing it with a name needs no strlen
  const char* vocab;  // vocabulary file stem; encodings over one vocabulary share it
  SplitPattern pattern;
  std::vector<SpecialToken> specials;
};

// o200k_base's special tokens plus the harmony chat format's, as tiktoken_ext.openai_public.
std::vector<SpecialToken> harmony_specials() {
  std::vector<SpecialToken> s = {
      {"<|endoftext|>", 199999},       {"<|endofprompt|>", 200018},   {"<|startoftext|>", 199998},
      {"<|reserved_200000|>", 200000}, {"<|reserved_200001|>", 200001}, {"<|return|>", 200002},
      {"<|constrain|>", 200003},       {"<|reserved_200004|>", 200004}, {"<|channel|>", 200005},
      {"<|start|>", 200006},           {"<|end|>", 200007},           {"<|message|>", 200008},
      {"<|reserved_200009|>", 200009}, {"<|reserved_200010|>", 200010},
      {"<|reserved_200011|>", 200011}, {"<|call|>", 200012},
  };
  for (uint32_t i = 200013; i < 201088; ++i) {
    s.push_back({"<|reserved_" + std::to_string(i) + "|>", i});
  }
  return s;
}

const std::vector<Spec>& specs() {
  static const NoDestructor<std::vector<Spec>> s(std::vector<Spec>{
      {"cl100k_base",
       "cl100k_base",
       SplitPattern::kCl100k,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base",
       "o200k_base",
       SplitPattern::kO200k,
       {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
      {"o200k_harmony", "o200k_base", SplitPattern::kO200k, harmony_specials()},
  });
  return *s;
}

// The registry's lock. A fork() never catches it held by another thread (which would leave it
// held for good in the child): the forking thread takes it first, and the child makes it anew.
std::mutex& registry_mutex() {
  static std::mutex* const mu = [] {
    pthread_atfork([] { registry_mutex().lock(); }, [] { registry_mutex().unlock(); },
                   [] { new (&registry_mutex()) std::mutex(); });
    return new std::mutex;
  }();
  return *mu;
}
// The encodings and vocabularies loaded so far. Never destroyed: a thread may still count while
// statics are torn down at exit.
struct Registry {
  std::map<std::string, std::shared_ptr<const Encoding>, std::less<>> encodings;
  std::map<std::string, std::shared_ptr<const Vocab>, std::less<>> vocabs;
};
Registry& registry() {
  static Registry* const r = new Registry;
  return *r;
}

// Every static of the registry is made while the library loads, not on first use: the loading
// thread holds the GIL (Python cannot fork meanwhile) and no thread of ours exists yet. Made on
// first use, inside get_encoding, which runs without the GIL, a fork by another thread could copy
// an initialization half done, and the child would wait for its guard forever.
[[maybe_unused]] const std::mutex& registry_mutex_at_load = registry_mutex();
[[maybe_unused]] const Registry& registry_at_load = registry();
[[maybe_unused]] const std::vector<Spec>& specs_at_load = specs();
std::vector<std::string>& extra_dirs() {
  static NoDestructor<std::vector<std::string>> dirs;
  return *dirs;
}
[[maybe_unused]] const std::vector<std::string>& extra_dirs_at_load = extra_dirs();

// Directory of the shared object or executable that contains this code.
std::string own_binary_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_binary_dir), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::vector<std::string> search_dirs() {
  std::vector<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    dirs = extra_dirs();
  }
  if (const char* env = std::getenv("ORROUTE_VOCAB_DIR"); env && *env) dirs.emplace_back(env);
  if (std::string own = own_binary_dir(); !own.empty()) {
    dirs.push_back(own + "/data");
    dirs.push_back(own + "/vocab");
  }
#ifdef ORROUTE_BUILD_VOCAB_DIR
  dirs.emplace_back(ORROUTE_BUILD_VOCAB_DIR);
#endif
#ifdef ORROUTE_SOURCE_VOCAB_DIR
  dirs.emplace_back(ORROUTE_SOURCE_VOCAB_DIR);
#endif
  return dirs;
}

Vocab load_vocab(const std::string& name) {
  const std::vector<std::string> dirs = search_dirs();
  std::error_code ec;
  for (const std::string& d : dirs) {  // the compact form anywhere beats parsing text
    const std::string p = d + "/" + name + ".bin";
    if (std::filesystem::is_regular_file(p, ec)) return Vocab::from_binary_file(p);
  }
  for (const std::string& d : dirs) {
    const std::string p = d + "/" + name + ".tiktoken";
    if (std::filesystem::is_regular_file(p, ec)) return Vocab::from_tiktoken_file(p);
  }
  std::string where;
  for (const std::string& d : dirs) where += (where.empty() ? "" : ", ") + d;
  throw NotFound("no vocabulary file for encoding " + name + " in: " + where);
}

}  // namespace

std::vector<std::string> encoding_names() {
  std::vector<std::string> names;
  for (const Spec& s : specs()) names.emplace_back(s.name);
  return names;
}

void add_vocab_dir(std::string dir) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  extra_dirs().insert(extra_dirs().begin(), std::move(dir));
}

std::shared_ptr<const Encoding> get_encoding(std::string_view name) {
  auto& [cache, vocabs] = registry();
  const Spec* spec = nullptr;
  for (const Spec& s : specs()) {
    if (name == s.name) spec = &s;
  }
  if (!spec) throw NotFound("unknown encoding '" + std::string(name) + "'");
  std::unique_lock<std::mutex> lock(registry_mutex());
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  std::shared_ptr<const Vocab> vocab;
  if (auto it = vocabs.find(spec->vocab); it != vocabs.end()) vocab = it->second;
  lock.unlock();
  // Load outside the lock (tens of ms); a concurrent loader of the same name may race, and the
  // first to finish wins, which is harmless for immutable data.
  if (!vocab) vocab = std::make_shared<const Vocab>(load_vocab(spec->vocab));
  auto enc = std::make_shared<const Encoding>(std::string(spec->name), spec->pattern, vocab, spec->specials);
  lock.lock();
  vocabs.emplace(spec->vocab, std::move(vocab));
  return cache.emplace(std::string(name), std::move(enc)).first->second;
}

namespace {
// The registry's encodings once loaded, by their index in specs() (of which there are
// kNamedSlots or fewer; an encoding past them is found through get_encoding). Constant-initialized:
// nothing to make at load, nothing a fork could copy half made.
constexpr size_t kNamedSlots = 4;
std::atomic<const Encoding*> named_encodings[kNamedSlots];
}  // namespace

const Encoding& encoding_named(std::string_view name) {
  const std::vector<Spec>& all = specs();
  for (size_t i = 0; i < all.size() && i < kNamedSlots; ++i) {
    if (name != all[i].name) continue;
    if (const Encoding* e = named_encodings[i].load(std::memory_order_acquire)) return *e;
    const Encoding* e = get_encoding(name).get();  // the registry keeps it for the process
    named_encodings[i].store(e, std::memory_order_release);
    return *e;
  }
  return *get_encoding(name);
}

std::shared_ptr<const Encoding> make_encoding(std::string name, std::string_view pat_str,
                                              std::span<const std::pair<std::string, uint32_t>> ranks,
                                              std::vector<SpecialToken> specials) {
  const std::optional<SplitPattern> pattern = pattern_from_regex(pat_str);
  if (!pattern) {
    throw InvalidArgument(
        "unsupported pat_str for encoding '" + name +
        "': orroute pre-tokenizes with hand-written scanners for tiktoken's split patterns of "
        "cl100k_base, o200k_base (also o200k_harmony) and r50k_base (also gpt2, p50k_base, "
        "p50k_edit); pass one of those pattern strings exactly");
  }
  return std::make_shared<const Encoding>(std::move(name), *pattern,
                                          std::make_shared<const Vocab>(Vocab::from_ranks(ranks)),
                                          std::move(specials));
}

}  // namespace orroute
