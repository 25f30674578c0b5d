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

Balancer::Balancer(std::vector<Deployment> deployments, BalancerOptions options, const Clock& clock)
    : clock_(clock), options_(options) {
  if (deployments.empty()) throw InvalidArgument("a balancer needs at least one deployment");
  if (options_.ramp.count() <= 0) throw InvalidArgument("balancer ramp must be > 0");
  if (!(options_.ramp_floor > 0 && options_.ramp_floor <= 1)) throw InvalidArgument("ramp_floor must be in (0, 1]");
  if (!(options_.latency_alpha > 0 && options_.latency_alpha <= 1)) {
    throw InvalidArgument("latency_alpha must be in (0, 1]");
  }
  for (auto& d : deployments) {
    if (d.weight < 0) throw InvalidArgument("deployment \"" + d.name + "\": weight must be >= 0");
    State s;
    s.spec = std::move(d);
    deps_.push_back(std::move(s));
  }
}

bool Balancer::available(const State& s, Instant now) const { return !s.down || now >= s.down_until; }

double Balancer::ramp_fraction(const State& s, Instant now) const {
  if (options_.failover == FailoverMode::kImmediate || !s.recovered_at) return 1.0;
  const double elapsed = static_cast<double>((now - *s.recovered_at).count());
  const double f = elapsed / static_cast<double>(options_.ramp.count());
  return std::clamp(f, options_.ramp_floor, 1.0);
}

std::optional<size_t> Balancer::pick() { return choose({}); }

std::optional<size_t> Balancer::pick_excluding(const std::vector<size_t>& exclude) { return choose(exclude); }

std::optional<size_t> Balancer::choose(const std::vector<size_t>& exclude) {
  std::lock_guard<std::mutex> lock(mu_);
  const Instant now = clock_.now();
  const size_t n = deps_.size();
  std::vector<size_t> cands;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (cursor_ + k) % n;  // rotation order breaks ties fairly
    if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
    if (available(deps_[i], now)) cands.push_back(i);
  }
  if (cands.empty()) return std::nullopt;
  std::optional<size_t> chosen;

  if (options_.strategy == BalanceStrategy::kRoundRobin || options_.strategy == BalanceStrategy::kWeighted) {
    // Smooth weighted round-robin (as nginx): exact shares, evenly interleaved, deterministic.
    double total = 0;
    for (const size_t i : cands) {
      State& s = deps_[i];
      const double w = (options_.strategy == BalanceStrategy::kWeighted ? s.spec.weight : 1) * ramp_fraction(s, now);
      s.current += w;
      total += w;
      if (!chosen || s.current > deps_[*chosen].current) chosen = i;
    }
    if (total <= 0) {
      chosen = cands.front();  // every weight is 0: take turns
    } else {
      deps_[*chosen].current -= total;
    }
  } else {
    // Count-based strategies: a ramping deployment is admitted to this pick in proportion to its
    // ramp fraction (deterministic credit), unless nothing else is available.
    std::vector<size_t> admitted;
    for (const size_t i : cands) {
      State& s = deps_[i];
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
    ++picks_;
    if (options_.strategy == BalanceStrategy::kLeastBusy) {
      for (const size_t i : admitted) {
        if (!chosen || deps_[i].in_flight < deps_[*chosen].in_flight) chosen = i;
      }
    } else if (options_.explore_every > 0 && picks_ % options_.explore_every == 0) {
      chosen = admitted[explore_cursor_++ % admitted.size()];  // keep measuring every deployment
    } else {
      for (const size_t i : admitted) {
        const double l = deps_[i].latency_ns;
        if (l < 0) {  // never measured: try it first
          chosen = i;
          break;
        }
        if (!chosen || l < deps_[*chosen].latency_ns) chosen = i;
      }
    }
  }
  cursor_ = (*chosen + 1) % n;
  ++deps_[*chosen].in_flight;
  return chosen;
}

void Balancer::finish(size_t index, bool ok, Duration latency) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= deps_.size()) return;
  State& s = deps_[index];
  if (s.in_flight > 0) --s.in_flight;
  const Instant now = clock_.now();
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

void Balancer::set_down(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= deps_.size()) return;
  State& s = deps_[index];
  s.down = true;
  s.down_until = Instant::max();
  s.recovered_at.reset();
  s.current = 0;
  s.admit_credit = 0;
}

void Balancer::set_up(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= deps_.size()) return;
  State& s = deps_[index];
  if (!s.down) return;
  s.down = false;
  s.failures = 0;
  s.recovered_at = clock_.now();
}

bool Balancer::is_up(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < deps_.size() && !deps_[index].down;
}

int64_t Balancer::in_flight(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < deps_.size() ? deps_[index].in_flight : 0;
}

double Balancer::effective_weight(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= deps_.size()) return 0;
  const State& s = deps_[index];
  const Instant now = clock_.now();
  if (!available(s, now)) return 0;
  return s.spec.weight * ramp_fraction(s, now);
}

std::optional<Duration> Balancer::latency(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= deps_.size() || deps_[index].latency_ns < 0) return std::nullopt;
  return Duration(static_cast<int64_t>(deps_[index].latency_ns));
}

}  // namespace orroute
