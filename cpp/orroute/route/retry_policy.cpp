#include "orroute/route/retry_policy.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

#include "orroute/error.h"
#include "orroute/net/protocol.h"

namespace orroute {

const char* to_string(ErrorClass c) noexcept {
  switch (c) {
    case ErrorClass::kConnection: return "connection";
    case ErrorClass::kTimeout: return "timeout";
    case ErrorClass::kRateLimited: return "rate_limited";
    case ErrorClass::kServer: return "server";
    case ErrorClass::kContextTooLong: return "context_too_long";
    case ErrorClass::kModeration: return "moderation";
    case ErrorClass::kPaymentRequired: return "payment_required";
    case ErrorClass::kBadRequest: return "bad_request";
    case ErrorClass::kAuthentication: return "authentication";
    case ErrorClass::kNotFound: return "not_found";
    case ErrorClass::kStreamBroken: return "stream_broken";
    case ErrorClass::kCancelled: return "cancelled";
    case ErrorClass::kOther: return "other";
    case ErrorClass::kConflict: return "conflict";
  }
  return "other";
}

namespace {

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() &&
           std::tolower(static_cast<unsigned char>(hay[i + j])) == needle[j]) {
      ++j;
    }
    if (j == needle.size()) return true;
  }
  return false;
}

// Providers word it differently: OpenAI "maximum context length", Anthropic "prompt is too long",
// OpenRouter "context length", others "too many tokens" / "context_length_exceeded".
bool mentions_context_length(std::string_view message) {
  static constexpr std::array<std::string_view, 6> kPhrases = {
      "context length", "context_length", "context window", "prompt is too long",
      "too many tokens", "maximum context"};
  return std::any_of(kPhrases.begin(), kPhrases.end(),
                     [&](std::string_view p) { return contains_ci(message, p); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

Duration from_seconds(double s) {
  if (s <= 0) return Duration(0);
  s = std::min(s, 1e9);  // clamp absurd values so the conversion cannot overflow
  return Duration(static_cast<int64_t>(s * 1e9));
}

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the only HTTP-date form servers send today.
std::optional<int64_t> parse_http_date_ms(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  s = trim(s);
  const auto comma = s.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  std::string rest(trim(s.substr(comma + 1)));
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  char mon[4] = {};
  char zone[4] = {};
  if (std::sscanf(rest.c_str(), "%2d %3s %4d %2d:%2d:%2d %3s", &day, mon, &year, &hh, &mm, &ss,
                  zone) != 7) {
    return std::nullopt;
  }
  const auto it = std::find(kMonths.begin(), kMonths.end(), std::string_view(mon));
  if (it == kMonths.end() || std::string_view(zone) != "GMT") return std::nullopt;
  std::tm tm{};
  tm.tm_mday = day;
  tm.tm_mon = static_cast<int>(it - kMonths.begin());
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t) * 1000;
}

}  // namespace

ErrorClass classify(int http_status, bool timed_out, std::string_view message) noexcept {
  if (timed_out) return ErrorClass::kTimeout;
  if (http_status == 0) return ErrorClass::kConnection;
  // Which statuses are transient is one rule, net/protocol's is_retryable_status (the plain
  // client's retries use it too); here it only gets a name.
  if (is_retryable_status(http_status)) {
    if (http_status == 408) return ErrorClass::kTimeout;
    if (http_status == 429) return ErrorClass::kRateLimited;
    if (http_status >= 500) return ErrorClass::kServer;
    return ErrorClass::kConflict;
  }
  if (http_status == 413) return ErrorClass::kContextTooLong;
  if (http_status == 400 || http_status == 422) {
    return mentions_context_length(message) ? ErrorClass::kContextTooLong
                                            : ErrorClass::kBadRequest;
  }
  if (http_status == 401) return ErrorClass::kAuthentication;
  if (http_status == 402) return ErrorClass::kPaymentRequired;
  if (http_status == 403) return ErrorClass::kModeration;
  if (http_status == 404) return ErrorClass::kNotFound;
  return ErrorClass::kOther;
}

Recovery recovery_for(ErrorClass c) noexcept {
  switch (c) {
    case ErrorClass::kConnection:
    case ErrorClass::kTimeout:
    case ErrorClass::kRateLimited:
    case ErrorClass::kServer:
    case ErrorClass::kConflict:
      return Recovery::kRetrySame;
    case ErrorClass::kContextTooLong:
    case ErrorClass::kModeration:
    case ErrorClass::kNotFound:
    case ErrorClass::kOther:
      return Recovery::kNextModel;
    case ErrorClass::kPaymentRequired:
    case ErrorClass::kBadRequest:
    case ErrorClass::kAuthentication:
    case ErrorClass::kStreamBroken:
    case ErrorClass::kCancelled:
      return Recovery::kStop;
  }
  return Recovery::kStop;
}

bool counts_as_outage(ErrorClass c) noexcept {
  return c == ErrorClass::kConnection || c == ErrorClass::kTimeout || c == ErrorClass::kServer;
}

std::optional<Duration> parse_retry_after(std::string_view value, int64_t now_unix_ms) noexcept {
  if (auto secs = parse_number(value)) {
    if (*secs < 0) return std::nullopt;
    return from_seconds(*secs);
  }
  if (auto at = parse_http_date_ms(value)) {
    return from_seconds(static_cast<double>(*at - now_unix_ms) / 1000.0);
  }
  return std::nullopt;
}

std::optional<Duration> parse_rate_limit_reset(std::string_view value,
                                               int64_t now_unix_ms) noexcept {
  auto v = parse_number(value);
  if (!v || *v < 0) return std::nullopt;
  const double at_ms = *v < 1e11 ? *v * 1000.0 : *v;
  return from_seconds((at_ms - static_cast<double>(now_unix_ms)) / 1000.0);
}

Duration rate_limit_hold(Duration server_wait) noexcept {
  return std::min(server_wait, kMaxRateLimitHold);
}

RecoveryPolicy::RecoveryPolicy(RecoveryConfig config) : config_(config) {
  if (config_.max_retries_per_model < 0) throw InvalidArgument("max_retries_per_model must be >= 0");
  if (config_.base_delay.count() < 0 || config_.max_delay.count() < 0 ||
      config_.max_server_wait.count() < 0) {
    throw InvalidArgument("retry delays must be >= 0");
  }
}

Duration RecoveryPolicy::backoff(int retry, double uniform01) const noexcept {
  const int shift = std::clamp(retry - 1, 0, 40);
  // Double math avoids overflowing base * 2^shift before the cap applies.
  const double cap = std::min(static_cast<double>(config_.max_delay.count()),
                              static_cast<double>(config_.base_delay.count()) * std::ldexp(1.0, shift));
  const double u = std::clamp(uniform01, 0.0, 1.0);
  return Duration(static_cast<int64_t>(cap * u));
}

RecoveryPolicy::Decision RecoveryPolicy::decide(ErrorClass c, int failures_on_model,
                                          std::optional<Duration> server_wait,
                                          double uniform01) const noexcept {
  const Recovery r = recovery_for(c);
  if (r != Recovery::kRetrySame) return {r, Duration(0)};
  if (failures_on_model > config_.max_retries_per_model) return {Recovery::kNextModel, Duration(0)};
  if (server_wait) {
    if (*server_wait > config_.max_server_wait) return {Recovery::kNextModel, Duration(0)};
    return {Recovery::kRetrySame, *server_wait};
  }
  return {Recovery::kRetrySame, backoff(failures_on_model, uniform01)};
}

}  // namespace orroute
