// Error types of the core. Expected failures (HTTP statuses, timeouts, budget refusals) travel as
// values inside the core; these exceptions are for broken preconditions and unusable input, and the
// bindings map each one to the Python class named by python_type() in orroute/_exceptions.py.
#pragma once

#include <stdexcept>
#include <string>

namespace orroute {

// Base of every exception the core throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // Name of the Python exception class in orroute._exceptions that this error becomes.
  virtual const char* python_type() const noexcept { return "OrRouteError"; }
};

// A caller passed a value that can never be valid (negative token count, malformed price, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
  const char* python_type() const noexcept override { return "InvalidArgumentError"; }
};

// A named thing (model id, encoding, budget) does not exist.
class NotFound : public Error {
 public:
  using Error::Error;
  const char* python_type() const noexcept override { return "NotFoundInCatalogError"; }
};

// Input data (a models response, a vocabulary, a saved router) could not be parsed.
class ParseError : public Error {
 public:
  using Error::Error;
  const char* python_type() const noexcept override { return "ParseError"; }
};

}  // namespace orroute
