// Engine::health and Engine::metrics: what the engine measured and which breakers are open.
#include <algorithm>

#include "orroute/engine/engine.h"
#include "orroute/engine/engine_impl.h"

namespace orroute {

HealthReport Engine::health() const {
  const Instant now = impl_->clock->now();
  std::vector<std::string> models;
  for (const ModelStats& s : impl_->metrics.all(now)) models.push_back(s.model);
  for (const auto& list : {config_.fallbacks, std::vector<std::string>{config_.preferred_model}}) {
    for (const std::string& m : list) {
      if (!m.empty() && std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
    }
  }
  std::vector<std::string> keys;
  if (config_.loop.provider_breakers) {
    if (const std::string host = impl_->endpoint(); !host.empty()) keys.push_back(endpoint_breaker_key(host));
    if (impl_->routes) {
      for (const std::string& host : impl_->routes->endpoints()) {
        if (std::find(keys.begin(), keys.end(), endpoint_breaker_key(host)) == keys.end()) {
          keys.push_back(endpoint_breaker_key(host));
        }
      }
    }
    for (const std::string& p : impl_->providers.providers()) keys.push_back(provider_breaker_key(p));
  }
  return assess_health(models, impl_->state, impl_->metrics, now, {}, keys);
}

std::vector<ModelStats> Engine::metrics() const { return impl_->metrics.all(impl_->clock->now()); }

}  // namespace orroute
