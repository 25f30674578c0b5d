#include <catch2/catch.hpp>

#include "orroute/error.h"
#include "orroute/net/api_client.h"

TEST_CASE("a client's streams never go without a total deadline", "[net][deadline]") {
  orroute::ClientConfig cfg;
  cfg.base_url = "http://127.0.0.1:9/api/v1";
  cfg.stream_timeouts = orroute::Timeouts{10'000, 5'000, 5'000, 0};  // what a number timeout gives
  CHECK(orroute::ApiClient::create(cfg)->config().stream_timeouts.total_ms ==
        orroute::kDefaultStreamTimeouts.total_ms);
  cfg.stream_timeouts.total_ms = 42'000;  // one that was given stays
  CHECK(orroute::ApiClient::create(cfg)->config().stream_timeouts.total_ms == 42'000);
  CHECK(orroute::stream_deadline_ms(1.5) == 1'500);
  for (double bad : {0.0, -1.0, 1e12}) CHECK_THROWS_AS(orroute::stream_deadline_ms(bad), orroute::InvalidArgument);
}
