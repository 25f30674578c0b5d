#include "orroute/cache/sha256.h"

#include <openssl/evp.h>

#include <new>

namespace orroute {

// OpenSSL's SHA-256 (the library libcurl already links here), not a copy of the algorithm.
std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::bad_alloc();  // EVP_Digest fails only when it cannot allocate its context
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace orroute
