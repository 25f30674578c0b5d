// Engine::submit and Engine::run: one task through the attempt loop, with this run's prices,
// budget gate and sender.
#include <rapidjson/document.h>

#include <future>
#include <memory>
#include <utility>

#include "orroute/engine/catalog_prices.h"
#include "orroute/engine/chat_sender.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/engine.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/engine/ledger_gate.h"
#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {

std::shared_ptr<EngineRun> Engine::submit(const EngineTask& task, EnginePlan plan,
                                          ChunkCallback on_chunk, DoneCallback on_done) {
  rapidjson::Document body;
  if (parse_json_text(task.request_json, body) != JsonParse::kOk || !body.IsObject() || !body.HasMember("messages")) {
    throw InvalidArgument("task request must be a JSON object with messages (plan() it first)");
  }
  const std::string messages_json = json_text(body["messages"]);
  const std::string tools_json = body.HasMember("tools") ? json_text(body["tools"]) : std::string();

  std::vector<std::string> server_models;
  if (config_.server_side_fallbacks > 0) {
    for (size_t i = 1; i < plan.candidates.size() &&
                       static_cast<int>(server_models.size()) < config_.server_side_fallbacks; ++i) {
      server_models.push_back(plan.candidates[i]);
    }
  }
  // Under a ledger the request carries the max_tokens that was reserved, and answers are metered.
  const int64_t meter_limit = guard_ ? plan.max_tokens : 0;
  RequestShape shape = request_shape(task.request_json);
  if (shape.models.empty()) shape.models = server_models;  // they may answer too: reserve for them
  auto sender = std::make_shared<ChatSender>(impl_->client, impl_->clock, task.request_json,
                                             task.stream, std::move(server_models),
                                             std::move(on_chunk), meter_limit);
  // Per-run pieces: prices (per-family prompt counts) and the budget gate (scope, task id).
  auto prices = std::make_shared<CatalogPrices>(*impl_->pricer, messages_json, tools_json,
                                                std::move(shape), plan.prompt_tokens);
  std::shared_ptr<LedgerGate> gate;
  if (guard_) {
    gate = std::make_shared<LedgerGate>(*guard_, task.scope, task.task_id, plan.task_type,
                                        *catalog_, *prices, plan.prompt_tokens, plan.max_tokens);
  }

  LoopContext ctx;
  ctx.clock = impl_->clock;
  ctx.state = &impl_->state;
  ctx.metrics = &impl_->metrics;
  ctx.scheduler = impl_->scheduler.get();
  ctx.budget = gate.get();
  ctx.prices = prices.get();
  ctx.config = config_.loop;
  ctx.config.key_scopes = impl_->key_scopes;
  ctx.config.endpoint = impl_->endpoint();
  ctx.providers = &impl_->providers;

  RouteRequest req;
  req.candidates = plan.candidates;
  req.prompt_tokens = plan.prompt_tokens;
  req.max_output_tokens = plan.max_tokens;
  req.max_cost = task.max_cost;

  Impl* impl = impl_.get();
  auto finish = [impl, sender, prices, gate, plan = std::move(plan),
                 on_done = std::move(on_done)](RouteOutcome out) mutable {
    EngineResult res;
    res.api_error = sender->last_error();
    if (out.ok) res.api_error.reset();
    res.budget_error = out.budget_error;
    res.completion_json = out.result.body;
    res.prompt_tokens = out.result.input_tokens;
    res.completion_tokens = out.result.output_tokens;
    res.cut_at_reservation = out.ok && out.result.cut_at_reservation;
    if (gate) res.alerts = gate->take_alerts();
    if (!out.model.empty()) impl->update_selector(out.model);
    res.route = std::move(out);
    res.plan = std::move(plan);
    if (on_done) on_done(std::move(res));
  };
  auto run = start_route(ctx, std::move(req), sender, std::move(finish));
  return std::make_shared<EngineRun>(std::move(run), [sender] { sender->resume(); },
                                     [sender] { return sender->progress(); });
}

EngineResult Engine::run(const EngineTask& task) {
  EnginePlan p = plan(task);
  auto promise = std::make_shared<std::promise<EngineResult>>();
  auto future = promise->get_future();
  submit(task, std::move(p), nullptr, [promise](EngineResult r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace orroute
