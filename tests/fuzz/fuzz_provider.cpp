// Fuzz harness for the provider adapters' parsers: Anthropic request translation, reply, error
// bodies, the SSE event stream (through SseParser + AnthropicStreamTranslator), ProviderClient's
// request rewrite for each wire format, and the LiteLLM price table. The contract under test: any
// bytes give a value or a documented exception (InvalidArgument / ParseError), never a crash,
// another exception, or unbounded work.
//
// Two ways to run it:
//  - libFuzzer (clang): build this file with -fsanitize=fuzzer,address -DORROUTE_LIBFUZZER;
//  - anywhere: the built-in random-mutation driver (`orroute_fuzz_provider [iterations] [seed]`),
//    which mutates a corpus of valid messages (bit flips, byte edits, splices, truncations,
//    repeated nesting). CTest runs it for a short while; build with ORROUTE_SANITIZE=ON for ASan/UBSan.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/error.h"
#include "orroute/net/sse_parser.h"
#include "orroute/provider/anthropic_error.h"
#include "orroute/provider/anthropic_inbound.h"
#include "orroute/provider/anthropic_outbound.h"
#include "orroute/provider/anthropic_reply.h"
#include "orroute/provider/anthropic_request.h"
#include "orroute/provider/anthropic_stream.h"
#include "orroute/provider/provider_client.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/provider/wire_adapter.h"

namespace {

// The body rewrite of ProviderClient (no I/O; one client per wire format, made once).
orroute::ProviderClient& client(orroute::ProviderKind kind) {
  static auto make = [](orroute::ProviderKind k) {
    orroute::ProviderConfig c;
    c.name = "fuzz";
    c.kind = k;
    c.base_url = "http://127.0.0.1:9";
    return orroute::ProviderClient::create(c);
  };
  static const auto openai = make(orroute::ProviderKind::kOpenAI);
  static const auto anthropic = make(orroute::ProviderKind::kAnthropic);
  return kind == orroute::ProviderKind::kAnthropic ? *anthropic : *openai;
}

void one_input(std::string_view in) {
  for (const auto kind : {orroute::ProviderKind::kOpenAI, orroute::ProviderKind::kAnthropic}) {
    try {
      (void)client(kind).wire_body(in, "m", true);
    } catch (const orroute::InvalidArgument&) {
    }
    orroute::ProviderConfig c;
    c.name = "fuzz";
    c.kind = kind;
    const auto adapter = orroute::WireAdapter::for_provider(c);
    (void)adapter->reply(in, 0);
    (void)adapter->error(500, {}, in, 0);
  }
  try {
    (void)orroute::anthropic_request_from_chat(in, {"claude", 100});
  } catch (const orroute::InvalidArgument&) {
  }
  (void)orroute::chat_completion_from_anthropic(in, 0);
  orroute::Headers h;
  h.add("retry-after", std::string(in.substr(0, 16)));
  (void)orroute::anthropic_error_from_response(529, h, in, 0);
  {
    orroute::SseParser parser;
    orroute::AnthropicStreamTranslator tr(0);
    std::vector<std::string> out;
    size_t events = 0;
    parser.feed(in, [&](orroute::SseEvent&& ev) {
      ++events;
      return tr.translate(ev.data, out);
    });
    tr.translate(in, out);  // the whole input as one event's data too
    (void)tr.usage();
    if (out.size() > 2 * (events + 1)) std::abort();  // at most two chunks per event
  }
  // the gateway's /v1/messages: a client's Messages request in, chat replies and chunks out
  try {
    (void)orroute::chat_request_from_anthropic(in);
  } catch (const orroute::InvalidArgument&) {
  }
  try {
    (void)orroute::anthropic_message_from_chat(in);
  } catch (const orroute::ParseError&) {
  }
  {
    orroute::SseParser parser;
    orroute::AnthropicEventWriter writer("m");
    parser.feed(in, [&](orroute::SseEvent&& ev) {
      (void)writer.chunk(ev.data);
      return true;
    });
    (void)writer.chunk(in);
    (void)writer.finish();
  }
  try {
    (void)orroute::ProviderPrices::from_litellm_json(in, "p");
  } catch (const orroute::ParseError&) {
  }
}

#ifndef ORROUTE_LIBFUZZER
const char* const kCorpus[] = {
    R"({"model":"m","max_tokens":10,"stream":true,"stop":["x"],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}]})",
    R"({"id":"msg_1","model":"c","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2]}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":3,"cache_creation_input_tokens":2}})",
    R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
    R"({"model":"m","max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}]}]}]})",
    "data: {\"id\":\"g\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"a\",\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":1}}}\n\n",
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"m\"}}\n\ndata: {\"type\":\"message_stop\"}\n\n",
    R"({"claude-x":{"litellm_provider":"p","mode":"chat","input_cost_per_token":3e-06,"output_cost_per_token":1.5e-05,"input_cost_per_token_above_200k_tokens":6e-06,"cache_read_input_token_cost":3e-07}})",
};

std::string mutate(std::string s, std::mt19937_64& rng, const std::vector<std::string>& corpus) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 8) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // set a byte to something JSON cares about
        if (!s.empty()) s[pick(s.size())] = "{}[]\",:\\0-e.\n \x80\xff"[rng() % 17];
        break;
      case 2:  // delete a range
        if (!s.empty()) {
          const size_t at = pick(s.size());
          s.erase(at, pick(s.size() - at + 1));
        }
        break;
      case 3:  // insert a slice of another corpus entry
      {
        const std::string& o = corpus[pick(corpus.size())];
        const size_t from = pick(o.size());
        s.insert(pick(s.size() + 1), o.substr(from, pick(o.size() - from + 1)));
        break;
      }
      case 4:  // truncate
        s.resize(pick(s.size() + 1));
        break;
      case 5:  // deep nesting
        s.insert(pick(s.size() + 1), std::string(1 + pick(200), rng() % 2 ? '[' : '{'));
        break;
      case 6:  // huge or negative numbers
        s.insert(pick(s.size() + 1), rng() % 2 ? "1e308" : "-99999999999999999999");
        break;
      default:  // duplicate a range
        if (!s.empty()) {
          const size_t at = pick(s.size());
          s.insert(at, s.substr(at, pick(64)));
        }
        break;
    }
    if (s.size() > (1u << 16)) s.resize(1u << 16);
  }
  return s;
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  one_input(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifndef ORROUTE_LIBFUZZER
int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 20000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : std::random_device{}();
  std::printf("fuzz_provider: %ld iterations, seed %llu\n", iterations, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  std::vector<std::string> corpus(std::begin(kCorpus), std::end(kCorpus));
  for (const auto& c : corpus) one_input(c);
  for (long i = 0; i < iterations; ++i) {
    std::string input = mutate(corpus[rng() % corpus.size()], rng, corpus);
    one_input(input);
    if (rng() % 64 == 0 && corpus.size() < 256) corpus.push_back(std::move(input));  // keep some mutants
  }
  std::printf("fuzz_provider: ok\n");
  return 0;
}
#endif
