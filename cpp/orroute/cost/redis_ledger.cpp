#include "orroute/cost/redis_ledger.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>

#include "orroute/cost/redis_ledger_calendar.h"
#include "orroute/cost/redis_ledger_lua.h"
#include "orroute/cost/redis_ledger_records.h"

namespace orroute {

using namespace redis_ledger;

namespace {

// Fields of a call hash, in the order calls() reads them.
const char* const kCallFields[] = {
    "ts",       "project", "conversation", "task_id", "task_type", "model_requested",
    "model_used", "provider", "generation_id", "pt",  "ct",        "cached",
    "cw",       "rt",      "est",          "cost",    "lat",       "ttft",
    "outcome",  "err",     "attempts",     "tags",      "src"};
constexpr size_t kNumCallFields = sizeof(kCallFields) / sizeof(kCallFields[0]);

// ---- hiredis plumbing ------------------------------------------------------------------------------

using Reply = RedisReply;
using Ctx = RedisContext;
struct Script {
  std::string body;
  std::string sha;  // filled on first use (SCRIPT LOAD), then EVALSHA
};

}  // namespace

// ---- Impl ------------------------------------------------------------------------------------------

struct RedisLedger::Impl {
  RedisUrl url;
  std::string redacted;
  RedisLedgerOptions options;
  std::string prefix;

  // Idle connections; a calling thread takes one (or opens one) and puts it back.
  std::mutex pool_mu;
  std::vector<Ctx> idle;

  std::mutex script_mu;
  std::unordered_map<const char*, Script> scripts;

  // Budget cache, valid for generation `gen` of the server's list.
  struct BudgetSet {
    std::string gen = "-1";
    std::vector<Budget> budgets;
    std::vector<std::shared_ptr<const TimeZone>> zones;
  };
  std::mutex budget_mu;
  std::shared_ptr<const BudgetSet> bset = std::make_shared<BudgetSet>();

  // This process's live reservations: settle needs their time and scope to compute windows.
  struct Mine {
    TimeUs at;
    SpendScope scope;
    TimeUs expires = 0;
  };
  std::mutex mine_mu;
  std::unordered_map<int64_t, Mine> mine;

  // Alerts crossed by a reclaim's bookings, for the next settle, record or flush_settles.
  std::mutex late_mu;
  std::vector<Alert> late_alerts;

  std::atomic<uint64_t> token_seq{0};
  uint64_t token_salt = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("redis ledger " + redacted + ": " + what);
  }

  Ctx connect() {
    return redis_connect(url, options.connect_timeout_ms, options.command_timeout_ms,
                         "redis ledger " + redacted);
  }

  Reply raw(redisContext* c, const std::vector<std::string>& args) {
    return redis_command(c, args, "redis ledger " + redacted);
  }

  Ctx acquire() {
    {
      std::lock_guard lk(pool_mu);
      if (!idle.empty()) {
        Ctx c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    return connect();
  }
  void give_back(Ctx c) {
    std::lock_guard lk(pool_mu);
    if (idle.size() < 16) idle.push_back(std::move(c));
  }

  // Runs `f(ctx)` on a pooled connection; on a lost connection, once more on a fresh one.
  template <class F>
  auto with_conn(F&& f) -> decltype(f(std::declval<redisContext*>())) {
    for (int attempt = 0;; ++attempt) {
      Ctx c;
      try {
        c = attempt == 0 ? acquire() : connect();
        auto out = f(c.get());
        give_back(std::move(c));
        return out;
      } catch (const RedisConnectionLost& e) {
        if (attempt >= 1) throw Error(e.what());
      }
    }
  }

  Reply command(const std::vector<std::string>& args) {
    Reply r = with_conn([&](redisContext* c) { return raw(c, args); });
    if (r->type == REDIS_REPLY_ERROR) fail(args[0] + ": " + reply_text(r.get()));
    return r;
  }

  // Several commands in one round trip.
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& cmds) {
    return with_conn([&](redisContext* c) {
      for (const auto& args : cmds) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const auto& a : args) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
      }
      std::vector<Reply> out;
      out.reserve(cmds.size());
      for (size_t i = 0; i < cmds.size(); ++i) {
        void* r = nullptr;
        if (redisGetReply(c, &r) != REDIS_OK || !r) {
          throw RedisConnectionLost("redis ledger " + redacted + ": " + c->errstr);
        }
        out.emplace_back(static_cast<redisReply*>(r));
      }
      return out;
    });
  }

  // EVALSHA, falling back to EVAL (which also caches the script) on NOSCRIPT.
  Reply eval(const char* body, std::vector<std::string> args) {
    std::string sha, full;
    {
      std::lock_guard lk(script_mu);
      Script& s = scripts[body];
      if (s.body.empty()) s.body = std::string(kLuaPrelude) + body;
      full = s.body;
      sha = s.sha;
    }
    args.insert(args.begin(), prefix);
    std::vector<std::string> cmd = {"EVALSHA", sha, "0"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    Reply r = with_conn([&](redisContext* c) -> Reply {
      if (!cmd[1].empty()) {
        Reply first = raw(c, cmd);
        if (first->type != REDIS_REPLY_ERROR || reply_text(first.get()).rfind("NOSCRIPT", 0) != 0) {
          return first;
        }
      }
      Reply loaded = raw(c, {"SCRIPT", "LOAD", full});
      if (loaded->type == REDIS_REPLY_ERROR) return loaded;
      cmd[1] = reply_text(loaded.get());
      {
        std::lock_guard lk(script_mu);
        scripts[body].sha = cmd[1];
      }
      return raw(c, cmd);
    });
    if (r->type == REDIS_REPLY_ERROR) fail("script: " + reply_text(r.get()));
    return r;
  }

  std::string token() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%08llx",
                  static_cast<unsigned long long>(token_salt ^ static_cast<uint64_t>(::getpid())),
                  static_cast<unsigned long long>(token_seq.fetch_add(1)));
    return buf;
  }

  // ---- budgets ----

  std::shared_ptr<const BudgetSet> load_budgets() {
    Reply r = eval(kLuaLoadBudgets, {});
    auto fresh = std::make_shared<BudgetSet>();
    fresh->gen = reply_text(r->element[0]);
    for (size_t i = 1; i + 1 < r->elements; i += 2) {
      fresh->budgets.push_back(
          decode_budget(std::stoll(reply_text(r->element[i])), reply_text(r->element[i + 1])));
    }
    std::sort(fresh->budgets.begin(), fresh->budgets.end(),
              [](const Budget& a, const Budget& b) { return a.id < b.id; });
    for (const auto& b : fresh->budgets) fresh->zones.push_back(TimeZone::locate(b.time_zone));
    std::lock_guard lk(budget_mu);
    bset = fresh;
    return fresh;
  }
  std::shared_ptr<const BudgetSet> budget_set() {
    std::lock_guard lk(budget_mu);
    return bset;
  }

  struct Win {
    const Budget* budget;
    TimeUs start, end;
  };
  static std::vector<Win> match(const BudgetSet& set, const SpendScope& scope, TimeUs at, bool all) {
    std::vector<Win> out;
    for (size_t i = 0; i < set.budgets.size(); ++i) {
      const Budget& b = set.budgets[i];
      if (!all && !scope_matches(b.scope, scope)) continue;
      const auto [start, end] = window_bounds(b.window, *set.zones[i], at);
      out.push_back({&b, start, end});
    }
    return out;
  }
  static void put_windows(std::vector<std::string>& args, const std::vector<Win>& wins) {
    // Never an expiry in the past (an injected clock may book into old windows): at least
    // 35 days from the real now.
    const int64_t now_ms = now_us() / 1000;
    args.push_back(std::to_string(wins.size()));
    for (const auto& w : wins) {
      args.push_back(std::to_string(w.budget->id));
      args.push_back(std::to_string(w.start));
      args.push_back(std::to_string(w.end));
      // Counters of ended windows go 35 days after the end (recreated from the calls if read).
      const bool total = w.budget->window == Window::kTotal;
      args.push_back(total ? "0" : std::to_string(std::max(w.end / 1000, now_ms) + 35LL * 86'400'000));
      args.emplace_back(to_string(w.budget->scope.kind));
      args.push_back(w.budget->scope.key);
      args.push_back(w.budget->scope.value);
      args.push_back(units_string(w.budget->limit));
      std::string t;
      for (const int32_t v : w.budget->thresholds_pct) {
        if (!t.empty()) t += ',';
        t += std::to_string(v);
      }
      args.push_back(t);
      args.push_back(w.budget->name());
    }
  }

  // The alerts of a script's reply, from element `from` on: (window index, threshold, spent).
  static std::vector<Alert> alerts_in(const redisReply* r, size_t from, const std::vector<Win>& wins,
                                      TimeUs at) {
    std::vector<Alert> out;
    for (size_t i = from; i + 2 < r->elements; i += 3) {
      const Win& w = wins[std::stoul(reply_text(r->element[i]))];
      out.push_back({w.budget->id, w.budget->name(), std::stoi(reply_text(r->element[i + 1])), w.start, at,
                     parse_units(reply_text(r->element[i + 2])), w.budget->limit});
    }
    return out;
  }

  // The windows a reclaim booked ("bid:start", elements `from` on of its reply): their crossed
  // thresholds are inserted (once across clients, kLuaAlerts) and queued for the next settle,
  // record or flush_settles, as SqliteLedger queues its reclaims'. A failure to check them is
  // not the reserve's: the next settle that finds a threshold crossed and not fired fires it.
  void queue_reclaim_alerts(const redisReply* r, size_t from, TimeUs at) {
    std::vector<std::pair<int64_t, TimeUs>> touched;
    for (size_t i = from; i < r->elements; ++i) {
      const std::string w = reply_text(r->element[i]);
      const std::pair<int64_t, TimeUs> window{std::stoll(w.substr(0, w.find(':'))),
                                              std::stoll(w.substr(w.find(':') + 1))};
      if (std::find(touched.begin(), touched.end(), window) == touched.end()) touched.push_back(window);
    }
    if (touched.empty()) return;
    try {
      for (int round = 0; round < 20; ++round) {
        const auto set = round == 0 ? budget_set() : load_budgets();
        std::vector<Win> wins;
        for (const auto& [bid, start] : touched) {
          for (size_t i = 0; i < set->budgets.size(); ++i) {
            const Budget& b = set->budgets[i];
            if (b.id == bid) wins.push_back({&b, start, window_bounds(b.window, *set->zones[i], start).second});
          }
        }
        std::vector<std::string> args = {set->gen, std::to_string(at)};
        put_windows(args, wins);
        Reply a = eval(kLuaAlerts, std::move(args));
        if (reply_text(a->element[0]) == "stale") continue;
        std::vector<Alert> alerts = alerts_in(a.get(), 1, wins, at);
        std::lock_guard lk(late_mu);
        for (Alert& alert : alerts) late_alerts.push_back(std::move(alert));
        return;
      }
    } catch (const Error&) {
    }
  }

  void hand_out_late_alerts(std::vector<Alert>& out) {
    std::lock_guard lk(late_mu);
    for (Alert& alert : late_alerts) out.push_back(std::move(alert));
    late_alerts.clear();
  }

  // ---- calls ----

  std::string qkey(std::string_view task_type, std::string_view model) const {
    return prefix + "q:" + std::to_string(task_type.size()) + ":" + std::string(task_type) +
           std::string(model);
  }

  static void put_call(std::vector<std::string>& a, const CallRecord& c) {
    auto kv = [&](const char* k, std::string v) {
      a.emplace_back(k);
      a.push_back(std::move(v));
    };
    kv("ts", std::to_string(c.at));
    kv("project", c.scope.project);
    kv("conversation", c.scope.conversation);
    kv("task_id", c.task_id);
    kv("task_type", c.task_type);
    kv("model_requested", c.model_requested);
    kv("model_used", c.model_used);
    kv("provider", c.provider);
    kv("generation_id", c.generation_id);
    kv("pt", std::to_string(c.prompt_tokens));
    kv("ct", std::to_string(c.completion_tokens));
    kv("cached", std::to_string(c.cached_tokens));
    kv("cw", std::to_string(c.cache_write_tokens));
    kv("rt", std::to_string(c.reasoning_tokens));
    if (c.estimated_cost) kv("est", units_string(*c.estimated_cost));
    kv("cost", units_string(c.cost));
    if (c.latency_us >= 0) kv("lat", std::to_string(c.latency_us));
    if (c.ttft_us >= 0) kv("ttft", std::to_string(c.ttft_us));
    kv("outcome", c.outcome);
    kv("err", c.error_class);
    kv("attempts", std::to_string(c.attempts));
    kv("tags", encode_tags(c.scope.tags));
    if (!c.cost_source.empty()) kv("src", c.cost_source);
  }

  static CallRecord read_call(int64_t id, const redisReply* r) {
    auto s = [&](size_t i) { return reply_text(r->element[i]); };
    auto nil = [&](size_t i) { return r->element[i]->type == REDIS_REPLY_NIL; };
    auto i64 = [&](size_t i) { return nil(i) ? int64_t{0} : std::stoll(s(i)); };
    CallRecord c;
    c.id = id;
    c.at = i64(0);
    c.scope.project = s(1);
    c.scope.conversation = s(2);
    c.task_id = s(3);
    c.task_type = s(4);
    c.model_requested = s(5);
    c.model_used = s(6);
    c.provider = s(7);
    c.generation_id = s(8);
    c.prompt_tokens = i64(9);
    c.completion_tokens = i64(10);
    c.cached_tokens = i64(11);
    c.cache_write_tokens = i64(12);
    c.reasoning_tokens = i64(13);
    if (!nil(14)) c.estimated_cost = parse_units(s(14));
    c.cost = parse_units(s(15));
    c.latency_us = nil(16) ? -1 : i64(16);
    c.ttft_us = nil(17) ? -1 : i64(17);
    c.outcome = s(18);
    c.error_class = s(19);
    c.attempts = static_cast<int32_t>(i64(20));
    c.scope.tags = decode_tags(s(21));
    std::sort(c.scope.tags.begin(), c.scope.tags.end());
    if (!nil(22)) c.cost_source = s(22);
    return c;
  }

  static bool wanted(const CallQuery& q, const CallRecord& c) {
    if (!q.project.empty() && c.scope.project != q.project) return false;
    if (!q.conversation.empty() && c.scope.conversation != q.conversation) return false;
    if (!q.model.empty() && c.model_used != q.model) return false;
    if (!q.task_type.empty() && c.task_type != q.task_type) return false;
    if (!q.tag_key.empty()) {
      const auto& t = c.scope.tags;
      if (std::none_of(t.begin(), t.end(), [&](const auto& kv) {
            return kv.first == q.tag_key && kv.second == q.tag_value;
          })) {
        return false;
      }
    }
    return true;
  }

  // Every call in the query's time range that passes its filters, in id order; `sink` gets each.
  template <class Sink>
  void scan(const CallQuery& q, Sink&& sink) {
    const std::string lo = std::to_string(q.from);
    const std::string hi = q.to > 0 ? "(" + std::to_string(q.to) : "+inf";
    constexpr int64_t kBatch = 500;
    for (int64_t offset = 0;; offset += kBatch) {
      Reply ids = command({"ZRANGEBYSCORE", prefix + "calls", lo, hi, "LIMIT",
                           std::to_string(offset), std::to_string(kBatch)});
      if (ids->elements == 0) break;
      std::vector<std::vector<std::string>> cmds;
      std::vector<int64_t> idv;
      for (size_t i = 0; i < ids->elements; ++i) {
        const std::string id = reply_text(ids->element[i]);
        idv.push_back(std::stoll(id));
        std::vector<std::string> cmd = {"HMGET", prefix + "call:" + id};
        for (const char* f : kCallFields) cmd.emplace_back(f);
        cmds.push_back(std::move(cmd));
      }
      auto rows = pipeline(cmds);
      for (size_t i = 0; i < rows.size(); ++i) {
        const redisReply* r = rows[i].get();
        if (r->type != REDIS_REPLY_ARRAY || r->elements != kNumCallFields ||
            r->element[15]->type == REDIS_REPLY_NIL) {
          continue;  // removed meanwhile
        }
        CallRecord c = read_call(idv[i], r);
        if (wanted(q, c)) sink(std::move(c));
      }
      if (static_cast<int64_t>(ids->elements) < kBatch) break;
    }
  }

  // ---- settle / record ----

  // The time and scope of another process's reservation, or of the row booking it as abandoned
  // (kLuaSettle replaces it); nullopt when neither exists.
  std::optional<Mine> reservation_or_booking(int64_t reservation_id) {
    const auto read = [&](const std::string& key, const char* at_field) -> std::optional<Mine> {
      Reply r = command({"HMGET", key, at_field, "project", "conversation", "tags"});
      if (r->element[0]->type == REDIS_REPLY_NIL) return std::nullopt;
      return Mine{std::stoll(reply_text(r->element[0])),
                  SpendScope{reply_text(r->element[1]), reply_text(r->element[2]),
                             decode_tags(reply_text(r->element[3]))},
                  0};
    };
    const std::string id = std::to_string(reservation_id);
    if (std::optional<Mine> m = read(prefix + "res:" + id, "at")) return m;
    Reply booking = command({"GET", prefix + "abandoned:" + id});
    if (booking->type == REDIS_REPLY_NIL) return std::nullopt;
    return read(prefix + "call:" + reply_text(booking.get()), "ts");
  }

  // The row of call `id` and what its refunds gave back; throws InvalidArgument when there is none.
  std::pair<CallRecord, std::string> call_to_refund(int64_t id) {
    std::vector<std::string> cmd = {"HMGET", prefix + "call:" + std::to_string(id)};
    for (const char* f : kCallFields) cmd.emplace_back(f);
    cmd.emplace_back("refunded");
    Reply r = command(cmd);
    if (r->element[15]->type == REDIS_REPLY_NIL) {
      throw InvalidArgument("no call " + std::to_string(id) + " to refund");
    }
    const redisReply* refunded = r->element[kNumCallFields];
    return {read_call(id, r.get()), refunded->type == REDIS_REPLY_NIL ? "0" : reply_text(refunded)};
  }

  // Writes `call`: the settle of `reservation_id` (0: a record), or with `refunded_call` > 0 the
  // refund of that call (refund_of's check against what the script finds its refunds gave back).
  SettleOutcome write_call(int64_t reservation_id, CallRecord call, int64_t refunded_call = 0) {
    check_call(call);
    check_scope(call.scope);
    const std::string tok = token();
    const TimeUs now = now_us();
    for (int round = 0; round < 20; ++round) {
      bool assumed = false;
      CallRecord c = call;
      std::string refunded_before = "0";
      if (refunded_call > 0) {
        auto [refunded, before] = call_to_refund(refunded_call);
        refund_of(refunded, parse_units(before), c);
        refunded_before = std::move(before);
      }
      if (reservation_id > 0) {
        std::optional<Mine> m;
        {
          std::lock_guard lk(mine_mu);
          if (auto it = mine.find(reservation_id); it != mine.end()) m = it->second;
        }
        if (!m) m = reservation_or_booking(reservation_id);
        if (m) {
          assumed = true;
          c.at = m->at;
          c.scope = m->scope;
        }
      }
      if (c.at == 0) c.at = now;
      auto set = budget_set();
      const auto wins = match(*set, c.scope, c.at, false);
      std::vector<std::string> args = {set->gen, tok, std::to_string(std::max<int64_t>(reservation_id, 0)),
                                       assumed ? "1" : "0", std::to_string(c.at),
                                       units_string(c.cost), std::to_string(c.at),
                                       c.outcome == "ok" ? qkey(c.task_type, c.model_used) : "",
                                       std::to_string(c.completion_tokens),
                                       std::to_string(refunded_call), refunded_before};
      put_windows(args, wins);
      put_call(args, c);
      Reply r = eval(kLuaSettle, std::move(args));
      const std::string status = reply_text(r->element[0]);
      if (status == "stale") {
        load_budgets();
        continue;
      }
      if (status == "refund") {
        const Win& w = wins[std::stoul(reply_text(r->element[1]))];
        throw refund_past_spent(w.budget->name(), c.cost, parse_units(reply_text(r->element[2])));
      }
      if (status == "retry") {
        std::lock_guard lk(mine_mu);
        mine.erase(reservation_id);
        continue;
      }
      {
        std::lock_guard lk(mine_mu);
        mine.erase(reservation_id);
      }
      SettleOutcome out;
      if (status == "dup") {  // the first attempt ran before its connection dropped
        const std::string v = reply_text(r->element[1]);
        out.call_id = std::stoll(v);
        out.reservation_found = v.size() >= 2 && v.substr(v.size() - 2) == ":1";
        if (reservation_id == 0) out.reservation_found = true;
        return out;
      }
      out.call_id = std::stoll(reply_text(r->element[1]));
      out.reservation_found = reservation_id == 0 || reply_text(r->element[2]) == "1";
      out.alerts = alerts_in(r.get(), 3, wins, c.at);
      return out;
    }
    fail("settle kept racing with budget changes");
  }
};

// ---- public ------------------------------------------------------------------------------------

// In a forked child the first use connects again (PerProcess): the parent's connections, and its
// reservations in flight, which it settles, are left to it.
RedisLedger::RedisLedger(const std::string& url, RedisLedgerOptions options)
    : impl_([url, options] { return open(url, options); }) {}

std::shared_ptr<RedisLedger::Impl> RedisLedger::open(const std::string& url,
                                                     const RedisLedgerOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->url = parse_redis_url(url);
  impl->redacted = impl->url.redacted();
  impl->options = options;
  impl->prefix = impl->url.prefix.empty() ? options.prefix : impl->url.prefix;
  std::random_device rd;
  impl->token_salt = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                     static_cast<uint64_t>(now_us());
  try {
    impl->give_back(impl->connect());
  } catch (const Error& e) {
    throw Error(e.what());  // as orroute::Error (RedisConnectionLost is internal)
  }
  impl->load_budgets();
  return impl;
}

RedisLedger::~RedisLedger() = default;

const std::string& RedisLedger::url() const { return impl_->redacted; }
const std::string& RedisLedger::prefix() const { return impl_->prefix; }

int64_t RedisLedger::set_budget(const BudgetSpec& spec) {
  if (spec.limit.is_negative()) throw InvalidArgument("budget limit must be >= 0");
  if (spec.scope.kind != ScopeKind::kGlobal && spec.scope.value.empty()) {
    throw InvalidArgument("budget scope " + spec.scope.to_string() + " needs a name");
  }
  if (spec.scope.kind == ScopeKind::kTag &&
      (spec.scope.key.empty() || spec.scope.key.find_first_of("=\n") != std::string::npos)) {
    throw InvalidArgument("tag budget needs a key without '='");
  }
  for (const int32_t t : spec.thresholds_pct) {
    if (t <= 0 || t > 1000) throw InvalidArgument("alert thresholds must be in (0, 1000] percent");
  }
  TimeZone::locate(spec.time_zone);  // throws if unknown
  Reply r = impl_->eval(kLuaSetBudget,
                        {budget_identity(spec.scope, spec.window), encode_budget(spec)});
  impl_->load_budgets();
  return std::stoll(reply_text(r.get()));
}

bool RedisLedger::remove_budget(const BudgetScope& scope, Window window) {
  Reply r = impl_->eval(kLuaRemoveBudget, {budget_identity(scope, window)});
  impl_->load_budgets();
  return reply_text(r.get()) != "0";
}

std::vector<Budget> RedisLedger::budgets() { return impl_->load_budgets()->budgets; }

std::vector<BudgetState> RedisLedger::budget_states(const SpendScope& scope, TimeUs at, bool all) {
  if (at == 0) at = now_us();
  auto set = impl_->load_budgets();
  for (int round = 0; round < 20; ++round) {
    const auto wins = Impl::match(*set, scope, at, all);
    std::vector<std::string> args = {set->gen};
    Impl::put_windows(args, wins);
    Reply r = impl_->eval(kLuaStates, std::move(args));
    if (reply_text(r->element[0]) == "stale") {
      set = impl_->load_budgets();
      continue;
    }
    std::vector<BudgetState> out;
    for (size_t i = 0; i < wins.size(); ++i) {
      out.push_back({*wins[i].budget, wins[i].start, wins[i].end,
                     parse_units(reply_text(r->element[1 + 2 * i])),
                     parse_units(reply_text(r->element[2 + 2 * i]))});
    }
    return out;
  }
  impl_->fail("budget_states kept racing with budget changes");
}

ReserveOutcome RedisLedger::reserve(const ReserveRequest& req) {
  if (req.amount.is_negative()) throw InvalidArgument("reservation amount must be >= 0");
  if (req.ttl_us <= 0) throw InvalidArgument("reservation ttl must be > 0");
  check_scope(req.scope);
  const TimeUs at = req.at != 0 ? req.at : now_us();
  const std::string tok = impl_->token();
  auto set = impl_->budget_set();
  for (int round = 0; round < 20; ++round) {
    const auto wins = Impl::match(*set, req.scope, at, false);
    std::vector<std::string> args = {set->gen,
                                     tok,
                                     std::to_string(at),
                                     std::to_string(at + req.ttl_us),
                                     units_string(req.amount),
                                     req.scope.project,
                                     req.scope.conversation,
                                     encode_tags(req.scope.tags),
                                     req.model,
                                     req.task_id};
    Impl::put_windows(args, wins);
    Reply r = impl_->eval(kLuaReserve, std::move(args));
    const std::string status = reply_text(r->element[0]);
    ReserveOutcome out;
    if (status == "stale") {
      set = impl_->load_budgets();
      continue;
    }
    if (status == "ok" || status == "exceeded") impl_->queue_reclaim_alerts(r.get(), 2 + 2 * wins.size(), at);
    if (status == "cutoff") {
      out.status = ReserveStatus::kCutoff;
      out.cutoff_reason = reply_text(r->element[1]);
      return out;
    }
    if (status == "dup") {  // the first attempt ran before its connection dropped
      out.reservation_id = std::stoll(reply_text(r->element[1]));
    } else {
      bool refuse = false, downgrade = false;
      std::vector<std::pair<Money, Money>> counters;
      for (size_t i = 0; i < wins.size(); ++i) {
        counters.emplace_back(parse_units(reply_text(r->element[2 + 2 * i])),
                              parse_units(reply_text(r->element[3 + 2 * i])));
      }
      std::optional<BudgetState> block;
      for (size_t i = 0; i < wins.size(); ++i) {
        const BudgetState st{*wins[i].budget, wins[i].start, wins[i].end, counters[i].first,
                             counters[i].second};
        if (!out.remaining || st.remaining() < *out.remaining) out.remaining = st.remaining();
        if (st.spent + st.reserved + req.amount > st.budget.limit) {
          if (st.budget.policy == Policy::kRefuse && !refuse) {
            refuse = true;
            block = st;
          }
          if (st.budget.policy == Policy::kDowngrade && !downgrade) {
            downgrade = true;
            if (!refuse) block = st;
          }
        }
      }
      if (status == "exceeded") {
        out.status = ReserveStatus::kExceeded;
        out.blocking = block;
        return out;
      }
      out.reservation_id = std::stoll(reply_text(r->element[1]));
    }
    std::lock_guard lk(impl_->mine_mu);
    if (impl_->mine.size() >= 4096) {  // forget reservations that expired without a settle
      std::erase_if(impl_->mine, [&](const auto& kv) { return kv.second.expires <= at; });
    }
    impl_->mine[out.reservation_id] = {at, req.scope, at + req.ttl_us};
    return out;
  }
  impl_->fail("reserve kept racing with budget changes");
}

SettleOutcome RedisLedger::settle(int64_t reservation_id, CallRecord call) {
  check_not_refund(call);
  SettleOutcome out = impl_->write_call(std::max<int64_t>(reservation_id, 0), std::move(call));
  if (reservation_id <= 0) out.reservation_found = false;
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

bool RedisLedger::release(int64_t reservation_id) {
  {
    std::lock_guard lk(impl_->mine_mu);
    impl_->mine.erase(reservation_id);
  }
  const std::string id = std::to_string(reservation_id);
  std::vector<std::string> args = {id, "", "", "0"};  // no booking's generation, time, windows yet
  for (int round = 0; round < 20; ++round) {
    Reply r = impl_->eval(kLuaRelease, args);
    const std::string status = reply_text(r->element[0]);
    if (status != "booked") return status == "ok";
    // Booked as abandoned by a reclaim: the release undoes the booking in its windows.
    const std::optional<Impl::Mine> booking = impl_->reservation_or_booking(reservation_id);
    if (!booking) continue;
    const auto set = impl_->load_budgets();
    args = {id, set->gen, std::to_string(booking->at)};
    Impl::put_windows(args, Impl::match(*set, booking->scope, booking->at, false));
  }
  impl_->fail("release kept racing with budget changes");
}

SettleOutcome RedisLedger::record(CallRecord call) {
  check_not_refund(call);
  if (call.at == 0) call.at = now_us();
  SettleOutcome out = impl_->write_call(0, std::move(call));
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

SettleOutcome RedisLedger::record_refund_of(int64_t call_id, CallRecord refund) {
  if (call_id <= 0) throw InvalidArgument("no call " + std::to_string(call_id) + " to refund");
  SettleOutcome out = impl_->write_call(0, std::move(refund), call_id);
  impl_->hand_out_late_alerts(out.alerts);
  return out;
}

int64_t RedisLedger::reclaim(TimeUs at) {
  if (at == 0) at = now_us();
  Reply r = impl_->eval(kLuaReclaim, {std::to_string(at)});
  impl_->queue_reclaim_alerts(r.get(), 1, at);
  return r->element[0]->integer;
}

std::vector<Alert> RedisLedger::flush_settles() {
  std::vector<Alert> out;
  impl_->hand_out_late_alerts(out);
  return out;
}

std::pair<int64_t, Money> RedisLedger::live_reservations() {
  Reply r = impl_->eval(kLuaLive, {});
  return {std::stoll(reply_text(r->element[0])), parse_units(reply_text(r->element[1]))};
}

void RedisLedger::set_cutoff(std::optional<std::string> reason) {
  if (reason) {
    impl_->command({"SET", impl_->prefix + "cutoff", *reason});
  } else {
    impl_->command({"DEL", impl_->prefix + "cutoff"});
  }
}

std::optional<std::string> RedisLedger::cutoff() {
  Reply r = impl_->command({"GET", impl_->prefix + "cutoff"});
  if (r->type == REDIS_REPLY_NIL) return std::nullopt;
  return reply_text(r.get());
}

std::vector<CallRecord> RedisLedger::calls(const CallQuery& q) {
  std::vector<CallRecord> out;
  impl_->scan(q, [&](CallRecord c) { out.push_back(std::move(c)); });
  std::sort(out.begin(), out.end(), [](const CallRecord& a, const CallRecord& b) { return a.id < b.id; });
  if (q.limit >= 0 && static_cast<int64_t>(out.size()) > q.limit) {
    out.erase(out.begin(), out.end() - q.limit);
  }
  return out;
}

Money RedisLedger::total_cost(const CallQuery& q) {
  Money sum;
  impl_->scan(q, [&](const CallRecord& c) { sum += c.cost; });
  return sum;
}

std::vector<ReportRow> RedisLedger::report(const CallQuery& q, std::string_view period,
                                           std::string_view by) {
  static const char* const kPeriods[] = {"day", "daily", "week", "weekly", "month", "monthly",
                                         "hour", "total", ""};
  if (std::find(std::begin(kPeriods), std::end(kPeriods), period) == std::end(kPeriods)) {
    throw InvalidArgument("report period must be hour, day, week, month or total, got '" +
                          std::string(period) + "'");
  }
  static const char* const kColumns[] = {"model", "model_requested", "project", "provider",
                                         "task_type", "conversation", "outcome", "error_class",
                                         "task_id"};
  std::string tag_key;
  if (by.empty() || by == "none") {
    by = "";
  } else if (by.substr(0, 4) == "tag:" && by.size() > 4) {
    tag_key = by.substr(4);
  } else if (std::find(std::begin(kColumns), std::end(kColumns), by) == std::end(kColumns)) {
    throw InvalidArgument("report cannot group by '" + std::string(by) +
                          "' (model, model_requested, project, provider, task_type, "
                          "conversation, outcome, error_class, task_id, tag:<key>)");
  }
  auto key_of = [&](const CallRecord& c) -> std::string {
    if (by.empty()) return "";
    if (!tag_key.empty()) {
      for (const auto& [k, v] : c.scope.tags) {
        if (k == tag_key) return v;
      }
      return "";
    }
    if (by == "model") return c.model_used;
    if (by == "model_requested") return c.model_requested;
    if (by == "project") return c.scope.project;
    if (by == "provider") return c.provider;
    if (by == "task_type") return c.task_type;
    if (by == "conversation") return c.scope.conversation;
    if (by == "outcome") return c.outcome;
    if (by == "error_class") return c.error_class;
    return c.task_id;
  };
  std::map<std::pair<std::string, std::string>, ReportRow> groups;
  impl_->scan(q, [&](const CallRecord& c) {
    const std::string p = period_label(period, c.at);
    const std::string k = key_of(c);
    ReportRow& r = groups[{p, k}];
    r.period = p;
    r.key = k;
    if (is_call(c.outcome)) {
      ++r.calls;
      if (c.outcome != "ok") ++r.errors;
    }
    r.prompt_tokens += c.prompt_tokens;
    r.completion_tokens += c.completion_tokens;
    r.cost += c.cost;
    if (c.estimated_cost) {
      r.estimated += *c.estimated_cost;
      r.cost_of_estimated += c.cost;
    }
    if (c.latency_us >= 0) {
      r.latency_us_sum += c.latency_us;
      ++r.latency_count;
    }
  });
  std::vector<ReportRow> out;
  out.reserve(groups.size());
  for (auto& [k, r] : groups) out.push_back(std::move(r));
  return out;
}

std::vector<Alert> RedisLedger::alerts(TimeUs from) {
  Reply keys = impl_->command({"ZRANGEBYSCORE", impl_->prefix + "alerts", std::to_string(from), "+inf"});
  std::vector<Alert> out;
  if (keys->elements == 0) return out;
  std::vector<std::string> cmd = {"HMGET", impl_->prefix + "alert_keys"};
  for (size_t i = 0; i < keys->elements; ++i) cmd.push_back(reply_text(keys->element[i]));
  Reply recs = impl_->command(cmd);
  for (size_t i = 0; i < recs->elements; ++i) {
    const std::string rec = reply_text(recs->element[i]);
    std::vector<std::string> f;
    size_t pos = 0;
    for (int j = 0; j < 6; ++j) {
      const size_t nl = rec.find('\n', pos);
      if (nl == std::string::npos) break;
      f.push_back(rec.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (f.size() != 6) continue;
    out.push_back({std::stoll(f[0]), rec.substr(pos), std::stoi(f[2]), std::stoll(f[1]),
                   std::stoll(f[3]), parse_units(f[4]), parse_units(f[5])});
  }
  std::sort(out.begin(), out.end(), [](const Alert& a, const Alert& b) {
    return std::tie(a.at, a.budget_id, a.threshold_pct) < std::tie(b.at, b.budget_id, b.threshold_pct);
  });
  return out;
}

std::optional<int64_t> RedisLedger::completion_quantile(std::string_view task_type,
                                                        std::string_view model, double q,
                                                        int64_t last_n) {
  if (!(q >= 0.0 && q <= 1.0)) throw InvalidArgument("quantile must be in [0, 1]");
  if (last_n <= 0) return std::nullopt;
  Reply r = impl_->command({"LRANGE", impl_->qkey(task_type, model), "0", std::to_string(last_n - 1)});
  std::vector<int64_t> v;
  for (size_t i = 0; i < r->elements; ++i) v.push_back(std::stoll(reply_text(r->element[i])));
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  // Nearest rank, as SqliteLedger.
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[rank == 0 ? 0 : std::min(rank, v.size()) - 1];
}

void RedisLedger::wipe() {
  redis_delete_prefix(impl_->prefix, [&](const std::vector<std::string>& cmd) {
    return impl_->command(cmd);
  });
  {
    std::lock_guard lk(impl_->mine_mu);
    impl_->mine.clear();
  }
  impl_->load_budgets();
}

}  // namespace orroute
