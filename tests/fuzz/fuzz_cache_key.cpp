// Fuzz harness for the response cache's key path: every byte of a request reaches cache_key()
// before anything is sent, and every byte of a cached reply reaches replay_chunks() on a hit. The
// invariants: nothing throws; a cacheable request has a 64-hex-digit key; the key is a function of
// the canonical text (canonicalising the canonical text gives the same key); every replayed chunk
// is a JSON object.
//
// Standalone (build/dev/orroute_fuzz_cache_key [iterations] [seed]) it mutates real-shaped
// requests and replies at random; with -fsanitize=fuzzer -DORROUTE_LIBFUZZER it is a libFuzzer
// entry point.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "mutate.h"
#include "orroute/cache/cache_key.h"
#include "orroute/cache/replay.h"

using namespace orroute;

namespace {

using orroute::fuzz::fail;

void run_one(std::string_view input) {
  const CacheKey k = cache_key(input, "scope", CachePolicy{true});
  if (k.cacheable) {
    if (k.key.size() != 64 || k.key.find_first_not_of("0123456789abcdef") != std::string::npos) {
      fail("key is not 64 hex digits", input);
    }
    const auto canonical = canonical_request(input, nullptr);
    if (!canonical) fail("cacheable but no canonical text", input);
    const CacheKey again = cache_key(*canonical, "scope", CachePolicy{true});
    if (!again.cacheable) fail("the canonical text is not cacheable", input);
    // The canonical text keys as the request does whenever it is a fixed point: only a number can
    // keep it from being one (rapidjson's default parse is not correctly rounded; see json.h).
    if (canonical_request(*canonical, nullptr) == canonical && again.key != k.key) {
      fail("canonical text keys differently", input);
    }
  } else if (k.reason.empty()) {
    fail("not cacheable without a reason", input);
  }
  for (const std::string& chunk : replay_chunks(input, 7)) {
    rapidjson::Document d;
    d.Parse(chunk.c_str(), chunk.size());
    if (d.HasParseError() || !d.IsObject()) fail("a replayed chunk is not a JSON object", input);
  }
}

const char* const kSeeds[] = {
    R"({"model":"a/b","messages":[{"role":"user","content":"hi ☃ there"}],"temperature":0,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"stream":true})",
    R"({"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"max_tokens":1.0,"seed":7,"user":"u"})",
    // libFuzzer found a second `messages` that is not an array ending the process (session 22)
    R"({"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"model":"a/b","messages":"u"})",
    R"({"id":"gen-1","model":"x/m","provider":"P","choices":[{"index":0,"message":{"role":"assistant","content":"héllo wörld, a longer answer here","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"cost":0.00005}})",
};

}  // namespace

#ifdef ORROUTE_LIBFUZZER
ORROUTE_LIBFUZZER_ENTRY(run_one)
#else
int main(int argc, char** argv) {
  const auto args = orroute::fuzz::driver_args(argc, argv, 100'000, 20);
  std::mt19937_64 rng(args.seed);
  for (const char* s : kSeeds) run_one(s);
  run_one(std::string(100'000, '['));  // deep nesting: refused, not a stack overflow
  for (long long i = 0; i < args.iterations; ++i) {
    run_one(orroute::fuzz::mutated(kSeeds[rng() % std::size(kSeeds)], rng));
  }
  orroute::fuzz::report_clean("fuzz_cache_key", args);
  return 0;
}
#endif
