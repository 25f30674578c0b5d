// Engine::submit and Engine::run: one task through the attempt loop, with this run's prices,
// budget gate and sender.
#include <rapidjson/document.h>

#include <future>
#include <memory>
#include <optional>
#include <utility>

#include "orroute/cache/replay.h"
#include "orroute/engine/attempt_body.h"
#include "orroute/engine/cache_gate.h"
#include "orroute/engine/catalog_prices.h"
#include "orroute/engine/chat_sender.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/engine.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/engine/ledger_gate.h"
#include "orroute/engine/routed_prices.h"
#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {

// Every call's result is made with make_unique (no header before it): within glibc's per-thread
// cache (requests up to 1032 bytes) as the sink is (chat_sender.cpp). At 1,936 bytes, its outcome
// and API error inline, its allocation took malloc's large-chunk path: ~500 instructions and ~45
// first-level cache misses a call (session 26, foot17 and foot18).
static_assert(sizeof(EngineResult) <= 1032, "EngineResult left glibc's per-thread cache (see above)");

std::shared_ptr<EngineRun> Engine::submit(const EngineTask& task, EnginePlan&& plan,
                                          ChunkCallback on_chunk, DoneCallback on_done) {
  // plan() hands over the messages, tools, shape and prompt counts it derived: no second parse.
  std::shared_ptr<const std::vector<ChatMessage>> messages = std::move(plan.messages);
  std::string tools_json = std::move(plan.tools_json);
  if (!messages) {
    rapidjson::Document body;
    if (parse_json_text(task.request_json, body) != JsonParse::kOk || !body.IsObject() ||
        !body.HasMember("messages")) {
      throw InvalidArgument("task request must be a JSON object with messages (plan() it first)");
    }
    try {
      messages = std::make_shared<const std::vector<ChatMessage>>(chat_messages_of(body["messages"]));
    } catch (const ParseError&) {  // not countable: the prices fall back to the plan's count
    }
    tools_json = body.HasMember("tools") ? json_text(body["tools"]) : std::string();
  }
  // The response cache first: a hit reserves nothing and sends nothing; but under the emergency
  // cutoff it is not served, and the reservation below refuses the call.
  std::string cache_key =
      cache_key_for(impl_->cache, task, impl_->client->config().base_url, plan.candidates);
  std::optional<CachedReply> hit = cache_lookup(impl_->cache, cache_key);
  if (hit && !cutoff_refuses_hit(ledger_.get())) {
    return serve_cached(*hit, task, std::move(plan), on_chunk, std::move(on_done));
  }

  std::vector<std::string> server_models = server_fallbacks(plan.candidates, config_.server_side_fallbacks);
  // Under a ledger the request carries the max_tokens that was reserved, and answers are metered.
  const int64_t meter_limit = guard_ ? plan.max_tokens : 0;
  // plan()'s shape holds the request's own `models` only (as request_shape reads them).
  RequestShape shape = plan.shape ? std::move(*plan.shape) : request_shape(task.request_json);
  // they may answer too: reserve for them (none without server-side fallbacks: the vector's
  // assignment, nothing to nothing, was ~40 instructions and its own code read a call)
  if (shape.models.empty() && !server_models.empty()) shape.models = server_models;
  plan.shape.reset();
  const int64_t output_limit = guard_ ? reserved_output_tokens(plan.max_tokens, shape) : 0;
  // Several providers: each model at every provider serving it (balanced groups in their order).
  ProviderRoutes* routes = impl_->routes.get();
  std::vector<BalancerPick> picks;
  std::vector<std::string> candidates = plan.candidates;
  if (routes) candidates = routes->expand(plan.candidates, impl_->clock->now(), picks);
  auto sender = std::make_shared<ChatSender>(impl_->client, impl_->clock, task.request_json,
                                             task.stream, std::move(server_models),
                                             std::move(on_chunk), meter_limit);
  sender->set_output_limit(output_limit);
  // Per-run pieces: prices (per-family prompt counts) and the budget gate (scope, task id).
  auto prices = std::make_shared<CatalogPrices>(*impl_->pricer, std::move(messages),
                                                std::move(tools_json), std::move(shape),
                                                plan.prompt_tokens);
  prices->seed(std::move(plan.prompt_counts));
  prices->set_output_bound(output_limit);
  if (routes) sender->set_routes(routes);
  if (plan.first_attempt) sender->set_prepared(std::move(*plan.first_attempt));
  plan.first_attempt.reset();
  std::shared_ptr<PriceBook> book = prices;
  if (routes) book = std::make_shared<RoutedPrices>(prices, *routes);
  std::shared_ptr<LedgerGate> gate;
  if (guard_) {
    gate = std::make_shared<LedgerGate>(guard_, task.scope, task.task_id, plan.task_type,
                                        *catalog_, *book, plan.prompt_tokens, plan.max_tokens);
    if (routes) gate->set_routed_as(config_.provider_name);
    gate->set_prepaid(task.prepaid);
    gate->hold_for(task.stream ? config_.client.stream_timeouts.total_ms : config_.client.timeouts.total_ms);
  }

  LoopContext ctx;
  ctx.clock = impl_->clock;
  ctx.state = &impl_->state;
  ctx.metrics = &impl_->metrics;
  ctx.scheduler = impl_->scheduler.get();
  ctx.budget = gate.get();
  ctx.prices = book.get();
  ctx.config = &impl_->loop;
  ctx.keys = &impl_->breaker_keys;
  ctx.providers = &impl_->providers;

  RouteRequest req;
  req.candidates = std::move(candidates);
  req.prompt_tokens = plan.prompt_tokens;
  req.max_output_tokens = plan.max_tokens;
  req.max_cost = task.max_cost;

  Impl* impl = impl_.get();
  // A std::function made from the lambda itself takes it over with one move (a lambda moved into
  // start_route's argument was moved twice: the plan and the rest in it with it).
  RouteDone finish = [impl, sender, prices, book, gate, routes, picks = std::move(picks), plan = std::move(plan),
                      cache_key = std::move(cache_key),
                      on_done = std::move(on_done)](std::unique_ptr<RouteOutcome> out) mutable {
    cache_store(impl->cache, cache_key, *out, out->result.body);
    // The outcome taken over and the plan moved in as the result is made (assigned over default
    // ones, they were a construction and a move-assignment of each of their members); what the
    // caller reads apart is taken from the outcome there. Made where the caller keeps it
    // (DoneCallback).
    auto res = std::make_unique<EngineResult>(std::move(out), std::move(plan));
    RouteOutcome& outcome = *res->route;
    if (routes) {
      // The balancers learn how their picks went; a pick never sent is only released.
      for (const BalancerPick& p : picks) {
        const AttemptRecord* sent = nullptr;
        for (const AttemptRecord& a : outcome.attempts) {
          if (a.model == p.candidate && a.outcome.rfind("skipped:", 0) != 0) sent = &a;
        }
        try {
          if (sent) {
            impl->state.balancer_finish(p.group, p.index, sent->outcome == "ok", sent->latency, impl->clock->now());
          } else {
            impl->state.balancer_release(p.group, p.index, impl->clock->now());
          }
        } catch (const std::exception&) {
          // shared state unreachable: balancing state only, the call itself is settled
        }
      }
      if (!outcome.model.empty()) {
        const auto [model, provider] = ProviderRoutes::split(outcome.model);
        const ProviderRoute* r = routes->route(outcome.model);
        res->provider = r ? r->name : provider;
        res->provider_model = routes->native(outcome.model);
        outcome.model = model;
      }
    }
    if (!outcome.ok) {  // an answer clears earlier failures
      if (std::optional<ApiError> failure = sender->last_error()) {
        res->api_error = std::make_shared<const ApiError>(std::move(*failure));
      }
    }
    res->budget_error = outcome.budget_error;
    res->completion_json = std::move(outcome.result.body);  // the caller's copy; the outcome's is spent
    if (outcome.ok) {
      // Read by the sink's parse of a plain reply; a stream's assembled reply is read here.
      res->summary = outcome.result.summary ? std::move(*outcome.result.summary) : reply_summary(res->completion_json);
    }
    res->prompt_tokens = outcome.result.input_tokens;
    res->completion_tokens = outcome.result.output_tokens;
    res->cut_at_reservation = outcome.ok && outcome.result.cut_at_reservation;
    if (!outcome.model.empty()) impl->note_for_selector(outcome.model);  // read at the next ranking
    if (!gate) {
      if (on_done) on_done(std::move(res));
      return;
    }
    // The settle is written off the network thread (batched with other runs'); the caller hears
    // of the call once its row is in the ledger, with the alerts it crossed. With no other
    // transfer in flight and the worker idle, writing it here stalls nobody and saves a thread
    // hop (one wake-up to complete a call, as without a ledger).
    SettleWorker* worker = impl->settle_worker.get();
    if (worker && sender->transport_active() == 0 && worker->idle()) worker = nullptr;
    // (std::function copies what it holds: the result's pointer is shared until it is handed on)
    auto held = std::make_shared<std::unique_ptr<EngineResult>>(std::move(res));
    gate->commit(worker, [gate, held, on_done = std::move(on_done)] {
      (*held)->alerts = gate->take_alerts();
      if (on_done) on_done(std::move(*held));
    });
  };
  auto run = start_route(std::move(ctx), std::move(req), sender, std::move(finish));
  // The run holds the sender as long as the handle holds the run: a plain pointer, which the
  // std::functions keep inline (a shared_ptr copy was an allocation each).
  ChatSender* const raw = sender.get();
  return std::make_shared<EngineRun>(std::move(run), [raw] { raw->resume(); },
                                     [raw] { return raw->progress(); });
}

namespace {

// The handle of a task answered from the cache: already finished, nothing to cancel.
class FinishedRun final : public RouteRun {
 public:
  void cancel() override {}
};

}  // namespace

std::shared_ptr<EngineRun> Engine::serve_cached(const CachedReply& hit, const EngineTask& task,
                                                EnginePlan plan, const ChunkCallback& on_chunk,
                                                DoneCallback on_done) {
  auto res = std::make_unique<EngineResult>(cache_hit_result(hit, std::move(plan), task, ledger_.get()));
  if (task.stream && on_chunk) {
    // Bounded by the cached reply's size (the store keeps none above kMaxCachedReplyBytes); a
    // consumer behind (kPause) just has these queued.
    for (const std::string& chunk : replay_chunks(res->completion_json)) {
      if (on_chunk(chunk) == ChunkAction::kCancel) break;
    }
  }
  const std::string model = hit.model;
  if (on_done) on_done(std::move(res));
  return std::make_shared<EngineRun>(std::make_shared<FinishedRun>(), [] {},
                                     [model] { return std::pair<std::string, int>{model, 0}; });
}

EngineResult Engine::run(const EngineTask& task) {
  EnginePlan p = plan(task, PlanUse::kSend);
  auto promise = std::make_shared<std::promise<EngineResult>>();
  auto future = promise->get_future();
  submit(task, std::move(p), nullptr,
         [promise](std::unique_ptr<EngineResult> r) { promise->set_value(std::move(*r)); });
  return future.get();
}

}  // namespace orroute
