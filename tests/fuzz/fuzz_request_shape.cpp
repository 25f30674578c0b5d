// Fuzz harness for what a client's request body reaches before money is reserved: request_shape
// (plugins, parts, n, prediction, the reasoning budget, presets, tools) and CallPricer::worst_case;
// and the attempt body made from it. The invariants: nothing throws or aborts (RapidJSON asserts
// on a wrong-typed value in the sanitizer's Debug build); a request's shape only ever adds to what
// a bare prompt of the same size reserves: a bound, when there is one, is never below the plain
// worst case, never negative; and the attempt body (the request's own text with the attempt's
// members appended, where it can be) is the same JSON document as the one written from the parse.
//
// Two ways to run it:
//  - standalone (default build: build/dev/orroute_fuzz_request_shape [iterations] [seed]): mutates
//    a set of real-shaped request bodies at random (byte flips, splices, values swapped for hostile
//    ones, truncation), fixed seed;
//  - under libFuzzer: build this file with -fsanitize=fuzzer -DORROUTE_LIBFUZZER and link
//    orroute_core; LLVMFuzzerTestOneInput is the entry point.
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mutate.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/engine/attempt_body.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"

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

// Member by member in order (rapidjson's == finds a duplicated key's first value only, so it tells
// a document with one apart from itself). A number that is not a whole one within 64 bits may
// differ in its last bits: the written body prints the parse's double, the appended one keeps the
// client's digits (which the parse may have rounded a bit off: not a full-precision parse).
bool same_document(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    const double x = a.GetDouble();
    const double y = b.GetDouble();
    return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) return a.GetStringLength() == b.GetStringLength() &&
                           std::memcmp(a.GetString(), b.GetString(), a.GetStringLength()) == 0;
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!same_document(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto x = a.MemberBegin(), y = b.MemberBegin(); x != a.MemberEnd(); ++x, ++y) {
      if (!same_document(x->name, y->name) || !same_document(x->value, y->value)) return false;
    }
    return true;
  }
  return a == b;  // null, true, false
}

// What goes upstream for an attempt: the body made from the request's text (appended to where it
// can be) parses to the document written from the request's parse.
void check_attempt_body(std::string_view input) {
  static const std::vector<std::string> kServerModels = {"f/files", "x/m", "openrouter/auto"};
  for (const bool stream : {false, true}) {
    std::string made;
    try {
      made = chat_attempt_body(input, "x/m", stream, kServerModels, 64);
    } catch (const std::exception&) {
      continue;  // refused: nothing is sent
    }
    rapidjson::Document request;
    if (parse_json_text(input, request) != JsonParse::kOk || !request.IsObject()) {
      fail("an attempt body made from a request its parse refuses", input);
    }
    const std::string written = chat_attempt_body(request, "x/m", stream, kServerModels, 64);
    rapidjson::Document a;
    rapidjson::Document b;
    a.Parse(made.data(), made.size());
    b.Parse(written.data(), written.size());
    if (a.HasParseError()) fail("an attempt body that is not JSON", input);
    if (b.HasParseError()) fail("a written attempt body that is not JSON", input);
    // The writer sends a string that is not UTF-8 (a raw byte, a lone surrogate's escape) as
    // U+FFFD where the appended body keeps the request's own text: compared as both read after
    // the writer's repair.
    const std::string a_text = to_json(a);
    const std::string b_text = to_json(b);
    a.Parse(a_text.data(), a_text.size());
    b.Parse(b_text.data(), b_text.size());
    if (a.HasParseError() || b.HasParseError() || !same_document(a, b)) {
      fail("the appended attempt body differs from the written one", input);
    }
  }
}

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
  check_attempt_body(input);
}

const char* const kSeeds[] = {
    R"({"model":"x/m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"file","file":{"filename":"a.pdf","file_data":"https://e/a.pdf"}}]}],"plugins":[{"id":"file-parser","pdf":{"engine":"cloudflare-ai"}}]})",
    R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"image_url","image_url":{"url":"u","detail":"original"}}]}],"n":3,"reasoning":{"max_tokens":500}})",
    R"({"plugins":[{"id":"web","max_results":10},{"id":"auto-router","allowed_models":["x/*"]},{"id":"file-parser","enabled":false,"pdf":"native"}],"models":["x/m","f/files"]})",
    R"({"prediction":{"type":"content","content":[{"type":"text","text":"abc"}]},"tools":[{"type":"function","function":{"name":"f"}},{"type":"openrouter:web_search"}],"preset":"p"})",
    R"({"model":"@preset/p","web_search_options":{},"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"v"}}]}]})",
    // the attempt body appended to: no model, stream or max_tokens; escapes, spaces, a null
    "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"q\\\" \\\\ \\n \xC3\xA9\"} ] ,\n"
    "  \"max_completion_tokens\": null, \"temperature\": 0.5, \"usage\": {\"include\": false} }\n",
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
ORROUTE_LIBFUZZER_ENTRY(run_one)
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
