// No exception reaches std::terminate on the transport thread or in the attempt loop: a sink that
// throws, a posted function that throws, a budget gate / router state that throws, and a
// completion callback that throws each end their own piece of work and nothing else. (Each of
// these aborted the whole test binary before the containment was added.)
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <stdexcept>

#include "orroute/net/transport.h"
#include "orroute/route/attempt_loop.h"

using namespace orroute;
using namespace std::chrono_literals;

namespace {

// Proves the transport thread is still alive: a posted function runs.
bool transport_alive(Transport& t) {
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  t.post([p] { p->set_value(); });
  return f.wait_for(10s) == std::future_status::ready;
}

class ThrowingSink final : public Sink {
 public:
  std::atomic<int> done_calls{0};
  DataAction on_data(std::string_view) override { throw std::runtime_error("sink on_data"); }
  void on_done(const TransferResult&) override {
    ++done_calls;
    throw std::runtime_error("sink on_done");
  }
};

}  // namespace

TEST_CASE("a posted function that throws does not end the transport thread", "[no_terminate]") {
  Transport t;
  t.post([] { throw std::runtime_error("posted"); });
  t.post([] { throw 42; });  // not even a std::exception
  CHECK(transport_alive(t));
}

TEST_CASE("a sink whose callbacks throw ends only its transfer", "[no_terminate]") {
  Transport t;
  auto sink = std::make_shared<ThrowingSink>();
  HttpRequest req;
  req.method = "GET";
  req.url = "http://127.0.0.1:1/refused";  // connection refused: on_done with an error
  req.timeouts.connect_ms = 2000;
  req.timeouts.total_ms = 5000;
  t.submit(req, sink);
  for (int i = 0; i < 500 && sink->done_calls == 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(sink->done_calls == 1);
  CHECK(transport_alive(t));
}

namespace {

class InlineScheduler final : public Scheduler {
 public:
  void post(std::function<void()> fn, Duration) override { fn(); }
};

class ThrowingGate final : public BudgetGate {
 public:
  Hold reserve(const std::string&, Money) override { throw std::runtime_error("ledger down"); }
  void settle(uint64_t, Money, const CallInfo&) override {}
  void release(uint64_t) override {}
};

class Prices final : public PriceBook {
 public:
  std::optional<Money> worst_case(const std::string&, int64_t, int64_t) const override {
    return Money::parse("0.01");
  }
  Charge actual(const std::string&, const AttemptResult&, Money) const override {
    throw std::runtime_error("pricing failed");
  }
  std::optional<int64_t> context_length(const std::string&) const override { return std::nullopt; }
};

class OkSender final : public AttemptSender {
 public:
  std::function<void()> send(const std::string&, int, AttemptDone done) override {
    AttemptResult r;
    r.ok = true;
    r.http_status = 200;
    done(std::move(r));
    return [] {};
  }
};

struct Loop {
  const SteadyClock& clock = SteadyClock::instance();
  InMemoryRouterState state;
  Metrics metrics;
  InlineScheduler scheduler;
  LoopContext ctx;
  Loop() {
    ctx.clock = &clock;
    ctx.state = &state;
    ctx.metrics = &metrics;
    ctx.scheduler = &scheduler;
  }
};

}  // namespace

TEST_CASE("a budget gate that throws fails the run, not the process", "[no_terminate]") {
  Loop l;
  ThrowingGate gate;
  Prices prices;
  l.ctx.budget = &gate;
  l.ctx.prices = &prices;
  std::optional<RouteOutcome> out;
  start_route(l.ctx, {{"m/a"}, 10, 10, std::nullopt}, std::make_shared<OkSender>(),
              [&](std::unique_ptr<RouteOutcome> o) { out = std::move(*o); });
  REQUIRE(out.has_value());
  CHECK_FALSE(out->ok);
  CHECK(out->message.find("ledger down") != std::string::npos);
}

TEST_CASE("pricing that throws on an answer fails the run, and the reservation is released",
          "[no_terminate]") {
  struct CountingGate final : BudgetGate {
    int reserved = 0, released = 0, settled = 0;
    Hold reserve(const std::string&, Money) override { return {true, uint64_t(++reserved), "", false, ErrorKind::kBudgetExceeded}; }
    void settle(uint64_t, Money, const CallInfo&) override { ++settled; }
    void release(uint64_t) override { ++released; }
  } gate;
  Loop l;
  Prices prices;
  l.ctx.budget = &gate;
  l.ctx.prices = &prices;
  std::optional<RouteOutcome> out;
  start_route(l.ctx, {{"m/a"}, 10, 10, std::nullopt}, std::make_shared<OkSender>(),
              [&](std::unique_ptr<RouteOutcome> o) { out = std::move(*o); });
  REQUIRE(out.has_value());
  CHECK_FALSE(out->ok);
  CHECK(gate.reserved == 1);
  CHECK(gate.released == 1);  // not left to expire
  CHECK(gate.settled == 0);
}

TEST_CASE("a completion callback that throws is contained by the loop", "[no_terminate]") {
  Loop l;
  bool called = false;
  start_route(l.ctx, {{"m/a"}, 10, 10, std::nullopt}, std::make_shared<OkSender>(),
              [&](std::unique_ptr<RouteOutcome>) {
                called = true;
                throw std::runtime_error("caller's bug");
              });
  CHECK(called);
}
