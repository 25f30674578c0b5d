#include "orroute/engine/cache_gate.h"

#include <exception>

#include "orroute/cache/replay.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {


std::string cache_key_for(const CacheGate& gate, const EngineTask& task,
                          const std::string& base_url, const std::vector<std::string>& candidates) {
  if (!gate.cache || !task.use_cache) return "";
  // The same question routed the same way (the endpoint and the ordered candidates) for the same
  // project: one project (a gateway key's) never sees what another asked.
  std::string scope = base_url;
  scope.append("\nproject:").append(task.scope.project);
  for (const auto& c : candidates) scope.append("\n").append(c);
  CacheKey k = cache_key(task.request_json, scope, gate.policy);
  return k.cacheable ? std::move(k.key) : std::string();
}

std::optional<CachedReply> cache_lookup(const CacheGate& gate, const std::string& key) {
  if (!gate.cache || key.empty()) return std::nullopt;
  try {
    return gate.cache->get(key);
  } catch (const std::exception&) {
    return std::nullopt;  // a cache that fails is a miss, never a failed call
  }
}

bool cutoff_refuses_hit(Ledger* ledger) {
  if (ledger == nullptr) return false;  // no ledger, no cutoff
  try {
    return ledger->cutoff().has_value();
  } catch (const std::exception&) {
    return true;
  }
}

EngineResult cache_hit_result(const CachedReply& hit, EnginePlan plan, const EngineTask& task,
                              Ledger* ledger) {
  EngineResult res;
  RouteOutcome& o = *res.route;
  o.ok = true;
  o.model = hit.model;
  o.cost = Money::zero();
  o.charge.cost = Money::zero();
  o.charge.source = "cache";
  o.result.ok = true;
  o.result.http_status = 200;
  o.result.body = cache_hit_completion(hit);
  o.result.served_model = hit.model;
  o.result.input_tokens = hit.prompt_tokens;
  o.result.output_tokens = hit.completion_tokens;
  res.completion_json = o.result.body;
  res.summary = reply_summary(res.completion_json);
  res.prompt_tokens = hit.prompt_tokens;
  res.completion_tokens = hit.completion_tokens;
  res.plan = std::move(plan);
  if (ledger) {
    CallRecord rec;
    rec.scope = task.scope;
    rec.task_id = task.task_id;
    rec.task_type = res.plan.task_type;
    rec.model_requested = res.plan.candidates.empty() ? hit.model : res.plan.candidates.front();
    rec.model_used = hit.model;
    rec.prompt_tokens = hit.prompt_tokens;
    rec.completion_tokens = hit.completion_tokens;
    rec.estimated_cost = hit.cost;  // what the hit saved
    rec.cost = Money::zero();
    rec.latency_us = 0;
    rec.outcome = kCacheHitOutcome;
    rec.attempts = 0;
    rec.cost_source = "cache";
    try {
      res.alerts = ledger->record(std::move(rec)).alerts;
    } catch (const std::exception&) {
      // a $0 row that cannot be written changes no budget; the answer stands
    }
  }
  return res;
}

void Engine::set_response_cache(std::shared_ptr<ResponseCache> cache, CachePolicy policy) {
  impl_->cache = CacheGate{std::move(cache), policy};
}

void cache_store(const CacheGate& gate, const std::string& key, const RouteOutcome& out,
                 const std::string& completion_json) {
  if (!gate.cache || key.empty() || !out.ok || out.result.cut_at_reservation ||
      completion_json.empty()) {
    return;
  }
  CachedReply r;
  r.completion_json = completion_json;
  r.model = out.model;
  r.prompt_tokens = out.result.input_tokens;
  r.completion_tokens = out.result.output_tokens;
  r.cost = out.cost;
  try {
    gate.cache->put(key, r);
  } catch (const std::exception&) {
    // not cached this time; the call itself succeeded
  }
}

}  // namespace orroute
