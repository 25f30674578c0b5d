// Fuzz harness for what a client's request body reaches before money is reserved: request_shape
// (plugins, parts, n, prediction, the reasoning budget, presets, tools) and CallPricer::worst_case.
// The invariants: nothing throws or aborts (RapidJSON asserts on a wrong-typed value in the
// sanitizer's Debug build), and a request's shape only ever adds to what a bare prompt of the same
// size reserves: a bound, when there is one, is never below the plain worst case, never negative.
//
// Two ways to run it:
//  - standalone (default build: build/dev/orroute_fuzz_request_shape [iterations] [seed]): mutates
//    a set of real-shaped request bodies at random (byte flips, splices, values swapped for hostile
//    ones, truncation), fixed seed;
//  - under libFuzzer: build this file with -fsanitize=fuzzer -DORROUTE_LIBFUZZER and link
//    orroute_core; LLVMFuzzerTestOneInput is the entry point.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "mutate.h"
#include "orroute/cost/call_pricing.h"

using namespace orroute;

namespace {

const ModelCatalog& catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/m", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002", "audio": "0.0001", "image": "0.001"}},
    {"id": "f/files", "context_length": 1000, "architecture": {"input_modalities": ["text", "file"]},
     "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "openrouter/auto", "context_length": 1000, "pricing": {"prompt": "-1", "completion": "-1"}}
  ]})");
  return cat;
}

using orroute::fuzz::fail;

long long shaped_inputs = 0;  // inputs whose shape is not the empty one (the mutation kept JSON)

void run_one(std::string_view input) {
  static const CallPricer pricer(catalog(), {});
  const RequestShape shape = request_shape(input);  // noexcept: a throw inside would terminate
  if (shape.files > 0 || shape.images > 0 || shape.unsized_parts > 0 || shape.reasoning_tokens > 0 || shape.web_plugin ||
      !shape.models.empty() || !shape.unbounded.empty() || shape.choices > 1) {
    ++shaped_inputs;
  }
  for (const char* id : {"x/m", "f/files", "openrouter/auto"}) {
    const std::optional<Money> plain = pricer.worst_case(id, RequestShape{}, 100, 100, nullptr);
    std::string why;
    const std::optional<Money> shaped = pricer.worst_case(id, shape, 100, 100, &why);
    if (shaped && shaped->is_negative()) fail("a negative bound", input);
    // (an auto-router's allowed_models may narrow a router to cheaper models: not compared)
    if (shaped && plain && shape.allowed_models.empty() && *shaped < *plain) {
      fail("a shape reserved less than the bare prompt", input);
    }
    if (!shaped && why.empty()) fail("refused without a reason", input);
    (void)shaped_worst_case(catalog().find("x/m")->pricing, shape, 100, 100, 1000, id, nullptr);
  }
  if (reserved_output_tokens(100, shape) < 100) fail("reserved output below max_tokens", input);
}

const char* const kSeeds[] = {
    R"({"model":"x/m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"file","file":{"filename":"a.pdf","file_data":"https://e/a.pdf"}}]}],"plugins":[{"id":"file-parser","pdf":{"engine":"cloudflare-ai"}}]})",
    R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"image_url","image_url":{"url":"u","detail":"original"}}]}],"n":3,"reasoning":{"max_tokens":500}})",
    R"({"plugins":[{"id":"web","max_results":10},{"id":"auto-router","allowed_models":["x/*"]},{"id":"file-parser","enabled":false,"pdf":"native"}],"models":["x/m","f/files"]})",
    R"({"prediction":{"type":"content","content":[{"type":"text","text":"abc"}]},"tools":[{"type":"function","function":{"name":"f"}},{"type":"openrouter:web_search"}],"preset":"p"})",
    R"({"model":"@preset/p","web_search_options":{},"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"v"}}]}]})",
};

const char* const kValues[] = {"-1", "0", "1e300", "9223372036854775807", "\"x\"", "null", "[]", "{}",
                               "true", "[1,[2,{}]]", "{\"engine\":7}", "\"native\"", "-9223372036854775808"};

// The scalar value of a member (after a ':' from `at` on: a number, a string, true/false/null)
// swapped for one of kValues; the JSON around it stays well formed.
void swap_value(std::string& s, size_t at, std::mt19937_64& rng) {
  const size_t colon = s.find(':', at);
  if (colon == std::string::npos || colon + 1 >= s.size()) return;
  const size_t start = colon + 1;
  size_t end = start;
  if (s[start] == '"') {
    end = s.find('"', start + 1);
    end = end == std::string::npos ? s.size() : end + 1;
  } else {
    end = s.find_first_of(",}]", start);
    if (end == std::string::npos) end = s.size();
    if (s[start] == '{' || s[start] == '[') return;  // not a scalar
  }
  s.replace(start, end - start, kValues[rng() % std::size(kValues)]);
}

}  // namespace

#ifdef ORROUTE_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
#else
int main(int argc, char** argv) {
  const auto args = orroute::fuzz::driver_args(argc, argv, 100'000, 16);
  std::mt19937_64 rng(args.seed);
  for (long long i = 0; i < args.iterations; ++i) {
    std::string seed_text = kSeeds[rng() % std::size(kSeeds)];
    if (rng() % 2 == 0) {  // half the inputs keep their JSON: only values swapped, so the shape is read
      for (int n = 1 + static_cast<int>(rng() % 4); n > 0; --n) swap_value(seed_text, rng() % seed_text.size(), rng);
      run_one(seed_text);
    } else {
      run_one(orroute::fuzz::mutated(std::move(seed_text), rng, swap_value));
    }
  }
  const std::string shaped = " (" + std::to_string(shaped_inputs) + " with a shape)";
  orroute::fuzz::report_clean("fuzz_request_shape", args, shaped.c_str());
  return 0;
}
#endif
