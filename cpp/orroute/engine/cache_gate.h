// The response cache in front of the attempt loop (Engine::submit). Consulted before anything is
// reserved: a hit is answered at once (no reservation, no request, $0; a stream gets the reply
// replayed as chunks) and recorded in the ledger as a call with outcome "cache_hit", cost 0 and,
// as its `estimated_cost`, what the original call cost: the amount the hit saved. A cacheable
// miss's settled answer is stored for the next one. The cache never fails a call: a store that
// errors is a miss.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "orroute/cache/cache_key.h"
#include "orroute/cache/response_cache.h"
#include "orroute/cost/ledger.h"
#include "orroute/engine/engine.h"

namespace orroute {

// The ledger outcome of a call answered from the cache (orroute.analytics.CACHE_HIT_OUTCOME).
inline constexpr const char* kCacheHitOutcome = "cache_hit";

struct CacheGate {
  std::shared_ptr<ResponseCache> cache;  // null: no cache
  CachePolicy policy;
};

// The key of `task` when it goes to `candidates` at `base_url`, within the task's project (""
// when there is no cache, the task opted out or the request is not cacheable). Never throws (but
// bad_alloc).
std::string cache_key_for(const CacheGate& gate, const EngineTask& task,
                          const std::string& base_url, const std::vector<std::string>& candidates);

// The live reply under `key`, or nullopt (a miss, or the store failed). Never throws.
std::optional<CachedReply> cache_lookup(const CacheGate& gate, const std::string& key);

// Whether the emergency cutoff stands in the way of serving a hit: it refuses every call, free
// ones included (docs/cost.md). True when `ledger` says a cutoff is engaged or cannot say (money
// fails closed: the call then goes the ordinary way, whose reservation refuses it). Never throws.
bool cutoff_refuses_hit(Ledger* ledger);

// The result of a hit: the cached completion (usage.cost 0, and an `orroute_cache` object with
// `hit` and `saved`), cost 0, cost source "cache". Records the ledger row when `ledger` is set (a
// failing ledger is not the cache's to report: the row is skipped).
EngineResult cache_hit_result(const CachedReply& hit, EnginePlan plan, const EngineTask& task,
                              Ledger* ledger);

// Stores a settled, complete answer under `key`. Never throws.
void cache_store(const CacheGate& gate, const std::string& key, const RouteOutcome& out,
                 const std::string& completion_json);

}  // namespace orroute
