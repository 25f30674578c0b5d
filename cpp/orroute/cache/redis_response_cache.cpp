// The Redis ResponseCache (see response_cache.h for the layout). Built only with hiredis.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <mutex>

#include "orroute/cache/response_cache.h"
#include "orroute/error.h"
#include "orroute/net/redis_client.h"

namespace orroute {

std::shared_ptr<ResponseCache> open_redis_response_cache(const std::string& url,
                                                         const CacheLimits& limits);

namespace {

// Removes one key's entry and its bookkeeping (used by kPutScript).
constexpr const char* kDrop = R"lua(
local function drop(p, k)
  local sz = redis.call('HGET', p .. 'rc:size', k)
  if sz then
    redis.call('INCRBY', p .. 'rc:bytes', -tonumber(sz))
    redis.call('HDEL', p .. 'rc:size', k)
  end
  redis.call('DEL', p .. 'rc:e:' .. k)
  redis.call('ZREM', p .. 'rc:used', k)
  redis.call('ZREM', p .. 'rc:exp', k)
end
)lua";

// ARGV: prefix, key, now_us, expires_us, size, max_entries, max_bytes, completion, model,
// prompt_tokens, completion_tokens, cost, cost_nanos. Stores, then evicts (expired first, then the
// least recently used) until within the limits. Returns the number evicted by the limits.
constexpr const char* kPutBody = R"lua(
local p, k = ARGV[1], ARGV[2]
drop(p, k)
local e = p .. 'rc:e:' .. k
redis.call('HSET', e, 'completion', ARGV[8], 'model', ARGV[9], 'pt', ARGV[10], 'ct', ARGV[11],
           'cost', ARGV[12], 'cost_nanos', ARGV[13], 'stored', ARGV[3], 'hits', 0)
local ttl_ms = math.floor((tonumber(ARGV[4]) - tonumber(ARGV[3])) / 1000) + 60000
redis.call('PEXPIRE', e, ttl_ms)
redis.call('HSET', p .. 'rc:size', k, ARGV[5])
redis.call('INCRBY', p .. 'rc:bytes', ARGV[5])
redis.call('ZADD', p .. 'rc:used', ARGV[3], k)
redis.call('ZADD', p .. 'rc:exp', ARGV[4], k)
redis.call('HINCRBY', p .. 'rc:stats', 'stores', 1)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', p .. 'rc:exp', '-inf', ARGV[3])) do
  drop(p, old)
end
local evicted = 0
while redis.call('ZCARD', p .. 'rc:used') > tonumber(ARGV[6]) or
      tonumber(redis.call('GET', p .. 'rc:bytes') or '0') > tonumber(ARGV[7]) do
  local lru = redis.call('ZRANGE', p .. 'rc:used', 0, 0)
  if #lru == 0 then break end
  drop(p, lru[1])
  evicted = evicted + 1
end
if evicted > 0 then redis.call('HINCRBY', p .. 'rc:stats', 'evictions', evicted) end
return evicted
)lua";

// ARGV: prefix, key, now_us. The entry's fields (completion, model, pt, ct, cost, stored, hits)
// or nil for a miss; counts the hit (and its saving) or the miss.
constexpr const char* kGetScript = R"lua(
local p, k = ARGV[1], ARGV[2]
local e = p .. 'rc:e:' .. k
local exp = redis.call('ZSCORE', p .. 'rc:exp', k)
if (not exp) or tonumber(exp) <= tonumber(ARGV[3]) or redis.call('EXISTS', e) == 0 then
  redis.call('HINCRBY', p .. 'rc:stats', 'misses', 1)
  return false
end
local r = redis.call('HMGET', e, 'completion', 'model', 'pt', 'ct', 'cost', 'stored', 'hits',
                     'cost_nanos')
redis.call('HINCRBY', e, 'hits', 1)
redis.call('ZADD', p .. 'rc:used', ARGV[3], k)
redis.call('HINCRBY', p .. 'rc:stats', 'hits', 1)
redis.call('HINCRBY', p .. 'rc:stats', 'saved_nanos', r[8] or '0')
return r
)lua";

int64_t to_i64(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (const std::exception&) {
    return 0;  // not written by this store
  }
}

class RedisResponseCache final : public ResponseCache {
 public:
  RedisResponseCache(const std::string& url, const CacheLimits& limits)
      : url_(parse_redis_url(url)), limits_(limits) {
    prefix_ = url_.prefix.empty() ? "orroute:" : url_.prefix;  // the ledger's default prefix
    who_ = "redis response cache " + url_.redacted();
    put_script_ = std::string(kDrop) + kPutBody;
    std::lock_guard lock(mu_);
    try {
      ctx_ = redis_connect(url_, 5'000, 10'000, who_);
    } catch (const Error& e) {
      throw Error(e.what());  // as orroute::Error (RedisConnectionLost is internal)
    }
  }

  std::optional<CachedReply> get(const std::string& key, TimeUs now) override {
    if (now == 0) now = now_us();
    const RedisReply r = run({"EVAL", kGetScript, "0", prefix_, key, std::to_string(now)});
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 7) return std::nullopt;
    CachedReply out;
    out.completion_json = reply_text(r->element[0]);
    out.model = reply_text(r->element[1]);
    out.prompt_tokens = to_i64(reply_text(r->element[2]));
    out.completion_tokens = to_i64(reply_text(r->element[3]));
    out.cost = Money::parse(reply_text(r->element[4]));
    out.stored_at = to_i64(reply_text(r->element[5]));
    out.hits = to_i64(reply_text(r->element[6]));
    if (!usable_cached_reply(out)) return std::nullopt;  // a poisoned entry: a miss (counted as a hit)
    return out;
  }

  bool put(const std::string& key, const CachedReply& reply, TimeUs now) override {
    if (now == 0) now = now_us();
    const auto size = static_cast<int64_t>(reply.completion_json.size());
    if (size > limits_.max_bytes || size > kMaxCachedReplyBytes) return false;
    run({"EVAL", put_script_, "0", prefix_, key, std::to_string(now),
         std::to_string(cache_expiry(now, limits_.ttl_s)), std::to_string(size),
         std::to_string(limits_.max_entries), std::to_string(limits_.max_bytes),
         reply.completion_json, reply.model, std::to_string(reply.prompt_tokens),
         std::to_string(reply.completion_tokens), reply.cost.to_string(),
         std::to_string(reply.cost.to_nanos_rounded())});
    return true;
  }

  CacheStats stats() override {
    CacheStats out;
    const RedisReply h = run({"HGETALL", prefix_ + "rc:stats"});
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
      const std::string name = reply_text(h->element[i]);
      const int64_t v = to_i64(reply_text(h->element[i + 1]));
      if (name == "hits") out.hits = v;
      if (name == "misses") out.misses = v;
      if (name == "stores") out.stores = v;
      if (name == "evictions") out.evictions = v;
      if (name == "saved_nanos") out.saved_nanos = v;
    }
    out.entries = to_i64(reply_text(
        run({"ZCOUNT", prefix_ + "rc:exp", std::string(1, '(') += std::to_string(now_us()), "+inf"}).get()));
    out.bytes = to_i64(reply_text(run({"GET", prefix_ + "rc:bytes"}).get()));
    return out;
  }

  int64_t clear() override {
    const int64_t n = to_i64(reply_text(run({"ZCARD", prefix_ + "rc:used"}).get()));
    redis_delete_prefix(prefix_ + "rc:", [this](const std::vector<std::string>& args) {
      return run(args);
    });
    return n;
  }

  const CacheLimits& limits() const override { return limits_; }

 private:
  // One command on the cache's connection; a lost connection (or a fork) is reopened once.
  RedisReply run(const std::vector<std::string>& args) {
    std::lock_guard lock(mu_);
    for (int attempt = 0;; ++attempt) {
      try {
        if (!ctx_ || pid_ != ::getpid()) {
          if (ctx_ && pid_ != ::getpid()) (void)ctx_.release();  // the parent's socket
          ctx_ = redis_connect(url_, 5'000, 10'000, who_);
          pid_ = ::getpid();
        }
        RedisReply r = redis_command(ctx_.get(), args, who_);
        if (r->type == REDIS_REPLY_ERROR) {
          throw Error(who_ + ": " + args[0] + ": " + reply_text(r.get()));
        }
        return r;
      } catch (const RedisConnectionLost& e) {
        ctx_.reset();
        if (attempt > 0) throw Error(e.what());
      }
    }
  }

  RedisUrl url_;
  CacheLimits limits_;
  std::string prefix_, who_, put_script_;
  std::mutex mu_;
  RedisContext ctx_;
  pid_t pid_ = ::getpid();
};

}  // namespace

std::shared_ptr<ResponseCache> open_redis_response_cache(const std::string& url,
                                                         const CacheLimits& limits) {
  return std::make_shared<RedisResponseCache>(url, limits);
}

}  // namespace orroute
