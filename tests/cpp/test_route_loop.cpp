#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <set>
#include <vector>

#include "orroute/error.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/route/health.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Runs posted functions in time order, moving the manual clock to each one's due time.
class ManualScheduler final : public Scheduler {
 public:
  explicit ManualScheduler(ManualClock& clock) : clock_(clock) {}
  void post(std::function<void()> fn, Duration delay) override {
    queue_.emplace(clock_.now() + delay, seq_++, std::move(fn));
  }
  void run() {
    while (!queue_.empty()) {
      auto node = queue_.extract(queue_.begin());
      auto& [at, seq, fn] = node.value();
      if (at > clock_.now()) clock_.advance(at - clock_.now());
      fn();
    }
  }

 private:
  struct Item {
    Instant at;
    uint64_t seq;
    mutable std::function<void()> fn;
    Item(Instant a, uint64_t s, std::function<void()> f) : at(a), seq(s), fn(std::move(f)) {}
    bool operator<(const Item& o) const { return at != o.at ? at < o.at : seq < o.seq; }
  };
  ManualClock& clock_;
  std::set<Item> queue_;
  uint64_t seq_ = 0;
};

// Answers each model's attempts from a script (then succeeds); can hold attempts open.
class FakeSender final : public AttemptSender {
 public:
  explicit FakeSender(ManualClock& clock) : clock_(clock) {}
  std::map<std::string, std::deque<AttemptResult>> script;
  std::vector<std::pair<std::string, Instant>> calls;
  bool hang = false;  // keep attempts open until cancelled
  AttemptDone pending;
  Duration latency = 100ms;

  std::function<void()> send(const std::string& model, int, AttemptDone done) override {
    calls.emplace_back(model, clock_.now());
    if (hang) {
      pending = done;
      return [this] {
        if (pending) {
          AttemptResult r;
          r.cancelled = true;
          auto p = std::move(pending);
          pending = nullptr;
          p(std::move(r));
        }
      };
    }
    AttemptResult r;
    auto& q = script[model];
    if (!q.empty()) {
      r = q.front();
      q.pop_front();
    } else {
      r.ok = true;
      r.http_status = 200;
      r.input_tokens = 10;
      r.output_tokens = 5;
    }
    clock_.advance(latency);
    done(std::move(r));
    return [] {};
  }
  std::vector<std::string> models() const {
    std::vector<std::string> out;
    for (auto& c : calls) out.push_back(c.first);
    return out;
  }

 private:
  ManualClock& clock_;
};

AttemptResult failure(int status, std::string message = "boom") {
  AttemptResult r;
  r.http_status = status;
  r.error_message = std::move(message);
  return r;
}

class FakeBudget final : public BudgetGate {
 public:
  Money limit = Money::dollars(1);
  bool stop = false;
  Money spent, reserved;
  std::map<uint64_t, Money> holds;
  uint64_t next = 1;
  Hold reserve(const std::string&, Money worst) override {
    if (spent + reserved + worst > limit) return {false, 0, "budget total exceeded", stop, ErrorKind::kBudgetExceeded};
    reserved += worst;
    holds[next] = worst;
    return {true, next++, "", false, ErrorKind::kBudgetExceeded};
  }
  void settle(uint64_t id, Money actual, const CallInfo&) override {
    reserved -= holds.at(id);
    holds.erase(id);
    spent += actual;
  }
  void release(uint64_t id) override {
    reserved -= holds.at(id);
    holds.erase(id);
  }
};

class FakePrices final : public PriceBook {
 public:
  std::map<std::string, int64_t> context = {{"big/x", 100000}, {"small/y", 1000}};
  std::optional<Money> worst_case(const std::string&, int64_t p, int64_t o) const override {
    return Money::parse("0.001") * (p + o);
  }
  Charge actual(const std::string&, const AttemptResult& r, Money) const override {
    return {r.reported_cost ? *r.reported_cost
                            : Money::parse("0.001") * (r.input_tokens + r.output_tokens),
            "upstream", "", std::nullopt};
  }
  std::optional<int64_t> context_length(const std::string& m) const override {
    auto it = context.find(m);
    if (it == context.end()) return std::nullopt;
    return it->second;
  }
};

struct Harness {
  ManualClock clock;
  ManualScheduler scheduler{clock};
  InMemoryRouterState state;
  Metrics metrics;
  FakeBudget budget;
  FakePrices prices;
  std::shared_ptr<FakeSender> sender = std::make_shared<FakeSender>(clock);
  LoopConfig config;
  LoopContext ctx;
  Harness() {
    BreakerConfig bc;
    bc.consecutive_failures = 3;
    bc.cooldown = 30s;
    state.set_breaker_config(bc);
    ctx.clock = &clock;
    ctx.state = &state;
    ctx.metrics = &metrics;
    ctx.scheduler = &scheduler;
    ctx.budget = &budget;
    ctx.prices = &prices;
    config.retry = {.max_retries_per_model = 2, .base_delay = 100ms, .max_delay = 1s,
                        .max_server_wait = 10s};
    config.max_admission_wait = 2s;
    ctx.config = &config;
  }
  RouteOutcome run(std::vector<std::string> candidates, int64_t prompt = 10, int64_t max_out = 20) {
    std::optional<RouteOutcome> out;
    start_route(ctx, {std::move(candidates), prompt, max_out, std::nullopt}, sender,
                [&](std::unique_ptr<RouteOutcome> o) { out = std::move(*o); });
    scheduler.run();
    REQUIRE(out.has_value());
    return std::move(*out);
  }
};

}  // namespace

TEST_CASE("first candidate answers: cost settled, metrics recorded", "[route][loop]") {
  Harness h;
  auto out = h.run({"a/1", "b/2"});
  REQUIRE(out.ok);
  REQUIRE(out.model == "a/1");
  REQUIRE(out.cost == Money::parse("0.015"));
  REQUIRE(h.budget.spent == Money::parse("0.015"));
  REQUIRE(h.budget.reserved.is_zero());
  REQUIRE(out.attempts.size() == 1);
  REQUIRE(out.attempts[0].outcome == "ok");
  REQUIRE(out.attempts[0].latency == Duration(100ms));
  REQUIRE(h.metrics.model("a/1", h.clock.now()).successes == 1);
}

TEST_CASE("transient errors retry the same model, then fall back in order", "[route][loop]") {
  Harness h;
  h.sender->script["a/1"] = {failure(500), failure(502), failure(503)};
  h.sender->script["b/2"] = {failure(0, "connection refused")};
  auto out = h.run({"a/1", "b/2", "c/3"});
  REQUIRE(out.ok);
  REQUIRE(out.model == "b/2");  // b/2's retry succeeded
  REQUIRE(h.sender->models() == std::vector<std::string>{"a/1", "a/1", "a/1", "b/2", "b/2"});
  REQUIRE(h.metrics.model("a/1", h.clock.now()).retries == 2);
  REQUIRE(h.metrics.model("a/1", h.clock.now()).fallbacks == 1);
  REQUIRE(h.metrics.model("a/1", h.clock.now()).errors_by_class.at("server") == 3);
  REQUIRE(h.budget.reserved.is_zero());
  REQUIRE(h.budget.spent == Money::parse("0.015"));
}

TEST_CASE("non-transient errors follow their recovery", "[route][loop]") {
  Harness h;
  SECTION("moderation and context length skip to the next model") {
    h.sender->script["a/1"] = {failure(403, "flagged")};
    h.sender->script["b/2"] = {failure(400, "maximum context length exceeded")};
    auto out = h.run({"a/1", "b/2", "c/3"});
    REQUIRE(out.ok);
    REQUIRE(h.sender->models() == std::vector<std::string>{"a/1", "b/2", "c/3"});
  }
  SECTION("402 stops without trying the fallbacks") {
    h.sender->script["a/1"] = {failure(402, "Insufficient credits")};
    auto out = h.run({"a/1", "b/2"});
    REQUIRE_FALSE(out.ok);
    REQUIRE(out.error == ErrorClass::kPaymentRequired);
    REQUIRE(out.http_status == 402);
    REQUIRE(h.sender->calls.size() == 1);
  }
  SECTION("400 and 401 are not retried") {
    h.sender->script["a/1"] = {failure(401)};
    auto out = h.run({"a/1", "b/2"});
    REQUIRE(out.error == ErrorClass::kAuthentication);
    REQUIRE(h.sender->calls.size() == 1);
  }
  SECTION("a stream that broke after content reached the caller is not replayed") {
    AttemptResult r = failure(0, "reset");
    r.content_delivered = true;
    h.sender->script["a/1"] = {r};
    auto out = h.run({"a/1", "b/2"});
    REQUIRE(out.error == ErrorClass::kStreamBroken);
    REQUIRE(h.sender->calls.size() == 1);
  }
}

TEST_CASE("a prompt that does not fit a model's context skips it without sending", "[route][loop]") {
  Harness h;
  h.budget.limit = Money::dollars(100);
  auto out = h.run({"small/y", "big/x"}, 5000, 10);
  REQUIRE(out.ok);
  REQUIRE(out.model == "big/x");
  REQUIRE(out.attempts[0].outcome == "skipped:context_too_long");
  REQUIRE(h.sender->models() == std::vector<std::string>{"big/x"});
}

TEST_CASE("Retry-After is waited and holds the model for everyone", "[route][loop]") {
  Harness h;
  AttemptResult r = failure(429, "rate limited");
  r.retry_after = "2";
  h.sender->script["a/1"] = {r};
  auto out = h.run({"a/1"});
  REQUIRE(out.ok);
  REQUIRE(h.sender->calls.size() == 2);
  REQUIRE(h.sender->calls[1].second - h.sender->calls[0].second >= Duration(2s));
  REQUIRE(out.attempts[1].waited == Duration(2s));
  SECTION("a wait beyond the bound moves on and leaves the hold for others") {
    AttemptResult longer = failure(429, "rate limited");
    longer.retry_after = "60";
    h.sender->script["a/1"] = {longer};
    h.sender->calls.clear();
    auto o2 = h.run({"a/1", "b/2"});
    REQUIRE(o2.model == "b/2");
    REQUIRE(h.state.held_for("model:a/1", h.clock.now()) > Duration(50s));
    h.sender->calls.clear();
    auto o3 = h.run({"a/1", "b/2"});  // another request: a/1 is skipped without a call
    REQUIRE(h.sender->models() == std::vector<std::string>{"b/2"});
    REQUIRE(o3.attempts[0].outcome == "skipped:rate_limited");
  }
}

TEST_CASE("an absurd Retry-After holds the model an hour at most", "[route][loop]") {
  // One hostile (or buggy) 429 must not take a model out of every run until the process ends
  // (or, with a shared router state, for good): after the cap it is tried again.
  const auto [header, value] = GENERATE(table<std::string, std::string>({
      {"retry_after", "99999999999999999999"},
      {"retry_after", "1e300"},
      {"retry_after", "Wed, 21 Oct 2999 07:28:00 GMT"},
      {"rate_limit_reset", "99999999999999"},  // epoch ms in the year 5138
  }));
  Harness h;
  AttemptResult r = failure(429, "rate limited");
  (header == "retry_after" ? r.retry_after : r.rate_limit_reset) = value;
  h.sender->script["a/1"] = {r};
  auto out = h.run({"a/1", "b/2"});
  REQUIRE(out.model == "b/2");
  INFO(header << ": " << value);
  REQUIRE(h.state.held_for("model:a/1", h.clock.now()) > Duration(30min));
  REQUIRE(h.state.held_for("model:a/1", h.clock.now()) <= Duration(1h));
  h.clock.advance(1h);
  h.sender->calls.clear();
  REQUIRE(h.run({"a/1", "b/2"}).model == "a/1");
}

TEST_CASE("an open circuit skips the model until the cooldown", "[route][loop]") {
  Harness h;
  h.config.retry.max_retries_per_model = 0;
  for (int i = 0; i < 3; ++i) {
    h.sender->script["a/1"].push_back(failure(500));
    auto out = h.run({"a/1", "b/2"});
    REQUIRE(out.model == "b/2");
  }
  h.sender->calls.clear();
  h.run({"a/1", "b/2"});
  REQUIRE(h.sender->models() == std::vector<std::string>{"b/2"});
  h.clock.advance(30s);
  h.sender->calls.clear();
  auto probe = h.run({"a/1", "b/2"});  // half-open probe succeeds
  REQUIRE(probe.model == "a/1");
}

static AttemptResult served_by(std::string provider) {
  AttemptResult r;
  r.ok = true;
  r.http_status = 200;
  r.input_tokens = 10;
  r.output_tokens = 5;
  r.provider = std::move(provider);
  return r;
}

static AttemptResult failed_at(std::string provider, int status = 502) {
  AttemptResult r = failure(status);
  r.provider = std::move(provider);
  return r;
}

TEST_CASE("one failing model does not open its author's other models", "[route][loop][breaker]") {
  Harness h;
  ProviderMemory providers;
  h.ctx.providers = &providers;
  h.config.endpoint = "api.test";
  h.config.retry.max_retries_per_model = 0;
  h.sender->script["p/one"] = {failure(500), failure(500), failure(500)};
  for (int i = 0; i < 3; ++i) h.run({"p/one", "q/x"});
  REQUIRE(h.state.breaker_snapshot("model:p/one", h.clock.now()).state == BreakerState::kOpen);
  h.sender->calls.clear();
  auto out = h.run({"p/one", "p/two"});
  REQUIRE(out.ok);
  REQUIRE(out.model == "p/two");
  REQUIRE(out.attempts[0].outcome == "skipped:circuit_open");
  REQUIRE(h.sender->models() == std::vector<std::string>{"p/two"});
  REQUIRE(h.state.breaker_snapshot("endpoint:api.test", h.clock.now()).state == BreakerState::kClosed);
}

TEST_CASE("a provider named by failing replies opens that provider's breaker only", "[route][loop][breaker]") {
  Harness h;
  ProviderMemory providers;
  h.ctx.providers = &providers;
  h.config.endpoint = "api.test";
  h.config.retry.max_retries_per_model = 0;
  // Learn who serves what: X serves a/one, b/two and c/four; Y serves a/three (same author).
  h.sender->script["a/one"] = {served_by("X"), failed_at("X"), failed_at("X")};
  h.sender->script["b/two"] = {served_by("X"), failed_at("X")};
  h.sender->script["a/three"] = {served_by("Y")};
  h.sender->script["c/four"] = {served_by("X")};
  for (const char* m : {"a/one", "b/two", "a/three", "c/four"}) REQUIRE(h.run({m}).ok);
  REQUIRE(providers.last("a/one") == "X");
  // Three failures named X, over two models: no model breaker opens, provider X does.
  h.run({"a/one", "q/x"});
  h.run({"b/two", "q/x"});
  h.run({"a/one", "q/x"});
  const Instant now = h.clock.now();
  REQUIRE(h.state.breaker_snapshot("provider:X", now).state == BreakerState::kOpen);
  REQUIRE(h.state.breaker_snapshot("provider:Y", now).state == BreakerState::kClosed);
  REQUIRE(h.state.breaker_snapshot("endpoint:api.test", now).state == BreakerState::kClosed);
  REQUIRE(h.state.breaker_snapshot("model:a/one", now).state == BreakerState::kClosed);
  h.sender->calls.clear();
  auto out = h.run({"c/four", "a/three"});  // c/four was last served by X: gated by its breaker
  REQUIRE(out.attempts[0].outcome == "skipped:provider_circuit_open");
  REQUIRE(out.model == "a/three");
  REQUIRE(h.sender->models() == std::vector<std::string>{"a/three"});
  // Health lists the open provider breaker and is degraded.
  std::vector<std::string> models{"a/three", "c/four"};
  std::vector<std::string> keys{"endpoint:api.test", "provider:X", "provider:Y"};
  const HealthReport report = assess_health(models, h.state, h.metrics, h.clock.now(), {}, keys);
  REQUIRE(report.overall == OverallHealth::kDegraded);
  REQUIRE(report.breakers.size() == 1);
  REQUIRE(report.breakers[0].kind == "provider");
  REQUIRE(report.breakers[0].name == "X");
  REQUIRE(report.breakers[0].state == BreakerState::kOpen);
}

TEST_CASE("a model's breaker keys are made once and are those its run would make", "[route][loop][breaker]") {
  LoopConfig config;
  config.endpoint = "api.test";
  ModelKeyMemory memory(config);
  const ModelKeys* first = memory.find("a/1");
  REQUIRE(first != nullptr);
  CHECK(first->model == "model:a/1");
  CHECK(first->endpoint == "endpoint:api.test");
  CHECK(memory.find("a/1") == first);  // kept, not made again
  SECTION("several providers: each model's own endpoint") {
    config.endpoint_of = [](const std::string& m) { return m == "b/2" ? std::string("b.test") : std::string(); };
    CHECK(memory.find("b/2")->endpoint == "endpoint:b.test");
    CHECK(memory.find("c/3")->endpoint.empty());
  }
  SECTION("without provider breakers no endpoint key") {
    config.provider_breakers = false;
    CHECK(memory.find("d/4")->endpoint.empty());
  }
  SECTION("past its cap a new model's keys are not kept") {
    for (size_t i = 1; i < ModelKeyMemory::kMaxModels; ++i) REQUIRE(memory.find("m/" + std::to_string(i)) != nullptr);
    CHECK(memory.find("m/new") == nullptr);
    CHECK(memory.find("a/1") == first);
  }
}

TEST_CASE("a run whose model's keys are not kept makes its own", "[route][loop][breaker]") {
  Harness h;
  ModelKeyMemory keys(h.config);
  h.ctx.keys = &keys;
  h.config.endpoint = "api.test";
  h.config.retry.max_retries_per_model = 0;
  for (size_t i = 0; i < ModelKeyMemory::kMaxModels; ++i) REQUIRE(keys.find("m/" + std::to_string(i)));
  AttemptResult timeout;
  timeout.timed_out = true;
  h.sender->script["z/9"] = {timeout, timeout, timeout};
  for (int i = 0; i < 3; ++i) REQUIRE_FALSE(h.run({"z/9"}).ok);
  CHECK(h.state.breaker_snapshot("model:z/9", h.clock.now()).state == BreakerState::kOpen);
  CHECK(h.state.breaker_snapshot("endpoint:api.test", h.clock.now()).state == BreakerState::kOpen);
}

TEST_CASE("the provider memory hands out each provider's breaker key, kept", "[route][loop][breaker]") {
  ProviderMemory providers;
  CHECK(providers.last_key("a/1").empty());
  const std::string_view key = providers.note("a/1", "Some Provider Inc");
  CHECK(key == "provider:Some Provider Inc");
  CHECK(providers.last_key("a/1") == key);
  CHECK(providers.note("b/2", "Some Provider Inc").data() == key.data());  // one key a name
  CHECK(providers.last("a/1") == "Some Provider Inc");
  CHECK(providers.note("a/1", "").empty());  // a reply naming none changes nothing
  CHECK(providers.last_key("a/1") == key);
}

// A harness for 100k calls that each bring a new name: no budget in the way, provider memory on.
struct ManyNamesHarness : Harness {
  static constexpr int kNames = 100'000;
  ProviderMemory providers;
  ModelKeyMemory keys{config};  // past its cap, the runs make their own keys
  ManyNamesHarness() {
    ctx.budget = nullptr;
    ctx.providers = &providers;
    ctx.keys = &keys;
  }
};

TEST_CASE("an upstream naming a new provider on every reply keeps the breakers bounded",
          "[route][loop][breaker]") {
  ManyNamesHarness h;
  ProviderMemory& providers = h.providers;
  constexpr int kNames = ManyNamesHarness::kNames;
  for (int i = 0; i < kNames; ++i) h.sender->script["a/1"].push_back(served_by("P" + std::to_string(i)));
  h.sender->script["a/1"].push_back(served_by("P0"));  // a name seen first keeps its own breaker
  for (int i = 0; i <= kNames; ++i) REQUIRE(h.run({"a/1"}).ok);
  const Instant now = h.clock.now();
  // model:a/1, the first names and (other): not one breaker per name the upstream made up
  REQUIRE(h.state.breaker_count() == 1 + ProviderMemory::kMaxNames + 1);
  REQUIRE(providers.last("a/1") == "P0");
  REQUIRE(h.state.breaker_snapshot("provider:P0", now).calls_in_window == 1);
  REQUIRE(h.state.breaker_snapshot("provider:P" + std::to_string(kNames - 1), now).calls_in_window == 0);
  REQUIRE(h.state.breaker_snapshot("provider:(other)", now).calls_in_window > 0);
}

TEST_CASE("failures before any reply open the endpoint breaker", "[route][loop][breaker]") {
  Harness h;
  ProviderMemory providers;
  h.ctx.providers = &providers;
  h.config.endpoint = "api.test";
  h.config.retry.max_retries_per_model = 0;
  AttemptResult timeout;
  timeout.timed_out = true;
  h.sender->script["a/1"] = {timeout};
  h.sender->script["b/2"] = {timeout};
  h.sender->script["c/3"] = {timeout};
  h.run({"a/1"});
  h.run({"b/2"});
  h.run({"c/3"});
  REQUIRE(h.state.breaker_snapshot("endpoint:api.test", h.clock.now()).state == BreakerState::kOpen);
  h.sender->calls.clear();
  auto out = h.run({"d/4"});
  REQUIRE_FALSE(out.ok);
  REQUIRE(out.attempts[0].outcome == "skipped:endpoint_circuit_open");
  REQUIRE(h.sender->calls.empty());
  std::vector<std::string> keys{"endpoint:api.test"};
  const HealthReport report = assess_health({}, h.state, h.metrics, h.clock.now(), {}, keys);
  REQUIRE(report.overall == OverallHealth::kDown);
  REQUIRE(report.breakers.size() == 1);
  REQUIRE(report.breakers[0].name == "api.test");
}

TEST_CASE("url_host takes the host of the base URL", "[route][loop][breaker]") {
  REQUIRE(url_host("https://openrouter.ai/api/v1") == "openrouter.ai");
  REQUIRE(url_host("http://user:pw@127.0.0.1:8080/v1?x") == "127.0.0.1:8080");
  REQUIRE(url_host("not a url").empty());
}

TEST_CASE("budget refusals skip to cheaper candidates or refuse before sending", "[route][loop]") {
  Harness h;
  h.budget.limit = Money::parse("0.05");
  SECTION("nothing fits: refused, nothing sent") {
    auto out = h.run({"a/1", "b/2"}, 100, 100);  // worst case 0.2 each
    REQUIRE_FALSE(out.ok);
    REQUIRE(out.budget_refused);
    REQUIRE(out.nothing_sent);
    REQUIRE(h.sender->calls.empty());
  }
  SECTION("in-flight reservations count until released, smaller requests still fit") {
    auto out = h.run({"a/1", "b/2"}, 10, 20);  // 0.03 fits
    REQUIRE(out.ok);
    std::optional<RouteOutcome> held;
    h.sender->hang = true;
    auto run = start_route(h.ctx, {{"a/1"}, 10, 10, std::nullopt}, h.sender, [&](std::unique_ptr<RouteOutcome> o) { held = std::move(*o); });
    // 0.015 spent + 0.02 reserved: a 0.03 request no longer fits, a 0.012 one does
    h.sender->hang = false;
    auto refused = h.run({"a/1"}, 10, 20);
    REQUIRE(refused.budget_refused);
    REQUIRE(refused.budget_error == ErrorKind::kBudgetExceeded);
    auto small = h.run({"a/1"}, 2, 10);
    REQUIRE(small.ok);
    run->cancel();
    REQUIRE(h.budget.reserved.is_zero());
  }
  SECTION("a refusal that must stop skips the other candidates") {
    h.budget.stop = true;
    auto out = h.run({"a/1", "b/2"}, 100, 100);
    REQUIRE(out.attempts.size() == 1);
    REQUIRE(out.budget_refused);
  }
  SECTION("a per-task cap skips candidates whose worst case is above it") {
    h.budget.limit = Money::dollars(100);
    RouteRequest req{{"a/1"}, 100, 100, Money::parse("0.1")};
    std::optional<RouteOutcome> out;
    start_route(h.ctx, req, h.sender, [&](std::unique_ptr<RouteOutcome> o) { out = std::move(*o); });
    h.scheduler.run();
    REQUIRE(out->budget_refused);
    REQUIRE(out->nothing_sent);
    REQUIRE(h.sender->calls.empty());
  }
}

TEST_CASE("rate limits wait up to the bound, else take the next candidate", "[route][loop]") {
  Harness h;
  h.state.set_limit("model:a/1", {.requests = 1, .window = 1s});
  h.run({"a/1"});
  h.sender->calls.clear();
  auto waited = h.run({"a/1", "b/2"});
  REQUIRE(waited.model == "a/1");  // 0.9s wait is within the 2s bound
  h.state.set_limit("model:a/1", {.requests = 1, .window = 10s});
  h.sender->calls.clear();
  auto moved = h.run({"a/1", "b/2"});
  REQUIRE(moved.model == "b/2");
  REQUIRE(moved.attempts[0].outcome == "skipped:rate_limited");
}

TEST_CASE("cancelling releases the reservation and reports cancelled", "[route][loop]") {
  Harness h;
  h.sender->hang = true;
  std::optional<RouteOutcome> out;
  auto run = start_route(h.ctx, {{"a/1"}, 10, 20, std::nullopt}, h.sender, [&](std::unique_ptr<RouteOutcome> o) { out = std::move(*o); });
  REQUIRE_FALSE(out.has_value());
  REQUIRE(h.budget.reserved == Money::parse("0.03"));
  run->cancel();
  REQUIRE(out.has_value());
  REQUIRE(out->error == ErrorClass::kCancelled);
  REQUIRE(h.budget.reserved.is_zero());
  REQUIRE(h.budget.spent.is_zero());
  run->cancel();  // idempotent
  SECTION("cancel during a backoff wait finishes at once") {
    h.sender->hang = false;
    h.sender->script["a/1"] = {failure(500)};
    std::optional<RouteOutcome> o2;
    auto r2 = start_route(h.ctx, {{"a/1"}, 10, 20, std::nullopt}, h.sender, [&](std::unique_ptr<RouteOutcome> o) { o2 = std::move(*o); });
    REQUIRE_FALSE(o2.has_value());  // retry scheduled
    r2->cancel();
    REQUIRE(o2->error == ErrorClass::kCancelled);
    h.scheduler.run();  // the scheduled retry finds the run finished
    REQUIRE(h.sender->calls.size() == 2);
  }
}

TEST_CASE("start_route refuses bad input", "[route][loop]") {
  Harness h;
  REQUIRE_THROWS_AS(start_route(h.ctx, {{}, 1, 1, std::nullopt}, h.sender, nullptr), InvalidArgument);
  REQUIRE_THROWS_AS(start_route(h.ctx, {{"a/1"}, -1, 1, std::nullopt}, h.sender, nullptr), InvalidArgument);
}

TEST_CASE("an attempt the upstream may bill although it was cut is settled, not released",
          "[route][loop][money]") {
  Harness h;
  AttemptResult cut = failure(0, "first_byte timeout after 300 ms");
  cut.timed_out = true;
  cut.abandoned = Abandonment::kClosedByUs;  // the whole request went out, then we hung up
  h.sender->script["a/1"] = {cut};
  auto out = h.run({"a/1"}, 10, 20);
  REQUIRE(out.ok);  // the retry answered
  // the cut attempt: its reservation (the default PriceBook::abandoned, 0.001 x 30 tokens)
  REQUIRE(out.abandoned_cost == Money::parse("0.030"));
  REQUIRE(h.budget.spent == Money::parse("0.030") + out.cost);
  REQUIRE(h.budget.reserved.is_zero());
  REQUIRE(h.budget.holds.empty());
}

TEST_CASE("a failed attempt the upstream did not bill releases its reservation", "[route][loop][money]") {
  Harness h;
  h.sender->script["a/1"] = {failure(503), failure(0, "connection reset")};
  auto out = h.run({"a/1"});
  REQUIRE(out.ok);
  REQUIRE(out.abandoned_cost.is_zero());
  REQUIRE(h.budget.spent == out.cost);
}

TEST_CASE("what a cut call is charged on: generated tokens or the reservation", "[money][abandoned]") {
  using A = Abandonment;
  using B = AbandonedBasis;
  CHECK(abandoned_basis(A::kClosedByUs, true, "OpenAI") == B::kGenerated);
  CHECK(abandoned_basis(A::kClosedByUs, true, "anthropic") == B::kGenerated);  // case-insensitive
  CHECK(abandoned_basis(A::kClosedByUs, true, "Groq") == B::kReservation);      // runs on
  CHECK(abandoned_basis(A::kClosedByUs, true, "") == B::kReservation);          // unknown: fail closed
  CHECK(abandoned_basis(A::kClosedByUs, false, "OpenAI") == B::kReservation);   // non-streamed runs on
  CHECK(abandoned_basis(A::kFailedMidAnswer, true, "Groq") == B::kGenerated);   // it stopped itself
  CHECK(abandoned_basis(A::kFailedMidAnswer, false, "Groq") == B::kReservation);
  CHECK_FALSE(cancellation_stops_billing("OpenAIX"));
  CHECK(abandoned_reason(A::kClosedByUs, B::kReservation, true, "Groq", 7) ==
        "cancelled after 7 answer tokens; Groq may bill the whole answer");
}

TEST_CASE("which cut attempts may be billed: sent in full, no error status, cut by us or mid-answer",
          "[money][abandoned]") {
  using A = Abandonment;
  // (request_sent, status, we_hung_up, answer_arrived)
  CHECK(abandonment_of(true, 0, true, false) == A::kClosedByUs);     // timed out before the head
  CHECK(abandonment_of(true, 200, true, true) == A::kClosedByUs);    // the consumer left a stream
  CHECK(abandonment_of(true, 200, false, true) == A::kFailedMidAnswer);
  CHECK(abandonment_of(false, 0, true, false) == A::kNone);          // never sent in full
  CHECK(abandonment_of(true, 500, true, false) == A::kNone);         // an error bills nothing
  CHECK(abandonment_of(true, 429, false, false) == A::kNone);
  CHECK(abandonment_of(true, 0, false, false) == A::kNone);          // reset, nothing generated
  CHECK(abandonment_of(true, 200, false, false) == A::kNone);
}

TEST_CASE("a caller naming a new model on every request keeps metrics, breakers and provider memory bounded",
          "[route][loop][metrics]") {
  ManyNamesHarness h;
  const ProviderMemory& providers = h.providers;
  constexpr int kNames = ManyNamesHarness::kNames;
  for (int i = 0; i < kNames; ++i) {
    const std::string model = "m/" + std::to_string(i);
    h.sender->script[model].push_back(served_by("P"));
    REQUIRE(h.run({model}).ok);
  }
  const Instant now = h.clock.now();
  // the first names keep figures of their own, every later one shares "(other)"'s
  REQUIRE(h.metrics.all(now).size() == Metrics::kMaxModels + 1);
  CHECK(h.metrics.model("m/0", now).successes == 1);
  CHECK(h.metrics.model("m/" + std::to_string(kNames - 1), now).calls == 0);
  CHECK(h.metrics.model("(other)", now).successes == kNames - static_cast<int>(Metrics::kMaxModels));
  REQUIRE(h.state.breaker_count() <= InMemoryRouterState::kMaxBreakers + 1);
  CHECK(providers.last("m/0") == "P");
  CHECK(providers.last("m/" + std::to_string(kNames - 1)).empty());  // not remembered past the cap
}

namespace {

// A shared state that knows breakers only key by key (as RedisRouterState): the base class's
// breakers_allow / breakers_record. Logs each breaker call and keeps the breakers in `inner`.
class PerKeyState final : public RouterState {
 public:
  InMemoryRouterState inner;
  std::vector<std::string> log;  // "allow <key> <0|1>", "record <key> <outcome>"
  std::string fail_on;            // a key whose allow throws (a shared state's store unreachable)

  void set_breaker_config(const BreakerConfig& c) override { inner.set_breaker_config(c); }
  bool breaker_allow(std::string_view key, Instant now) override {
    if (key == fail_on) throw Error("the shared state cannot be reached");
    const bool ok = inner.breaker_allow(key, now);
    log.push_back("allow " + std::string(key) + (ok ? " 1" : " 0"));
    return ok;
  }
  void breaker_record(std::string_view key, CallOutcome outcome, Instant now) override {
    inner.breaker_record(key, outcome, now);
    const char* o = outcome == CallOutcome::kSuccess ? "success" : outcome == CallOutcome::kOutage ? "outage" : "neutral";
    log.push_back("record " + std::string(key) + " " + o);
  }
  BreakerSnapshot breaker_snapshot(std::string_view key, Instant now) override {
    return inner.breaker_snapshot(key, now);
  }
  void set_limit(std::string_view scope, const RateLimit& limit) override { inner.set_limit(scope, limit); }
  Admission try_admit(std::span<const std::string> scopes, const LimitUsage& usage, Instant now) override {
    return inner.try_admit(scopes, usage, now);
  }
  void settle_admission(uint64_t ticket, const LimitUsage& actual) override { inner.settle_admission(ticket, actual); }
  void forget_admission(uint64_t ticket) override { inner.forget_admission(ticket); }
  void hold(std::string_view scope, Instant until) override { inner.hold(scope, until); }
  Duration held_for(std::string_view scope, Instant now) override { return inner.held_for(scope, now); }
  LimitUsage usage_in_window(std::string_view scope, Instant now) override { return inner.usage_in_window(scope, now); }
  void set_balancer(std::string_view group, const BalancerRules& rules) override { inner.set_balancer(group, rules); }
  std::optional<size_t> balancer_pick(std::string_view group, const std::vector<size_t>& exclude, Instant now) override {
    return inner.balancer_pick(group, exclude, now);
  }
  void balancer_finish(std::string_view group, size_t index, bool ok, Duration latency, Instant now) override {
    inner.balancer_finish(group, index, ok, latency, now);
  }
  void balancer_release(std::string_view group, size_t index, Instant now) override {
    inner.balancer_release(group, index, now);
  }
  void balancer_set_health(std::string_view group, size_t index, bool up, Instant now) override {
    inner.balancer_set_health(group, index, up, now);
  }
  std::vector<DeploymentView> balancer_view(std::string_view group, Instant now) override {
    return inner.balancer_view(group, now);
  }
};

// A run whose shared state is a PerKeyState (breakers opening at one failure, 30 s cooldown),
// with provider memory, endpoint "api.test" and no retry of a model.
struct SharedBreakers {
  Harness h;
  PerKeyState shared;
  ProviderMemory providers;
  ModelKeyMemory keys{h.config};
  SharedBreakers() {
    h.ctx.keys = &keys;
    BreakerConfig bc;
    bc.consecutive_failures = 1;
    bc.cooldown = 30s;
    shared.set_breaker_config(bc);
    h.ctx.state = &shared;
    h.ctx.providers = &providers;
    h.config.endpoint = "api.test";
    h.config.retry.max_retries_per_model = 0;
  }
};

}  // namespace

TEST_CASE("a shared state that knows breakers key by key gets every permit and every record",
          "[route][loop][breaker]") {
  SharedBreakers sb;
  Harness& h = sb.h;
  PerKeyState& shared = sb.shared;
  h.sender->script["a/1"] = {served_by("X"), served_by("X"), served_by("Y"), failed_at("Y")};
  REQUIRE(h.run({"a/1"}).ok);  // no provider known yet: the model's and the endpoint's
  REQUIRE(shared.log == std::vector<std::string>{"allow model:a/1 1", "allow endpoint:api.test 1",
                                                 "record model:a/1 success", "record provider:X success",
                                                 "record endpoint:api.test success"});
  shared.log.clear();
  REQUIRE(h.run({"a/1"}).ok);  // X served it last: its breaker is asked, and takes the answer
  REQUIRE(shared.log == std::vector<std::string>{"allow model:a/1 1", "allow endpoint:api.test 1",
                                                 "allow provider:X 1", "record model:a/1 success",
                                                 "record provider:X success",
                                                 "record endpoint:api.test success"});
  shared.log.clear();
  REQUIRE(h.run({"a/1"}).ok);  // routed to Y this time: Y recorded without a permit, X released
  REQUIRE(shared.log == std::vector<std::string>{"allow model:a/1 1", "allow endpoint:api.test 1",
                                                 "allow provider:X 1", "record model:a/1 success",
                                                 "record provider:Y success", "record provider:X neutral",
                                                 "record endpoint:api.test success"});
  shared.log.clear();
  REQUIRE_FALSE(h.run({"a/1"}).ok);  // a 502 named Y: the model's and Y's breakers open
  REQUIRE(shared.log == std::vector<std::string>{"allow model:a/1 1", "allow endpoint:api.test 1",
                                                 "allow provider:Y 1", "record model:a/1 outage",
                                                 "record provider:Y outage",
                                                 "record endpoint:api.test success"});
  shared.log.clear();
  // b/2 last served by Y (open): the model's and the endpoint's permits are given back.
  h.sender->script["b/2"] = {served_by("Y")};
  h.clock.advance(31s);  // Y half-open: one probe
  REQUIRE(h.run({"b/2"}).ok);
  shared.log.clear();
  REQUIRE(shared.breaker_allow("provider:Y", h.clock.now()));
  shared.breaker_record("provider:Y", CallOutcome::kOutage, h.clock.now());  // open again
  shared.log.clear();
  auto out = h.run({"b/2"});
  REQUIRE_FALSE(out.ok);
  REQUIRE(out.attempts[0].outcome == "skipped:provider_circuit_open");
  REQUIRE(out.attempts[0].message == "provider:Y");
  REQUIRE(shared.log == std::vector<std::string>{"allow model:b/2 1", "allow endpoint:api.test 1",
                                                 "allow provider:Y 0", "record model:b/2 neutral",
                                                 "record endpoint:api.test neutral"});
}

// A shared state's allow may throw (RedisRouterState: the store unreachable). The breakers asked
// before it hold a permit each, given back; the one that threw and those after it were never
// taken, so nothing of them is recorded: a "release" of a half-open breaker whose probe another
// call holds gave that probe back, and a second probe went out while the first was in flight.
TEST_CASE("a breaker whose allow threw is not released: another call's probe stays counted",
          "[route][loop][breaker]") {
  SharedBreakers sb;
  Harness& h = sb.h;
  PerKeyState& shared = sb.shared;
  h.sender->script["a/1"] = {served_by("X")};
  // The endpoint's breaker half-open, its one probe taken by another call still in flight.
  REQUIRE(shared.inner.breaker_allow("endpoint:api.test", h.clock.now()));
  shared.inner.breaker_record("endpoint:api.test", CallOutcome::kOutage, h.clock.now());
  h.clock.advance(31s);
  REQUIRE(shared.inner.breaker_allow("endpoint:api.test", h.clock.now()));
  REQUIRE_FALSE(shared.inner.breaker_allow("endpoint:api.test", h.clock.now()));  // one probe
  shared.fail_on = "endpoint:api.test";
  const auto out = h.run({"a/1"});
  REQUIRE_FALSE(out.ok);
  CHECK(h.sender->calls.empty());
  CHECK(shared.log == std::vector<std::string>{"allow model:a/1 1", "record model:a/1 neutral"});
  // the other call's probe is still in flight: no second one
  CHECK_FALSE(shared.inner.breaker_allow("endpoint:api.test", h.clock.now()));
}
