// Fuzz harness for the answer verifiers (cpp/orroute/verify): every byte of a model's answer is
// hostile, so no input may throw, crash, hang or trip ASan/UBSan.
//
// With clang/libFuzzer: clang++ -fsanitize=fuzzer,address,undefined -DORROUTE_LIBFUZZER ...
// Without it (any compiler, e.g. the ASan/UBSan build): the test build (ORROUTE_BUILD_TESTS) builds
// orroute_fuzz_verify, a standalone driver that mutates built-in seeds for N iterations:
//   build/fuzz/orroute_fuzz_verify [iterations=200000] [seed=1]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/verify/arithmetic.h"
#include "orroute/verify/json_check.h"
#include "orroute/verify/signals.h"

namespace {

const orroute::JsonSchema& schema() {
  static const orroute::JsonSchema s(R"({"type": "object", "properties": {
      "a": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string",
      "maxLength": 3}]}, "uniqueItems": true}, "b": {"oneOf": [{"const": 1}, {"enum": [[1], {}]}]}},
      "required": ["a"], "additionalProperties": {"type": "number", "multipleOf": 0.25}})");
  return s;
}

const orroute::ToolCallValidator& tools() {
  static const orroute::ToolCallValidator t(R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}])");
  return t;
}

void run_one(std::string_view input) {
  (void)orroute::extract_json(input);
  (void)orroute::check_json_reply(input);
  (void)schema().check_reply(input);
  (void)schema().validate_text(input);
  (void)tools().check(input);
  const auto calc = orroute::check_calculations(input);
  (void)orroute::arithmetic_verdict(calc);
  (void)orroute::final_answer(input);
  (void)orroute::answer_signals(input);
  (void)orroute::escalation_features(input, input, {1.0});
  const std::string s(input);
  (void)orroute::agreement({s, s.substr(0, s.size() / 2), ""});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run_one({reinterpret_cast<const char*>(data), size});
  return 0;
}

#ifndef ORROUTE_LIBFUZZER
int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 200000;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
  const std::vector<std::string> seeds = {
      "16 - 3 = 13 eggs\n9 * $2 = $<<9*2=18>>18\n#### 18",
      "(((1 + 2) * 3) / 4) = 2.25 and 1,000 x 3 = 3,000 = 3e3",
      "```json\n{\"a\": [1, \"ab\", 1], \"b\": [1], \"c\": 0.5}\n```",
      R"([{"function": {"name": "f", "arguments": "{\"x\": 1}"}}])",
      "The answer is \\boxed{-7.50} \xC3\x97 \xE2\x88\x92 \\times 5 = 10%",
      std::string(300, '(') + "1" + std::string(300, ')') + " + 1 = 2",
      std::string(2000, '[') + std::string(2000, ']')};
  const std::string alphabet = "0123456789+-*/xX()=.,$%#<>{}[]\":\\ \n\tabc\xC3\x97\xE2";
  for (long it = 0; it < iterations; ++it) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 4) {
        case 0: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 1: if (at < s.size()) s.erase(at, 1 + rng() % 4); break;
        case 2: if (at < s.size()) s[at] = static_cast<char>(rng() % 256); break;
        default: s.insert(at, s.substr(at, rng() % 16)); break;  // duplicate a span
      }
    }
    run_one(s);
  }
  std::printf("fuzz_verify: %ld inputs, no failure\n", iterations);
  return 0;
}
#endif
