// Build-time tool: converts a tiktoken vocabulary file into orroute's compact binary form (token
// bytes + precomputed merge pairs), which loads in a few milliseconds.
// Usage: orroute_vocab_compile <in.tiktoken> <out.bin>
#include <cstdio>
#include <exception>

#include "orroute/tokenizer/vocab.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <in.tiktoken> <out.bin>\n", argv[0]);
    return 2;
  }
  try {
    orroute::Vocab::from_tiktoken_file(argv[1]).save_binary_file(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
