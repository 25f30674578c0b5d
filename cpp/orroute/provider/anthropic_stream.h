// Anthropic's streamed Messages events -> chat.completion.chunk objects, one event at a time.
//   message_start        -> a chunk with delta.role = "assistant" (id, model, input usage kept)
//   content_block_start  -> for tool_use: a tool_calls delta with id, name and "" arguments
//   content_block_delta  -> text_delta: delta.content; thinking_delta: delta.reasoning;
//                           input_json_delta: tool_calls[{index, function.arguments: partial}]
//   message_delta        -> a chunk with finish_reason, then a usage chunk (choices [])
//   message_stop         -> finished(); ping, content_block_stop, signature/citation deltas -> none
//   error                -> a chunk with a top-level "error" object (as OpenRouter sends
//                           mid-stream errors), and error() is set
// Unknown event types are ignored (Anthropic adds new ones; its versioning policy says so).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/stringbuffer.h>

#include "orroute/net/protocol.h"
#include "orroute/json_writer.h"

namespace orroute {

// One per stream; not thread-safe. Memory is bounded: it keeps ids, counters and a map of at most
// kMaxBlocks content-block indexes, never the streamed text.
class AnthropicStreamTranslator {
 public:
  static constexpr size_t kMaxBlocks = 4096;

  // `created` stamps every chunk (Unix seconds).
  explicit AnthropicStreamTranslator(int64_t created) : created_(created) {}

  // Translates the data of one SSE event, appending 0..2 chunk JSON texts to `out`. Returns false
  // when the stream cannot go on: the data is not an Anthropic event (error() says why, kind
  // kStream, status 502), or it was an `error` event (its chunk is appended first). Never throws.
  bool translate(std::string_view data, std::vector<std::string>& out);

  // message_stop arrived: the reply is complete.
  bool finished() const { return finished_; }
  // The usage so far (input from message_start, output from the last message_delta); nullopt until
  // message_start brought a valid usage object.
  std::optional<Usage> usage() const;
  const std::optional<ApiError>& error() const { return error_; }

 private:
  bool fail(std::string why);
  // Merges the fields present in an Anthropic usage object. False if one is not a valid count.
  bool merge_usage(const rapidjson::Value& usage);
  // {"id","object","created","model",...} prefix shared by every chunk; the caller closes it.
  void begin_chunk(JsonWriter& w) const;

  int64_t created_;
  std::string id_, model_;
  std::map<int64_t, int64_t> tool_index_;  // content block index -> tool_calls index
  int64_t blocks_seen_ = 0;
  bool started_ = false;
  bool finished_ = false;
  bool has_usage_ = false;
  int64_t input_ = 0, output_ = 0, cache_writes_ = 0, cache_reads_ = 0;
  std::optional<ApiError> error_;
};

}  // namespace orroute
