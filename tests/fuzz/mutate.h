// Byte-level mutations for the fuzz drivers' own main() (a libFuzzer build mutates by itself).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// The libFuzzer entry point of a driver whose one input is checked by `check(std::string_view)`.
#define ORROUTE_LIBFUZZER_ENTRY(check)                                    \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    check(std::string_view(reinterpret_cast<const char*>(data), size));   \
    return 0;                                                             \
  }

namespace orroute::fuzz {

// `seed` after 1-3 rounds of 1-4 edits each: a byte flipped, a run erased, a run of the input
// spliced in elsewhere, a cut. `domain(s, at, rng)`, when given, is one more kind of edit that
// knows the driver's format (a number swapped, a length field made huge).
template <class Domain>
std::string mutated(std::string s, std::mt19937_64& rng, Domain&& domain) {
  constexpr bool kHasDomain = !std::is_same_v<std::decay_t<Domain>, std::nullptr_t>;
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) {
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = rng() % s.size();
      switch (rng() % (kHasDomain ? 5 : 4)) {
        case 0: s[at] = static_cast<char>(rng() & 0xff); break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        case 2: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 16)); break;
        case 3: s.resize(at); break;
        default:
          if constexpr (kHasDomain) domain(s, at, rng);
          break;
      }
    }
  }
  return s;
}

inline std::string mutated(std::string s, std::mt19937_64& rng) {
  return mutated(std::move(s), rng, nullptr);
}

// A standalone driver's command line, `[iterations] [seed]`, with the driver's defaults (a fixed
// seed: a failure repeats with the same command).
struct DriverArgs {
  long long iterations;
  uint64_t seed;
};

inline DriverArgs driver_args(int argc, char** argv, long long iterations, uint64_t seed) {
  return {argc > 1 ? std::atoll(argv[1]) : iterations,
          argc > 2 ? static_cast<uint64_t>(std::strtoull(argv[2], nullptr, 10)) : seed};
}

// Ends the run on a broken invariant, printing it and the input (its first 2,000 bytes) to replay.
[[noreturn]] inline void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<size_t>(input.size(), 2000)), input.data());
  std::abort();
}

// The line a standalone driver ends with when every input kept its invariants.
inline void report_clean(const char* driver, const DriverArgs& args, const char* detail = "") {
  std::printf("%s: %lld inputs%s, seed %llu: no invariant broken\n", driver, args.iterations, detail,
              static_cast<unsigned long long>(args.seed));
}

}  // namespace orroute::fuzz
