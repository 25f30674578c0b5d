// What to do after a failed attempt: classify the failure, then retry the same model after a
// backoff (full jitter, or the server's Retry-After), move to the next candidate, or stop.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "orroute/route/clock.h"

namespace orroute {

// Why an attempt failed. Stable names (to_string) appear in metrics and attempt records.
enum class ErrorClass : uint8_t {
  kConnection,       // no HTTP response: DNS, refused, reset, TLS
  kTimeout,          // connect / first byte / idle / total timeout, or HTTP 408
  kRateLimited,      // HTTP 429
  kServer,           // HTTP 5xx, or an error event before any content reached the caller
  kContextTooLong,   // the prompt does not fit the model (400/413 naming the context length)
  kModeration,       // HTTP 403: moderation flag, guardrail, region
  kPaymentRequired,  // HTTP 402: out of credits or key limit reached
  kBadRequest,       // HTTP 400/422 (other than context length): our request is wrong
  kAuthentication,   // HTTP 401
  kNotFound,         // HTTP 404: no such model / no endpoint serves it
  kStreamBroken,     // an error after content was already handed to the caller
  kCancelled,        // the caller cancelled
  kOther,            // any other status
  kConflict,         // HTTP 409: a transient conflict upstream, retried like a 5xx
};
inline constexpr int kErrorClassCount = 14;

// Stable lowercase name ("connection", "rate_limited", ...).
const char* to_string(ErrorClass c) noexcept;

// What the attempt loop does next.
enum class Recovery : uint8_t {
  kRetrySame,  // transient: back off and try the same model again (then the next one)
  kNextModel,  // this model cannot serve the request: go to the next candidate now
  kStop,       // nothing else will succeed (or must not be tried): surface the error
};

// Classifies a failed attempt. `http_status` is 0 when no response arrived; `timed_out` marks a
// transport timeout; `message` is the error text of the body (used to spot context-length errors).
// Pure function.
ErrorClass classify(int http_status, bool timed_out, std::string_view message) noexcept;

// The fixed recovery for each class: transient (connection, timeout, 429, 5xx) -> kRetrySame;
// context too long, moderation, not found -> kNextModel; 402, 400, 401, stream broken,
// cancelled -> kStop. Pure function.
Recovery recovery_for(ErrorClass c) noexcept;

// True for failures that say the model/provider is unhealthy (connection, timeout, 5xx): these
// feed circuit breakers. Rate limits and caller errors do not.
bool counts_as_outage(ErrorClass c) noexcept;

// Parses a Retry-After header: delta-seconds ("3", "1.5") or an HTTP-date ("Wed, 21 Oct 2015
// 07:28:00 GMT"), relative to `now_unix_ms`. nullopt if unparseable; a date in the past gives 0.
std::optional<Duration> parse_retry_after(std::string_view value, int64_t now_unix_ms) noexcept;

// Parses X-RateLimit-Reset: a Unix timestamp in milliseconds (OpenRouter) or seconds (values
// below 1e11). Returns the wait from `now_unix_ms` (0 if in the past); nullopt if unparseable.
std::optional<Duration> parse_rate_limit_reset(std::string_view value,
                                               int64_t now_unix_ms) noexcept;

// How long a 429 holds its model for every run: what the server asked, at most an hour. A reset
// days or years away (a hostile or broken header) would otherwise take the model out until the
// process ends, or for good with a shared router state; after the cap one request asks again.
inline constexpr Duration kMaxRateLimitHold = std::chrono::hours(1);
Duration rate_limit_hold(Duration server_wait) noexcept;

struct RecoveryConfig {
  int max_retries_per_model = 2;                        // retries after the first try, same model
  Duration base_delay = std::chrono::milliseconds(250);  // backoff cap for the first retry
  Duration max_delay = std::chrono::seconds(20);         // backoff never exceeds this
  // A server-requested wait longer than this is not waited for: the model is held and the loop
  // moves on to the next candidate.
  Duration max_server_wait = std::chrono::seconds(30);
};

// Retry decisions. Immutable after construction; safe to share across threads.
class RecoveryPolicy {
 public:
  // Throws InvalidArgument on negative retries or delays.
  explicit RecoveryPolicy(RecoveryConfig config = {});

  struct Decision {
    Recovery action = Recovery::kStop;
    Duration delay{0};  // wait before the retry (kRetrySame only)
  };

  // Decides after failure number `failures_on_model` (1 = the first try failed) of class `c` on
  // one model. `server_wait` is the parsed Retry-After / X-RateLimit-Reset, if any; it replaces the
  // jittered backoff, and when longer than max_server_wait the decision is kNextModel.
  // `uniform01` is a random number in [0, 1) for the jitter.
  Decision decide(ErrorClass c, int failures_on_model, std::optional<Duration> server_wait,
                  double uniform01) const noexcept;

  // Full-jitter exponential backoff for retry number `retry` (1-based):
  // uniform01 * min(max_delay, base_delay * 2^(retry-1)).
  Duration backoff(int retry, double uniform01) const noexcept;

  const RecoveryConfig& config() const noexcept { return config_; }

 private:
  RecoveryConfig config_;
};

}  // namespace orroute
