#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>

#include "orroute/engine/engine.h"
#include "orroute/indirect.h"

using orroute::EngineResult;
using orroute::Indirect;

TEST_CASE("an Indirect copies its value: the copy and the original change apart", "[indirect]") {
  Indirect<std::string> original(std::string("first"));
  Indirect<std::string> copy(original);
  *copy += " changed";
  CHECK(*original == "first");
  CHECK(*copy == "first changed");

  Indirect<std::string> assigned;
  CHECK(assigned->empty());  // a default one holds a default value, never null
  assigned = original;
  original->clear();
  CHECK(*assigned == "first");

  Indirect<std::string> moved(std::move(assigned));
  CHECK(*moved == "first");
}

// StreamedRun::result() hands out copies of the result it keeps: a copy's outcome is its own.
TEST_CASE("a copied EngineResult has its own outcome and shares its API error", "[indirect]") {
  EngineResult kept;
  kept.route->model = "m/a";
  kept.api_error = std::make_shared<const orroute::ApiError>(orroute::ApiError{});
  EngineResult copy = kept;
  copy.route->model = "m/b";
  CHECK(kept.route->model == "m/a");
  CHECK(copy.route->model == "m/b");
  CHECK(copy.api_error == kept.api_error);
}

// A run hands its outcome over on the heap (RouteDone): the result keeps that very object, neither
// moved into an allocation of its own nor copied.
TEST_CASE("an EngineResult made from a run's outcome keeps that outcome where it lies", "[indirect]") {
  auto outcome = std::make_unique<orroute::RouteOutcome>();
  outcome->model = "m/a";
  const orroute::RouteOutcome* const made = outcome.get();
  EngineResult result(std::move(outcome), orroute::EnginePlan{});
  CHECK(&*result.route == made);
  CHECK(result.route->model == "m/a");
}
