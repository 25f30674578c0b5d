// Fuzz harness for everything a reply's bytes reach before money is booked: the SSE parser, chunk
// assembly (StreamAccumulator), parse_usage and audit_charge. The invariants: nothing throws,
// a charge is never negative, never above the check multiple of the catalog price of what the
// model's context window can hold, and never counts negative tokens; every event the SSE parser
// hands over is valid UTF-8 (the bytes are hostile, the text is not); a whole reply read in one
// pass (read_plain_reply, the engine's) gives what its document gives (plain_reply_of), the cost
// one double's rounding apart at most (the one pass reads its digits, the document a double), and
// read metered, the generated text generated_text(doc, "message") gives; the in-place parse's own
// string scan reads what RapidJSON's in-place parse reads.
//
// Two ways to run it:
//  - standalone (default build: build/dev/orroute_fuzz_reply [iterations] [seed]): mutates a set
//    of real-shaped replies at random (byte flips, splices, number swaps, truncation), fixed seed,
//    as many iterations as asked (the Catch2 suite runs 10,000 usage objects; run this for
//    millions on demand);
//  - under libFuzzer: build this file with -fsanitize=fuzzer -DORROUTE_LIBFUZZER and link
//    orroute_core; LLVMFuzzerTestOneInput is the entry point.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mutate.h"
#include "orroute/cost/usage_audit.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/plain_reply.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"
#include "orroute/net/sse_parser.h"
#include "orroute/utf8.h"

using namespace orroute;

namespace {

const ModelCatalog& catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/m", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "x/a", "context_length": 1000,
     "pricing": {"prompt": "0.000001", "completion": "0.000002", "audio": "0.0001"}}
  ]})");
  return cat;
}

using orroute::fuzz::fail;

void check_charge(const Usage* u, std::string_view input) {
  static const CallPricer pricer(catalog(), {});
  ChargeInput in;
  in.requested = "x/m";
  in.served = "x/m";
  in.usage = u;
  in.counted_prompt_tokens = 10;
  in.counted_completion_tokens = 20;
  in.context_length = 1000;
  in.reserved = Money::parse("0.01");
  const AuditedCharge c = audit_charge(pricer, in);
  if (c.cost.is_negative()) fail("negative charge", input);
  if (c.cost > Money::parse("0.006")) fail("charge above the check bound", input);
  if (c.counts.prompt_tokens < 0 || c.counts.completion_tokens < 0) fail("negative tokens", input);

  // The same usage for a prompt with input audio (a part only the upstream can size) on x/a.
  in.requested = in.served = "x/a";
  RequestShape audio;
  audio.unsized_parts = 1;
  audio.audio_parts = 1;
  in.shape = &audio;
  in.reserved = Money::parse("0.102");  // the window at the audio price and the whole window out
  const AuditedCharge a = audit_charge(pricer, in);
  if (a.cost.is_negative()) fail("negative charge (audio)", input);
  if (a.cost > Money::parse("0.204")) fail("charge above the check bound (audio)", input);
  if (a.source == "tokenizer" && a.cost < Money::parse("0.1")) {
    fail("our count stood in for an unsized prompt below its window", input);
  }
}

// The engine's one-pass reading of a whole reply against its document's.
void check_plain_reply(std::string_view input) {
  rapidjson::Document doc;
  std::optional<PlainReply> want;
  if (parse_json_text(input, doc) == JsonParse::kOk && doc.IsObject()) {
    const ReplyMembers m = reply_members(doc);
    if (!(m.error && m.error->IsObject())) want = plain_reply_of(doc);
  }
  std::string copy(input);
  const std::optional<PlainReply> got = read_plain_reply(copy, kMaxJsonBytes);
  if (want.has_value() != got.has_value()) fail("one pass and the document disagree on reading a reply", input);
  // The document parsed in place (a metered reply's reading) reads the cost's digits as one pass does.
  std::string in_place(input);
  rapidjson::Document placed;
  if (want && parse_json_in_place(in_place, placed) == JsonParse::kOk && placed.IsObject()) {
    const PlainReply placed_reply = plain_reply_of(placed, true);
    const std::optional<Usage>& pu = placed_reply.usage;
    if (pu.has_value() != got->usage.has_value() || (pu && pu->cost != got->usage->cost)) {
      fail("one pass and the document parsed in place read the cost differently", input);
    }
  }
  // A reply metered by its text: the same reading, and the generated text its document gives.
  std::string metered_copy(input);
  std::string generated;
  const std::optional<PlainReply> metered = read_plain_reply(metered_copy, kMaxJsonBytes, generated);
  if (metered.has_value() != got.has_value() || (metered && metered->summary.content != got->summary.content)) {
    fail("a metered reply read in one pass is read apart from an unmetered one", input);
  }
  if (!want) return;
  if (generated != generated_text(doc, "message")) {
    fail("one pass and the document collect a metered reply's generated text differently", input);
  }
  if (got->served_model != want->served_model || got->provider != want->provider ||
      got->summary.id != want->summary.id || got->summary.content != want->summary.content ||
      got->summary.parts != want->summary.parts) {
    fail("one pass and the document read a reply's names or text differently", input);
  }
  if (got->usage.has_value() != want->usage.has_value()) fail("one pass and the document disagree on usage", input);
  if (!want->usage) return;
  const Usage& g = *got->usage;
  const Usage& w = *want->usage;
  if (g.prompt_tokens != w.prompt_tokens || g.completion_tokens != w.completion_tokens ||
      g.total_tokens != w.total_tokens || g.cached_tokens != w.cached_tokens ||
      g.cache_write_tokens != w.cache_write_tokens || g.audio_tokens != w.audio_tokens ||
      g.reasoning_tokens != w.reasoning_tokens || g.audio_output_tokens != w.audio_output_tokens ||
      g.image_output_tokens != w.image_output_tokens || g.token_problem != w.token_problem ||
      g.cost_reported != w.cost_reported || g.cost_problem != w.cost_problem || g.cost.has_value() != w.cost.has_value()) {
    fail("one pass and the document read usage differently", input);
  }
  if (!g.cost) return;
  const Money d = *g.cost > *w.cost ? *g.cost - *w.cost : *w.cost - *g.cost;
  const Money m = w.cost->is_negative() ? -*w.cost : *w.cost;
  if (d.units() > m.units() / 1'000'000'000'000'000 + 1) fail("one pass and the document read the cost apart", input);
}

// The in-place parse's own string scan (json_in_place.h) against RapidJSON's in-place parse of the
// same bytes: the same error at the same offset, or the same document. A text the shared entry
// point would not parse in place (a NUL or a control byte RapidJSON's scan lets through) is not
// read so.
void check_in_place_scan(std::string_view input) {
  bool unsafe_bytes = false;
  if (json_detail::precheck(input, kMaxJsonBytes, kMaxJsonDepth, unsafe_bytes) != JsonParse::kOk || unsafe_bytes) {
    return;
  }
  std::string ours(input);
  std::string theirs(input);
  rapidjson::Document a;
  rapidjson::Document b;
  json_detail::InPlaceStream stream(ours.data(), ours.size());
  a.ParseStream<rapidjson::kParseInsituFlag>(stream);
  b.ParseInsitu(theirs.data());
  if (a.HasParseError() != b.HasParseError() || a.GetParseError() != b.GetParseError() ||
      a.GetErrorOffset() != b.GetErrorOffset() || (!a.HasParseError() && json_text(a) != json_text(b))) {
    fail("the in-place scan and RapidJSON's read a text differently", input);
  }
}

// Every string of a parsed value (keys too) is valid UTF-8.
bool strings_valid(const rapidjson::Value& v) {
  if (v.IsString()) return utf8_valid(std::string_view(v.GetString(), v.GetStringLength()));
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!strings_valid(e)) return false;
    }
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (!strings_valid(m.name) || !strings_valid(m.value)) return false;
    }
  }
  return true;
}

// Upstream JSON as the client and the engine take it (repair_utf8, then repair_json_surrogates):
// the surrogate repair keeps the length (an escape for an escape), changes nothing the second
// time, and a repaired text that parses holds only valid UTF-8 strings (a lone surrogate escape
// would decode to bytes that are not UTF-8).
void check_json_repair(std::string_view input) {
  std::string s(input);
  repair_utf8(s);
  const size_t size = s.size();
  repair_json_surrogates(s);
  if (s.size() != size) fail("repair_json_surrogates changed the text's length", input);
  std::string again = s;
  if (repair_json_surrogates(again) || again != s) fail("repair_json_surrogates is not idempotent", input);
  rapidjson::Document doc;
  if (parse_json_text(s, doc) == JsonParse::kOk && !strings_valid(doc)) {
    fail("a repaired reply parses to a string that is not UTF-8", input);
  }
}

// One input: tried as a whole JSON reply, and as an SSE stream of chunks.
void run_one(std::string_view input) {
  check_plain_reply(input);
  check_in_place_scan(input);
  check_json_repair(input);
  rapidjson::Document d;
  d.Parse(input.data(), input.size());
  if (!d.HasParseError() && d.IsObject()) {
    auto it = d.FindMember("usage");
    if (it != d.MemberEnd()) {
      const Usage u = parse_usage(it->value);
      check_charge(&u, input);
    } else {
      check_charge(nullptr, input);
    }
  }
  SseParser parser;
  StreamAccumulator acc;
  parser.feed(input, [&](SseEvent&& ev) {
    if (!utf8_valid(ev.data) || !utf8_valid(ev.event) || !utf8_valid(ev.id)) {
      fail("an SSE event is not valid UTF-8", input);
    }
    if (ev.data.empty() || is_done_marker(ev.data)) return true;
    rapidjson::Document chunk;
    chunk.Parse(ev.data.c_str(), ev.data.size());
    if (chunk.HasParseError() || !chunk.IsObject()) return true;
    acc.add(chunk);
    return true;
  });
  (void)acc.completion_json();
  if (acc.has_usage()) {
    const std::string uj = acc.usage_json();
    rapidjson::Document ud;
    ud.Parse(uj.c_str(), uj.size());
    if (!ud.HasParseError()) {
      const Usage u = parse_usage(ud);
      check_charge(&u, input);
    }
  }
}

const char* const kSeeds[] = {
    R"({"id":"gen-s","choices":[{"message":{"content":"a\udc00b\ud800\\ud800\ud83d\ude00\uD800\u0041"}}],"\udfff":1})",
    R"({"id":"gen-1","model":"x/m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30,"cost":0.00005,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}})",
    "data: {\"id\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    "data: {\"id\":\"g\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"g\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"cost\":\"0.00001\"}}\n\n"
    "data: [DONE]\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}}]}\n\n",
    R"({"usage":{"prompt_tokens":-1,"completion_tokens":1e300,"cost":"abc"}})",
    R"({"id":"a","provider":"M","model":"x/m","choices":[{"message":{"content":["x",{"text":"y","text":"z"}]},)"
    R"("message":{"content":"w","content":[{"text":"v"}]}}],"id":"b","usage":{"cost":0.12345678901234567,)"
    R"("prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":2},"cost":1},)"
    R"("usage":{"prompt_tokens":9},"choices":[{"message":{"content":"last"}}],"error":null})",
    R"({"choices":[{"message":{"content":[{"text":"a"}],"reasoning":null,"refusal":"r","reasoning_details":)"
    R"([{"text":"t","summary":"s"}],"tool_calls":[{"function":{"name":"f","arguments":"{\"x\":1}"}}]}},)"
    R"({"message":{"reasoning":"only","reasoning_details":[{"text":"dup"}]}}],"usage":{"cost":0.1}})",
};

const char* const kNumbers[] = {"-1", "0", "1e300", "-1e300", "18446744073709551616", "1.5",
                                "\"x\"", "null", "9223372036854775807", "[]", "{}", "1e-400"};

// A number swapped for one of kNumbers.
[[maybe_unused]] void swap_number(std::string& s, size_t at, std::mt19937_64& rng) {
  const size_t digit = s.find_first_of("0123456789", at);
  if (digit == std::string::npos) return;
  size_t end = s.find_first_not_of("0123456789.eE+-", digit);
  if (end == std::string::npos) end = s.size();
  s.replace(digit, end - digit, kNumbers[rng() % std::size(kNumbers)]);
}

}  // namespace

#ifdef ORROUTE_LIBFUZZER
ORROUTE_LIBFUZZER_ENTRY(run_one)
#else
int main(int argc, char** argv) {
  const auto args = orroute::fuzz::driver_args(argc, argv, 100'000, 14);
  std::mt19937_64 rng(args.seed);
  for (long long i = 0; i < args.iterations; ++i) {
    run_one(orroute::fuzz::mutated(kSeeds[rng() % std::size(kSeeds)], rng, swap_number));
  }
  orroute::fuzz::report_clean("fuzz_reply", args);
  return 0;
}
#endif
