// The tokenizer's C++ core without Python: MB of text per CPU-second over a corpus of distinct
// documents (NUL-separated UTF-8, as bench/tokenizer_core.py writes it), split into PARTS
// consecutive parts; each part is fresh text to this process, so caches only help as far as words
// repeat across documents. Prints one line per part. bench/tokenizer_core.py runs two builds of
// this side by side and prints their same-run ratio.
//
//   orroute_tokenizer_core CORPUS ENCODING MODE [PARTS]
//
// MODE: count | encode (one call per document) | pretok (pre-tokenizer only) | batch1 | batch2
// (count_batch over runs of 800 documents on 1 or 2 threads) | flat2 (encode_batch_flat, 2 threads)
// | chat (each document as one user message, counted as the engine's plan() counts a request:
// count_chat_tokens for openai/gpt-4o or, with cl100k_base, openai/gpt-4; meant for short texts)
//
// To measure a core from before encode_batch_flat, compile this file against it with
// -DORROUTE_NO_FLAT_BATCH (flat2 is then refused).
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/tokenizer/encoding.h"
#include "orroute/tokenizer/token_count.h"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

size_t run(const orroute::Encoding& enc, const std::string& mode,
           std::span<const std::string_view> docs) {
  size_t n = 0;
  constexpr size_t kBatch = 800;
  auto batches = [&](auto&& fn) {
    for (size_t k = 0; k < docs.size(); k += kBatch) {
      fn(docs.subspan(k, std::min(kBatch, docs.size() - k)));
    }
  };
  if (mode == "count") {
    for (const std::string_view d : docs) n += enc.count_ordinary(d);
  } else if (mode == "encode") {
    for (const std::string_view d : docs) n += enc.encode_ordinary(d).size();
  } else if (mode == "pretok") {
    for (const std::string_view d : docs) {
      orroute::split_pieces(enc.pattern(), d, [&](std::string_view) { ++n; });
    }
  } else if (mode == "batch1" || mode == "batch2") {
    const unsigned threads = mode == "batch1" ? 1 : 2;
    batches([&](std::span<const std::string_view> b) {
      for (const size_t c : enc.count_batch(b, {}, threads)) n += c;
    });
  } else if (mode == "chat") {
    const char* model = enc.name() == "cl100k_base" ? "openai/gpt-4" : "openai/gpt-4o";
    std::vector<orroute::ChatMessage> chat(1);
    chat[0].role = "user";
    chat[0].content.resize(1);
    for (const std::string_view d : docs) {
      chat[0].content[0].text.assign(d);  // outside the count, as plan() has it parsed already
      n += static_cast<size_t>(orroute::count_chat_tokens(model, chat).tokens);
    }
#ifndef ORROUTE_NO_FLAT_BATCH
  } else if (mode == "flat2") {
    batches([&](std::span<const std::string_view> b) {
      n += enc.encode_batch_flat(b, {}, 2).tokens.size();
    });
#endif
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    std::exit(2);
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CORPUS ENCODING MODE [PARTS]\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1], std::ios::binary);
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string all = buffer.str();
  std::vector<std::string_view> docs;
  for (size_t p = 0; p < all.size();) {
    size_t e = all.find('\0', p);
    if (e == std::string::npos) e = all.size();
    docs.emplace_back(all.data() + p, e - p);
    p = e + 1;
  }
  const auto enc = orroute::get_encoding(argv[2]);
  const std::string mode = argv[3];
  const size_t parts = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 3;
  for (size_t k = 0; k < parts && !docs.empty(); ++k) {
    const std::span<const std::string_view> part(docs.data() + k * docs.size() / parts,
                                                 (k + 1) * docs.size() / parts - k * docs.size() / parts);
    double bytes = 0;
    for (const std::string_view d : part) bytes += static_cast<double>(d.size());
    const double start = cpu_seconds();
    const size_t n = run(*enc, mode, part);
    const double cpu = cpu_seconds() - start;
    std::printf("%s %s part %zu: %zu tokens, %.1f MB/CPU-s, %.1f ns per text\n", argv[2],
                mode.c_str(), k, n, bytes / 1e6 / cpu, cpu * 1e9 / static_cast<double>(part.size()));
  }
  return 0;
}
