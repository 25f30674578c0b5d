// The Redis FeedbackStore (see feedback_store.h for the layout). Built only with hiredis.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>

#include "orroute/cost/feedback_store.h"
#include "orroute/error.h"
#include "orroute/net/redis_client.h"

namespace orroute {

std::shared_ptr<FeedbackStore> open_redis_feedback_store(const std::string& url);

namespace {

constexpr int64_t kLogRows = 100'000;

// One script: the sums, the count and the log row change together or not at all.
constexpr const char* kAddScript = R"lua(
local p = ARGV[1]
redis.call('HINCRBY', p .. 'fb:sum', ARGV[2], ARGV[3])
redis.call('HINCRBY', p .. 'fb:n', ARGV[2], 1)
local id = redis.call('INCR', p .. 'fb:seq')
redis.call('RPUSH', p .. 'fb:log', id .. '\t' .. ARGV[4])
if redis.call('LLEN', p .. 'fb:log') > tonumber(ARGV[5]) then redis.call('LPOP', p .. 'fb:log') end
return id
)lua";

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, '\t')) out.push_back(part);
  if (!s.empty() && s.back() == '\t') out.emplace_back();
  return out;
}

class RedisFeedbackStore final : public FeedbackStore {
 public:
  explicit RedisFeedbackStore(const std::string& url) : url_(parse_redis_url(url)) {
    prefix_ = url_.prefix.empty() ? "orroute:" : url_.prefix;  // the ledger's default prefix
    who_ = "redis feedback store " + url_.redacted();
    std::lock_guard lock(mu_);
    try {
      ctx_ = redis_connect(url_, 5'000, 10'000, who_);
    } catch (const Error& e) {
      throw Error(e.what());  // as orroute::Error (RedisConnectionLost is internal)
    }
  }

  void add(const FeedbackEntry& raw) override {
    const FeedbackEntry e = checked_feedback(raw);
    const std::string row = std::to_string(e.at) + "\t" + e.model + "\t" + e.task_type + "\t" +
                            std::to_string(std::llround(e.score * 1e6)) + "\t" + e.source + "\t" +
                            e.result_id;
    run({"EVAL", kAddScript, "0", prefix_, e.model + "\t" + e.task_type,
         std::to_string(std::llround(e.score * 1e6)), row, std::to_string(kLogRows)});
  }

  std::vector<FeedbackSummary> summary() override {
    const RedisReply sums = run({"HGETALL", prefix_ + "fb:sum"});
    const RedisReply counts = run({"HGETALL", prefix_ + "fb:n"});
    std::map<std::pair<std::string, std::string>, FeedbackSummary> by_key;
    auto key_of = [](const std::string& field) {
      const auto tab = field.find('\t');
      return std::pair{field.substr(0, tab),
                       tab == std::string::npos ? std::string() : field.substr(tab + 1)};
    };
    for (size_t i = 0; i + 1 < sums->elements; i += 2) {
      auto k = key_of(reply_text(sums->element[i]));
      auto& s = by_key[k];
      s.model = k.first;
      s.task_type = k.second;
      s.sum = static_cast<double>(std::stoll(reply_text(sums->element[i + 1]))) / 1e6;
    }
    for (size_t i = 0; i + 1 < counts->elements; i += 2) {
      auto it = by_key.find(key_of(reply_text(counts->element[i])));
      if (it != by_key.end()) it->second.count = std::stoll(reply_text(counts->element[i + 1]));
    }
    std::vector<FeedbackSummary> out;
    for (auto& [k, s] : by_key) {
      if (s.count > 0) out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<FeedbackEntry> entries(TimeUs from, int64_t limit) override {
    const RedisReply log = run({"LRANGE", prefix_ + "fb:log", "0", "-1"});
    std::vector<FeedbackEntry> out;
    for (size_t i = 0; i < log->elements; ++i) {
      const auto f = split_tabs(reply_text(log->element[i]));
      if (f.size() < 7) continue;  // not written by this store
      FeedbackEntry e;
      e.id = std::stoll(f[0]);
      e.at = std::stoll(f[1]);
      if (e.at < from) continue;
      e.model = f[2];
      e.task_type = f[3];
      e.score = static_cast<double>(std::stoll(f[4])) / 1e6;
      e.source = f[5];
      e.result_id = f[6];
      out.push_back(std::move(e));
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const FeedbackEntry& a, const FeedbackEntry& b) { return a.at < b.at; });
    if (limit >= 0 && static_cast<int64_t>(out.size()) > limit) {
      out.erase(out.begin(), out.end() - limit);
    }
    return out;
  }

 private:
  // One command on the store's connection; a lost connection (or a fork) is reopened once.
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
  std::string prefix_, who_;
  std::mutex mu_;
  RedisContext ctx_;
  pid_t pid_ = ::getpid();
};

}  // namespace

std::shared_ptr<FeedbackStore> open_redis_feedback_store(const std::string& url) {
  return std::make_shared<RedisFeedbackStore>(url);
}

}  // namespace orroute
