#include "orroute/route/rate_limiter.h"

#include <algorithm>

#include "orroute/error.h"

namespace orroute {

void RateLimiter::set_limit(std::string_view scope, const RateLimit& limit) {
  if (limit.window.count() <= 0) throw InvalidArgument("rate limit window must be > 0");
  if (limit.requests < 0 || limit.input_tokens < 0 || limit.output_tokens < 0) {
    throw InvalidArgument("rate limits must be >= 0");
  }
  scopes_[std::string(scope)].limit = limit;
}

std::optional<RateLimit> RateLimiter::limit(std::string_view scope) const {
  auto it = scopes_.find(std::string(scope));
  if (it == scopes_.end() || it->second.limit.unlimited()) return std::nullopt;
  return it->second.limit;
}

void RateLimiter::expire(Scope& s, Instant now) {
  while (!s.log.empty() && s.log.front().at + s.limit.window <= now) {
    const LimitUsage& u = s.log.front().usage;
    s.total.requests -= u.requests;
    s.total.input_tokens -= u.input_tokens;
    s.total.output_tokens -= u.output_tokens;
    s.log.pop_front();
  }
}

std::optional<Duration> RateLimiter::wait_to_fit(const Scope& s, const LimitUsage& u, Instant now) {
  const RateLimit& l = s.limit;
  if ((l.requests > 0 && u.requests > l.requests) ||
      (l.input_tokens > 0 && u.input_tokens > l.input_tokens) ||
      (l.output_tokens > 0 && u.output_tokens > l.output_tokens)) {
    return std::nullopt;
  }
  // How much of each dimension must leave the window before `u` fits.
  auto excess = [](int64_t limit, int64_t total, int64_t want) {
    return limit > 0 ? std::max<int64_t>(0, total + want - limit) : 0;
  };
  int64_t need_r = excess(l.requests, s.total.requests, u.requests);
  int64_t need_i = excess(l.input_tokens, s.total.input_tokens, u.input_tokens);
  int64_t need_o = excess(l.output_tokens, s.total.output_tokens, u.output_tokens);
  if (need_r == 0 && need_i == 0 && need_o == 0) return Duration(0);
  for (const Entry& e : s.log) {
    need_r -= e.usage.requests;
    need_i -= e.usage.input_tokens;
    need_o -= e.usage.output_tokens;
    if (need_r <= 0 && need_i <= 0 && need_o <= 0) return (e.at + l.window) - now;
  }
  return l.window;  // unreachable when the totals match the log; be conservative
}

Admission RateLimiter::try_acquire(std::span<const std::string> scopes, const LimitUsage& usage,
                                   Instant now) {
  if (usage.requests < 0 || usage.input_tokens < 0 || usage.output_tokens < 0) {
    throw InvalidArgument("rate limiter: usage must be >= 0");
  }
  std::vector<Scope*> limited;  // sized at its first scope: a call with no limit set allocates none
  Admission refusal;
  for (const std::string& name : scopes) {
    auto it = scopes_.find(name);
    if (it == scopes_.end()) continue;
    Scope& s = it->second;
    if (s.held_until > now) {
      const Duration wait = s.held_until - now;
      if (wait > refusal.retry_in || refusal.blocked_by.empty()) {
        refusal.retry_in = std::max(refusal.retry_in, wait);
        refusal.blocked_by = name;
      }
      continue;
    }
    if (s.limit.unlimited()) continue;
    expire(s, now);
    const auto wait = wait_to_fit(s, usage, now);
    if (!wait) {
      Admission a;
      a.never = true;
      a.blocked_by = name;
      return a;
    }
    if (wait->count() > 0) {
      if (*wait > refusal.retry_in || refusal.blocked_by.empty()) {
        refusal.retry_in = std::max(refusal.retry_in, *wait);
        refusal.blocked_by = name;
      }
      continue;
    }
    if (limited.empty()) limited.reserve(scopes.size());
    limited.push_back(&s);
  }
  if (!refusal.blocked_by.empty()) return refusal;
  Admission ok;
  ok.admitted = true;
  if (limited.empty()) return ok;
  ok.ticket = next_seq_++;
  auto& entries = tickets_[ok.ticket];
  for (Scope* s : limited) {
    s->log.push_back(Entry{now, ok.ticket, usage});
    s->total.requests += usage.requests;
    s->total.input_tokens += usage.input_tokens;
    s->total.output_tokens += usage.output_tokens;
    entries.emplace_back(s, ok.ticket);
  }
  return ok;
}

void RateLimiter::settle(uint64_t ticket, const LimitUsage& actual) {
  auto it = tickets_.find(ticket);
  if (it == tickets_.end()) return;
  for (auto [s, seq] : it->second) {
    // Entries are in seq order: binary search for ours (it may have expired already).
    auto e = std::lower_bound(s->log.begin(), s->log.end(), seq,
                              [](const Entry& x, uint64_t v) { return x.seq < v; });
    if (e == s->log.end() || e->seq != seq) continue;
    s->total.requests += actual.requests - e->usage.requests;
    s->total.input_tokens += actual.input_tokens - e->usage.input_tokens;
    s->total.output_tokens += actual.output_tokens - e->usage.output_tokens;
    e->usage = actual;
  }
  tickets_.erase(it);
}

void RateLimiter::forget(uint64_t ticket) { tickets_.erase(ticket); }

void RateLimiter::hold(std::string_view scope, Instant until) {
  auto it = scopes_.find(std::string(scope));
  if (it == scopes_.end()) {
    if (scopes_.size() >= kMaxScopes) return;  // advice only: the upstream's next 429 says it again
    it = scopes_.emplace(std::string(scope), Scope{}).first;
  }
  it->second.held_until = std::max(it->second.held_until, until);
}

Duration RateLimiter::held_for(std::string_view scope, Instant now) const {
  auto it = scopes_.find(std::string(scope));
  if (it == scopes_.end() || it->second.held_until <= now) return Duration(0);
  return it->second.held_until - now;
}

LimitUsage RateLimiter::in_window(std::string_view scope, Instant now) {
  auto it = scopes_.find(std::string(scope));
  if (it == scopes_.end()) return LimitUsage{0, 0, 0};
  expire(it->second, now);
  return it->second.total;
}

}  // namespace orroute
