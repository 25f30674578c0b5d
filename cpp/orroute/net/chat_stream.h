// Reads a streamed chat completion from a Call: parses each SSE event's JSON with RapidJSON, folds
// it into a StreamAccumulator, and turns a mid-stream error event into an error after the content
// it carried was handed over.
#pragma once

#include <rapidjson/document.h>

#include <memory>

#include "orroute/net/api_client.h"
#include "orroute/net/protocol.h"
#include "orroute/net/stream_scrub.h"

namespace orroute {

// One consumer at a time (not thread-safe); the Call it reads is.
class ChatStream {
 public:
  explicit ChatStream(std::shared_ptr<Call> call) : call_(std::move(call)) {}

  // kItem: `chunk` holds the parsed event, already folded into accumulator(). kPending: nothing yet.
  // kEnd: finished normally. kError: see error() (the call failed, an event was not JSON, or the
  // previous event carried a mid-stream error). Before kEnd, one more kItem carries the text held
  // back in case a key followed (StreamScrubber); before kError it is dropped. Never throws.
  Call::Next next(rapidjson::Document& chunk, bool block, int64_t timeout_ms = -1);

  // The failure after kError. Stream errors carry the partial text in accumulator().text().
  const ApiError& error() const { return error_ ? *error_ : call_->error(); }
  const StreamAccumulator& accumulator() const { return acc_; }
  Call& call() { return *call_; }
  const std::shared_ptr<Call>& call_ptr() const { return call_; }

 private:
  std::shared_ptr<Call> call_;
  StreamAccumulator acc_;
  StreamScrubber scrubber_;
  std::optional<ApiError> error_;
  std::string data_;
};

}  // namespace orroute
