// The response cache's store: replies of earlier calls by cache key (cache_key.h), with a time to
// live and a size limit, shared by every process (and, with Redis, every machine) using the same
// location.
//
// SQLite: table `response_cache` (and `response_cache_stats`) in the given file, created by this
// store on its own connection (WAL): the ledger file by default, so a ledger and its cache travel
// together. Redis: under the ledger's prefix, `rc:e:<key>` (a hash per reply, with a TTL),
// `rc:used` and `rc:exp` (sorted sets: last use and expiry per key), `rc:bytes` and `rc:stats`;
// every put and get is one Lua script, so the limits hold across machines.
//
// Limits: an entry older than `ttl_s` is never returned; beyond `max_entries` or `max_bytes` the
// least recently used entries are evicted; a reply larger than `max_bytes` (or than
// kMaxCachedReplyBytes) is not stored.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "orroute/catalog/money.h"
#include "orroute/cost/window.h"  // TimeUs

namespace orroute {

// No single reply above this is cached, whatever the limits say.
inline constexpr int64_t kMaxCachedReplyBytes = int64_t{16} << 20;

struct CacheLimits {
  int64_t ttl_s = 24 * 3600;            // > 0
  int64_t max_entries = 10'000;         // > 0
  int64_t max_bytes = int64_t{256} << 20;  // > 0, of reply text
};

struct CachedReply {
  std::string completion_json;  // the reply as the upstream sent it (OpenAI chat.completion)
  std::string model;            // the model that answered
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  Money cost;                   // what the original call cost: what each hit saves
  TimeUs stored_at = 0;         // set by put()
  int64_t hits = 0;             // earlier hits (get() counts the current one)
};

struct CacheStats {
  int64_t entries = 0;   // live ones (Redis: may include some past their TTL until the next put)
  int64_t bytes = 0;     // of reply text
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t stores = 0;
  int64_t evictions = 0;      // by the size limits (not by expiry)
  int64_t saved_nanos = 0;    // sum of the hits' original costs, in 1e-9 USD (rounded per hit)
};

// Thread-safe; every method may throw Error when the backend fails (a caller treats that as a
// miss: the cache must never fail a call).
class ResponseCache {
 public:
  virtual ~ResponseCache() = default;
  // The live reply under `key` (counted as a hit, with its cost as saved), or nullopt (a miss).
  // `now` 0 = the clock.
  virtual std::optional<CachedReply> get(const std::string& key, TimeUs now = 0) = 0;
  // Stores (or replaces) the reply under `key`, then evicts what the limits require. False when
  // the reply is too large to keep.
  virtual bool put(const std::string& key, const CachedReply& reply, TimeUs now = 0) = 0;
  virtual CacheStats stats() = 0;
  // Removes every entry and resets the counters; returns how many entries there were.
  virtual int64_t clear() = 0;
  virtual const CacheLimits& limits() const = 0;
};

// The cache at `location`: a SQLite file (":memory:" is private to the object) or a "redis://"
// URL. Throws InvalidArgument for bad limits or a redis:// location in a build without Redis, and
// Error if it cannot be opened.
std::shared_ptr<ResponseCache> open_response_cache(const std::string& location,
                                                   const CacheLimits& limits = {});

// Whether a reply read back from a store can be served: its completion a JSON object within
// kMaxCachedReplyBytes, it and the model valid UTF-8, its token counts and cost not negative nor absurd. A store is a file or a
// shared server: what it returns is hostile, and an entry that is not usable is a miss (each
// backend's get() checks). Never throws (but bad_alloc).
bool usable_cached_reply(const CachedReply& reply);

// Validates limits (shared by the backends). Throws InvalidArgument.
void check_cache_limits(const CacheLimits& limits);

// When an entry stored at `now` expires: `ttl_s` past it, a ttl of kMaxSeconds (~31.7 years) and
// beyond counted as kMaxSeconds (no overflow, whatever the caller's ttl). Shared by the backends.
TimeUs cache_expiry(TimeUs now, int64_t ttl_s) noexcept;

}  // namespace orroute
