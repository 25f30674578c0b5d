// The per-event cost of scrubbing a key split over stream events (StreamScrubber), against the
// per-event work a stream did before it, in the same process: A = parse the event's JSON and test
// it for a whole key (ApiClient::mentions_key), as ChatSink and ChatStream do; B = A plus
// StreamScrubber::scrub, and the event written anew when the scrubber changed it (ChatSink
// relays text). The events are OpenRouter-shaped chunks whose content words often end in what
// could begin the key ("s", "sk-"), so the hold-back path runs too. A and B alternate (A B B A)
// ROUNDS times; prints each round's ns/event and the median ratio B / A.
//
//   orroute_stream_scrub_bench [EVENTS] [ROUNDS]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "orroute/engine/chat_text.h"
#include "orroute/json.h"
#include "orroute/net/api_client.h"
#include "orroute/net/stream_scrub.h"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::vector<std::string> events(size_t n) {
  const char* words[] = {"tokens ", "is ", "routes", " sk-", "the model", " answers", " a", "s",
                         " cost", " budget ", "sk-or", " fine."};
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string content;
    for (size_t w = 0; w < 3; ++w) content += words[(i * 7 + w * 5) % std::size(words)];
    out.push_back(R"({"id":"gen-1733300000-abcdefghijklmnop","provider":"OpenAI","model":"openai/gpt-4o-mini",)"
                  R"("object":"chat.completion.chunk","created":1733300000,"choices":[{"index":0,)"
                  R"("delta":{"role":"assistant","content":")" + content +
                  R"("},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]})");
  }
  return out;
}

// ns per event of reading `evs` (and scrubbing across them when `scrub`).
double read_all(const orroute::ApiClient& keys, const std::vector<std::string>& evs, bool scrub, size_t& sink) {
  orroute::StreamScrubber scrubber;
  const double t0 = cpu_seconds();
  for (const std::string& ev : evs) {
    orroute::LocalJson<> json;
    rapidjson::Document& doc = json.doc();
    const std::string scrubbed = keys.mentions_key(ev) ? keys.scrub(ev) : std::string();
    if (orroute::parse_json_text(scrubbed.empty() ? ev : scrubbed, doc) != orroute::JsonParse::kOk) std::abort();
    if (scrub && scrubber.scrub(doc, keys)) sink += orroute::json_text(doc).size();
    sink += doc.MemberCount();
  }
  return (cpu_seconds() - t0) * 1e9 / static_cast<double>(evs.size());
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  orroute::ClientConfig cfg;
  // A fake key of a real key's length (73 bytes), so the hold-back is as long as it would be.
  const std::string fake_key = "sk-or-v1-bench-not-a-real-key-";
  cfg.api_keys = {fake_key + std::string(73 - fake_key.size(), 'x')};
  const auto keys = orroute::ApiClient::create(cfg);
  const std::vector<std::string> evs = events(n);
  size_t sink = 0;
  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    const double a1 = read_all(*keys, evs, false, sink);
    const double b1 = read_all(*keys, evs, true, sink);
    const double b2 = read_all(*keys, evs, true, sink);
    const double a2 = read_all(*keys, evs, false, sink);
    const double a = (a1 + a2) / 2, b = (b1 + b2) / 2;
    std::printf("round %d: A %.0f ns/event, B %.0f ns/event, B/A %.3f\n", r + 1, a, b, b / a);
    ratios.push_back(b / a);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("median B/A over %d rounds of %zu events: %.3f (sink %zu)\n", rounds, n,
              ratios[ratios.size() / 2], sink);
}
