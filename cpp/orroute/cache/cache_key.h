// The response cache's rule: which chat requests may be answered from the cache, and the key that
// makes two requests "the same question".
//
// Two requests are the same when they ask the same model (or the same routing, given in `scope`)
// the same messages with the same tools and sampling parameters. The request is normalised first:
// object keys are sorted, numbers written one way (1.0 == 1), nulls at the top level dropped (a
// `"temperature": null` is no temperature), a message content of one text part written as a
// string, and fields that do not change the answer are left out (stream, stream_options, user,
// metadata, session_id, prompt_cache_key, usage, trace, debug, store, service_tier). Every other
// field is part of the key, so a field this code does not know about makes a miss, never a wrong
// hit.
//
// Sampling: a request with `temperature` > 0 asks for a different answer each time and is not
// cacheable unless the policy allows it. A request without `temperature` is cacheable (whoever
// turned the cache on accepts the provider's default sampling being replayed).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace orroute {

struct CachePolicy {
  bool allow_sampling = false;  // also cache requests with temperature > 0
};

struct CacheKey {
  bool cacheable = false;
  std::string reason;  // why not, when !cacheable (a short English phrase)
  std::string key;     // 64 hex digits: SHA-256 of scope and the canonical request (cacheable only)
};

// The canonical text of a chat request (see above), or nullopt with `why` set when it is not a
// JSON object with a non-empty `messages` array, or is too large / deep to parse. Never throws
// (but bad_alloc); linear in the request's size, no recursion deeper than kMaxJsonDepth.
std::optional<std::string> canonical_request(std::string_view request_json, std::string* why);

// The key of `request_json` under `scope` (the upstream and routing it will go to: two scopes
// never share entries). Never throws (but bad_alloc); a request that cannot be cached is a value
// with `cacheable == false`, not an error. Thread-safe.
CacheKey cache_key(std::string_view request_json, std::string_view scope,
                   const CachePolicy& policy = {});

}  // namespace orroute
