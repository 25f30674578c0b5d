#include "orroute/net/chat_stream.h"

#include "orroute/json.h"

namespace orroute {

Call::Next ChatStream::next(rapidjson::Document& chunk, bool block, int64_t timeout_ms) {
  const Call::Next n = error_ ? Call::Next::kError : call_->next(data_, block, timeout_ms);
  if (n == Call::Next::kPending) return n;
  if (n == Call::Next::kError) {
    scrubber_.discard();  // the error may carry the rest of a key whose start is held
    return n;
  }
  if (n == Call::Next::kEnd) {
    // The end: the text held back in case a key followed goes out first.
    if (!scrubber_.flush(chunk, acc_)) return n;
    acc_.add(chunk);
    return Call::Next::kItem;
  }
  if (parse_json_text(data_, chunk) != JsonParse::kOk || !chunk.IsObject()) {
    ApiError err;
    err.kind = ApiError::Kind::kStream;
    err.message = "the server sent a stream event that is not a JSON object: " +
                  (data_.size() > 200 ? data_.substr(0, 200) + "..." : data_);
    err.body = data_;
    err.generation_id = acc_.id();
    error_ = call_->scrubbed(std::move(err));
    call_->cancel();
    return next(chunk, block, timeout_ms);  // the error
  }
  acc_.number_tool_calls(chunk);  // a tool call without an index gets the one add() files it under
  scrubber_.scrub(chunk, call_->client());  // a key split over this event and the last one never passes
  if (!acc_.add(chunk)) {  // deliver this chunk; the error comes with the next call
    error_ = call_->scrubbed(*acc_.error());  // an error event may echo the key
    call_->cancel();
  }
  return Call::Next::kItem;
}

}  // namespace orroute
