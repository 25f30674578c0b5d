// Error types of the core. Expected failures (HTTP statuses, timeouts, budget refusals) travel as
// values inside the core; these exceptions are for broken preconditions and unusable input. Each
// has an ErrorKind; the bindings (and only they) map a kind to a Python class of
// orroute/_exceptions.py.
#pragma once

#include <stdexcept>
#include <string>

#include <cstdint>

namespace orroute {

// What went wrong, as the core names it: thrown errors carry one, and refusals that travel as
// values (a budget gate's, a run's outcome) carry one too.
enum class ErrorKind : uint8_t {
  kError,             // anything else the core raised on purpose
  kInvalidArgument,   // a value that can never be valid
  kNotFound,          // a named thing does not exist
  kParse,             // input data could not be parsed
  kNoModelAvailable,  // selection removed every candidate
  kBudgetExceeded,    // a reservation would pass a budget
  kEmergencyCutoff,   // spending is stopped in every process
  kApprovalDenied,    // the approval hook said no (or failed)
  kUnpricedModel,     // a budget applies and the model's cost cannot be bounded
};

// Base of every exception the core throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual ErrorKind kind() const noexcept { return ErrorKind::kError; }
};

// A caller passed a value that can never be valid (negative token count, malformed price, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kInvalidArgument; }
};

// A named thing (model id, encoding, budget) does not exist.
class NotFound : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kNotFound; }
};

// Input data (a models response, a vocabulary, a saved router) could not be parsed.
class ParseError : public Error {
 public:
  using Error::Error;
  ErrorKind kind() const noexcept override { return ErrorKind::kParse; }
};

}  // namespace orroute
