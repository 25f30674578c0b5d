#include "orroute/provider/balancer.h"

#include <algorithm>

#include "orroute/error.h"

namespace orroute {

BalanceStrategy parse_balance_strategy(std::string_view name) {
  if (name == "round_robin" || name == "round-robin") return BalanceStrategy::kRoundRobin;
  if (name == "weighted") return BalanceStrategy::kWeighted;
  if (name == "least_busy" || name == "least-busy") return BalanceStrategy::kLeastBusy;
  if (name == "lowest_latency" || name == "lowest-latency") return BalanceStrategy::kLowestLatency;
  throw InvalidArgument("unknown balancing strategy \"" + std::string(name) +
                        "\" (known: round_robin, weighted, least_busy, lowest_latency)");
}

FailoverMode parse_failover_mode(std::string_view name) {
  if (name == "immediate") return FailoverMode::kImmediate;
  if (name == "gradual") return FailoverMode::kGradual;
  throw InvalidArgument("unknown failover mode \"" + std::string(name) + "\" (known: immediate, gradual)");
}

BalancerRules::BalancerRules(std::vector<Deployment> deployments, BalancerOptions options)
    : deps_(std::move(deployments)), options_(options) {
  if (deps_.empty()) throw InvalidArgument("a balancer needs at least one deployment");
  if (options_.ramp.count() <= 0) throw InvalidArgument("balancer ramp must be > 0");
  if (!(options_.ramp_floor > 0 && options_.ramp_floor <= 1)) throw InvalidArgument("ramp_floor must be in (0, 1]");
  if (!(options_.latency_alpha > 0 && options_.latency_alpha <= 1)) {
    throw InvalidArgument("latency_alpha must be in (0, 1]");
  }
  for (const auto& d : deps_) {
    if (d.weight < 0) throw InvalidArgument("deployment \"" + d.name + "\": weight must be >= 0");
  }
}

BalancerState BalancerRules::fresh() const {
  BalancerState st;
  st.deps.resize(deps_.size());
  return st;
}

bool BalancerRules::available(const DeploymentState& s, Instant now) const { return !s.down || now >= s.down_until; }

double BalancerRules::ramp_fraction(const DeploymentState& s, Instant now) const {
  if (options_.failover == FailoverMode::kImmediate || !s.recovered_at) return 1.0;
  const double elapsed = static_cast<double>((now - *s.recovered_at).count());
  const double f = elapsed / static_cast<double>(options_.ramp.count());
  return std::clamp(f, options_.ramp_floor, 1.0);
}

std::optional<size_t> BalancerRules::choose(BalancerState& st, const std::vector<size_t>& exclude, Instant now) const {
  const size_t n = deps_.size();
  if (st.deps.size() != n) st = fresh();
  std::vector<size_t> cands;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (st.cursor + k) % n;  // rotation order breaks ties fairly
    if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
    if (available(st.deps[i], now)) cands.push_back(i);
  }
  if (cands.empty()) return std::nullopt;
  std::optional<size_t> chosen;

  if (options_.strategy == BalanceStrategy::kRoundRobin || options_.strategy == BalanceStrategy::kWeighted) {
    // Smooth weighted round-robin (as nginx): exact shares, evenly interleaved, deterministic.
    double total = 0;
    for (const size_t i : cands) {
      DeploymentState& s = st.deps[i];
      const double w = (options_.strategy == BalanceStrategy::kWeighted ? deps_[i].weight : 1) * ramp_fraction(s, now);
      s.current += w;
      total += w;
      if (!chosen || s.current > st.deps[*chosen].current) chosen = i;
    }
    if (total <= 0) {
      chosen = cands.front();  // every weight is 0: take turns
    } else {
      st.deps[*chosen].current -= total;
    }
  } else {
    // Count-based strategies: a ramping deployment is admitted to this pick in proportion to its
    // ramp fraction (deterministic credit), unless nothing else is available.
    std::vector<size_t> admitted;
    for (const size_t i : cands) {
      DeploymentState& s = st.deps[i];
      const double f = ramp_fraction(s, now);
      if (f >= 1.0) {
        admitted.push_back(i);
        continue;
      }
      s.admit_credit += f;
      if (s.admit_credit >= 1.0) {
        s.admit_credit -= 1.0;
        admitted.push_back(i);
      }
    }
    if (admitted.empty()) admitted = cands;
    ++st.picks;
    if (options_.strategy == BalanceStrategy::kLeastBusy) {
      for (const size_t i : admitted) {
        if (!chosen || st.deps[i].in_flight < st.deps[*chosen].in_flight) chosen = i;
      }
    } else if (options_.explore_every > 0 && st.picks % options_.explore_every == 0) {
      chosen = admitted[st.explore_cursor++ % admitted.size()];  // keep measuring every deployment
    } else {
      for (const size_t i : admitted) {
        const double l = st.deps[i].latency_ns;
        if (l < 0) {  // never measured: try it first
          chosen = i;
          break;
        }
        if (!chosen || l < st.deps[*chosen].latency_ns) chosen = i;
      }
    }
  }
  st.cursor = (*chosen + 1) % n;
  ++st.deps[*chosen].in_flight;
  return chosen;
}

void BalancerRules::finish(BalancerState& st, size_t index, bool ok, Duration latency, Instant now) const {
  if (index >= st.deps.size()) return;
  DeploymentState& s = st.deps[index];
  if (s.in_flight > 0) --s.in_flight;
  if (ok) {
    s.failures = 0;
    if (s.down) {  // a probe after the cooldown succeeded
      s.down = false;
      s.recovered_at = now;
    }
    const double sample = static_cast<double>(std::max<int64_t>(0, latency.count()));
    const double alpha = options_.latency_alpha;
    s.latency_ns = s.latency_ns < 0 ? sample : alpha * sample + (1 - alpha) * s.latency_ns;
    return;
  }
  ++s.failures;
  if (s.down || (options_.failures_to_down > 0 && s.failures >= options_.failures_to_down)) {
    s.down = true;
    s.down_until = now + options_.cooldown;
    s.recovered_at.reset();
    s.current = 0;
    s.admit_credit = 0;
  }
}

void BalancerRules::release(BalancerState& st, size_t index) const {
  if (index < st.deps.size() && st.deps[index].in_flight > 0) --st.deps[index].in_flight;
}

void BalancerRules::set_down(BalancerState& st, size_t index) const {
  if (index >= st.deps.size()) return;
  DeploymentState& s = st.deps[index];
  s.down = true;
  s.down_until = Instant::max();
  s.recovered_at.reset();
  s.current = 0;
  s.admit_credit = 0;
}

void BalancerRules::set_up(BalancerState& st, size_t index, Instant now) const {
  if (index >= st.deps.size()) return;
  DeploymentState& s = st.deps[index];
  if (!s.down) return;
  s.down = false;
  s.failures = 0;
  s.recovered_at = now;
}

double BalancerRules::effective_weight(const BalancerState& st, size_t index, Instant now) const {
  if (index >= st.deps.size()) return 0;
  const DeploymentState& s = st.deps[index];
  if (!available(s, now)) return 0;
  return deps_[index].weight * ramp_fraction(s, now);
}

std::vector<DeploymentView> view_of(const BalancerRules& rules, const BalancerState& state, Instant now) {
  std::vector<DeploymentView> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    DeploymentView v;
    v.name = rules.deployments()[i].name;
    if (i < state.deps.size()) {
      const DeploymentState& s = state.deps[i];
      v.up = !s.down;
      v.in_flight = s.in_flight;
      if (s.latency_ns >= 0) v.latency = Duration(static_cast<int64_t>(s.latency_ns));
    }
    v.effective_weight = rules.effective_weight(state, i, now);
    out.push_back(std::move(v));
  }
  return out;
}

BalancerState carry_over(const BalancerRules& old_rules, const BalancerState& old, const BalancerRules& rules) {
  BalancerState st = rules.fresh();
  for (size_t i = 0; i < rules.size(); ++i) {
    for (size_t j = 0; j < old_rules.size() && j < old.deps.size(); ++j) {
      if (old_rules.deployments()[j].name == rules.deployments()[i].name) st.deps[i] = old.deps[j];
    }
  }
  if (rules.size() > 0) st.cursor = old.cursor % rules.size();
  st.picks = old.picks;
  st.explore_cursor = old.explore_cursor;
  return st;
}

Balancer::Balancer(std::vector<Deployment> deployments, BalancerOptions options, const Clock& clock)
    : clock_(clock), rules_(std::move(deployments), options), state_(rules_.fresh()) {}

std::optional<size_t> Balancer::pick() { return pick_excluding({}); }

std::optional<size_t> Balancer::pick_excluding(const std::vector<size_t>& exclude) {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_.choose(state_, exclude, clock_.now());
}

void Balancer::finish(size_t index, bool ok, Duration latency) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.finish(state_, index, ok, latency, clock_.now());
}

void Balancer::set_down(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.set_down(state_, index);
}

void Balancer::set_up(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.set_up(state_, index, clock_.now());
}

bool Balancer::is_up(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < state_.deps.size() && !state_.deps[index].down;
}

int64_t Balancer::in_flight(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < state_.deps.size() ? state_.deps[index].in_flight : 0;
}

double Balancer::effective_weight(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_.effective_weight(state_, index, clock_.now());
}

std::optional<Duration> Balancer::latency(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= state_.deps.size() || state_.deps[index].latency_ns < 0) return std::nullopt;
  return Duration(static_cast<int64_t>(state_.deps[index].latency_ns));
}

}  // namespace orroute
