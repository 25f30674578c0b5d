#include <catch2/catch.hpp>

#include "orroute/error.h"
#include "orroute/net/protocol.h"
#include "orroute/route/retry_policy.h"

using namespace orroute;
using namespace std::chrono_literals;

TEST_CASE("failures are classified by status, transport and message", "[route][retry]") {
  using C = ErrorClass;
  auto [status, timed_out, message, expected] = GENERATE(table<int, bool, const char*, C>({
      {0, false, "", C::kConnection},
      {0, true, "", C::kTimeout},
      {408, false, "", C::kTimeout},
      {429, false, "slow down", C::kRateLimited},
      {500, false, "", C::kServer},
      {502, false, "", C::kServer},
      {503, false, "no provider", C::kServer},
      {400, false, "This model's maximum context length is 8192 tokens", C::kContextTooLong},
      {400, false, "prompt is too long: 210000 tokens > 200000 maximum", C::kContextTooLong},
      {413, false, "", C::kContextTooLong},
      {400, false, "invalid temperature", C::kBadRequest},
      {401, false, "", C::kAuthentication},
      {402, false, "insufficient credits", C::kPaymentRequired},
      {403, false, "flagged", C::kModeration},
      {404, false, "no endpoints", C::kNotFound},
      {409, false, "conflict", C::kConflict},
      {418, false, "", C::kOther},
  }));
  CAPTURE(status, message);
  REQUIRE(classify(status, timed_out, message) == expected);
}

TEST_CASE("the engine retries exactly the statuses the plain client retries", "[route][retry]") {
  // One rule (net/protocol's is_retryable_status): a 409 used to be retried by one and not the
  // other.
  for (int status = 100; status < 600; ++status) {
    CAPTURE(status);
    REQUIRE((recovery_for(classify(status, false, "")) == Recovery::kRetrySame) ==
            is_retryable_status(status));
  }
}

TEST_CASE("each class has one recovery", "[route][retry]") {
  using C = ErrorClass;
  for (C c : {C::kConnection, C::kTimeout, C::kRateLimited, C::kServer, C::kConflict}) {
    REQUIRE(recovery_for(c) == Recovery::kRetrySame);
  }
  for (C c : {C::kContextTooLong, C::kModeration, C::kNotFound}) {
    REQUIRE(recovery_for(c) == Recovery::kNextModel);
  }
  for (C c : {C::kPaymentRequired, C::kBadRequest, C::kAuthentication, C::kCancelled}) {
    REQUIRE(recovery_for(c) == Recovery::kStop);
  }
  REQUIRE(counts_as_outage(C::kServer));
  REQUIRE(counts_as_outage(C::kConnection));
  REQUIRE_FALSE(counts_as_outage(C::kRateLimited));
  REQUIRE_FALSE(counts_as_outage(C::kBadRequest));
}

TEST_CASE("Retry-After accepts seconds and HTTP dates", "[route][retry]") {
  const int64_t now_ms = 1445412480000;  // Wed, 21 Oct 2015 07:28:00 GMT
  REQUIRE(parse_retry_after("3", now_ms) == Duration(3s));
  REQUIRE(parse_retry_after(" 1.5 ", now_ms) == Duration(1500ms));
  REQUIRE(parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now_ms) == Duration(5s));
  REQUIRE(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now_ms) == Duration(0));
  REQUIRE_FALSE(parse_retry_after("soon", now_ms).has_value());
  REQUIRE_FALSE(parse_retry_after("-1", now_ms).has_value());
  REQUIRE_FALSE(parse_retry_after("", now_ms).has_value());
}

TEST_CASE("X-RateLimit-Reset is an epoch in milliseconds or seconds", "[route][retry]") {
  const int64_t now_ms = 1'700'000'000'000;
  REQUIRE(parse_rate_limit_reset("1700000002500", now_ms) == Duration(2500ms));
  REQUIRE(parse_rate_limit_reset("1700000004", now_ms) == Duration(4s));
  REQUIRE(parse_rate_limit_reset("1600000000000", now_ms) == Duration(0));
  REQUIRE_FALSE(parse_rate_limit_reset("x", now_ms).has_value());
}

TEST_CASE("backoff is full jitter under an exponential cap", "[route][retry]") {
  const RecoveryPolicy p({.max_retries_per_model = 5, .base_delay = 100ms, .max_delay = 1s,
                       .max_server_wait = 10s});
  REQUIRE(p.backoff(1, 0.0) == Duration(0));
  REQUIRE(p.backoff(1, 0.5) == Duration(50ms));
  REQUIRE(p.backoff(2, 0.5) == Duration(100ms));
  REQUIRE(p.backoff(3, 0.5) == Duration(200ms));
  SECTION("the cap holds for late retries") {
    REQUIRE(p.backoff(30, 0.999999) <= Duration(1s));
    REQUIRE(p.backoff(1000, 1.0) == Duration(1s));
  }
}

TEST_CASE("decisions follow class, retry count and server wait", "[route][retry]") {
  const RecoveryPolicy p({.max_retries_per_model = 2, .base_delay = 100ms, .max_delay = 1s,
                       .max_server_wait = 5s});
  SECTION("transient errors retry the same model until the retries run out") {
    auto d1 = p.decide(ErrorClass::kServer, 1, std::nullopt, 0.5);
    REQUIRE(d1.action == Recovery::kRetrySame);
    REQUIRE(d1.delay == Duration(50ms));
    REQUIRE(p.decide(ErrorClass::kConnection, 2, std::nullopt, 0.5).action == Recovery::kRetrySame);
    REQUIRE(p.decide(ErrorClass::kServer, 3, std::nullopt, 0.5).action == Recovery::kNextModel);
  }
  SECTION("a server wait replaces the backoff") {
    auto d = p.decide(ErrorClass::kRateLimited, 1, Duration(2s), 0.5);
    REQUIRE(d.action == Recovery::kRetrySame);
    REQUIRE(d.delay == Duration(2s));
  }
  SECTION("a server wait over the bound moves on instead of waiting") {
    REQUIRE(p.decide(ErrorClass::kRateLimited, 1, Duration(60s), 0.5).action == Recovery::kNextModel);
  }
  SECTION("non-transient errors never wait") {
    REQUIRE(p.decide(ErrorClass::kContextTooLong, 1, std::nullopt, 0.5).action == Recovery::kNextModel);
    REQUIRE(p.decide(ErrorClass::kPaymentRequired, 1, Duration(1s), 0.5).action == Recovery::kStop);
    REQUIRE(p.decide(ErrorClass::kAuthentication, 1, std::nullopt, 0.5).action == Recovery::kStop);
  }
  SECTION("bad configuration is refused") {
    REQUIRE_THROWS_AS(RecoveryPolicy({.max_retries_per_model = -1}), InvalidArgument);
  }
}
