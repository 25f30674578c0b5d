#include "orroute/net/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

namespace orroute {

std::string RedisUrl::redacted() const {
  std::string out = "redis://";
  if (!user.empty() || !password.empty()) out += user + (password.empty() ? "" : ":***") + "@";
  out += host + ":" + std::to_string(port) + "/" + std::to_string(db);
  if (!prefix.empty()) out += "?prefix=" + prefix;
  return out;
}

RedisUrl parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    throw InvalidArgument("a Redis ledger URL must start with redis:// (TLS rediss:// is not "
                          "supported)");
  }
  RedisUrl out;
  std::string_view rest = url.substr(kScheme.size());
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view kv = query.substr(0, amp);
      const auto eq = kv.find('=');
      const std::string_view k = kv.substr(0, eq);
      const std::string_view v = eq == std::string_view::npos ? "" : kv.substr(eq + 1);
      if (k == "prefix") {
        out.prefix = v;
      } else {
        throw InvalidArgument("unknown Redis URL parameter '" + std::string(k) +
                              "' (supported: prefix)");
      }
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = cred.find(':');
    if (colon == std::string_view::npos) {
      out.password = cred;  // redis://secret@host, as redis-py accepts
    } else {
      out.user = cred.substr(0, colon);
      out.password = cred.substr(colon + 1);
    }
  }
  std::string_view hostport = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (db.find_first_not_of("0123456789") != std::string_view::npos || db.size() > 6) {
        throw InvalidArgument("Redis URL database must be a number, got '" + std::string(db) + "'");
      }
      out.db = std::stoi(std::string(db));
    }
  }
  if (const auto colon = hostport.rfind(':');
      colon != std::string_view::npos && hostport.find(']') == std::string_view::npos) {
    const std::string_view port = hostport.substr(colon + 1);
    hostport = hostport.substr(0, colon);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos ||
        port.size() > 5) {
      throw InvalidArgument("Redis URL port must be a number, got '" + std::string(port) + "'");
    }
    out.port = std::stoi(std::string(port));
  }
  if (!hostport.empty()) out.host = hostport;
  return out;
}

void RedisReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }
void RedisContextDeleter::operator()(redisContext* c) const { redisFree(c); }

std::string reply_text(const redisReply* r) {
  if (!r) return "";
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  return "";
}

RedisReply redis_command(redisContext* c, const std::vector<std::string>& args,
                         const std::string& who) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw RedisConnectionLost(who + ": " + c->errstr);
  return RedisReply(r);
}

RedisContext redis_connect(const RedisUrl& url, int32_t connect_timeout_ms,
                           int32_t command_timeout_ms, const std::string& who) {
  const auto tv = [](int32_t ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; };
  RedisContext c(redisConnectWithTimeout(url.host.c_str(), url.port, tv(connect_timeout_ms)));
  if (!c) throw Error(who + ": cannot allocate a connection");
  if (c->err) throw RedisConnectionLost(who + ": cannot connect: " + c->errstr);
  redisSetTimeout(c.get(), tv(command_timeout_ms));
  if (!url.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    const RedisReply r = redis_command(c.get(), auth, who);
    // The server's text only; never the password.
    if (r->type == REDIS_REPLY_ERROR) throw Error(who + ": authentication failed: " + reply_text(r.get()));
  }
  if (url.db != 0) {
    const RedisReply r = redis_command(c.get(), {"SELECT", std::to_string(url.db)}, who);
    if (r->type == REDIS_REPLY_ERROR) {
      throw Error(who + ": SELECT " + std::to_string(url.db) + ": " + reply_text(r.get()));
    }
  }
  return c;
}

void redis_delete_prefix(const std::string& prefix,
                         const std::function<RedisReply(const std::vector<std::string>&)>& run) {
  std::string pattern;
  for (const char ch : prefix) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') pattern += '\\';
    pattern += ch;
  }
  pattern += '*';
  std::string cursor = "0";
  do {
    const RedisReply r = run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    cursor = reply_text(r->element[0]);
    const redisReply* keys = r->element[1];
    if (keys->elements > 0) {
      std::vector<std::string> cmd = {"DEL"};
      for (size_t i = 0; i < keys->elements; ++i) cmd.push_back(reply_text(keys->element[i]));
      run(cmd);
    }
  } while (cursor != "0");
}

}  // namespace orroute
