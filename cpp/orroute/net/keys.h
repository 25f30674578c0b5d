// API keys of one client: several keys rotate round-robin; a key the server rejects (401/402) is
// set aside. Keys never leave this class except into the Authorization header; everything shown to
// people uses mask_key().
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

// `text` with each JSON escape \u00XX that spells a key character ([0-9A-Za-z._-]) and is not
// itself escaped replaced by that character: the same JSON document, in which a key an upstream
// spelled with escapes can be matched as bytes (ApiClient::scrub; the gateway's scrub_secrets).
std::string unescape_key_chars(std::string_view text);

// Thread-safe.
class KeyRing {
 public:
  // Empty strings are dropped; duplicates are kept once. An empty ring sends no Authorization.
  explicit KeyRing(std::vector<std::string> keys);

  // The next usable key (round-robin), or nullopt if the ring is empty or every key was set aside.
  std::optional<std::string> next();
  // Marks `key` unusable because the server answered `status`; returns how many keys remain usable.
  size_t set_aside(const std::string& key, int status);
  size_t size() const;
  size_t usable() const;
  // "no usable API key: all 2 keys were set aside (sk-or-v1-...abcd: 401, ...)". Masked.
  std::string exhausted_message() const;
  // Masked keys, e.g. ["sk-or-v1-...abcd"], for repr().
  std::vector<std::string> masked() const;

  friend class ApiClient;  // scrub() reads the keys to mask them

 private:
  struct Entry {
    std::string key;
    int set_aside_status = 0;  // 0 = usable
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  size_t cursor_ = 0;
};

}  // namespace orroute
