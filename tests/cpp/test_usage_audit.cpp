// A reply can never crash the process or corrupt the books: each hostile usage shape and what is
// charged for it, and 10,000 randomly mutated usage objects (fixed seed) run from the bytes
// through parse_usage, audit_charge and a ledger settle under a budget.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <optional>
#include <random>
#include <string>

#include "orroute/cost/sqlite_ledger.h"
#include "orroute/cost/usage_audit.h"
#include "orroute/net/protocol.h"

using namespace orroute;

namespace {

// x/m: $1 per million prompt tokens, $2 per million completion tokens, 1000-token window.
const ModelCatalog& catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/m", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
  ]})");
  return cat;
}

Money usd(const char* s) { return Money::parse(s); }

// Charges the reply usage `usage_json` (prompt counted by us: 10 tokens, answer: 20, unless said).
AuditedCharge charge(const std::string& usage_json, bool has_usage = true,
                     int64_t counted_prompt = 10, int64_t counted_completion = 20,
                     int64_t output_bound = 0, const RequestShape* shape = nullptr) {
  static const CallPricer pricer(catalog(), {});
  rapidjson::Document d;
  d.Parse(usage_json.c_str(), usage_json.size());
  Usage u;
  if (has_usage && !d.HasParseError()) u = parse_usage(d);
  ChargeInput in;
  in.requested = "x/m";
  in.served = "x/m";
  in.usage = has_usage ? &u : nullptr;
  in.counted_prompt_tokens = counted_prompt;
  in.counted_completion_tokens = counted_completion;
  in.context_length = 1000;
  in.reserved = usd("0.01");
  in.output_bound = output_bound;
  in.shape = shape;
  return audit_charge(pricer, in);
}

const Money kCatalog_100_200 = usd("0.0005");  // 100 x 1e-6 + 200 x 2e-6
const Money kCounted = usd("0.00005");          // 10 x 1e-6 + 20 x 2e-6

}  // namespace

TEST_CASE("a sane upstream cost is recorded as the upstream's", "[usage_audit]") {
  const auto c = charge(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0004})");
  CHECK(c.source == "upstream");
  CHECK(c.cost == usd("0.0004"));
  CHECK(c.problem.empty());
  CHECK(charge(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": "0.0004"})").cost ==
        usd("0.0004"));
}

TEST_CASE("each hostile cost is replaced by the catalog price and named", "[usage_audit]") {
  using Row = std::tuple<const char*, const char*>;
  const auto [cost, why] = GENERATE(table<const char*, const char*>({
      Row{R"("abc")", "not a decimal"},
      Row{"1e300", "absurdly large"},
      Row{R"("1e300")", "not a decimal"},
      Row{"-5", "negative"},
      Row{"-0.0001", "negative"},
      Row{"0.01", "more than 2x"},  // 20x the catalog price
      Row{"true", "not a number"},
      Row{"{}", "not a number"},
      Row{"[1]", "not a number"},
      Row{"99999999999999999999", "absurdly large"},
  }));
  const auto c = charge(std::string(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": )") +
                        cost + "}");
  INFO(cost << " -> " << c.problem);
  CHECK(c.source == "catalog");
  CHECK(c.cost == kCatalog_100_200);
  CHECK(c.problem.find(why) != std::string::npos);
}

TEST_CASE("a cost below half the catalog price is replaced by the catalog price", "[usage_audit]") {
  // A paid call reported free (or nearly) would book less than it cost: the budget would not see it.
  const char* cost = GENERATE("0", "0.0", "\"0\"", "0.0002", "0.000000001");
  const auto c = charge(std::string(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": )") +
                        cost + "}");
  INFO(cost << " -> " << c.problem);
  CHECK(c.source == "catalog");
  CHECK(c.cost == kCatalog_100_200);
  CHECK(c.problem.find("is less than 1/2 of the catalog price") != std::string::npos);
  // half the catalog price is still believed (a cheaper provider, a cache discount)
  CHECK(charge(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.00025})").source ==
        "upstream");
}

TEST_CASE("fewer tokens than were sent or received are replaced by the tokenizer's count",
          "[usage_audit]") {
  // We sent 400 prompt tokens and received 200: a report of 1 prompt token (priced consistently)
  // would book a fraction of the call.
  const char* tokens = GENERATE(R"("prompt_tokens": 1, "completion_tokens": 200, "cost": 0.000401)",
                                R"("prompt_tokens": 0, "completion_tokens": 200)",
                                R"("prompt_tokens": 400, "completion_tokens": 0, "cost": 0.0004)",
                                R"("prompt_tokens": 80, "completion_tokens": 40)");
  const auto c = charge(std::string("{") + tokens + "}", true, 400, 200);
  INFO(tokens << " -> " << c.problem);
  CHECK(c.source == "tokenizer");
  CHECK(c.counts.prompt_tokens == 400);
  CHECK(c.counts.completion_tokens == 200);
  CHECK(c.cost == usd("0.0008"));  // 400 x 1e-6 + 200 x 2e-6
  CHECK(c.problem.find("less than a quarter") != std::string::npos);
}

TEST_CASE("token counts a tokenizer or an image can explain are believed", "[usage_audit]") {
  // Other families' tokenizers, and images (Gemini bills 258 tokens where we count 765), differ
  // from our count: down to a quarter of it (less a few template tokens) is the upstream's word.
  const auto c = charge(R"({"prompt_tokens": 120, "completion_tokens": 60})", true, 400, 200);
  CHECK(c.source == "catalog");
  CHECK(c.counts.prompt_tokens == 120);
  CHECK(c.counts.completion_tokens == 60);
  // a tiny prompt's chat template is most of our count: "hi" is 8 tokens here, 1-2 elsewhere
  CHECK(charge(R"({"prompt_tokens": 1, "completion_tokens": 1})", true, 8, 1).counts.prompt_tokens == 1);
}

// The request carried max_tokens (the reservation's output bound) and the upstream enforces it
// with its own tokenizer: a non-streamed reply reporting more was not billed that much honestly,
// and its cost (which prices the excess) is not believed either.
TEST_CASE("completion tokens above the request's bound are charged at the bound, flagged", "[usage_audit]") {
  const std::string lying = R"({"prompt_tokens": 100, "completion_tokens": 900, "cost": 0.0019,
                                "completion_tokens_details": {"reasoning_tokens": 800}})";
  const auto c = charge(lying, true, 10, 20, 50);
  CHECK(c.source == "catalog");
  CHECK(c.cost == usd("0.0002"));  // 100 x 1e-6 + 50 x 2e-6
  CHECK(c.counts.completion_tokens == 50);
  CHECK(c.counts.reasoning_tokens == 50);
  CHECK(c.problem == "usage.completion_tokens 900 is more than the 50 output tokens the request "
                     "allowed (its max_tokens)");
  // At the bound, or without one (no ledger), the report stands.
  const auto at_bound = charge(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0004})",
                               true, 10, 20, 200);
  CHECK((at_bound.source == "upstream" && at_bound.cost == usd("0.0004")));
  CHECK(charge(lying, true, 10, 20, 0).cost == usd("0.0019"));
}

// We count the prompt (exactly for OpenAI's encodings, within a family factor for others, images
// at their most): a report far above that count is not an honest one, whatever the window allows.
TEST_CASE("prompt tokens far above our count are charged at our bound, flagged", "[usage_audit]") {
  const std::string lying = R"({"prompt_tokens": 900, "completion_tokens": 20, "cost": 0.00094,
                                "prompt_tokens_details": {"cached_tokens": 800}})";
  const auto c = charge(lying, true, 10, 20);
  CHECK(c.source == "catalog");
  CHECK(c.counts_capped);
  CHECK(c.counts.prompt_tokens == 532);  // 2 x 10 + 512
  CHECK(c.counts.cached_tokens == 532);
  CHECK(c.problem == "usage.prompt_tokens 900 is more than twice the 10 prompt tokens counted, and 512 more");
  // At the bound the report stands.
  const auto at = charge(R"({"prompt_tokens": 532, "completion_tokens": 20, "cost": 0.000572})", true, 10, 20);
  CHECK((at.source == "upstream" && at.cost == usd("0.000572")));
}

// Our count bounds an honest report only where it sizes the whole prompt: an image (each model
// bills it by its own rule: gpt-4o-mini 25,501 tokens for a 1024-pixel square), tools (each
// provider renders their schemas its own way; a nested schema's properties are not counted),
// reasoning sent back, the web plugin's results: there the window bounds the prompt.
TEST_CASE("prompt tokens past our bound stand where we size the prompt only in part", "[usage_audit]") {
  const std::string reported = R"({"prompt_tokens": 900, "completion_tokens": 20, "cost": 0.00094})";
  const RequestShape plain = request_shape(R"({"messages": [{"role": "user", "content": "hi"}]})");
  CHECK(charge(reported, true, 10, 20, 0, &plain).counts_capped);
  for (const char* body : {
           R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]})",
           R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]})",
           R"({"messages": [{"role": "assistant", "content": "", "reasoning_details": []}, {"role": "user", "content": "hi"}]})",
           R"({"messages": [{"role": "user", "content": "hi"}], "plugins": [{"id": "web"}]})"}) {
    INFO(body);
    const RequestShape shape = request_shape(body);
    const auto c = charge(reported, true, 10, 20, 0, &shape);
    CHECK(!c.counts_capped);
    CHECK(c.counts.prompt_tokens == 900);  // (the web plugin's fee is priced on top)
  }
}

// openrouter/auto's pick is priced as the reply names it, but the reported cost is held to the
// router's bound (its dearest pick, what was reserved) from above and to the named model's price
// from below: an upstream naming a cheaper model than it ran, with the real cost, is booked at
// that cost (it was cut to the named model's price), and a named model the request could not
// reach (a free one) is priced at the bound.
TEST_CASE("a router's named pick is checked against the router's bound", "[usage_audit]") {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/cheap", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "x/cheap:free", "context_length": 1000, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "y/dear", "context_length": 1000, "pricing": {"prompt": "0.00001", "completion": "0.00003"}},
    {"id": "openrouter/auto", "context_length": 1000, "pricing": {"prompt": "-1", "completion": "-1"}}
  ]})");
  static const CallPricer pricer(cat, {});
  auto routed = [](const char* served, const std::string& usage_json) {
    rapidjson::Document d;
    d.Parse(usage_json.c_str(), usage_json.size());
    const Usage u = parse_usage(d);
    ChargeInput in;
    in.requested = "openrouter/auto";
    in.served = served;
    in.usage = &u;
    in.counted_prompt_tokens = 100;
    in.counted_completion_tokens = 200;
    in.context_length = 1000;
    in.reserved = Money::parse("0.01");
    return audit_charge(pricer, in);
  };
  // 100 + 200 tokens: $0.0005 at x/cheap, $0.007 at y/dear (the router's bound).
  const auto ran_dear = routed("x/cheap", R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.007})");
  CHECK((ran_dear.source == "upstream" && ran_dear.cost == usd("0.007")));
  const auto honest = routed("x/cheap", R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0005})");
  CHECK((honest.source == "upstream" && honest.cost == usd("0.0005")));
  const auto absurd = routed("x/cheap", R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 1})");
  CHECK((absurd.source == "catalog" && absurd.cost == usd("0.007")));
  const auto free_pick = routed("x/cheap:free", R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0})");
  CHECK((free_pick.source == "catalog" && free_pick.cost == usd("0.007")));
  const auto below = routed("x/cheap", R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0001})");
  CHECK((below.source == "catalog" && below.cost == usd("0.0005")));  // the named model's floor
}

TEST_CASE("a missing cost is the catalog price, flagged", "[usage_audit]") {
  const auto c = charge(R"({"prompt_tokens": 100, "completion_tokens": 200})");
  CHECK(c.source == "catalog");
  CHECK(c.problem == "no cost reported");
  CHECK(c.cost == kCatalog_100_200);
  CHECK(charge(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": null})").cost ==
        kCatalog_100_200);
}

TEST_CASE("hostile token counts are replaced by the tokenizer's count", "[usage_audit]") {
  const char* tokens = GENERATE(R"("prompt_tokens": -3, "completion_tokens": 200)",
                                R"("prompt_tokens": 100, "completion_tokens": -1)",
                                R"("prompt_tokens": 1.5, "completion_tokens": 200)",
                                R"("prompt_tokens": "100", "completion_tokens": 200)",
                                R"("prompt_tokens": 1e300, "completion_tokens": 200)",
                                R"("prompt_tokens": 18446744073709551615, "completion_tokens": 2)",
                                R"("prompt_tokens": 100, "completion_tokens": 5000)",  // > window
                                R"("prompt_tokens": 100, "completion_tokens": 200,
                                   "prompt_tokens_details": {"cached_tokens": -7}})");
  const auto c = charge(std::string("{") + tokens + R"(, "cost": 0.0004})");
  INFO(tokens << " -> " << c.problem);
  CHECK(c.source == "tokenizer");
  CHECK(c.counts.prompt_tokens == 10);
  CHECK(c.counts.completion_tokens == 20);
  CHECK(c.cost == kCounted);
}

TEST_CASE("a reply without usage is priced from the tokenizer's count", "[usage_audit]") {
  const auto c = charge("", false);
  CHECK(c.source == "tokenizer");
  CHECK(c.problem == "the reply had no usage");
  CHECK(c.cost == kCounted);
  CHECK(charge("null").source == "tokenizer");  // "usage": null
}

TEST_CASE("breakdowns larger than their totals bill the totals alone", "[usage_audit]") {
  const auto c = charge(R"({"prompt_tokens": 100, "completion_tokens": 200,
                            "completion_tokens_details": {"reasoning_tokens": 900}})");
  CHECK(c.counts.reasoning_tokens == 0);
  CHECK(c.cost == kCatalog_100_200);
  CHECK(c.problem == "usage breakdowns exceed their totals");
}

TEST_CASE("a stream cut at its reservation is charged its metered tokens", "[usage_audit]") {
  static const CallPricer pricer(catalog(), {});
  ChargeInput in;
  in.requested = "x/m";
  in.metered = true;
  in.counted_prompt_tokens = 10;
  in.counted_completion_tokens = 20;
  const auto c = audit_charge(pricer, in);
  CHECK(c.source == "metered");
  CHECK(c.cost == kCounted);
}

namespace {

// x/a: as x/m, and input audio at $100 per million tokens.
const ModelCatalog& audio_catalog() {
  static const ModelCatalog cat = ModelCatalog::from_json(R"({"data": [
    {"id": "x/a", "context_length": 1000,
     "pricing": {"prompt": "0.000001", "completion": "0.000002", "audio": "0.0001"}}
  ]})");
  return cat;
}

// Charges `usage_json` for a request with `unsized` parts only the upstream can size, `audio` of
// them input audio (prompt counted by us: 10 tokens, its text alone; answer: 20).
AuditedCharge charge_shaped(const std::string& usage_json, int64_t unsized, int64_t audio,
                            bool metered = false, std::optional<int64_t> window = 1000) {
  static const CallPricer pricer(audio_catalog(), {});
  rapidjson::Document d;
  d.Parse(usage_json.c_str(), usage_json.size());
  Usage u;
  if (!d.HasParseError()) u = parse_usage(d);
  RequestShape shape;
  shape.unsized_parts = unsized;
  shape.audio_parts = audio;
  ChargeInput in;
  in.requested = "x/a";
  in.served = "x/a";
  in.shape = &shape;
  in.usage = usage_json.empty() ? nullptr : &u;
  in.counted_prompt_tokens = 10;
  in.counted_completion_tokens = 20;
  in.context_length = window;
  in.metered = metered;
  in.reserved = usd("0.5");
  return audit_charge(pricer, in);
}

}  // namespace

TEST_CASE("where our count stands in for a prompt with parts only the upstream can size, the prompt is the window",
          "[usage_audit]") {
  // Our count of such a prompt is its text alone; the reservation assumed the whole window.
  const Money window_at_text = usd("0.00104");  // 1000 x 1e-6 + 20 x 2e-6
  const auto none = charge_shaped("", 1, 0);
  CHECK(none.source == "tokenizer");
  CHECK(none.counts.prompt_tokens == 1000);
  CHECK(none.cost == window_at_text);
  const auto junk = charge_shaped(R"({"prompt_tokens": -3, "completion_tokens": 20})", 1, 0);
  CHECK(junk.cost == window_at_text);
  const auto cut = charge_shaped("", 1, 0, true);
  CHECK(cut.source == "metered");
  CHECK(cut.cost == window_at_text);
  // Audio among them: the window at the audio price (1000 x 1e-4 + 20 x 2e-6).
  CHECK(charge_shaped("", 1, 1).cost == usd("0.10004"));
  // No window to stand in: the reservation.
  const auto unbounded = charge_shaped("", 1, 0, false, std::nullopt);
  CHECK(unbounded.source == "reservation");
  CHECK(unbounded.cost == usd("0.5"));
  // A sane report is believed, as for any request.
  const auto told = charge_shaped(R"({"prompt_tokens": 600, "completion_tokens": 20, "cost": 0.00064})", 1, 0);
  CHECK(told.source == "upstream");
  CHECK(told.cost == usd("0.00064"));
}

TEST_CASE("a prompt with audio whose upstream does not say which tokens were audio is checked against the audio price",
          "[usage_audit]") {
  // 100 prompt tokens, all audio as far as anyone here can tell: 100 x 1e-4 + 200 x 2e-6.
  const Money all_audio = usd("0.0104");
  const auto honest = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0104})", 1, 1);
  CHECK(honest.source == "upstream");  // was replaced by the text price (0.0005): booked 20x low
  CHECK(honest.cost == all_audio);
  // Text and a little audio, billed at the text price mostly: also within the range.
  const auto mixed = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0006})", 1, 1);
  CHECK(mixed.source == "upstream");
  CHECK(mixed.cost == usd("0.0006"));
  // No cost: the dearer reading (what the reservation assumed).
  const auto no_cost = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200})", 1, 1);
  CHECK(no_cost.source == "catalog");
  CHECK(no_cost.cost == all_audio);
  // Above twice the dearer reading: replaced by it.
  const auto inflated = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 1.0})", 1, 1);
  CHECK(inflated.source == "catalog");
  CHECK(inflated.cost == all_audio);
  // Below half the text reading: replaced by the dearer one.
  const auto free = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200, "cost": 0.0})", 1, 1);
  CHECK(free.source == "catalog");
  CHECK(free.cost == all_audio);
  // The upstream names its audio tokens and no cost: priced as named (50 x 1e-6 + 50 x 1e-4 + 200 x 2e-6).
  const auto named = charge_shaped(R"({"prompt_tokens": 100, "completion_tokens": 200,
                                      "prompt_tokens_details": {"audio_tokens": 50}})", 1, 1);
  CHECK(named.cost == usd("0.00545"));
}

TEST_CASE("10,000 randomly mutated usage objects never throw and never corrupt the books",
          "[usage_audit][fuzz]") {
  std::mt19937_64 rng(20261203);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const char* values[] = {"0", "1", "-1", "100", "200", "1.5", "-0.0", "1e300", "-1e300",
                          "1e-300", "18446744073709551615", "9223372036854775807",
                          "-9223372036854775808", "\"abc\"", "\"12\"", "\"-3\"", "\"1e999\"",
                          "null", "true", "[]", "{}", "0.0004", "\"0.0004\"", "2e9", "\"\"",
                          "\"99999999999999999999999999999999999999999\""};
  const char* fields[] = {"prompt_tokens", "completion_tokens", "total_tokens", "cost",
                          "prompt_tokens_details", "completion_tokens_details", "is_byok"};
  const char* details[] = {"cached_tokens", "cache_write_tokens", "audio_tokens",
                           "reasoning_tokens", "image_tokens"};
  static const CallPricer pricer(catalog(), {});
  SqliteLedger ledger(":memory:");
  BudgetSpec b;
  b.limit = usd("1000");
  ledger.set_budget(b);
  Money booked;
  int settled = 0;
  for (int i = 0; i < 10'000; ++i) {
    std::string json = "{";
    const size_t n = pick(7);
    for (size_t f = 0; f < n; ++f) {
      if (f) json += ",";
      const char* name = fields[pick(7)];
      json += std::string("\"") + name + "\":";
      if (std::string_view(name).find("details") != std::string_view::npos && pick(2)) {
        json += std::string("{\"") + details[pick(5)] + "\":" + values[pick(std::size(values))] + "}";
      } else {
        json += values[pick(std::size(values))];
      }
    }
    json += "}";
    if (pick(20) == 0) json = json.substr(0, pick(json.size() + 1));  // truncated bytes
    rapidjson::Document d;
    d.Parse(json.c_str(), json.size());
    Usage u;
    if (!d.HasParseError()) u = parse_usage(d);
    ChargeInput in;
    in.requested = "x/m";
    in.served = pick(2) ? "x/m" : "who/knows";
    in.usage = d.HasParseError() ? nullptr : &u;
    in.counted_prompt_tokens = 10;
    in.counted_completion_tokens = 20;
    in.context_length = 1000;
    in.reserved = usd("0.01");
    const AuditedCharge c = audit_charge(pricer, in);
    INFO(json);
    REQUIRE_FALSE(c.cost.is_negative());
    // Never more than the check multiple of the catalog price of what was charged for, and
    // charged for at most the context window's tokens.
    REQUIRE(c.counts.prompt_tokens >= 0);
    REQUIRE(c.counts.completion_tokens >= 0);
    REQUIRE(c.counts.prompt_tokens <= 1000);
    REQUIRE(c.counts.completion_tokens <= 1000);
    REQUIRE(c.cost <= usd("0.006"));  // 2 x (1000 x 1e-6 + 1000 x 2e-6)
    // ... and never less than half the catalog price of the tokens charged for
    if (const auto listed = pricer.price("x/m", "x/m", {}, c.counts); listed && c.source != "reservation") {
      REQUIRE(c.cost * 2 >= *listed);
    }
    ReserveRequest r;
    r.amount = in.reserved;
    const ReserveOutcome o = ledger.reserve(r);
    REQUIRE(o.status == ReserveStatus::kReserved);
    CallRecord rec;
    rec.model_requested = "x/m";
    rec.cost = c.cost;
    rec.prompt_tokens = c.counts.prompt_tokens;
    rec.completion_tokens = c.counts.completion_tokens;
    rec.cost_source = c.source;
    ledger.settle(o.reservation_id, rec);
    booked += c.cost;
    ++settled;
  }
  CHECK(settled == 10'000);
  CHECK(ledger.total_cost({}) == booked);
  CHECK(ledger.live_reservations().first == 0);  // every reservation settled, none left to expire
}
