#pragma once

#include <charconv>
#include <string>

namespace orroute {

// `v` with exactly `digits` decimals, as printf("%.*f") writes it (std::to_chars with a precision
// is specified to match printf), without printf's locale and format parsing: the reasons of every
// plan are built with it, on the caller's thread of each call. Thread-safe.
inline std::string fixed_text(double v, int digits) {
  char buf[400];  // the widest double in fixed notation is ~330 characters
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, digits);
  if (r.ec != std::errc()) return "?";  // a precision above ~60 digits: never asked
  return std::string(buf, r.ptr);
}

}  // namespace orroute
