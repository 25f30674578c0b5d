// SHA-256 (FIPS 180-4), for cache keys: a response cache shared by processes and machines needs a
// key that is the same everywhere and that no request can make collide with another's on purpose.
#pragma once

#include <string>
#include <string_view>

namespace orroute {

// The digest of `data` as 64 lowercase hex digits. Pure, thread-safe, never throws but bad_alloc.
std::string sha256_hex(std::string_view data);

}  // namespace orroute
