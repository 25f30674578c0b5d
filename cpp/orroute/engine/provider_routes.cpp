#include "orroute/engine/provider_routes.h"

#include <algorithm>

#include "orroute/error.h"

namespace orroute {

namespace {
constexpr char kSep = '@';
std::string group_key(const std::string& model) { return "group:" + model; }
}  // namespace

ProviderRoutes::ProviderRoutes(EngineConfig& config, std::shared_ptr<ApiClient> own, const ModelCatalog& catalog,
                               RouterState& state)
    : config_(config), state_(state) {
  ProviderRoute self;
  self.name = config.provider_name;
  self.priority = config.provider_priority;
  self.client = std::move(own);
  self.endpoint = url_host(self.client->config().base_url);
  routes_.push_back(std::move(self));
  for (const EngineProvider& p : config.providers) {
    if (p.config.name.empty() || p.config.name == config.provider_name ||
        p.config.name.find(kSep) != std::string::npos) {
      throw InvalidArgument("provider \"" + p.config.name + "\": names must be unique, non-empty and without '@'");
    }
    for (const ProviderRoute& r : routes_) {
      if (r.name == p.config.name) throw InvalidArgument("provider \"" + p.config.name + "\" is configured twice");
    }
    ProviderRoute r;
    r.name = p.config.name;
    r.priority = p.config.priority;
    r.provider = &p;
    ClientConfig cc = client_config(p.config);
    cc.retry.max_retries = 0;  // the attempt loop retries, with breakers and failover
    cc.user_agent = config.client.user_agent;  // one agent for every upstream the engine calls
    r.client = ApiClient::create(std::move(cc));
    r.adapter = WireAdapter::for_provider(p.config);
    r.endpoint = url_host(r.client->config().base_url);
    config.model_map.derive(catalog, p.prices, p.config.name, p.config.kind);
    routes_.push_back(std::move(r));
  }
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const ProviderRoute& a, const ProviderRoute& b) { return a.priority < b.priority; });
  for (const EngineModelGroup& g : config.groups) {
    std::vector<Deployment> deps = g.deployments;
    if (deps.empty()) {
      for (const ProviderRoute& r : routes_) {
        if (serves(r, g.model)) deps.push_back({r.name, r.provider ? r.provider->config.weight : 1});
      }
    }
    for (const Deployment& d : deps) {
      const bool known = std::any_of(routes_.begin(), routes_.end(), [&](const ProviderRoute& r) { return r.name == d.name; });
      if (!known) throw InvalidArgument("model group \"" + g.model + "\": unknown provider \"" + d.name + "\"");
    }
    state.set_balancer(group_key(g.model), BalancerRules(std::move(deps), g.options));
  }
}

std::pair<std::string, std::string> ProviderRoutes::split(const std::string& candidate) {
  const size_t at = candidate.rfind(kSep);
  if (at == std::string::npos) return {candidate, ""};
  return {candidate.substr(0, at), candidate.substr(at + 1)};
}

const ProviderRoute* ProviderRoutes::route(const std::string& candidate) const {
  const auto [model, provider] = split(candidate);
  const std::string& name = provider.empty() ? config_.provider_name : provider;
  for (const ProviderRoute& r : routes_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string ProviderRoutes::native(const std::string& candidate) const {
  const auto [model, provider] = split(candidate);
  if (provider.empty()) return model;
  return config_.model_map.native(model, provider).value_or(model);
}

bool ProviderRoutes::serves(const ProviderRoute& r, const std::string& model) const {
  if (r.provider == nullptr) return true;  // the own endpoint takes every candidate, as before
  return config_.model_map.native(model, r.name).has_value();
}

std::string ProviderRoutes::candidate_of(const std::string& model, const ProviderRoute& r) const {
  return r.provider == nullptr ? model : model + kSep + r.name;
}

std::vector<std::string> ProviderRoutes::expand(const std::vector<std::string>& models, Instant now,
                                                std::vector<BalancerPick>& picks) const {
  std::vector<std::string> out;
  for (const std::string& model : models) {
    std::vector<const ProviderRoute*> order;
    for (const ProviderRoute& r : routes_) {
      if (serves(r, model)) order.push_back(&r);
    }
    const auto group = std::find_if(config_.groups.begin(), config_.groups.end(),
                                    [&](const EngineModelGroup& g) { return g.model == model; });
    if (group != config_.groups.end()) try {
      const std::string key = group_key(model);
      const auto view = state_.balancer_view(key, now);
      // a deployment whose breaker is open is not picked (it would only be skipped)
      std::vector<size_t> open;
      for (size_t d = 0; d < view.size(); ++d) {
        const auto r = std::find_if(routes_.begin(), routes_.end(), [&](const ProviderRoute& x) { return x.name == view[d].name; });
        if (r != routes_.end() &&
            state_.breaker_snapshot("model:" + candidate_of(model, *r), now).state == BreakerState::kOpen) {
          open.push_back(d);
        }
      }
      if (const auto i = state_.balancer_pick(key, open, now)) {
        const std::string& name = view.at(*i).name;
        auto it = std::find_if(order.begin(), order.end(), [&](const ProviderRoute* r) { return r->name == name; });
        if (it != order.end()) {
          std::rotate(order.begin(), it, it + 1);  // the picked one first, the rest by priority
          picks.push_back({key, *i, candidate_of(model, **order.begin())});
        } else {
          state_.balancer_release(key, *i, now);
        }
      }
    } catch (const std::exception&) {
      // Shared balancing state unreachable or contended: balancing is advice, the call is not
      // refused for it; the providers keep their priority order.
    }
    for (const ProviderRoute* r : order) out.push_back(candidate_of(model, *r));
  }
  return out;
}

std::string ProviderRoutes::endpoint_of(const std::string& candidate) const {
  const ProviderRoute* r = route(candidate);
  return r ? r->endpoint : std::string();
}

std::optional<Money> ProviderRoutes::dearest_elsewhere(const std::string& model, const RequestShape& shape,
                                                       int64_t prompt_tokens, int64_t max_tokens,
                                                       int64_t context_window) const {
  std::optional<Money> dearest;
  for (const ProviderRoute& r : routes_) {
    if (r.provider == nullptr || !serves(r, model)) continue;
    const Pricing* p = r.provider->prices.find(native(candidate_of(model, r)));
    if (p == nullptr) continue;
    const std::optional<Money> w = shaped_worst_case(*p, shape, prompt_tokens, max_tokens, context_window, model, nullptr);
    if (w && (!dearest || *w > *dearest)) dearest = w;
  }
  return dearest;
}

std::vector<std::string> ProviderRoutes::endpoints() const {
  std::vector<std::string> out;
  for (const ProviderRoute& r : routes_) {
    if (r.provider != nullptr && !r.endpoint.empty() && std::find(out.begin(), out.end(), r.endpoint) == out.end()) {
      out.push_back(r.endpoint);
    }
  }
  return out;
}

void ProviderRoutes::close() {
  for (ProviderRoute& r : routes_) {
    if (r.provider != nullptr) r.client.reset();
  }
}

}  // namespace orroute
