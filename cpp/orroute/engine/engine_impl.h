// The engine's state behind its public class: the HTTP client and scheduler, router state,
// metrics, analyzer, selector, pricer and feedback. Shared by the files that implement Engine.
#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/engine/cache_gate.h"
#include "orroute/engine/engine.h"
#include "orroute/engine/provider_routes.h"
#include "orroute/engine/selector_feed.h"
#include "orroute/engine/settle_worker.h"
#include "orroute/engine/transport_scheduler.h"

namespace orroute {

class Engine::Impl {
 public:
  Impl(Engine& e, const Clock* clk)
      : engine(e), clock(clk), state_owner(make_state(e.config_, *clk)), state(*state_owner),
        metrics(e.config_.metrics), analyzer(e.config_.thresholds) {}

  // In this process, or in Redis when the configuration names a server.
  static std::unique_ptr<RouterState> make_state(const EngineConfig& c, const Clock& clk);

  Engine& engine;
  const Clock* clock;
  std::shared_ptr<ApiClient> client;
  std::unique_ptr<TransportScheduler> scheduler;
  std::unique_ptr<RouterState> state_owner;
  RouterState& state;
  Metrics metrics;
  ComplexityAnalyzer analyzer;
  std::unique_ptr<ModelSelector> selector;
  SelectorFeed selector_feed;  // models whose call ended since the selector last read them
  std::mutex selector_feeding;  // held by the plan() that applies the feed
  std::unique_ptr<CallPricer> pricer;  // over the catalog in use (built after any refresh)
  // The attempt loop's settings every run reads (LoopContext::config points here): the configured
  // ones, the limiter's key scopes, the endpoint breaker's name (the base URL's host) and, with
  // several providers, each candidate's endpoint; made once here, not per call.
  LoopConfig loop;
  ModelKeyMemory breaker_keys{loop};  // each model's breaker keys under `loop` (LoopContext::keys)
  ProviderMemory providers;  // which upstream last served each model (provider breakers)
  std::unique_ptr<ProviderRoutes> routes;  // several providers (null: the one endpoint)

  mutable std::mutex feedback_mu;
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> feedback;
  std::shared_ptr<FeedbackStore> feedback_store;  // where feedback is kept; may be null
  CacheGate cache;  // the response cache (set_response_cache); no cache by default
  // Writes settles off the network thread (null: no ledger). Stopped after the transport, before
  // the rest of the engine: its completions still use it.
  std::unique_ptr<SettleWorker> settle_worker;

  // The endpoint breaker's name: the base URL's host.
  std::string endpoint() const { return url_host(client->config().base_url); }

  std::unordered_map<std::string, double> predicted(const std::string& task_type) const {
    std::unordered_map<std::string, double> out;
    std::lock_guard lock(feedback_mu);
    for (const auto& [key, v] : feedback) {
      if (key.second == task_type && v.second > 0) out[key.first] = v.first / static_cast<double>(v.second);
    }
    return out;
  }

  // A call to `model` ended (on the network thread): the selector reads its new figures before
  // the next ranking (feed_selector), not on the path that completes the call.
  void note_for_selector(const std::string& model) {
    if (selector) selector_feed.note(model, clock->now());
  }

  // Before a ranking: the selector takes the figures of every model whose call ended since.
  // Plans on other threads wait while one feeds, so none ranks before notes another took are
  // applied (the network thread's note() never waits on this).
  // A model whose router state cannot be read keeps its previous figures (SelectorFeed::apply).
  void feed_selector() {
    if (!selector) return;
    std::lock_guard lock(selector_feeding);
    selector_feed.apply([this](const std::string& model, Instant at) { update_selector(model, at); });
  }

  // Feeds measured behaviour back to the selector (every strategy avoids failing models), as
  // they stood when the model's latest call ended (`now`).
  void update_selector(const std::string& model, Instant now) {
    const SelectionFigures s = metrics.selection_figures(model, now);  // O(1): kept as recorded
    orroute::ModelMetrics mm;
    mm.success_rate = s.success_rate;
    if (s.latency_p50) mm.latency_ms = *s.latency_p50 * 1000.0;
    if (s.tokens_per_second_p50) mm.tokens_per_second = *s.tokens_per_second_p50;
    mm.available = state.breaker_snapshot("model:" + model, now).state != BreakerState::kOpen &&
                   state.held_for("model:" + model, now).count() == 0;
    try {
      selector->set_metrics(model, mm);
    } catch (const Error&) {
      // not a catalog model
    }
  }
};

}  // namespace orroute
