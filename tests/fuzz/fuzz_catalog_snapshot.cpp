// Fuzz harness for the catalog snapshot reader (orroute/catalog/catalog_snapshot.h). The snapshot
// is a file on disk: whatever its bytes, reading it either gives a catalog or throws ParseError,
// never reads out of bounds or allocates out of proportion. The invariants: nothing but ParseError
// escapes; a catalog read from the bytes writes back to the same bytes (nothing is lost or made up).
//
// Standalone (build/dev/orroute_fuzz_catalog_snapshot [iterations] [seed]) it mutates the snapshot
// of tests/data/models_all_modalities.json at random; with -fsanitize=fuzzer -DORROUTE_LIBFUZZER it
// is a libFuzzer entry point.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "mutate.h"
#include "orroute/catalog/catalog_snapshot.h"
#include "orroute/error.h"

using namespace orroute;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "invariant broken: %s (input of %zu bytes)\n", what, input.size());
  std::abort();
}

void run_one(std::string_view input) {
  try {
    const ModelCatalog cat = read_catalog_snapshot(input);
    // The recorded JSON fingerprint is bytes 16..23; writing back with it gives the input again.
    uint64_t fingerprint = 0;
    std::memcpy(&fingerprint, input.data() + 16, sizeof fingerprint);
    if (write_catalog_snapshot(cat, fingerprint) != input) fail("read then written differs", input);
  } catch (const ParseError&) {
  }
}

// A length or count field turned huge.
[[maybe_unused]] void huge_field(std::string& s, size_t at, std::mt19937_64& rng) {
  const uint32_t big = 0xffffff00u | static_cast<uint32_t>(rng() & 0xff);
  if (at + sizeof big <= s.size()) std::memcpy(s.data() + at, &big, sizeof big);
}

}  // namespace

#ifdef ORROUTE_LIBFUZZER
ORROUTE_LIBFUZZER_ENTRY(run_one)
#else
int main(int argc, char** argv) {
  const auto args = orroute::fuzz::driver_args(argc, argv, 20'000, 20);
  std::mt19937_64 rng(args.seed);
  const std::string seed_bytes = write_catalog_snapshot(
      ModelCatalog::from_file(ORROUTE_SOURCE_DIR "/tests/data/models_all_modalities.json"), 42);
  run_one(seed_bytes);
  run_one("");
  for (long long i = 0; i < args.iterations; ++i) {
    run_one(orroute::fuzz::mutated(seed_bytes, rng, huge_field));
  }
  orroute::fuzz::report_clean("fuzz_catalog_snapshot", args);
  return 0;
}
#endif
