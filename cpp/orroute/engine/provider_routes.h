// Candidates as (model, provider) pairs. The engine's own endpoint answers a candidate named by the
// model id alone ("anthropic/claude-sonnet-4.5"); another provider's candidate is
// "<model>@<provider>" ("anthropic/claude-sonnet-4.5@anthropic"). The attempt loop runs over these
// strings unchanged, so breakers ("model:<candidate>"), rate limits, reservations and metrics are
// per (model, provider), and a failure at one provider falls through to the same model at the next.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orroute/catalog/catalog.h"
#include "orroute/cost/call_pricing.h"
#include "orroute/engine/engine.h"
#include "orroute/net/api_client.h"
#include "orroute/provider/wire_adapter.h"
#include "orroute/route/router_state.h"

namespace orroute {

// Where a candidate is sent.
struct ProviderRoute {
  std::string name;
  int32_t priority = 0;
  const EngineProvider* provider = nullptr;  // null: the engine's own endpoint
  std::shared_ptr<ApiClient> client;
  std::shared_ptr<const WireAdapter> adapter;  // null: chat completions as the engine sends them
  std::string endpoint;                        // host of the base URL (its endpoint breaker)
};

// A deployment a balancer picked for a run (finished or released when the run ends).
struct BalancerPick {
  std::string group;
  size_t index = 0;
  std::string candidate;
};

class ProviderRoutes {
 public:
  // Builds one client and adapter per provider (each its own transport), completes the model map
  // from the catalog and each provider's prices, and registers the model groups' balancers in
  // `state`. Throws InvalidArgument for a bad provider or group.
  ProviderRoutes(EngineConfig& config, std::shared_ptr<ApiClient> own, const ModelCatalog& catalog,
                 RouterState& state);

  bool enabled() const { return routes_.size() > 1; }
  // (model, provider) of a candidate; provider "" = the engine's own endpoint.
  static std::pair<std::string, std::string> split(const std::string& candidate);
  // The route of a candidate (the own endpoint for a plain model id); null for an unknown provider.
  const ProviderRoute* route(const std::string& candidate) const;
  // The provider's name for the model of `candidate` (the model id at the own endpoint).
  std::string native(const std::string& candidate) const;
  // Each model at every provider serving it, by priority (or its group's balanced order: the
  // picked deployment first; `picks` receives the pick), before the next model.
  std::vector<std::string> expand(const std::vector<std::string>& models, Instant now,
                                  std::vector<BalancerPick>& picks) const;
  // The endpoint (host) a candidate's calls go to.
  std::string endpoint_of(const std::string& candidate) const;
  // The highest worst case of `model` at the other providers serving it, a request shaped
  // `shape` (their own prices, held to the shape as the attempt loop holds them; one that cannot
  // price or bound it is never sent to under a budget, so it does not count); nullopt if none can.
  std::optional<Money> dearest_elsewhere(const std::string& model, const RequestShape& shape,
                                         int64_t prompt_tokens, int64_t max_tokens,
                                         int64_t context_window) const;
  // Every provider's endpoint host (health reports list their breakers).
  std::vector<std::string> endpoints() const;
  void close();  // stops every provider's transport

 private:
  std::string candidate_of(const std::string& model, const ProviderRoute& r) const;
  bool serves(const ProviderRoute& r, const std::string& model) const;

  const EngineConfig& config_;
  RouterState& state_;
  std::vector<ProviderRoute> routes_;  // by priority, then as configured; the own endpoint included
};

}  // namespace orroute
