#include "orroute/route/redis_router_state.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "orroute/net/redis_client.h"
#include "orroute/route/capped_names.h"
#include "orroute/error.h"

namespace orroute {
namespace {

// Breaker: one hash per key. The same state machine as CircuitBreaker (circuit_breaker.cpp), with
// times in wall-clock microseconds. ARGV: prefix, key, now, consecutive_failures, failure_rate,
// min_calls_in_window, window, cooldown, half_open_probes, successes_to_close, op, cap, other.
// The keys name requested models: a set of the names seen holds the first `cap`; every later one
// shares the breaker of `other` (capped_names.h's rule, here so every process files a name alike).
const char* const kLuaBreaker = R"lua(
local P = ARGV[1]
local names = P .. 'brnames'
local name = ARGV[2]
if redis.call('SISMEMBER', names, name) == 0 then
  if redis.call('SCARD', names) >= tonumber(ARGV[12]) then
    name = ARGV[13]
  else
    redis.call('SADD', names, name)
  end
end
redis.call('PEXPIRE', names, 86400000)
local K = P .. 'br:' .. name
local now = tonumber(ARGV[3])
local cons_lim, rate, minc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local win, cool = tonumber(ARGV[7]), tonumber(ARGV[8])
local plim, toclose = tonumber(ARGV[9]), tonumber(ARGV[10])
local op = ARGV[11]
local raw = redis.call('HGETALL', K)
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local st = tonumber(h.st or '0')
local cons = tonumber(h.cons or '0')
local opened = tonumber(h.opened or '0')
local probes = tonumber(h.probes or '0')
local psucc = tonumber(h.psucc or '0')
local times = tonumber(h.times or '0')
local be, bc, bf = {}, {}, {}
for i = 0, 11 do
  local v = h['b' .. i]
  be[i], bc[i], bf[i] = -1, 0, 0
  if v then
    local e, c, f = string.match(v, '(-?%d+):(%d+):(%d+)')
    be[i], bc[i], bf[i] = tonumber(e), tonumber(c), tonumber(f)
  end
end
local width = math.max(1, math.floor(win / 12))
local cur = math.floor(now / width)
local function totals()
  local c, f = 0, 0
  for i = 0, 11 do
    if be[i] > cur - 12 and be[i] <= cur then c = c + bc[i]; f = f + bf[i] end
  end
  return c, f
end
local function count(fail)
  local i = cur % 12
  if be[i] ~= cur then be[i], bc[i], bf[i] = cur, 0, 0 end
  bc[i] = bc[i] + 1
  if fail then bf[i] = bf[i] + 1 end
end
local function clear() for i = 0, 11 do be[i], bc[i], bf[i] = -1, 0, 0 end end
local function trip() st = 1; opened = now; probes = 0; psucc = 0; times = times + 1; clear() end
if op == 'snapshot' then
  local s, open_for = st, 0
  if st == 1 then
    if now - opened >= cool then s = 2 else open_for = cool - (now - opened) end
  end
  local c, f = totals()
  return {s, cons, c, f, string.format('%d', open_for), times}
end
if st == 1 and now - opened >= cool then st = 2; probes = 0; psucc = 0 end
local ret = 0
if op == 'allow' then
  if st == 0 then
    ret = 1
  elseif st == 2 and probes < plim then
    probes = probes + 1
    ret = 1
  end
elseif op == 'success' then
  cons = 0
  if st == 2 then
    probes = math.max(0, probes - 1)
    psucc = psucc + 1
    if psucc >= toclose then st = 0; clear() end
  elseif st == 0 then
    count(false)
  end
elseif op == 'failure' then
  cons = cons + 1
  if st == 2 then
    trip()
  elseif st == 0 then
    count(true)
    if cons_lim > 0 and cons >= cons_lim then
      trip()
    else
      local c, f = totals()
      if c >= minc and c > 0 and f >= rate * c then trip() end
    end
  end
elseif op == 'release' then
  if st == 2 then probes = math.max(0, probes - 1) end
end
local out = {'st', st, 'cons', cons, 'opened', string.format('%d', opened), 'probes', probes,
             'psucc', psucc, 'times', times}
for i = 0, 11 do
  out[#out + 1] = 'b' .. i
  out[#out + 1] = string.format('%d:%d:%d', be[i], bc[i], bf[i])
end
redis.call('HSET', K, unpack(out))
redis.call('PEXPIRE', K, 86400000)
return ret
)lua";

// Rate limits: per scope a sliding-window log (zset of tickets by time, hash ticket -> usage
// "requests:input:output", hash of totals) and a hold key. Same rules as RateLimiter.
const char* const kLuaLimiterPrelude = R"lua(
local P = ARGV[1]
local now = tonumber(ARGV[2])
local function keys(name) return P .. 'rl:' .. name, P .. 'rlu:' .. name, P .. 'rlt:' .. name end
local function parse(u)
  local r, i, o = string.match(u, '(%d+):(%d+):(%d+)')
  return tonumber(r), tonumber(i), tonumber(o)
end
local function expire(name, win)
  local L, U, T = keys(name)
  while true do
    local old = redis.call('ZRANGEBYSCORE', L, '-inf', now - win, 'LIMIT', 0, 500)
    if #old == 0 then break end
    local us = redis.call('HMGET', U, unpack(old))
    local dr, di, dout = 0, 0, 0
    for _, u in ipairs(us) do
      if u then
        local r, i, o = parse(u)
        dr, di, dout = dr + r, di + i, dout + o
      end
    end
    redis.call('HINCRBY', T, 'r', 0 - dr)  -- not -dr: -0 is no integer to Redis
    redis.call('HINCRBY', T, 'i', 0 - di)
    redis.call('HINCRBY', T, 'o', 0 - dout)
    redis.call('ZREM', L, unpack(old))
    redis.call('HDEL', U, unpack(old))
  end
  local t = redis.call('HMGET', T, 'r', 'i', 'o')
  return tonumber(t[1] or '0'), tonumber(t[2] or '0'), tonumber(t[3] or '0')
end
)lua";

// ARGV: prefix, now, usage r, i, o, n, then n x (scope, limit r, i, o, window).
const char* const kLuaAdmit = R"lua(
local ur, ui, uo = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local function wait_to_fit(name, lr, li, lo, win, tr, ti, to)
  if (lr > 0 and ur > lr) or (li > 0 and ui > li) or (lo > 0 and uo > lo) then return nil end
  local function excess(l, t, w) if l > 0 then return math.max(0, t + w - l) end return 0 end
  local nr, ni, no = excess(lr, tr, ur), excess(li, ti, ui), excess(lo, to, uo)
  if nr == 0 and ni == 0 and no == 0 then return 0 end
  local L, U = keys(name)
  local start = 0
  while true do
    local batch = redis.call('ZRANGE', L, start, start + 499, 'WITHSCORES')
    if #batch == 0 then break end
    local ids = {}
    for j = 1, #batch, 2 do ids[#ids + 1] = batch[j] end
    local us = redis.call('HMGET', U, unpack(ids))
    for j = 1, #ids do
      if us[j] then
        local r, i, o = parse(us[j])
        nr, ni, no = nr - r, ni - i, no - o
      end
      if nr <= 0 and ni <= 0 and no <= 0 then return tonumber(batch[2 * j]) + win - now end
    end
    start = start + 500
  end
  return win
end
local wait_all, blocked = 0, nil
local limited = {}
for k = 0, n - 1 do
  local b = 7 + k * 5
  local name = ARGV[b]
  local lr, li, lo, win = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]),
                          tonumber(ARGV[b + 4])
  local held = tonumber(redis.call('GET', P .. 'hold:' .. name) or '0')
  if held > now then
    local w = held - now
    if w > wait_all or not blocked then wait_all = math.max(wait_all, w); blocked = name end
  elseif lr > 0 or li > 0 or lo > 0 then
    local tr, ti, to = expire(name, win)
    local w = wait_to_fit(name, lr, li, lo, win, tr, ti, to)
    if w == nil then return {0, '0', '0', 1, name} end
    if w > 0 then
      if w > wait_all or not blocked then wait_all = math.max(wait_all, w); blocked = name end
    else
      limited[#limited + 1] = {name, win}
    end
  end
end
if blocked then return {0, '0', string.format('%d', wait_all), 0, blocked} end
if #limited == 0 then return {1, '0', '0', 0, ''} end
local ticket = tostring(redis.call('INCR', P .. 'rl_seq'))
local u = ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[5]
for _, s in ipairs(limited) do
  local L, U, T = keys(s[1])
  redis.call('ZADD', L, ARGV[2], ticket)
  redis.call('HSET', U, ticket, u)
  redis.call('HINCRBY', T, 'r', ur)
  redis.call('HINCRBY', T, 'i', ui)
  redis.call('HINCRBY', T, 'o', uo)
  local ttl = math.floor(s[2] / 1000) + 60000
  redis.call('PEXPIRE', L, ttl); redis.call('PEXPIRE', U, ttl); redis.call('PEXPIRE', T, ttl)
end
return {1, ticket, '0', 0, ''}
)lua";

// ARGV: prefix, now, ticket, actual r, i, o, scopes...
const char* const kLuaSettle = R"lua(
local u = ARGV[4] .. ':' .. ARGV[5] .. ':' .. ARGV[6]
for k = 7, #ARGV do
  local L, U, T = keys(ARGV[k])
  local old = redis.call('HGET', U, ARGV[3])
  if old then
    local r, i, o = parse(old)
    redis.call('HINCRBY', T, 'r', tonumber(ARGV[4]) - r)
    redis.call('HINCRBY', T, 'i', tonumber(ARGV[5]) - i)
    redis.call('HINCRBY', T, 'o', tonumber(ARGV[6]) - o)
    redis.call('HSET', U, ARGV[3], u)
  end
end
return 1
)lua";

// ARGV: prefix, now, scope, window.
const char* const kLuaUsage = R"lua(
local r, i, o = expire(ARGV[3], tonumber(ARGV[4]))
return {r, i, o}
)lua";

// ARGV: prefix, now, scope, until. Holds only extend.
const char* const kLuaHold = R"lua(
local k = P .. 'hold:' .. ARGV[3]
local cur = tonumber(redis.call('GET', k) or '0')
local untl = tonumber(ARGV[4])
if untl > cur then
  redis.call('SET', k, ARGV[4])
  redis.call('PEXPIRE', k, math.floor(math.max(0, untl - now) / 1000) + 1000)  -- relative:
  -- an injected clock's wall time may be far from the server's
end
return 1
)lua";

// Balancer state compare-and-set. ARGV: prefix, group, expected version ('' = none yet), state.
const char* const kLuaBalancerCas = R"lua(
local K = ARGV[1] .. 'bal:' .. ARGV[2]
local v = redis.call('HGET', K, 'v')
if (v or '') ~= ARGV[3] then return 0 end
redis.call('HSET', K, 'v', tostring(tonumber(v or '0') + 1), 's', ARGV[4])
redis.call('PEXPIRE', K, 86400000)
return 1
)lua";

constexpr int kBalancerTries = 64;  // compare-and-set rounds before giving up under contention
constexpr int64_t kNever = INT64_MAX;  // Instant::max() (down until set up again)

// Deployment names are written percent-escaped, so tabs and newlines stay separators.
std::string escape_name(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '%' || c == '\t' || c == '\n' || c == '\r') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_name(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string num(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

using Reply = RedisReply;

int64_t rint(const redisReply* r) {
  if (!r) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  const std::string s = reply_text(r);
  return s.empty() ? 0 : std::stoll(s);
}

}  // namespace

struct RedisRouterState::Impl {
  RedisUrl url;
  std::string redacted, prefix;
  const Clock* clock = nullptr;
  int64_t offset_us = 0;  // wall µs = instant µs + offset
  std::mutex mu;
  RedisContext ctx;
  pid_t pid = 0;
  BreakerConfig breaker;
  std::unordered_map<std::string, RateLimit> limits;
  std::unordered_map<uint64_t, std::vector<std::string>> tickets;
  std::unordered_map<const char*, std::string> shas;
  std::unordered_map<std::string, std::shared_ptr<const BalancerRules>> balancers;

  ~Impl() {
    if (pid != ::getpid()) (void)ctx.release();  // a forked child's copy of the parent's socket
  }

  int64_t wall(Instant t) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() +
           offset_us;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("redis router state " + redacted + ": " + what);
  }

  // Caller holds mu. Opens the connection if there is none (or it belongs to a parent process).
  void connect() {
    if (ctx && pid == ::getpid()) return;
    (void)ctx.release();  // none yet, or a forked child's copy of the parent's socket: leave it
    ctx = redis_connect(url, 5'000, 10'000, "redis router state " + redacted);
    pid = ::getpid();
  }

  // Caller holds mu. One command; the connection is reopened and the command retried once when
  // it drops.
  Reply command(const std::vector<std::string>& args) {
    for (int attempt = 0;; ++attempt) {
      connect();
      try {
        return redis_command(ctx.get(), args, "redis router state " + redacted);
      } catch (const RedisConnectionLost&) {
        ctx.reset();
        if (attempt >= 1) throw;
      }
    }
  }

  // Caller holds mu. EVALSHA, EVAL's body on NOSCRIPT.
  Reply eval(const char* body, std::vector<std::string> args, const char* prelude = nullptr) {
    std::string& sha = shas[body];
    const std::string full = std::string(prelude ? prelude : "") + body;
    args.insert(args.begin(), prefix);
    std::vector<std::string> cmd = {"EVALSHA", sha.empty() ? std::string(40, '0') : sha, "0"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    Reply r = command(cmd);
    if (r->type == REDIS_REPLY_ERROR && reply_text(r.get()).rfind("NOSCRIPT", 0) == 0) {
      Reply loaded = command({"SCRIPT", "LOAD", full});
      if (loaded->type == REDIS_REPLY_ERROR) fail("script: " + reply_text(loaded.get()));
      sha = reply_text(loaded.get());
      cmd[1] = sha;
      r = command(cmd);
    }
    if (r->type == REDIS_REPLY_ERROR) fail("script: " + reply_text(r.get()));
    return r;
  }

  Instant instant(int64_t wall_us) const {
    if (wall_us == kNever) return Instant::max();
    return Instant(std::chrono::microseconds(wall_us - offset_us));
  }

  // "cursor picks explore\n" then per deployment "name\tin_flight\tfailures\tdown\tdown_until
  // \trecovered_at\tlatency_ns\tcurrent\tcredit\n" (times: wall µs; recovered_at "-" if none).
  std::string encode(const BalancerRules& rules, const BalancerState& st) const {
    std::string out = std::to_string(st.cursor) + " " + std::to_string(st.picks) + " " +
                      std::to_string(st.explore_cursor) + "\n";
    for (size_t i = 0; i < st.deps.size() && i < rules.size(); ++i) {
      const DeploymentState& d = st.deps[i];
      out += escape_name(rules.deployments()[i].name) + "\t" + std::to_string(d.in_flight) + "\t" +
             std::to_string(d.failures) + "\t" + (d.down ? "1" : "0") + "\t" +
             std::to_string(d.down_until == Instant::max() ? kNever : wall(d.down_until)) + "\t" +
             (d.recovered_at ? std::to_string(wall(*d.recovered_at)) : "-") + "\t" + num(d.latency_ns) + "\t" +
             num(d.current) + "\t" + num(d.admit_credit) + "\n";
    }
    return out;
  }

  // The stored state for `rules`, matched by deployment name; fresh if absent or unreadable.
  BalancerState decode(const BalancerRules& rules, std::string_view text) const {
    BalancerState st = rules.fresh();
    if (text.empty()) return st;
    try {
      const auto lines = split(text, '\n');
      const auto head = split(lines.at(0), ' ');
      st.cursor = static_cast<size_t>(std::stoull(std::string(head.at(0)))) % rules.size();
      st.picks = std::stoll(std::string(head.at(1)));
      st.explore_cursor = static_cast<size_t>(std::stoull(std::string(head.at(2))));
      for (size_t l = 1; l < lines.size(); ++l) {
        const auto f = split(lines[l], '\t');
        if (f.size() != 9) continue;
        const std::string name = unescape_name(f[0]);
        for (size_t i = 0; i < rules.size(); ++i) {
          if (rules.deployments()[i].name != name) continue;
          DeploymentState& d = st.deps[i];
          d.in_flight = std::stoll(std::string(f[1]));
          d.failures = std::stoi(std::string(f[2]));
          d.down = f[3] == "1";
          d.down_until = instant(std::stoll(std::string(f[4])));
          if (f[5] != "-") d.recovered_at = instant(std::stoll(std::string(f[5])));
          d.latency_ns = std::stod(std::string(f[6]));
          d.current = std::stod(std::string(f[7]));
          d.admit_credit = std::stod(std::string(f[8]));
        }
      }
    } catch (const std::exception&) {  // written by another version or damaged: start over
      return rules.fresh();
    }
    return st;
  }

  std::shared_ptr<const BalancerRules> rules_of(std::string_view group) const {
    auto it = balancers.find(std::string(group));
    if (it == balancers.end()) throw NotFound("no balancer for model group \"" + std::string(group) + "\"");
    return it->second;
  }

  // After a lost compare-and-set: a random pause that grows with the attempts (20 us << n, at most
  // 2 ms), so writers in several processes stop colliding in lockstep.
  static void backoff(int attempt) {
    thread_local std::minstd_rand rng(std::random_device{}());
    const int64_t cap = std::min<int64_t>(int64_t{20} << std::min(attempt, 7), 2000);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int64_t>(0, cap)(rng)));
  }

  // Caller holds mu. Reads the group's state, applies `op`, writes it back if nobody else wrote in
  // between (else again). Returns what `op` returned.
  template <class Op>
  auto balancer_update(std::string_view group, Op&& op) {
    const auto rules = rules_of(group);
    const std::string key = prefix + "bal:" + std::string(group);
    for (int attempt = 0; attempt < kBalancerTries; ++attempt) {
      Reply cur = command({"HMGET", key, "v", "s"});
      if (cur->type != REDIS_REPLY_ARRAY || cur->elements != 2) fail("balancer state: unexpected reply");
      const std::string version = cur->element[0]->type == REDIS_REPLY_STRING ? reply_text(cur->element[0]) : "";
      const std::string text = cur->element[1]->type == REDIS_REPLY_STRING ? reply_text(cur->element[1]) : "";
      BalancerState st = decode(*rules, text);
      auto result = op(*rules, st);
      Reply ok = eval(kLuaBalancerCas, {std::string(group), version, encode(*rules, st)});
      if (rint(ok.get()) == 1) return result;
      backoff(attempt);
    }
    fail("balancer state for group " + std::string(group) + ": too many concurrent writers");
  }

  Reply breaker_op(std::string_view key, Instant now, const char* op) {
    const auto us = [](Duration d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    };
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.17g", breaker.failure_rate);
    return eval(kLuaBreaker, {std::string(key), std::to_string(wall(now)),
                              std::to_string(breaker.consecutive_failures), rate,
                              std::to_string(breaker.min_calls_in_window), us(breaker.window),
                              us(breaker.cooldown), std::to_string(breaker.half_open_probes),
                              std::to_string(breaker.successes_to_close), op,
                              std::to_string(RedisRouterState::kMaxBreakers), std::string(kOtherName)});
  }
};

RedisRouterState::RedisRouterState(const std::string& url, const Clock& clock,
                                   BreakerConfig breaker_config)
    : impl_(std::make_unique<Impl>()) {
  CircuitBreaker validate(breaker_config);  // throws InvalidArgument on a bad config
  (void)validate;
  impl_->url = parse_redis_url(url);
  impl_->redacted = impl_->url.redacted();
  impl_->prefix = impl_->url.prefix.empty() ? "orroute:rs:" : impl_->url.prefix;
  impl_->clock = &clock;
  impl_->breaker = breaker_config;
  const int64_t inst_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              clock.now().time_since_epoch())
                              .count();
  impl_->offset_us = clock.unix_millis() * 1000 - inst_us;
  std::lock_guard lk(impl_->mu);
  impl_->connect();
}

RedisRouterState::~RedisRouterState() = default;

void RedisRouterState::set_breaker_config(const BreakerConfig& config) {
  CircuitBreaker validate(config);
  (void)validate;
  std::lock_guard lk(impl_->mu);
  impl_->breaker = config;
}

bool RedisRouterState::breaker_allow(std::string_view key, Instant now) {
  std::lock_guard lk(impl_->mu);
  return impl_->breaker_op(key, now, "allow")->integer == 1;
}

void RedisRouterState::breaker_record(std::string_view key, CallOutcome outcome, Instant now) {
  std::lock_guard lk(impl_->mu);
  impl_->breaker_op(key, now,
                    outcome == CallOutcome::kSuccess  ? "success"
                    : outcome == CallOutcome::kOutage ? "failure"
                                                      : "release");
}

BreakerSnapshot RedisRouterState::breaker_snapshot(std::string_view key, Instant now) {
  std::lock_guard lk(impl_->mu);
  Reply r = impl_->breaker_op(key, now, "snapshot");
  BreakerSnapshot s;
  s.state = static_cast<BreakerState>(rint(r->element[0]));
  s.consecutive_failures = static_cast<int>(rint(r->element[1]));
  s.calls_in_window = rint(r->element[2]);
  s.failures_in_window = rint(r->element[3]);
  s.open_for = std::chrono::microseconds(rint(r->element[4]));
  s.times_opened = rint(r->element[5]);
  return s;
}

void RedisRouterState::set_limit(std::string_view scope, const RateLimit& limit) {
  if (limit.window.count() <= 0) throw InvalidArgument("rate limit window must be > 0");
  if (limit.requests < 0 || limit.input_tokens < 0 || limit.output_tokens < 0) {
    throw InvalidArgument("rate limits must be >= 0");
  }
  std::lock_guard lk(impl_->mu);
  impl_->limits[std::string(scope)] = limit;
}

Admission RedisRouterState::try_admit(std::span<const std::string> scopes, const LimitUsage& usage,
                                      Instant now) {
  if (usage.requests < 0 || usage.input_tokens < 0 || usage.output_tokens < 0) {
    throw InvalidArgument("rate limiter: usage must be >= 0");
  }
  std::lock_guard lk(impl_->mu);
  std::vector<std::string> args = {std::to_string(impl_->wall(now)),
                                   std::to_string(usage.requests),
                                   std::to_string(usage.input_tokens),
                                   std::to_string(usage.output_tokens),
                                   std::to_string(scopes.size())};
  for (const std::string& s : scopes) {
    RateLimit l{0, 0, 0};
    if (auto it = impl_->limits.find(s); it != impl_->limits.end()) l = it->second;
    args.push_back(s);
    args.push_back(std::to_string(l.requests));
    args.push_back(std::to_string(l.input_tokens));
    args.push_back(std::to_string(l.output_tokens));
    args.push_back(std::to_string(
        std::chrono::duration_cast<std::chrono::microseconds>(l.window).count()));
  }
  Reply r = impl_->eval(kLuaAdmit, std::move(args), kLuaLimiterPrelude);
  Admission a;
  a.admitted = rint(r->element[0]) == 1;
  a.ticket = static_cast<uint64_t>(rint(r->element[1]));
  a.retry_in = std::chrono::microseconds(rint(r->element[2]));
  a.never = rint(r->element[3]) == 1;
  a.blocked_by = reply_text(r->element[4]);
  if (a.ticket != 0) {
    std::vector<std::string> limited;
    for (const std::string& s : scopes) {
      auto it = impl_->limits.find(s);
      if (it != impl_->limits.end() && !it->second.unlimited()) limited.push_back(s);
    }
    impl_->tickets[a.ticket] = std::move(limited);
  }
  return a;
}

void RedisRouterState::settle_admission(uint64_t ticket, const LimitUsage& actual) {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->tickets.find(ticket);
  if (it == impl_->tickets.end()) return;
  std::vector<std::string> args = {"0", std::to_string(ticket), std::to_string(actual.requests),
                                   std::to_string(actual.input_tokens),
                                   std::to_string(actual.output_tokens)};
  args.insert(args.end(), it->second.begin(), it->second.end());
  impl_->tickets.erase(it);
  impl_->eval(kLuaSettle, std::move(args), kLuaLimiterPrelude);
}

void RedisRouterState::forget_admission(uint64_t ticket) {
  std::lock_guard lk(impl_->mu);
  impl_->tickets.erase(ticket);
}

void RedisRouterState::hold(std::string_view scope, Instant until) {
  std::lock_guard lk(impl_->mu);
  impl_->eval(kLuaHold,
              {std::to_string(impl_->wall(impl_->clock->now())), std::string(scope),
               std::to_string(impl_->wall(until))},
              kLuaLimiterPrelude);
}

Duration RedisRouterState::held_for(std::string_view scope, Instant now) {
  std::lock_guard lk(impl_->mu);
  Reply r = impl_->command({"GET", impl_->prefix + "hold:" + std::string(scope)});
  const int64_t until = r->type == REDIS_REPLY_STRING ? std::stoll(reply_text(r.get())) : 0;
  const int64_t left = until - impl_->wall(now);
  return left > 0 ? Duration(std::chrono::microseconds(left)) : Duration(0);
}

LimitUsage RedisRouterState::usage_in_window(std::string_view scope, Instant now) {
  std::lock_guard lk(impl_->mu);
  Duration window = std::chrono::seconds(60);
  if (auto it = impl_->limits.find(std::string(scope)); it != impl_->limits.end()) {
    window = it->second.window;
  }
  Reply r = impl_->eval(
      kLuaUsage,
      {std::to_string(impl_->wall(now)), std::string(scope),
       std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(window).count())},
      kLuaLimiterPrelude);
  return LimitUsage{rint(r->element[0]), rint(r->element[1]), rint(r->element[2])};
}

void RedisRouterState::set_balancer(std::string_view group, const BalancerRules& rules) {
  std::lock_guard lk(impl_->mu);
  impl_->balancers[std::string(group)] = std::make_shared<const BalancerRules>(rules);
}

std::optional<size_t> RedisRouterState::balancer_pick(std::string_view group, const std::vector<size_t>& exclude,
                                                      Instant now) {
  std::lock_guard lk(impl_->mu);
  return impl_->balancer_update(group, [&](const BalancerRules& r, BalancerState& st) {
    return r.choose(st, exclude, now);
  });
}

void RedisRouterState::balancer_finish(std::string_view group, size_t index, bool ok, Duration latency,
                                       Instant now) {
  std::lock_guard lk(impl_->mu);
  impl_->balancer_update(group, [&](const BalancerRules& r, BalancerState& st) {
    r.finish(st, index, ok, latency, now);
    return true;
  });
}

void RedisRouterState::balancer_release(std::string_view group, size_t index, Instant) {
  std::lock_guard lk(impl_->mu);
  impl_->balancer_update(group, [&](const BalancerRules& r, BalancerState& st) {
    r.release(st, index);
    return true;
  });
}

void RedisRouterState::balancer_set_health(std::string_view group, size_t index, bool up, Instant now) {
  std::lock_guard lk(impl_->mu);
  impl_->balancer_update(group, [&](const BalancerRules& r, BalancerState& st) {
    if (up) {
      r.set_up(st, index, now);
    } else {
      r.set_down(st, index);
    }
    return true;
  });
}

std::vector<DeploymentView> RedisRouterState::balancer_view(std::string_view group, Instant now) {
  std::lock_guard lk(impl_->mu);
  const auto rules = impl_->rules_of(group);
  Reply cur = impl_->command({"HGET", impl_->prefix + "bal:" + std::string(group), "s"});
  const std::string text = cur->type == REDIS_REPLY_STRING ? reply_text(cur.get()) : "";
  return view_of(*rules, impl_->decode(*rules, text), now);
}

void RedisRouterState::wipe() {
  std::lock_guard lk(impl_->mu);
  redis_delete_prefix(impl_->prefix, [&](const std::vector<std::string>& cmd) {
    return impl_->command(cmd);
  });
  impl_->tickets.clear();
}

}  // namespace orroute
