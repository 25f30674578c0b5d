// Tokenizer core: pre-tokenizer scanner, BPE merges (small and heap paths), vocabulary forms,
// special tokens, decoding and model-aware counting. Exact parity with tiktoken on a large corpus
// is checked by tests/py/test_tokenizer_parity.py.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "orroute/error.h"
#include "orroute/tokenizer/bpe.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/pretokenizer.h"
#include "orroute/tokenizer/token_count.h"
#include "orroute/tokenizer/unicode_tables.h"

namespace {

using orroute::SplitPattern;
using Pieces = std::vector<std::string>;

Pieces split(SplitPattern p, std::string_view text) {
  Pieces out;
  orroute::split_pieces(p, text, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

const std::string kVocabDir = ORROUTE_SOURCE_DIR "/python/orroute/data";

// tiktoken's merge loop, verbatim in spirit: scan all pairs for the lowest rank each step.
std::vector<uint32_t> reference_bpe(const orroute::Vocab& v, std::string_view piece) {
  if (const uint32_t whole = v.find(piece); whole != orroute::Vocab::kNone) return {whole};
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    uint32_t best = orroute::Vocab::kNone;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const uint32_t r = v.find(parts[i] + parts[i + 1]);
      if (r < best) {
        best = r;
        at = i;
      }
    }
    if (best == orroute::Vocab::kNone) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  std::vector<uint32_t> ids;
  for (const std::string& p : parts) ids.push_back(v.find(p));
  return ids;
}

}  // namespace

TEST_CASE("unicode tables classify letters, marks, numbers and white space", "[tokenizer]") {
  using namespace orroute::unicode;
  CHECK(char_class('a') == kLower);
  CHECK(char_class('Z') == kUpper);
  CHECK(char_class(0x01C5) == kTitle);     // ǅ
  CHECK(char_class(0x02B0) == kModifier);  // ʰ
  CHECK(char_class(0x4E2D) == kOtherLetter);
  CHECK(char_class(0x0301) == kMark);
  CHECK(char_class(0x0663) == kNumber);  // Arabic-Indic three
  CHECK(char_class(0x2167) == kNumber);  // Roman numeral eight (Nl)
  CHECK(char_class(0x3000) == kSpace);
  CHECK(char_class(0x0085) == kSpace);
  CHECK(char_class(0x001C) == kOther);  // not White_Space, though Python's isspace says so
  CHECK(char_class(0x1F600) == kOther);
  CHECK(char_class(0x10FFFF) == kOther);
}

TEST_CASE("cl100k scanner splits like its regex", "[tokenizer]") {
  const auto p = SplitPattern::kCl100k;
  CHECK(split(p, "I'm here, they'RE  12345 ok!!\n\n  x  ") ==
        Pieces{"I", "'m", " here", ",", " they", "'RE", " ", " ", "123", "45", " ok", "!!\n\n", " ",
               " x", "  "});
  CHECK(split(p, "HelloWorld HTTPServer don't") == Pieces{"HelloWorld", " HTTPServer", " don", "'t"});
  CHECK(split(p, "a\r\n\r\nb  \n") == Pieces{"a", "\r\n\r\n", "b", "  \n"});
  CHECK(split(p, "path/to//x\n") == Pieces{"path", "/to", "//", "x", "\n"});
  CHECK(split(p, "x'\xC5\xBF") == Pieces{"x", "'\xC5\xBF"});  // 's matches long s under (?i)
  CHECK(split(p, "  ") == Pieces{"  "});
}

TEST_CASE("o200k scanner splits words by case and keeps contractions", "[tokenizer]") {
  const auto p = SplitPattern::kO200k;
  CHECK(split(p, "I'm here, they'RE  12345 ok!!\n\n  x  ") ==
        Pieces{"I'm", " here", ",", " they'RE", " ", " ", "123", "45", " ok", "!!\n\n", " ", " x", "  "});
  CHECK(split(p, "HelloWorld HTTPServer don't") == Pieces{"Hello", "World", " HTTPServer", " don't"});
  CHECK(split(p, "path/to//x\n") == Pieces{"path", "/to", "//", "x", "\n"});
  CHECK(split(p, "\n  \n ") == Pieces{"\n  \n", " "});
}

TEST_CASE("r50k scanner splits like GPT-2's regex", "[tokenizer]") {
  const auto p = SplitPattern::kR50k;
  CHECK(split(p, "I'm here, they'RE  12345 ok!!\n\n  x  ") ==
        Pieces{"I", "'m", " here", ",", " they", "'", "RE", " ", " 12345", " ok", "!!", "\n\n ", " x",
               "  "});
  CHECK(split(p, "HelloWorld don't\n") == Pieces{"HelloWorld", " don", "'t", "\n"});
  CHECK(split(p, "a  b") == Pieces{"a", " ", " b"});
}

TEST_CASE("split patterns are recognised by tiktoken's regex strings", "[tokenizer]") {
  for (SplitPattern p : {SplitPattern::kCl100k, SplitPattern::kO200k, SplitPattern::kR50k}) {
    CHECK(orroute::pattern_from_regex(orroute::pattern_regex(p)) == p);
  }
  CHECK(orroute::pattern_from_regex(
            R"('s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}]+| ?[\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)") ==
        SplitPattern::kR50k);
  CHECK_FALSE(orroute::pattern_from_regex(R"(\w+)").has_value());
  const std::vector<std::pair<std::string, uint32_t>> ranks = {{"a", 0}};
  CHECK_THROWS_AS(orroute::make_encoding("x", R"(\w+)", ranks, {}), orroute::InvalidArgument);
}

TEST_CASE("vocabularies from ranks check their ranks", "[tokenizer]") {
  std::vector<std::pair<std::string, uint32_t>> ranks;
  for (int b = 0; b < 256; ++b) ranks.emplace_back(std::string(1, static_cast<char>(b)), b);
  ranks.emplace_back("ab", 256);
  const orroute::Vocab v = orroute::Vocab::from_ranks(ranks);
  CHECK(v.find("ab") == 256);
  CHECK(v.merge(v.byte_token('a'), v.byte_token('b')) == 256);
  auto gap = ranks;
  gap.back().second = 300;
  CHECK_THROWS_AS(orroute::Vocab::from_ranks(gap), orroute::ParseError);
  auto dup_rank = ranks;
  dup_rank.back().second = 5;
  CHECK_THROWS_AS(orroute::Vocab::from_ranks(dup_rank), orroute::ParseError);
  auto dup_bytes = ranks;
  dup_bytes.back().first = "a";
  CHECK_THROWS_AS(orroute::Vocab::from_ranks(dup_bytes), orroute::ParseError);
  CHECK_THROWS_AS(orroute::parse_tiktoken_ranks("YQ== 0\nnot base64 1\n", "f"), orroute::ParseError);
  CHECK(orroute::parse_tiktoken_ranks("YQ== 0\r\n\nYg== 1", "f") ==
        std::vector<std::pair<std::string, uint32_t>>{{"a", 0}, {"b", 1}});
}

TEST_CASE("the piece cache gives exactly what BPE gives", "[tokenizer]") {
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const auto enc = orroute::get_encoding(name);
    orroute::CachedBpe cached(enc->vocab());
    std::mt19937 rng(7);
    const std::string alphabet = "aeiou tnrsl'.\xC3\xA9\xE4\xB8\xAD";
    for (int round = 0; round < 20000; ++round) {
      std::string piece(1 + rng() % 20, ' ');
      for (char& c : piece) c = alphabet[rng() % alphabet.size()];
      std::vector<uint32_t> want, got;
      orroute::bpe_encode(enc->vocab(), piece, want);
      cached.encode(piece, got);  // the second time a piece repeats, this is a hit
      REQUIRE(got == want);
      REQUIRE(cached.count(piece) == want.size());
    }
  }
}

TEST_CASE("a piece's cache key is the same whether or not bytes after it may be read",
          "[tokenizer]") {
  // The encoder reads 16 bytes from a piece's start and masks them to its length where the text
  // has them (CachedBpe::ref with the text's end), else it loads only the piece's own bytes.
  const auto enc = orroute::get_encoding("o200k_base");
  const orroute::CachedBpe cached(enc->vocab());
  std::mt19937 rng(11);
  for (int round = 0; round < 20000; ++round) {
    std::string buffer(64, ' ');
    for (char& c : buffer) c = static_cast<char>(rng());
    const size_t len = 1 + rng() % 20;
    const size_t at = rng() % (buffer.size() - len + 1);
    const std::string_view piece(buffer.data() + at, len);
    const auto whole = cached.ref(piece, buffer.data() + buffer.size());
    const auto own = cached.ref(piece);
    INFO("length " << len << " at " << at);
    REQUIRE(whole.len == own.len);
    if (len > orroute::CachedBpe::kMaxPiece) {  // never cached: the key is not used
      REQUIRE(own.len == orroute::CachedBpe::kUncached);
      continue;
    }
    REQUIRE(own.len == len);
    REQUIRE(whole.k0 == own.k0);
    REQUIRE(whole.k1 == own.k1);
    REQUIRE(whole.slot == own.slot);
  }
}

TEST_CASE("a block of pieces, hits and misses interleaved, encodes as BPE piece by piece",
          "[tokenizer]") {
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const auto enc = orroute::get_encoding(name);
    orroute::CachedBpe cached(enc->vocab());
    std::mt19937 rng(5);
    const std::string alphabet = "aeiou tnrsl'.\xC3\xA9\xE4\xB8\xAD";
    for (int round = 0; round < 3000; ++round) {
      // Pieces cut from one text, lengths 1..20 (past the cache's 16), from a small alphabet so
      // that many repeat (hits) among first sightings (misses that merge and are remembered).
      std::string text;
      std::vector<size_t> ends;
      const size_t m = 1 + rng() % orroute::CachedBpe::kMaxBlock;
      for (size_t i = 0; i < m; ++i) {
        const size_t len = 1 + rng() % 20;
        for (size_t k = 0; k < len; ++k) text += alphabet[rng() % (round % 2 ? 4 : alphabet.size())];
        ends.push_back(text.size());
      }
      std::vector<std::string_view> pieces;
      std::vector<orroute::CachedBpe::Ref> refs;
      std::vector<uint32_t> want = {7};  // tokens already there stay
      for (size_t i = 0, from = 0; i < m; from = ends[i++]) {
        pieces.emplace_back(text.data() + from, ends[i] - from);
        refs.push_back(cached.ref(pieces.back(), text.data() + text.size()));
        orroute::bpe_encode(enc->vocab(), pieces.back(), want);
      }
      std::vector<uint32_t> got = {7};
      const size_t last = cached.encode_block(pieces.data(), refs.data(), m, got);
      REQUIRE(got == want);
      std::vector<uint32_t> last_piece;
      orroute::bpe_encode(enc->vocab(), pieces.back(), last_piece);
      REQUIRE(last == last_piece.size());
    }
  }
}

TEST_CASE("the 8..16-byte token table finds exactly what find does", "[tokenizer]") {
  auto key = [](std::string_view s, uint64_t& k0, uint64_t& k1) {
    k0 = k1 = 0;
    std::memcpy(&k0, s.data(), 8);
    std::memcpy(&k1, s.data() + 8, s.size() - 8);
  };
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const orroute::Vocab& v = orroute::get_encoding(name)->vocab();
    size_t mid = 0;
    uint64_t k0, k1;
    for (uint32_t id = 0; id < v.size(); ++id) {
      const std::string_view t = v.token_bytes(id);
      if (t.size() < orroute::Vocab::kMidMin || t.size() > orroute::Vocab::kMidMax) continue;
      ++mid;
      key(t, k0, k1);
      REQUIRE(v.find_mid(k0, k1, static_cast<uint32_t>(t.size())) == id);
      // The same bytes one longer or shorter (zero padding must not make a match) are not it.
      if (t.size() < orroute::Vocab::kMidMax) {
        REQUIRE(v.find_mid(k0, k1, static_cast<uint32_t>(t.size() + 1)) ==
                v.find(std::string(t) + '\0'));
      }
    }
    CHECK(mid > 20000);
    std::mt19937 rng(5);
    const std::string alphabet = "etaoin shrdlu.,\n\0\xC3\xA9";
    for (int round = 0; round < 100000; ++round) {
      std::string s(orroute::Vocab::kMidMin + rng() % 9, ' ');
      for (char& c : s) c = alphabet[rng() % alphabet.size()];
      key(s, k0, k1);
      REQUIRE(v.find_mid(k0, k1, static_cast<uint32_t>(s.size())) == v.find(s));
    }
  }
}

TEST_CASE("a lookup by the cache's key finds exactly what find does, 2..16 bytes", "[tokenizer]") {
  auto key = [](std::string_view s, uint64_t& k0, uint64_t& k1) {
    k0 = k1 = 0;
    std::memcpy(&k0, s.data(), std::min<size_t>(s.size(), 8));
    if (s.size() > 8) std::memcpy(&k1, s.data() + 8, s.size() - 8);
  };
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const orroute::Vocab& v = orroute::get_encoding(name)->vocab();
    uint64_t k0, k1;
    for (uint32_t id = 0; id < v.size(); ++id) {
      const std::string_view t = v.token_bytes(id);
      if (t.size() < 2 || t.size() > orroute::Vocab::kMidMax) continue;
      key(t, k0, k1);
      REQUIRE(v.find_key(k0, k1, static_cast<uint32_t>(t.size())) == id);
      // One byte longer with a zero byte (what the zero padding looks like) is another string.
      if (t.size() < orroute::Vocab::kMidMax) {
        REQUIRE(v.find_key(k0, k1, static_cast<uint32_t>(t.size() + 1)) ==
                v.find(std::string(t) + '\0'));
      }
    }
    std::mt19937 rng(9);
    static constexpr char kAlphabet[] = "etaoin shrdlu.,\n\0\xC3\xA9";  // NUL included
    const std::string alphabet(kAlphabet, sizeof kAlphabet - 1);
    for (int round = 0; round < 100000; ++round) {
      std::string s(2 + rng() % 15, ' ');
      for (char& c : s) c = alphabet[rng() % alphabet.size()];
      key(s, k0, k1);
      REQUIRE(v.find_key(k0, k1, static_cast<uint32_t>(s.size())) == v.find(s));
    }
  }
}

TEST_CASE("tiktoken's byte encoding, offsets and single tokens", "[tokenizer]") {
  const auto enc = orroute::get_encoding("cl100k_base");
  CHECK(enc->encode_bytes(" \xec\x8b\xa4\xed") == std::vector<uint32_t>{62085});
  for (size_t n = 0; n < 10; ++n) {
    const std::string bytes(n, '\x80');
    CHECK(enc->decode_bytes(enc->encode_bytes(bytes)) == bytes);
  }
  const auto [text, offsets] = enc->decode_with_offsets(enc->encode_ordinary("hello world"));
  CHECK(text == "hello world");
  CHECK(offsets == std::vector<size_t>{0, 5});
  CHECK(enc->encode_single_token("hello") == 15339u);
  CHECK(enc->encode_single_token("<|endoftext|>") == 100257u);
  CHECK_FALSE(enc->encode_single_token("hello world").has_value());
  CHECK(enc->is_special_token(100257));
  CHECK_FALSE(enc->is_special_token(15339));
  const auto values = enc->token_byte_values();
  CHECK(values.size() == enc->vocab().size());
  CHECK(std::is_sorted(values.begin(), values.end()));
  const auto harmony = orroute::get_encoding("o200k_harmony");
  CHECK(harmony->n_vocab() == 201088);
  CHECK(harmony->special_tokens().size() == 1091);
  CHECK(&harmony->vocab() == &orroute::get_encoding("o200k_base")->vocab());  // shared
  CHECK(harmony->token_bytes(200018) == "<|endofprompt|>");  // first listed text of a shared id
}

TEST_CASE("scanner covers every byte of arbitrary input", "[tokenizer]") {
  std::mt19937 rng(42);
  for (SplitPattern p : {SplitPattern::kCl100k, SplitPattern::kO200k, SplitPattern::kR50k}) {
    for (int round = 0; round < 200; ++round) {
      std::string text(rng() % 64, '\0');
      for (char& c : text) c = static_cast<char>(rng());
      std::string joined;
      for (const std::string& piece : split(p, text)) {
        REQUIRE_FALSE(piece.empty());
        joined += piece;
      }
      REQUIRE(joined == text);
    }
  }
}

namespace {
// Piece ends of `text` by the general scanner alone (next_piece_end, one piece per call).
std::vector<size_t> reference_ends(SplitPattern p, std::string_view text) {
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < text.size();) ends.push_back(pos = orroute::next_piece_end(p, text, pos));
  return ends;
}

// Piece ends of `text` by the PieceScanner (bit-parallel windows, per-piece bitmaps, general
// scanner), in blocks of `block` pieces.
std::vector<size_t> scanner_ends(SplitPattern p, std::string_view text,
                                 orroute::ByteClassifier c, size_t block = 16) {
  std::vector<size_t> ends;
  orroute::PieceScanner scanner(p, text, 0, c);
  std::vector<size_t> buf(block);
  for (size_t m; (m = scanner.next(buf.data(), block)) > 0;) {
    ends.insert(ends.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(m));
  }
  return ends;
}

// Every way the scanner can cut `text` matches the general scanner: both patterns, both byte
// classifiers, blocks of 1 and 16 pieces and of the encoder's block (CachedBpe::kMaxBlock).
void check_scanner_agrees(std::string_view text) {
  for (SplitPattern p : {SplitPattern::kCl100k, SplitPattern::kO200k}) {
    const std::vector<size_t> expected = reference_ends(p, text);
    for (auto c : {orroute::ByteClassifier::kBest, orroute::ByteClassifier::kScalar}) {
      for (size_t block : {size_t{1}, size_t{16}, orroute::CachedBpe::kMaxBlock}) {
        INFO("pattern " << static_cast<int>(p) << " block " << block << " text [" << text << "]");
        REQUIRE(scanner_ends(p, text, c, block) == expected);
      }
    }
  }
}
}  // namespace

TEST_CASE("the byte classifiers agree on every byte at every position", "[tokenizer]") {
  for (size_t pos = 0; pos < 64; ++pos) {
    for (int b = 0; b < 256; ++b) {
      std::string text(130, 'a');
      text[pos] = static_cast<char>(b);
      text[127 - pos] = static_cast<char>(255 - b);
      for (size_t start : {size_t{0}, size_t{1}, size_t{70}, size_t{100}}) {
        const auto simd = orroute::classify_window(text, start, orroute::ByteClassifier::kBest);
        const auto scalar = orroute::classify_window(text, start, orroute::ByteClassifier::kScalar);
        INFO("byte " << b << " at " << pos << " window at " << start);
        REQUIRE(simd == scalar);
      }
    }
  }
  // A short tail: bytes past the text are in no class.
  const auto w = orroute::classify_window("ab 1\xC3\xA9", 0, orroute::ByteClassifier::kBest);
  CHECK(w.lim == 6);
  CHECK(w.at_end);
  CHECK(w.lower == 0b11);
  CHECK(w.nonascii == 0b110000);
  CHECK(w.other == 0);
}

TEST_CASE("the piece scanner splits as the general scanner at window edges", "[tokenizer]") {
  // Each feature put at every offset around the 64-byte windows (63/64/65 and on), after ASCII
  // words, so the windows' cuts fall before, inside and after it.
  const std::vector<std::string> features = {
      "        ",          "   \n  ",         "\n\n\n",       " \t \t x",     "1234567890123",
      "12 345 6789",       "don't",           "DON'T'S",      "they're'll",   "it's's",
      "x'",                "x'l",             "'ll",          " 're",         "!!\n\n/ab",
      "!\n/",              ".\n\n  b",        "a/\n/\nb",     " .a..b",       "HTTPServer",
      "helloWORLDHello",   "\xC3\xA9t\xC3\xA9", "a\xC2\xA0 b", "x\xE3\x80\x80y", "\xD9\xA3\xD9\xA4" "12",
      "end'\xC5\xBF",      "\t.",             " 1",           "\x1c\x1d x",   "\r\n\r\n ",
  };
  for (const std::string& f : features) {
    for (size_t pad = 0; pad < 140; ++pad) {
      std::string text;
      while (text.size() < pad) text += text.size() % 7 == 6 ? ' ' : 'w';
      text.resize(pad);
      check_scanner_agrees(text + f);
      check_scanner_agrees(text + f + " tail words here");
      check_scanner_agrees(text + f + f + f);
    }
  }
}

TEST_CASE("the piece scanner splits random ASCII and mixed text as the general scanner",
          "[tokenizer]") {
  const std::vector<std::string> parts = {
      "a",  "Z",  "'",   "s",  "S",   "t",   "re",   "RE",   "ll", "lL", "ve", "m",  "d",
      " ",  "  ", "   ", "\n", "\r",  "\r\n", "\t",  "\x0b", "\x0c", "1", "12", "123", "4567",
      "/",  "./", "\n/", ".",  "!",   "?!",  "A",    "Hello", "WORLD", "\x1c", "\x7f", "'s",
      "'T", " '", "-",   "\xC3\xA9", "\xC2\xA0", "\xE3\x80\x80", "\xD9\xA3", "\xC5\xBF", "\x80",
  };
  const auto n_ascii = static_cast<size_t>(
      std::find_if(parts.begin(), parts.end(),
                   [](const std::string& s) { return static_cast<unsigned char>(s[0]) >= 0x80; }) -
      parts.begin());
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const bool ascii_only = round % 2 == 0;
    const size_t n = rng() % 150;
    for (size_t i = 0; i < n; ++i) {
      text += parts[rng() % (ascii_only ? n_ascii : parts.size())];
    }
    check_scanner_agrees(text);
  }
}

TEST_CASE("short texts encode and count as the general scanner's pieces merged one by one",
          "[tokenizer]") {
  // One ASCII word (upper-case letters, then lower-case ones, up to 16 bytes) skips the scanner;
  // its neighbours (the other case order, a digit, a space, non-ASCII, 17 bytes) do not.
  auto general = [](const orroute::Encoding& enc, std::string_view text) {
    std::vector<uint32_t> tokens;
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = orroute::next_piece_end(enc.pattern(), text, pos);
      orroute::bpe_encode(enc.vocab(), text.substr(pos, end - pos), tokens);
      pos = end;
    }
    return tokens;
  };
  const auto o200k = orroute::get_encoding("o200k_base");
  const auto cl100k = orroute::get_encoding("cl100k_base");
  std::vector<std::pair<std::string, uint32_t>> ranks;
  for (uint32_t id = 0; id < cl100k->vocab().size(); ++id) {
    ranks.emplace_back(std::string(cl100k->vocab().token_bytes(id)), id);
  }
  const auto r50k = orroute::make_encoding("r50k over cl100k", orroute::pattern_regex(SplitPattern::kR50k),
                                           ranks, {});
  std::mt19937 rng(3);
  // Neighbours a wrong fast path would merge as one piece, where that differs from the pieces
  // ("Hi  there", "x1234567"; BPE rarely merges across a case change).
  const std::vector<std::string> tails = {"", "", "", "1234567", "  x", " ", "'s", "\xC3\xA9", "\n", "."};
  for (const auto* enc : {o200k.get(), cl100k.get(), r50k.get()}) {
    for (int round = 0; round < 20000; ++round) {
      std::string text;
      const size_t upper = rng() % 4 == 0 ? rng() % 18 : rng() % 3;
      const size_t lower = rng() % 18;
      for (size_t i = 0; i < upper; ++i) text += static_cast<char>('A' + rng() % 26);
      for (size_t i = 0; i < lower; ++i) text += static_cast<char>('a' + rng() % 26);
      if (rng() % 3 == 0) {  // lower-case before upper-case: two pieces for o200k
        std::string flipped;
        for (size_t i = 0; i < 1 + rng() % 3; ++i) flipped += static_cast<char>('a' + rng() % 26);
        text = flipped + text;
      }
      text += tails[rng() % tails.size()];
      const std::vector<uint32_t> want = general(*enc, text);
      INFO(enc->name() << " text '" << text << "'");
      for (int twice = 0; twice < 2; ++twice) {  // a miss, then a hit of the piece cache
        REQUIRE(enc->encode_ordinary(text) == want);
        REQUIRE(enc->count_ordinary(text) == want.size());
      }
    }
  }
}

TEST_CASE("BPE merges match tiktoken's algorithm on short and long pieces", "[tokenizer]") {
  const auto enc = orroute::get_encoding("cl100k_base");
  const orroute::Vocab& v = enc->vocab();
  std::mt19937 rng(7);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789+/=  ";
  for (size_t len : {2, 5, 17, 63, 64, 65, 100, 300}) {
    for (int round = 0; round < 20; ++round) {
      std::string piece(len, 'a');
      for (char& c : piece) c = alphabet[rng() % alphabet.size()];
      std::vector<uint32_t> got;
      orroute::bpe_encode(v, piece, got);
      REQUIRE(got == reference_bpe(v, piece));
      REQUIRE(orroute::bpe_count(v, piece) == got.size());
    }
  }
  SECTION("runs of one character (ties merge leftmost first)") {
    for (size_t len : {3, 64, 65, 129, 1000}) {
      const std::string piece(len, 'a');
      std::vector<uint32_t> got;
      orroute::bpe_encode(v, piece, got);
      REQUIRE(got == reference_bpe(v, piece));
    }
  }
}

TEST_CASE("the byte-pair table answers as the merge table", "[tokenizer]") {
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const orroute::Vocab& v = orroute::get_encoding(name)->vocab();
    for (int a = 0; a < 256; ++a) {
      for (int b = 0; b < 256; ++b) {
        const auto ua = static_cast<uint8_t>(a), ub = static_cast<uint8_t>(b);
        REQUIRE(v.byte_merge(ua, ub) == v.merge(v.byte_token(ua), v.byte_token(ub)));
      }
    }
  }
}

TEST_CASE("merge answers every pair as the token of the two joined, past its pair filter",
          "[tokenizer]") {
  // merge(l, r) is the token whose bytes are l's then r's, if there is one: every split of every
  // token into two tokens is a merge pair, and the filter in front of the pair table must pass
  // each of them (a pair it drops would be answered "no merge").
  auto joined = [](const orroute::Vocab& v, uint32_t l, uint32_t r) {
    return v.find(std::string(v.token_bytes(l)) + std::string(v.token_bytes(r)));
  };
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const orroute::Vocab& v = orroute::get_encoding(name)->vocab();
    size_t pairs = 0;
    for (uint32_t id = 0; id < v.size(); ++id) {
      const std::string_view t = v.token_bytes(id);
      for (size_t k = 1; k < t.size(); ++k) {
        const uint32_t l = v.find(t.substr(0, k)), r = v.find(t.substr(k));
        if (l == orroute::Vocab::kNone || r == orroute::Vocab::kNone) continue;
        ++pairs;
        REQUIRE(v.merge(l, r) == id);
      }
    }
    CHECK(pairs > 100000);
    // Pairs that mostly do not merge (the filter's "no" answers), frequent tokens and any.
    std::mt19937 rng(11);
    for (int round = 0; round < 200000; ++round) {
      const uint32_t l = round % 2 ? rng() % 2048 : rng() % v.size();
      const uint32_t r = round % 3 ? rng() % 2048 : rng() % v.size();
      REQUIRE(v.merge(l, r) == joined(v, l, r));
    }
  }
  // A vocabulary with a handful of merges (the filter's smallest size).
  std::vector<std::pair<std::string, uint32_t>> ranks;
  for (int b = 0; b < 256; ++b) ranks.emplace_back(std::string(1, static_cast<char>(b)), b);
  for (const char* t : {"ab", "abc", "cd", "abcd"}) ranks.emplace_back(t, static_cast<uint32_t>(ranks.size()));
  const orroute::Vocab small = orroute::Vocab::from_ranks(ranks);
  for (uint32_t l = 0; l < small.size(); ++l) {
    for (uint32_t r = 0; r < small.size(); ++r) REQUIRE(small.merge(l, r) == joined(small, l, r));
  }
}

TEST_CASE("BPE of arbitrary bytes matches tiktoken's algorithm", "[tokenizer]") {
  // Bytes >= 0x80 (invalid UTF-8 included), as the byte-pair table and the small-piece merge see
  // them; every length around the small/large boundary.
  for (const char* name : {"cl100k_base", "o200k_base"}) {
    const orroute::Vocab& v = orroute::get_encoding(name)->vocab();
    std::mt19937 rng(11);
    for (size_t len : {2, 3, 7, 8, 16, 17, 63, 64, 65, 200}) {
      for (int round = 0; round < 30; ++round) {
        std::string piece(len, '\0');
        for (char& c : piece) c = static_cast<char>(rng() % 256);
        std::vector<uint32_t> got;
        orroute::bpe_encode(v, piece, got);
        REQUIRE(got == reference_bpe(v, piece));
      }
    }
  }
}

TEST_CASE("one-byte pieces through the cache give the byte's token", "[tokenizer]") {
  const auto enc = orroute::get_encoding("o200k_base");
  orroute::CachedBpe cached(enc->vocab());
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const std::string_view piece(&c, 1);
    std::vector<uint32_t> got;
    cached.encode(piece, got);
    REQUIRE(got == std::vector<uint32_t>{enc->vocab().byte_token(static_cast<uint8_t>(b))});
    REQUIRE(cached.count(piece) == 1);
  }
}

TEST_CASE("long pieces encode without quadratic blow-up", "[tokenizer]") {
  const auto enc = orroute::get_encoding("o200k_base");
  const std::string run(1 << 20, 'a');  // one megabyte, a single piece
  const std::vector<uint32_t> ids = enc->encode_ordinary(run);
  REQUIRE(enc->decode_bytes(ids) == run);
  std::string digits(1 << 20, '7');
  REQUIRE(enc->count_ordinary(digits) == (digits.size() + 2) / 3);
}

TEST_CASE("binary vocabulary round-trips the tiktoken file", "[tokenizer]") {
  const auto text = orroute::Vocab::from_tiktoken_file(kVocabDir + "/cl100k_base.tiktoken");
  const std::string path = (std::filesystem::temp_directory_path() / "orroute_test_cl100k.bin").string();
  text.save_binary_file(path);
  const auto bin = orroute::Vocab::from_binary_file(path);
  std::remove(path.c_str());
  REQUIRE(bin.size() == 100256);
  REQUIRE(bin.size() == text.size());
  for (uint32_t id = 0; id < text.size(); ++id) {
    REQUIRE(bin.token_bytes(id) == text.token_bytes(id));
    REQUIRE(bin.find(text.token_bytes(id)) == id);
  }
  CHECK(bin.merge(bin.find("hel"), bin.find("lo")) == bin.find("hello"));
  CHECK(bin.merge(bin.find("hello"), bin.find("qqqqzz")) == orroute::Vocab::kNone);
  CHECK_THROWS_AS(orroute::Vocab::from_binary_file(kVocabDir + "/cl100k_base.tiktoken"),
                  orroute::ParseError);
  CHECK_THROWS_AS(orroute::Vocab::from_tiktoken_file(kVocabDir + "/missing.tiktoken"),
                  orroute::NotFound);
}

TEST_CASE("special tokens follow tiktoken's rules", "[tokenizer]") {
  const auto enc = orroute::get_encoding("cl100k_base");
  const std::string text = "a<|endoftext|>b<|fim_prefix|>";
  SECTION("allowed specials become their ids") {
    const auto ids = enc->encode(text, {{"<|endoftext|>", "<|fim_prefix|>"}, {}});
    REQUIRE(ids == std::vector<uint32_t>{64, 100257, 65, 100258});
    REQUIRE(enc->count(text, {{"<|endoftext|>", "<|fim_prefix|>"}, {}}) == 4);
  }
  SECTION("disallowed special text is an error naming it") {
    try {
      (void)enc->encode(text, {{"<|endoftext|>"}, {"<|fim_prefix|>"}});
      FAIL("no error");
    } catch (const orroute::InvalidArgument& e) {
      REQUIRE(std::string(e.what()).rfind(
                  "Encountered text corresponding to disallowed special token '<|fim_prefix|>'.\n",
                  0) == 0);
    }
  }
  SECTION("\"all\" flags: every special allowed, or every one not allowed disallowed") {
    orroute::SpecialPolicy all;
    all.allow_all = true;
    all.disallow_others = true;
    REQUIRE(enc->encode(text, all) == std::vector<uint32_t>{64, 100257, 65, 100258});
    orroute::SpecialPolicy some;
    some.allowed = {"<|endoftext|>"};
    some.disallow_others = true;
    REQUIRE_THROWS_AS(enc->encode(text, some), orroute::InvalidArgument);
    some.allowed.push_back("<|fim_prefix|>");
    REQUIRE(enc->count(text, some) == 4);
  }
  SECTION("ordinary encoding ignores them") {
    REQUIRE(enc->encode_ordinary(text).size() > 4);
    REQUIRE(enc->decode_bytes(enc->encode_ordinary(text)) == text);
  }
  REQUIRE(enc->n_vocab() == 100277);
  REQUIRE(enc->eot_token() == 100257);
  REQUIRE_THROWS_AS(enc->decode_bytes(std::vector<uint32_t>{100261}), orroute::NotFound);
  REQUIRE_THROWS_AS(orroute::get_encoding("p50k_base"), orroute::NotFound);
}

TEST_CASE("batch encode and count agree with single calls", "[tokenizer]") {
  const auto enc = orroute::get_encoding("o200k_base");
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i) texts.push_back("text number " + std::to_string(i) + std::string(i, 'x'));
  const auto batch = enc->encode_batch(texts, {}, 4);
  const auto counts = enc->count_batch(texts, {}, 4);
  for (size_t i = 0; i < texts.size(); ++i) {
    REQUIRE(batch[i] == enc->encode_ordinary(texts[i]));
    REQUIRE(counts[i] == batch[i].size());
  }
  texts.emplace_back("<|endoftext|>");
  REQUIRE_THROWS_AS(enc->count_batch(texts, {{}, {"<|endoftext|>"}}, 4), orroute::InvalidArgument);
}

TEST_CASE("flat batch encode equals single calls across chunks and threads", "[tokenizer]") {
  const auto enc = orroute::get_encoding("cl100k_base");
  // Many short texts, empty ones and a few of 100 KB: several 64 KB chunks of different sizes.
  std::vector<std::string> owned;
  std::mt19937 rng(3);
  for (int i = 0; i < 400; ++i) {
    if (i % 97 == 5) {
      owned.push_back(std::string(100000, 'a' + i % 26) + " end");
    } else if (i % 13 == 0) {
      owned.emplace_back();
    } else {
      owned.push_back("doc " + std::to_string(i) + " \xC3\xA9t\xC3\xA9 " + std::string(rng() % 300, 'x'));
    }
  }
  const std::vector<std::string_view> texts(owned.begin(), owned.end());
  for (unsigned threads : {1u, 2u, 3u}) {
    const orroute::FlatTokens flat = enc->encode_batch_flat(texts, {}, threads);
    REQUIRE(flat.offsets.size() == texts.size() + 1);
    REQUIRE(flat.offsets.front() == 0);
    REQUIRE(flat.offsets.back() == flat.tokens.size());
    const std::vector<size_t> counts = enc->count_batch(texts, {}, threads);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::vector<uint32_t> want = enc->encode_ordinary(texts[i]);
      const std::vector<uint32_t> got(flat.tokens.begin() + static_cast<ptrdiff_t>(flat.offsets[i]),
                                      flat.tokens.begin() + static_cast<ptrdiff_t>(flat.offsets[i + 1]));
      REQUIRE(got == want);
      REQUIRE(counts[i] == want.size());
    }
  }
  REQUIRE(enc->encode_batch_flat(std::vector<std::string_view>{}, {}, 2).offsets ==
          std::vector<uint64_t>{0});
  owned.emplace_back("<|endoftext|>");
  const std::vector<std::string_view> with_special(owned.begin(), owned.end());
  orroute::SpecialPolicy disallow_all;
  disallow_all.disallow_others = true;
  REQUIRE_THROWS_AS(enc->encode_batch_flat(with_special, disallow_all, 2),
                    orroute::InvalidArgument);
  orroute::SpecialPolicy allow_all;
  allow_all.allow_all = true;
  const orroute::FlatTokens flat = enc->encode_batch_flat(with_special, allow_all, 2);
  REQUIRE(flat.tokens.back() == 100257);
}

TEST_CASE("batch calls from several threads at once share the helpers", "[tokenizer]") {
  // Helper threads are shared by every batch call: each call's work must come back whole and
  // right while others queue theirs, and a call that fails must not disturb the others.
  const auto enc = orroute::get_encoding("o200k_base");
  std::vector<std::string> owned;
  for (int i = 0; i < 300; ++i) owned.push_back("text " + std::to_string(i) + std::string(i * 7 % 900, 'q'));
  const std::vector<std::string_view> texts(owned.begin(), owned.end());
  std::vector<size_t> want;
  for (const std::string_view t : texts) want.push_back(enc->count_ordinary(t));
  std::vector<std::string> bad = owned;
  bad[150] += "<|endoftext|>";
  const std::vector<std::string_view> bad_texts(bad.begin(), bad.end());
  orroute::SpecialPolicy disallow_all;
  disallow_all.disallow_others = true;
  std::atomic<int> wrong{0}, unexpected{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 30; ++round) {
        try {
          if (c == 0) {
            (void)enc->count_batch(bad_texts, disallow_all, 2);
            ++unexpected;
          } else if (enc->count_batch(texts, {}, 1 + c % 3) != want) {
            ++wrong;
          }
        } catch (const orroute::InvalidArgument&) {
          if (c != 0) ++unexpected;
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  CHECK(wrong == 0);
  CHECK(unexpected == 0);
}

TEST_CASE("models map to encodings, exact or estimated", "[tokenizer]") {
  using orroute::tokenizer_for_model;
  CHECK(tokenizer_for_model("openai/gpt-4o-mini").encoding == "o200k_base");
  CHECK(tokenizer_for_model("openai/gpt-4o-mini").exact);
  CHECK(tokenizer_for_model("gpt-4").encoding == "cl100k_base");
  CHECK(tokenizer_for_model("o3-mini").encoding == "o200k_base");
  CHECK(tokenizer_for_model("openai/gpt-5").exact);
  CHECK(tokenizer_for_model("openai/gpt-3.5-turbo-0613").encoding == "cl100k_base");
  const auto claude = tokenizer_for_model("anthropic/claude-sonnet-4");
  CHECK(claude.family == "Claude");
  CHECK_FALSE(claude.exact);
  CHECK(claude.factor > 1.0);
  CHECK(tokenizer_for_model("Claude").family == "Claude");
  CHECK(tokenizer_for_model("google/gemini-2.5-pro").family == "Gemini");
  CHECK(tokenizer_for_model("meta-llama/llama-3.1-70b-instruct").family == "Llama3");
  CHECK(tokenizer_for_model("qwen/qwen3-235b-a22b:free").family == "Qwen3");
  CHECK(tokenizer_for_model("mistralai/mistral-large").family == "Mistral");
  CHECK(tokenizer_for_model("deepseek/deepseek-chat").family == "DeepSeek");
  CHECK(tokenizer_for_model("some/unknown-model").family == "Other");
}

TEST_CASE("text and chat token counts", "[tokenizer]") {
  const auto exact = orroute::count_text_tokens("gpt-4o", "hello world");
  CHECK(exact.tokens == 2);
  CHECK(exact.exact);
  const std::string long_text(1000, 'x');
  const auto base = orroute::count_text_tokens("gpt-4", long_text);
  const auto est = orroute::count_text_tokens("Claude", long_text);
  CHECK_FALSE(est.exact);
  CHECK(est.tokens > base.tokens);

  // 3 per message + role + content, + name + 1, + 3 reply priming.
  const auto chat = orroute::count_chat_tokens_json(
      "gpt-4o", R"([{"role":"system","content":"hello world"},{"role":"user","name":"bob","content":"hi"}])");
  const int64_t hello = 2, hi = 1, sys = 1, user = 1, bob = 1;
  CHECK(chat.tokens == (3 + sys + hello) + (3 + user + hi + bob + 1) + 3);

  const auto with_image = orroute::count_chat_tokens_json(
      "gpt-4o",
      R"([{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x","detail":"low"}}]}])");
  CHECK(with_image.tokens == (3 + user + hi + 85) + 3);
  CHECK(orroute::image_tokens("high", 1024, 1024) == 765);
  CHECK(orroute::image_tokens("auto", 2048, 4096) == 1105);

  const auto tools = orroute::count_chat_tokens_json(
      "gpt-4o", R"([{"role":"user","content":"hi"}])",
      R"([{"type":"function","function":{"name":"get_weather","description":"Weather.","parameters":{"type":"object","properties":{"city":{"type":"string","description":"City"}}}}}])");
  CHECK(tools.tokens > (3 + user + hi) + 3 + 12);
  CHECK_THROWS_AS(orroute::count_chat_tokens_json("gpt-4o", "{not json"), orroute::ParseError);
}

TEST_CASE("a reservation's count of a prompt leaves its images to the pricer, whatever size the caller claims",
          "[tokenizer]") {
  // a 1x1 claim: the estimate believes it; the reservation's count is the text alone, and the
  // pricer adds what the model may bill for the image (test_prompt_bounds.cpp)
  orroute::ChatMessage m;
  m.role = "user";
  orroute::ChatContentPart img;
  img.is_image = true;
  img.width = 1;
  img.height = 1;
  m.content.push_back(img);
  const std::vector<orroute::ChatMessage> msgs{m};
  const int64_t around = 3 + 1 + 3;  // the message's and the reply's priming, the role
  CHECK(orroute::count_chat_tokens("gpt-4o", msgs).tokens == around + 255);
  CHECK(orroute::count_chat_tokens("gpt-4o", msgs, {}, orroute::ImageCount::kPricedApart).tokens == around);
}

TEST_CASE("a message's role counts as its text does, whatever the role", "[tokenizer]") {
  // The usual roles are counted once per encoding and thread: the same figures as the text's.
  for (const char* model : {"openai/gpt-4o", "openai/gpt-4"}) {
    for (const char* role : {"user", "assistant", "system", "tool", "developer", "critic", "User", "",
                             "a role of several words"}) {
      orroute::ChatMessage m;
      m.role = role;
      m.content.push_back({false, "hi there", {}, 0, 0});
      const std::vector<orroute::ChatMessage> msgs{m, m};
      const int64_t want = 3 + 2 * (3 + orroute::count_text_tokens(model, role).tokens +
                                    orroute::count_text_tokens(model, "hi there").tokens);
      CHECK(orroute::count_chat_tokens(model, msgs).tokens == want);
      // and from another thread, whose figures are its own
      int64_t other = 0;
      std::thread([&] { other = orroute::count_chat_tokens(model, msgs).tokens; }).join();
      CHECK(other == want);
    }
  }
}

TEST_CASE("messages read from a parsed array count as their JSON text does", "[tokenizer]") {
  for (const char* messages :
       {R"([{"role":"system","content":"hello world"},{"role":"user","name":"bob","content":"hi"}])",
        R"([{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x","detail":"low","width":9}}]}])",
        R"([{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","content":7}])",
        "[]"}) {
    rapidjson::Document d;
    d.Parse(messages);
    REQUIRE_FALSE(d.HasParseError());
    for (const char* model : {"gpt-4o", "anthropic/claude-sonnet-4", "gpt-4"}) {
      CHECK(orroute::count_chat_tokens(model, orroute::chat_messages_of(d)).tokens ==
            orroute::count_chat_tokens_json(model, messages).tokens);
    }
  }
  rapidjson::Document not_array;
  not_array.Parse(R"({"role":"user"})");
  CHECK_THROWS_AS(orroute::chat_messages_of(not_array), orroute::ParseError);
}

TEST_CASE("a model's tokenizer stays its own when models are asked in turn, past the remembered bound",
          "[tokenizer]") {
  // Each thread remembers the models it resolved (and the last two it found): asked in turn, and
  // after the table starts over (more distinct ids than it keeps), each answer is the model's.
  std::thread([] {
    const std::string o200k = orroute::tokenizer_key("openai/gpt-4o");
    const std::string cl100k = orroute::tokenizer_key("openai/gpt-4");
    const std::string claude = orroute::tokenizer_key("anthropic/claude-sonnet-4");
    CHECK(o200k != cl100k);
    CHECK(claude != cl100k);
    for (int i = 0; i < 3000; ++i) {
      CHECK(orroute::tokenizer_key("openai/gpt-4o") == o200k);
      CHECK(orroute::tokenizer_key("openai/gpt-4") == cl100k);
      if (i % 3 == 0) CHECK(orroute::tokenizer_key("anthropic/claude-sonnet-4") == claude);
      (void)orroute::tokenizer_key("unknown/model-" + std::to_string(i));  // fills the table
      CHECK(orroute::tokenizer_for_model("openai/gpt-4").encoding == "cl100k_base");
      CHECK(orroute::tokenizer_for_model("openai/gpt-4o").encoding == "o200k_base");
    }
  }).join();
}
