// What the Redis backends (RedisLedger, RedisRouterState) share of hiredis: the URL, opening a
// connection (timeouts, AUTH, SELECT), sending one command, reading a reply's text and deleting
// every key under a prefix. Built only with hiredis (like every redis_*.cpp); this header does not
// include hiredis itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/error.h"

struct redisContext;
struct redisReply;

namespace orroute {

// Parsed form of `redis://[[user]:password@]host[:port][/db][?prefix=...]`.
struct RedisUrl {
  std::string host = "127.0.0.1";
  int32_t port = 6379;
  int32_t db = 0;
  std::string user;
  std::string password;
  std::string prefix;  // empty = not given
  // The URL with the password replaced by "***" (safe for logs and errors).
  std::string redacted() const;
};
// Throws InvalidArgument on anything else (the message never contains the password).
RedisUrl parse_redis_url(std::string_view url);

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

struct RedisContextDeleter {
  void operator()(redisContext* c) const;
};
using RedisContext = std::unique_ptr<redisContext, RedisContextDeleter>;

// The connection failed or dropped (as opposed to the server answering with an error).
class RedisConnectionLost : public Error {
 public:
  using Error::Error;
};

// Text of a string, status or error reply; an integer reply in decimal; "" for anything else.
std::string reply_text(const redisReply* r);

// Sends one command and waits for its reply (which may be an error reply). Throws
// RedisConnectionLost("<who>: <hiredis error>") when no reply comes back.
RedisReply redis_command(redisContext* c, const std::vector<std::string>& args,
                         const std::string& who);

// Connects to `url` with the given timeouts, then AUTH and SELECT as the URL asks. Throws
// RedisConnectionLost when the server cannot be reached and Error when it refuses AUTH or SELECT;
// messages start with `who` (e.g. "redis ledger " + url.redacted()) and never hold the password.
RedisContext redis_connect(const RedisUrl& url, int32_t connect_timeout_ms,
                           int32_t command_timeout_ms, const std::string& who);

// Deletes every key that starts with `prefix` (SCAN + DEL; glob characters in the prefix are
// escaped). `run` sends one command the caller's way (its connection, its retries).
void redis_delete_prefix(const std::string& prefix,
                         const std::function<RedisReply(const std::vector<std::string>&)>& run);

}  // namespace orroute
