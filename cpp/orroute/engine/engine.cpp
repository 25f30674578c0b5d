#include "orroute/engine/engine.h"

#include <utility>

#include "orroute/engine/chat_sender.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/error.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/route/redis_router_state.h"
#endif

namespace orroute {

std::unique_ptr<RouterState> Engine::Impl::make_state(const EngineConfig& c, const Clock& clk) {
  if (c.router_state.empty()) return std::make_unique<InMemoryRouterState>(c.breaker);
#ifdef ORROUTE_HAVE_REDIS
  return std::make_unique<RedisRouterState>(c.router_state, clk, c.breaker);
#else
  (void)clk;
  throw InvalidArgument("this orroute was built without Redis (hiredis): router_state must be "
                        "empty");
#endif
}

Engine::Engine(EngineConfig config, std::shared_ptr<const ModelCatalog> catalog,
               std::shared_ptr<Ledger> ledger, QualityPriors priors, const Clock* clock)
    : config_(std::move(config)), catalog_(std::move(catalog)), ledger_(std::move(ledger)) {
  if (!catalog_) throw InvalidArgument("engine: a catalog is required");
  if (!clock) throw InvalidArgument("engine: a clock is required");
  if (config_.max_candidates < 1) throw InvalidArgument("engine: max_candidates must be >= 1");
  if (config_.server_side_fallbacks < 0 || config_.server_side_fallbacks > 3) {
    throw InvalidArgument("engine: server_side_fallbacks must be in [0, 3]");
  }
  RecoveryPolicy validate(config_.loop.retry);
  (void)validate;
  config_.client.retry.max_retries = 0;  // the attempt loop retries, with breakers and fallbacks
  if (ledger_) guard_ = std::make_shared<BudgetGuard>(ledger_);
  impl_ = std::make_unique<Impl>(*this, clock);
  if (ledger_) impl_->settle_worker = std::make_unique<SettleWorker>(*ledger_);
  impl_->client = ApiClient::create(config_.client);
  impl_->scheduler = std::make_unique<TransportScheduler>(impl_->client->transport());
  if (config_.refresh_catalog) {
    CallSpec spec;
    spec.method = "GET";
    spec.path = "/models";
    spec.max_retries = 0;
    spec.timeouts = Timeouts{2'000, 5'000, 5'000, 5'000};
    try {
      auto call = impl_->client->start(spec);
      if (call->wait(6'000) && call->state() == Call::State::kDone) {
        auto fresh = std::make_shared<ModelCatalog>(ModelCatalog::from_json(call->response().body));
        if (fresh->size() > 0) catalog_ = std::move(fresh);
      } else {
        call->cancel();
      }
    } catch (const Error&) {
      // Offline or not a models endpoint: keep the given catalog.
    }
  }
  impl_->loop = config_.loop;
  impl_->loop.key_scopes.clear();  // the limits' own key scopes, below
  for (const auto& [scope, limit] : config_.limits) {
    impl_->state.set_limit(scope, limit);
    if (scope.rfind("model:", 0) != 0 && scope.rfind("provider:", 0) != 0) {
      impl_->loop.key_scopes.push_back(scope);
    }
  }
  impl_->loop.endpoint = impl_->endpoint();
  impl_->pricer = std::make_unique<CallPricer>(*catalog_, config_.pricing);
  if (!config_.providers.empty()) {
    impl_->routes = std::make_unique<ProviderRoutes>(config_, impl_->client, *catalog_, impl_->state);
    ProviderRoutes* routes = impl_->routes.get();
    impl_->loop.endpoint_of = [routes](const std::string& c) { return routes->endpoint_of(c); };
  }
  try {
    impl_->selector = std::make_unique<ModelSelector>(catalog_, std::move(priors), config_.strategy);
  } catch (const Error&) {
    impl_->selector.reset();  // an empty or odd catalog: explicit fallbacks still work
  }
}

Engine::~Engine() {
  // Stop the transport (and every callback into this engine) before the members go away.
  if (impl_) {
    impl_->scheduler.reset();
    if (impl_->routes) impl_->routes->close();
    impl_->client.reset();
    impl_->settle_worker.reset();  // writes what the last runs left, then completes them
  }
}

void Engine::set_limit(const std::string& scope, const RateLimit& limit) {
  impl_->state.set_limit(scope, limit);
}

SettleWorker::Stats Engine::settle_stats() const {
  return impl_->settle_worker ? impl_->settle_worker->stats() : SettleWorker::Stats{};
}

std::shared_ptr<ApiClient> Engine::client() const { return impl_->client; }

}  // namespace orroute
