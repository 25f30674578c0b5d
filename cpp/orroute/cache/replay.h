// A cached completion replayed as a stream: the `chat.completion.chunk` objects an upstream would
// have sent for it, so a streaming caller gets a hit in the shape it asked for.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/cache/response_cache.h"

namespace orroute {

// The completion a hit returns: the cached one with usage.cost 0 (usage added from the entry's
// counts when it had none) and an `orroute_cache` object {"hit": true, "saved": "<USD>"} (the
// original cost). The cached text as is if it is not a JSON object. Never throws but bad_alloc.
std::string cache_hit_completion(const CachedReply& hit);

// The chunks (JSON texts) of `completion_json` (an OpenAI chat.completion): per choice, a first
// chunk with the role, the content in pieces of about `piece_bytes` bytes (never splitting a UTF-8
// sequence), the tool calls, then a chunk with the finish reason; the last chunk also carries
// `usage` and every chunk the completion's id, model, created and provider. Empty when the text is
// not a completion object (bounded parse: never throws but bad_alloc, never recurses per level).
std::vector<std::string> replay_chunks(std::string_view completion_json, size_t piece_bytes = 48);

}  // namespace orroute
