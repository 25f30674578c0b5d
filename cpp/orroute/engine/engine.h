// The engine: one per AIModelManager (or client). It composes the router's pieces along "the path
// of one request": count prompt tokens, analyze complexity, choose ordered candidates, then run the
// attempt loop (breakers, budget reservation, rate-limit admission, send over the shared transport,
// classify / retry / fall back, settle cost and metrics). Thread-safe; every call may come from any
// thread. Requests run asynchronously on the transport thread; callbacks never run under an engine
// lock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orroute/cache/cache_key.h"
#include "orroute/cache/response_cache.h"
#include "orroute/catalog/catalog.h"
#include "orroute/catalog/money.h"
#include "orroute/cost/budget_guard.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/cost/feedback_store.h"
#include "orroute/cost/ledger.h"
#include "orroute/cost/prepaid.h"
#include "orroute/engine/attempt_body.h"
#include "orroute/engine/catalog_prices.h"
#include "orroute/engine/settle_worker.h"
#include "orroute/indirect.h"
#include "orroute/net/api_client.h"
#include "orroute/net/chunk_queue.h"
#include "orroute/provider/balancer.h"
#include "orroute/provider/model_map.h"
#include "orroute/provider/provider.h"
#include "orroute/provider/provider_prices.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/route/complexity.h"
#include "orroute/route/health.h"
#include "orroute/route/metrics.h"
#include "orroute/route/router_state.h"
#include "orroute/select/selector.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

// A provider beside the engine's own endpoint: its settings and its own prices (by its model
// names; a model it cannot price is never sent there while a ledger is attached: money fails
// closed).
struct EngineProvider {
  ProviderConfig config;
  ProviderPrices prices;
};

// How one model's calls are spread over its deployments (the providers that serve it).
struct EngineModelGroup {
  std::string model;                    // the router's id
  std::vector<Deployment> deployments;  // provider names ("" = none listed: every provider serving it)
  BalancerOptions options;
};

struct EngineConfig {
  ClientConfig client;             // endpoint, keys, timeouts (its own retries are not used)
  LoopConfig loop;                 // retry policy, admission wait, key scopes
  BreakerConfig breaker;
  MetricsConfig metrics;
  ComplexityThresholds thresholds;
  Strategy strategy = Strategy::kBalanced;
  std::vector<std::string> fallbacks;  // non-empty: the exact order of models to try
  std::string preferred_model;         // tried first when set (then the ranking)
  std::map<std::string, RateLimit> limits;  // scope ("model:<id>", "key") -> limit
  int max_candidates = 4;              // from the selector's ranking
  int server_side_fallbacks = 0;       // also send OpenRouter's `models` list (at most 3)
  int64_t default_max_tokens = 1024;   // output bound when a task gives none (reserved, and sent
                                       // as max_tokens when a ledger is attached)
  PricingPolicy pricing;               // variants, routers, unknown ids, the usage cost check
  // Replace the given catalog by GET {base_url}/models when that answers (a custom or local
  // endpoint's own models are then selected and priced). Blocks the constructor up to ~5 s.
  bool refresh_catalog = false;
  // Where breaker state and rate-limit windows live: "" = in this process; "redis://..." =
  // shared by every engine using that Redis server and prefix (RedisRouterState).
  std::string router_state;
  // Several providers: the engine's own endpoint (`client`) is the provider `provider_name` (its
  // failover rank `provider_priority`); `providers` are the others. Each candidate model is tried
  // at every provider that serves it (`model_map`, derived from the catalog and each provider's
  // prices, plus overrides) in priority order, or in its group's balanced order, before the next
  // model: a failure at one provider (breaker open, 5xx, 402, timeout) goes to the same model at
  // the next. Empty `providers`: one endpoint, as before.
  std::string provider_name = "openrouter";
  int32_t provider_priority = 0;
  std::vector<EngineProvider> providers;
  ModelMap model_map;
  std::vector<EngineModelGroup> groups;
};

// One task to run.
struct EngineTask {
  std::string request_json;  // chat request body: {"messages": [...], ...}; "model" = preferred
  std::string task_type = "general";  // "general": guessed by the complexity analyzer
  std::string task_id;
  SpendScope scope;                   // project / conversation / tags the spend is booked to
  std::vector<std::string> fallbacks;  // per-task exact order (overrides the engine's)
  std::optional<Money> max_cost;       // most this task may cost (worst-case estimate)
  std::optional<double> min_quality;
  uint32_t required_capabilities = 0;
  // Rank the candidates with this strategy instead of the engine's, ignoring the body's "model"
  // and the engine's configured fallbacks (a gateway alias such as "orroute/auto": the selector
  // with this engine's measured latency, success and breaker state picks). Not used when
  // `fallbacks` is set.
  std::optional<Strategy> strategy;
  bool stream = false;
  bool use_cache = true;  // false: this task skips the response cache (when the engine has one)
  // Shared with sibling tasks (the gateway's n choices): the first run reserves for all of them,
  // all or none, and each run's first reservation is its share (cost/prepaid.h).
  std::shared_ptr<Prepaid> prepaid;
};

// What the engine decided before sending.
struct EnginePlan {
  std::vector<std::string> candidates;
  // Why the candidates, after the complexity's reasons (the selector's, ...): plan_reasons()
  // gives the whole list, the complexity's made from its figures when read.
  std::vector<std::string> later_reasons;
  // The candidates are the task's or the engine's exact order (no selection, no later reasons):
  // plan_reasons() says so (a flag, not a text made and kept in later_reasons every call).
  bool explicit_order = false;
  Complexity complexity;
  std::string task_type;  // used for selection (declared or guessed)
  // Our count of the prompt's text (what submit() hands the prices as the request's count) and
  // the tokens its images take in the counting model's context (image_context_tokens); the plan
  // shows their sum.
  int64_t prompt_tokens = 0;
  int64_t image_tokens = 0;
  int64_t max_tokens = 0;
  std::optional<Money> estimate;  // worst case on the first candidate

  // What plan() already derived from the request, so submit() neither parses nor counts it again
  // (internal: not part of the plan shown to Python): the messages as counted (shared with the
  // run's prices, which count them for another tokenizer when a fallback needs it: no JSON text
  // written and parsed again) and the tools as JSON text. Null messages: submit() derives them.
  std::shared_ptr<const std::vector<ChatMessage>> messages;
  std::string tools_json;
  std::optional<RequestShape> shape;  // its `models` the request's own (submit() adds its fallbacks)
  // Prompt tokens by tokenizer (the key of tokenizer_key()), as counted for this request, each
  // with the model it was counted for.
  std::vector<PromptCount> prompt_counts;
  // The first candidate's attempt body, from the request as plan() parsed it (PlanUse::kSend).
  std::optional<PreparedAttempt> first_attempt;
};

// Every reason of `plan`, as shown to a caller: the complexity's (complexity_reasons), its line
// ("complexity 0.12 -> economy"), then later_reasons. Never throws except std::bad_alloc.
std::vector<std::string> plan_reasons(const EnginePlan& plan);

// Made once a call on the heap (DoneCallback): kept within glibc's per-thread cache (a static_assert
// in submit.cpp), so its outcome (848 bytes) and its rare API error are held apart (indirect.h).
struct EngineResult {
  EngineResult() = default;
  // A run's result made with its outcome taken over (not null) and its plan moved in.
  EngineResult(std::unique_ptr<RouteOutcome> outcome, EnginePlan&& run_plan)
      : route(std::move(outcome)), plan(std::move(run_plan)) {}

  Indirect<RouteOutcome> route;   // ok, error class, attempts, cost, model
  // The last API failure (for the Python exception); null when none. Immutable, so a copied
  // result shares it.
  std::shared_ptr<const ApiError> api_error;
  ErrorKind budget_error = ErrorKind::kBudgetExceeded;  // route.budget_refused: what refused
  std::string completion_json;    // the response in OpenAI shape (streams: assembled)
  ReplySummary summary;           // its id and first message text (route.ok only)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  EnginePlan plan;
  // Threshold alerts the settle of this call crossed (each fired once across every process
  // sharing the ledger): the caller delivers them (callbacks, webhook).
  std::vector<Alert> alerts;
  bool cut_at_reservation = false;  // streamed: cut (finish reason "length") at its reservation
  // With several providers: the provider that answered (or was tried last) and its name for the
  // model; "" with one endpoint.
  std::string provider;
  std::string provider_model;
};

// Called with each streamed chunk's JSON text (the upstream's bytes, never re-encoded) on the
// transport thread; must not block. kPause: the chunk is taken but the consumer is behind: the
// transfer is paused (libcurl keeps the bytes) until EngineRun::resume(), once per kPause.
// kCancel stops the run.
using ChunkCallback = std::function<ChunkAction(const std::string&)>;
// Called once with the run's result, never null, the callee's to keep: made on the heap where the
// caller keeps it (a result handed over by reference was moved into the caller's own, ~0.9k
// instructions of a call, and the moved-from one destroyed).
using DoneCallback = std::function<void(std::unique_ptr<EngineResult>)>;

// Handle of a submitted task. Thread-safe.
class EngineRun {
 public:
  EngineRun(std::shared_ptr<RouteRun> run, std::function<void()> resume,
            std::function<std::pair<std::string, int>()> progress)
      : run_(std::move(run)), resume_(std::move(resume)), progress_(std::move(progress)) {}
  // Cancels: the attempt in flight is aborted, the reservation released; on_done reports
  // cancelled (unless it already finished). Idempotent.
  void cancel() { run_->cancel(); }
  // Resumes reading the stream after the chunk callback answered kPause. Call once per kPause;
  // may come before the pause took effect (it then cancels it). No-op once finished.
  void resume() { resume_(); }
  // The model of the latest attempt sent ("" before the first) and how many were sent.
  std::pair<std::string, int> progress() const { return progress_(); }

 private:
  std::shared_ptr<RouteRun> run_;
  std::function<void()> resume_;
  std::function<std::pair<std::string, int>()> progress_;
};

class Engine {
 public:
  // `catalog` must not be null; `ledger` may be null (no budgets, nothing recorded). `clock` must
  // outlive the engine. Throws InvalidArgument for a bad configuration.
  // `priors` are the selector's quality priors (empty: tier defaults only).
  Engine(EngineConfig config, std::shared_ptr<const ModelCatalog> catalog,
         std::shared_ptr<Ledger> ledger, QualityPriors priors = {},
         const Clock* clock = &SteadyClock::instance());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Counts, analyzes and selects. Throws InvalidArgument (malformed request), NoModelAvailable.
  // kSend: the plan is for submit(), and carries the first attempt's body (made from the request
  // as parsed here); kShow (estimates, `plan()` in Python) does not make it.
  enum class PlanUse { kShow, kSend };
  EnginePlan plan(const EngineTask& task, PlanUse use = PlanUse::kShow) const;

  // Runs `task` with `plan`. `on_done` is called exactly once (transport thread, or the caller's
  // thread if it fails at once). Cancel through the returned handle.
  // `plan` is taken over (a reference: a by-value plan was one more move of it a call).
  std::shared_ptr<EngineRun> submit(const EngineTask& task, EnginePlan&& plan, ChunkCallback on_chunk,
                                    DoneCallback on_done);
  // plan + submit + wait. Blocks the calling thread.
  EngineResult run(const EngineTask& task);

  HealthReport health() const;
  std::vector<ModelStats> metrics() const;
  // Records a quality score in [0, 1] for `model` on `task_type`; later selections use the mean.
  // With a feedback store, the score is written there first (`source`, `result_id` go with it).
  // Throws InvalidArgument if the score is outside [0, 1], Error if the store fails.
  void record_feedback(const std::string& model, const std::string& task_type, double score,
                       const std::string& source = "user", const std::string& result_id = "");
  // Keeps feedback in `store` (normally the ledger's, open_feedback_store): adds the scores
  // recorded there to the selector's means now, and writes every later record_feedback() through.
  // Scores other processes record later are seen by engines created after them. Call once, before
  // the engine is shared. Throws Error if the store cannot be read.
  void set_feedback_store(std::shared_ptr<FeedbackStore> store);
  // Answers repeated requests from `cache` (null: no cache), under `policy` (see
  // engine/cache_gate.h: consulted before reserving; a hit costs $0 and is recorded). Call once,
  // before the engine is shared.
  void set_response_cache(std::shared_ptr<ResponseCache> cache, CachePolicy policy = {});
  // Sets (or removes, when unlimited) a rate limit.
  void set_limit(const std::string& scope, const RateLimit& limit);

  BudgetGuard* budget_guard() { return guard_.get(); }
  // Batches and settles the settle worker has written (all zero without a ledger).
  SettleWorker::Stats settle_stats() const;
  const ModelCatalog& catalog() const { return *catalog_; }
  // The catalog in use (the endpoint's /models when refresh_catalog fetched it).
  std::shared_ptr<const ModelCatalog> catalog_ptr() const { return catalog_; }
  // The engine's HTTP client (its one libcurl loop), for other calls to the same endpoint.
  std::shared_ptr<ApiClient> client() const;
  const EngineConfig& config() const { return config_; }

 private:
  class Impl;
  // Answers `task` from the cache (engine/cache_gate.h) through the caller's callbacks.
  std::shared_ptr<EngineRun> serve_cached(const CachedReply& hit, const EngineTask& task,
                                          EnginePlan plan, const ChunkCallback& on_chunk,
                                          DoneCallback on_done);
  EngineConfig config_;
  std::shared_ptr<const ModelCatalog> catalog_;
  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<BudgetGuard> guard_;  // shared with the runs' gates, which may outlive the engine
  std::unique_ptr<Impl> impl_;
};

}  // namespace orroute
