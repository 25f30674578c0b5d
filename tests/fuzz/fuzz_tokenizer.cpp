// Fuzz harness for the tokenizer's parsers and encoders: the .tiktoken text parser and the
// rank-table builder (hostile vocabulary files), the binary vocabulary loader, the split-pattern
// recogniser, and encode / count / encode_bytes / decode_with_offsets / encode_with_unstable /
// encode_batch_flat / count_batch on arbitrary bytes under every encoding, with the invariants that must hold for any input (round
// trips, count == encode size, offsets within the text). Every orroute::Error is an expected
// outcome; anything else escaping, a crash, or an ASan/UBSan report is a bug.
//
// Built with the tests as build/dev/orroute_fuzz_tokenizer (ORROUTE_FUZZ_MAIN: random and
// mutated inputs, or the files given):
//   ORROUTE_VOCAB_DIR=python/orroute/data build/dev/orroute_fuzz_tokenizer 20000   # or: ... FILE...
// With clang, the same file is a libFuzzer target: build it and cpp/orroute/tokenizer/*.cpp with
// -fsanitize=fuzzer,address,undefined -Icpp, and run it with ORROUTE_VOCAB_DIR set as above.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/error.h"
#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/pretokenizer.h"
#include "orroute/tokenizer/vocab.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

// `with_unstable`: also check encode_with_unstable, whose completions can list every token that
// starts with the text's last piece (~50k vectors for a trailing space in o200k): under ASan that
// is most of a run's time, so each input checks it on one encoding only.
void check_encoding(const orroute::Encoding& enc, std::string_view text, bool with_unstable = true) {
  const std::vector<uint32_t> tokens = enc.encode_ordinary(text);
  if (enc.decode_bytes(tokens) != text) fail("decode(encode_ordinary(x)) != x");
  if (enc.count_ordinary(text) != tokens.size()) fail("count_ordinary != encode size");
  const std::vector<uint32_t> bytes_tokens = enc.encode_bytes(text);
  if (enc.decode_bytes(bytes_tokens) != text) fail("decode(encode_bytes(x)) != x");
  orroute::SpecialPolicy all;
  all.allow_all = true;
  const std::vector<uint32_t> with_specials = enc.encode(text, all);
  if (enc.decode_bytes(with_specials) != text) fail("decode(encode(x, all)) != x");
  if (enc.count(text, all) != with_specials.size()) fail("count != encode size");
  orroute::SpecialPolicy strict;
  strict.disallow_others = true;
  try {
    (void)enc.encode(text, strict);
  } catch (const orroute::InvalidArgument&) {  // special-token text present: expected
  }
  const auto [decoded, offsets] = enc.decode_with_offsets(with_specials);
  if (offsets.size() != with_specials.size()) fail("one offset per token");
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (offsets[i] > decoded.size() || (i > 0 && offsets[i] < offsets[i - 1])) {
      fail("offsets out of order or range");
    }
  }
  if (!text.empty()) (void)enc.encode_single_piece(text.substr(0, 64));
  if (with_unstable) {
    const auto [stable, completions] = enc.encode_with_unstable(text.substr(0, 48), all);
    if (enc.decode_bytes(stable) != text.substr(0, enc.decode_bytes(stable).size())) {
      fail("encode_with_unstable: stable tokens are not a prefix of the text");
    }
    for (const auto& seq : completions) {
      if (seq.empty()) fail("encode_with_unstable: empty completion");
    }
  }
  (void)enc.encode_single_token(text);
  // The batch paths: the text cut at every newline into texts, encoded flat and counted on two
  // threads, must give each text's own tokens (the cuts land anywhere in UTF-8 sequences too).
  std::vector<std::string_view> texts;
  for (size_t start = 0;;) {
    const size_t nl = text.find('\n', start);
    texts.push_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  const orroute::FlatTokens flat = enc.encode_batch_flat(texts, {}, 2);
  const std::vector<size_t> counts = enc.count_batch(texts, {}, 2);
  if (flat.offsets.size() != texts.size() + 1) fail("flat batch: one offset per text + 1");
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<uint32_t> one = enc.encode_ordinary(texts[i]);
    const auto first = flat.tokens.begin() + static_cast<ptrdiff_t>(flat.offsets[i]);
    if (flat.offsets[i + 1] - flat.offsets[i] != one.size() || counts[i] != one.size() ||
        !std::equal(one.begin(), one.end(), first)) {
      fail("flat batch / count_batch differ from single calls");
    }
  }
}

void fuzz_vocab(std::string_view data) {
  try {
    const auto ranks = orroute::parse_tiktoken_ranks(data, "fuzz");
    const orroute::Vocab vocab = orroute::Vocab::from_ranks(ranks);
    for (uint32_t id = 0; id < vocab.size(); ++id) {
      if (vocab.find(vocab.token_bytes(id)) != id) fail("vocab find(token_bytes(id)) != id");
    }
    const auto enc = orroute::make_encoding("fuzz", orroute::pattern_regex(orroute::SplitPattern::kR50k),
                                            ranks, {{"<|endoftext|>", vocab.size()}});
    check_encoding(*enc, data.substr(0, 256));
  } catch (const orroute::Error&) {  // malformed vocabulary: expected
  }
  (void)orroute::pattern_from_regex(data);
}

void fuzz_binary(std::string_view data) {
  char path[] = "/tmp/orroute-fuzz-vocab-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return;
  std::FILE* f = fdopen(fd, "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  try {
    (void)orroute::Vocab::from_binary_file(path);
  } catch (const orroute::Error&) {
  }
  std::remove(path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static const std::vector<std::shared_ptr<const orroute::Encoding>> encodings = [] {
    std::vector<std::shared_ptr<const orroute::Encoding>> out;
    for (const std::string& name : orroute::encoding_names()) out.push_back(orroute::get_encoding(name));
    return out;
  }();
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  if (data.empty()) return 0;
  switch (static_cast<uint8_t>(data[0]) % 4) {
    case 0:
      fuzz_vocab(data.substr(1));
      break;
    case 1:
      fuzz_binary(data.substr(1));
      break;
    default:
      for (size_t i = 0; i < encodings.size(); ++i) {
        check_encoding(*encodings[i], data.substr(1), i == size % encodings.size());
      }
  }
  return 0;
}

#ifdef ORROUTE_FUZZ_MAIN
#include <fstream>
#include <random>
#include <sstream>

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  long runs = 0;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    const long n = std::strtol(argv[i], &end, 10);
    if (end && *end == '\0') {
      runs = n;
      continue;
    }
    std::ifstream f(argv[i], std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    inputs.push_back(ss.str());
  }
  for (const std::string& in : inputs) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(in.data()), in.size());
  }
  // Random inputs built from fragments that reach the interesting paths, mutated byte-wise.
  const std::vector<std::string> pieces = {
      " the", "Hello", "HTTPServer", "'s", "'LL", "\xC5\xBF", "123456", "\xD9\xA3", " ", "   ",
      "\n", "\r\n", "\t", "\xC2\xA0", "\xE3\x80\x80", "<|endoftext|>", "<|fim_prefix|>", "<|",
      "\xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x98\x80", "\xCC\x81", "\xED\xA0\x80", "\xFF", "\x80",
      "\xC3", "aGVsbG8= 0\n", "IQ== 1\n", "AA== 2\n", "x== 3\n", "ORTKVB01", "!!!", "//", "$x"};
  std::mt19937_64 rng(12345);
  for (long r = 0; r < runs; ++r) {
    std::string in(1, static_cast<char>(rng() % 4));
    const size_t parts = rng() % 24;
    for (size_t k = 0; k < parts; ++k) {
      if (rng() % 3 == 0) {
        in += static_cast<char>(rng());
      } else {
        in += pieces[rng() % pieces.size()];
      }
    }
    if (rng() % 8 == 0) in += std::string(rng() % 3000, "a 1\n"[rng() % 4]);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(in.data()), in.size());
  }
  std::printf("fuzz_tokenizer: %zu files, %ld random inputs, no failure\n", inputs.size(), runs);
  return 0;
}
#endif
