#include "orroute/cache/response_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "orroute/cost/sqlite/fork_gate.h"
#include "orroute/error.h"
#include "orroute/sqlite_util.h"
#include "orroute/json.h"
#include "orroute/per_process.h"
#include "orroute/seconds.h"
#include "orroute/utf8.h"

namespace orroute {

#ifdef ORROUTE_HAVE_REDIS
// redis_response_cache.cpp (built only with hiredis).
std::shared_ptr<ResponseCache> open_redis_response_cache(const std::string& url,
                                                         const CacheLimits& limits);
#endif

void check_cache_limits(const CacheLimits& limits) {
  if (limits.ttl_s <= 0) throw InvalidArgument("cache ttl must be > 0 seconds");
  if (limits.max_entries <= 0) throw InvalidArgument("cache max_entries must be > 0");
  if (limits.max_bytes <= 0) throw InvalidArgument("cache max_bytes must be > 0");
}

TimeUs cache_expiry(TimeUs now, int64_t ttl_s) noexcept {
  constexpr auto kMaxTtl = static_cast<int64_t>(kMaxSeconds);
  return now + std::clamp<int64_t>(ttl_s, 0, kMaxTtl) * 1'000'000;
}

bool usable_cached_reply(const CachedReply& reply) {
  constexpr int64_t kMaxTokens = int64_t{1} << 40;  // far above any context; the sum cannot overflow
  if (reply.prompt_tokens < 0 || reply.prompt_tokens > kMaxTokens || reply.completion_tokens < 0 ||
      reply.completion_tokens > kMaxTokens || reply.cost.is_negative()) {
    return false;
  }
  if (static_cast<int64_t>(reply.completion_json.size()) > kMaxCachedReplyBytes) return false;
  // what the engine stores is valid UTF-8 (upstream bytes are repaired on the way in)
  if (!utf8_valid(reply.completion_json) || !utf8_valid(reply.model)) return false;
  rapidjson::Document d;
  return parse_json_text(reply.completion_json, d, static_cast<size_t>(kMaxCachedReplyBytes)) ==
             JsonParse::kOk &&
         d.IsObject();
}

namespace {

// SQLite: its own connection; the tables are created here (the ledger's schema does not know them).
class SqliteResponseCache final : public ResponseCache {
 public:
  SqliteResponseCache(const std::string& path, const CacheLimits& limits) : limits_(limits) {
    const sqlite::ForkGate gate;  // SQLite's process-wide mutexes are taken (fork_gate.h)
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error("response cache: cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 30'000);
    exec("PRAGMA journal_mode=WAL");
    // A cache may lose its last entries on power loss (WAL keeps the file consistent); it must
    // not make every hit wait for an fsync.
    exec("PRAGMA synchronous=NORMAL");
    exec(
        "CREATE TABLE IF NOT EXISTS response_cache ("
        " key TEXT PRIMARY KEY,"
        " completion TEXT NOT NULL,"
        " model TEXT NOT NULL,"
        " prompt_tokens INTEGER NOT NULL,"
        " completion_tokens INTEGER NOT NULL,"
        " cost TEXT NOT NULL,"
        " stored_us INTEGER NOT NULL,"
        " expires_us INTEGER NOT NULL,"
        " used_us INTEGER NOT NULL,"
        " hits INTEGER NOT NULL DEFAULT 0,"
        " size INTEGER NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS response_cache_used ON response_cache (used_us)");
    exec("CREATE INDEX IF NOT EXISTS response_cache_expires ON response_cache (expires_us)");
    exec(
        "CREATE TABLE IF NOT EXISTS response_cache_stats ("
        " name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  }
  ~SqliteResponseCache() override {
    const sqlite::ForkGate gate;  // SQLite's process-wide mutexes are taken (fork_gate.h)
    sqlite3_close(db_);
  }
  SqliteResponseCache(const SqliteResponseCache&) = delete;
  SqliteResponseCache& operator=(const SqliteResponseCache&) = delete;

  std::optional<CachedReply> get(const std::string& key, TimeUs now) override {
    if (now == 0) now = now_us();
    const sqlite::GatedLock lock(mu_);
    Tx tx(*this);
    Stmt s(db_,
           "SELECT completion, model, prompt_tokens, completion_tokens, cost, stored_us, hits "
           "FROM response_cache WHERE key = ? AND expires_us > ?");
    bind(s, 1, key);
    sqlite3_bind_int64(s.s, 2, now);
    const int rc = sqlite3_step(s.s);
    if (rc != SQLITE_ROW) {
      if (rc != SQLITE_DONE) fail("get");
      bump("misses", 1);
      tx.commit();
      return std::nullopt;
    }
    CachedReply r;
    r.completion_json = text(s, 0);
    r.model = text(s, 1);
    r.prompt_tokens = sqlite3_column_int64(s.s, 2);
    r.completion_tokens = sqlite3_column_int64(s.s, 3);
    r.cost = Money::parse(text(s, 4));
    r.stored_at = sqlite3_column_int64(s.s, 5);
    r.hits = sqlite3_column_int64(s.s, 6);
    if (!usable_cached_reply(r)) {  // altered behind the store's back: never served
      bump("misses", 1);
      tx.commit();
      return std::nullopt;
    }
    Stmt u(db_, "UPDATE response_cache SET hits = hits + 1, used_us = ? WHERE key = ?");
    sqlite3_bind_int64(u.s, 1, now);
    bind(u, 2, key);
    if (sqlite3_step(u.s) != SQLITE_DONE) fail("get");
    bump("hits", 1);
    bump("saved_nanos", r.cost.to_nanos_rounded());
    tx.commit();
    return r;
  }

  bool put(const std::string& key, const CachedReply& reply, TimeUs now) override {
    if (now == 0) now = now_us();
    const auto size = static_cast<int64_t>(reply.completion_json.size());
    if (size > limits_.max_bytes || size > kMaxCachedReplyBytes) return false;
    const sqlite::GatedLock lock(mu_);
    Tx tx(*this);
    Stmt s(db_,
           "INSERT OR REPLACE INTO response_cache (key, completion, model, prompt_tokens, "
           "completion_tokens, cost, stored_us, expires_us, used_us, hits, size) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)");
    bind(s, 1, key);
    bind(s, 2, reply.completion_json);
    bind(s, 3, reply.model);
    sqlite3_bind_int64(s.s, 4, reply.prompt_tokens);
    sqlite3_bind_int64(s.s, 5, reply.completion_tokens);
    bind(s, 6, reply.cost.to_string());
    sqlite3_bind_int64(s.s, 7, now);
    sqlite3_bind_int64(s.s, 8, cache_expiry(now, limits_.ttl_s));
    sqlite3_bind_int64(s.s, 9, now);
    sqlite3_bind_int64(s.s, 10, size);
    if (sqlite3_step(s.s) != SQLITE_DONE) fail("put");
    bump("stores", 1);
    evict(now);
    tx.commit();
    return true;
  }

  CacheStats stats() override {
    const sqlite::GatedLock lock(mu_);
    CacheStats out;
    {
      Stmt s(db_, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM response_cache WHERE expires_us > ?");
      sqlite3_bind_int64(s.s, 1, now_us());
      if (sqlite3_step(s.s) != SQLITE_ROW) fail("stats");
      out.entries = sqlite3_column_int64(s.s, 0);
      out.bytes = sqlite3_column_int64(s.s, 1);
    }
    Stmt s(db_, "SELECT name, value FROM response_cache_stats");
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      const std::string name = text(s, 0);
      const int64_t v = sqlite3_column_int64(s.s, 1);
      if (name == "hits") out.hits = v;
      if (name == "misses") out.misses = v;
      if (name == "stores") out.stores = v;
      if (name == "evictions") out.evictions = v;
      if (name == "saved_nanos") out.saved_nanos = v;
    }
    if (rc != SQLITE_DONE) fail("stats");
    return out;
  }

  int64_t clear() override {
    const sqlite::GatedLock lock(mu_);
    Tx tx(*this);
    int64_t n = 0;
    {
      Stmt s(db_, "SELECT COUNT(*) FROM response_cache");
      if (sqlite3_step(s.s) != SQLITE_ROW) fail("clear");
      n = sqlite3_column_int64(s.s, 0);
    }
    exec("DELETE FROM response_cache");
    exec("DELETE FROM response_cache_stats");
    tx.commit();
    return n;
  }

  const CacheLimits& limits() const override { return limits_; }

 private:
  struct Stmt : SqliteStmt {
    Stmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, "response cache") {}
  };
  // BEGIN IMMEDIATE ... COMMIT, rolled back unless committed (an exception on the way).
  struct Tx {
    explicit Tx(SqliteResponseCache& c) : c_(c) { c_.exec("BEGIN IMMEDIATE"); }
    ~Tx() {
      if (!done_) sqlite3_exec(c_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Tx(const Tx&) = delete;
    Tx& operator=(const Tx&) = delete;
    void commit() {
      c_.exec("COMMIT");
      done_ = true;
    }
    SqliteResponseCache& c_;
    bool done_ = false;
  };

  // Drops expired entries, then the least recently used until within the limits (lock and
  // transaction held).
  void evict(TimeUs now) {
    {
      Stmt s(db_, "DELETE FROM response_cache WHERE expires_us <= ?");
      sqlite3_bind_int64(s.s, 1, now);
      if (sqlite3_step(s.s) != SQLITE_DONE) fail("evict");
    }
    int64_t entries = 0, bytes = 0;
    {
      Stmt s(db_, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM response_cache");
      if (sqlite3_step(s.s) != SQLITE_ROW) fail("evict");
      entries = sqlite3_column_int64(s.s, 0);
      bytes = sqlite3_column_int64(s.s, 1);
    }
    if (entries <= limits_.max_entries && bytes <= limits_.max_bytes) return;
    std::vector<std::string> victims;
    {
      Stmt s(db_, "SELECT key, size FROM response_cache ORDER BY used_us, stored_us");
      while ((entries > limits_.max_entries || bytes > limits_.max_bytes) &&
             sqlite3_step(s.s) == SQLITE_ROW) {
        victims.push_back(text(s, 0));
        --entries;
        bytes -= sqlite3_column_int64(s.s, 1);
      }
    }
    Stmt d(db_, "DELETE FROM response_cache WHERE key = ?");
    for (const auto& k : victims) {
      sqlite3_reset(d.s);
      bind(d, 1, k);
      if (sqlite3_step(d.s) != SQLITE_DONE) fail("evict");
    }
    bump("evictions", static_cast<int64_t>(victims.size()));
  }

  void bump(const char* name, int64_t by) {
    Stmt s(db_,
           "INSERT INTO response_cache_stats (name, value) VALUES (?, ?) "
           "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
    sqlite3_bind_text(s.s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s.s, 2, by);
    if (sqlite3_step(s.s) != SQLITE_DONE) fail("stats");
  }

  static void bind(Stmt& s, int i, const std::string& v) { sqlite_bind_text(s, i, v); }
  static std::string text(Stmt& s, int col) { return sqlite_column_text(s, col); }
  void exec(const char* sql) { sqlite_exec(db_, sql, "response cache"); }
  [[noreturn]] void fail(const char* what) {
    throw Error(std::string("response cache: ") + what + ": " + sqlite3_errmsg(db_));
  }

  CacheLimits limits_;
  std::mutex mu_;  // one connection, used by one thread at a time
  sqlite3* db_ = nullptr;
};

// A SQLite connection is not carried across fork() (SQLite's rule: its locks and the copy of its
// state belong to the process that opened it): a forked child's first use opens the file again
// (PerProcess, inside the fork gate, as a file ledger does) and leaves the parent's connection
// alone. A ":memory:" cache starts empty in the child (a cache: a miss costs a call, not money).
class ForkSafeSqliteCache final : public ResponseCache {
 public:
  ForkSafeSqliteCache(const std::string& path, const CacheLimits& limits)
      : limits_(limits), conn_([path, limits] { return std::make_shared<SqliteResponseCache>(path, limits); }) {}
  std::optional<CachedReply> get(const std::string& key, TimeUs now) override { return conn_->get(key, now); }
  bool put(const std::string& key, const CachedReply& reply, TimeUs now) override {
    return conn_->put(key, reply, now);
  }
  CacheStats stats() override { return conn_->stats(); }
  int64_t clear() override { return conn_->clear(); }
  const CacheLimits& limits() const override { return limits_; }

 private:
  const CacheLimits limits_;
  PerProcess<SqliteResponseCache, sqlite::ForkGate> conn_;
};

}  // namespace

std::shared_ptr<ResponseCache> open_response_cache(const std::string& location,
                                                   const CacheLimits& limits) {
  check_cache_limits(limits);
  if (location.rfind("redis://", 0) == 0) {
#ifdef ORROUTE_HAVE_REDIS
    return open_redis_response_cache(location, limits);
#else
    throw InvalidArgument("a redis:// response cache needs a build with hiredis");
#endif
  }
  return std::make_shared<ForkSafeSqliteCache>(location, limits);
}

}  // namespace orroute
