// A chat call to one provider, in the chat-completions shape whatever the provider speaks: the
// request is rewritten for the provider (its model name; Anthropic's Messages format), the reply
// and stream come back as chat.completion / chat.completion.chunk JSON with usage in OpenAI's
// shape, and errors as ApiError values. This is the piece an engine plugs in per provider; it owns
// one ApiClient (one transport thread, the provider's keys and retry policy) and asks the
// provider's WireAdapter for everything wire-specific.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/net/api_client.h"
#include "orroute/net/stream_scrub.h"
#include "orroute/provider/provider.h"
#include "orroute/provider/wire_adapter.h"

namespace orroute {

// The outcome of a non-streamed call. ok: completion_json and usage are set; else error.
struct ProviderResult {
  bool ok = false;
  std::string completion_json;
  Usage usage;
  bool has_usage = false;
  ApiError error;
  int attempts = 0;
};

// A streamed call, read as chat.completion.chunk JSON texts. One consumer at a time; the
// underlying Call is thread-safe and cancel() may be called from any thread.
class ProviderStream {
 public:
  // kItem: `chunk` holds the next chunk. kPending: nothing yet (non-blocking or timed out). kEnd:
  // the reply is complete. kError: see error(); an error chunk (mid-stream error) is handed out as
  // kItem first. An Anthropic stream that ends before message_stop is an error (truncated), never a
  // silent end. A key split over two chunks is masked (StreamScrubber): at the end one more kItem
  // carries the text held back in case a key followed; a failed stream drops it. Never throws.
  Call::Next next(std::string& chunk, bool block, int64_t timeout_ms = -1);
  const ApiError& error() const { return error_; }
  void cancel() { call_->cancel(); }
  Call& call() { return *call_; }

 private:
  friend class ProviderClient;
  ProviderStream(std::shared_ptr<Call> call, std::shared_ptr<const WireAdapter> adapter,
                 std::unique_ptr<StreamTranslator> translator, std::shared_ptr<ApiClient> client);
  // Queues a translated chunk with the keys in it masked, also across chunks.
  void take(std::string chunk);
  // The stream failed: `error` (keys scrubbed) comes next, and nothing held back is released.
  void fail(ApiError error);
  // The stream ended (the upstream closed it, or sent more after its end event): kItem with the
  // text the scrubber held back, if any, else kEnd.
  Call::Next end(std::string& chunk);

  std::shared_ptr<Call> call_;
  std::shared_ptr<const WireAdapter> adapter_;
  std::unique_ptr<StreamTranslator> translator_;
  std::shared_ptr<ApiClient> client_;  // scrubs keys from upstream messages
  StreamScrubber scrubber_;
  std::string id_, model_;  // the stream's, for the chunk carrying what the scrubber held
  int64_t created_ = 0;
  std::deque<std::string> pending_;  // at most 2 chunks per event (3 at the end)
  bool failed_ = false;
  bool ended_ = false;  // the translator's end event came: later events are ignored, the call cut
  ApiError error_;
  std::string data_;
};

// Thread-safe; share one per provider.
class ProviderClient {
 public:
  // Throws InvalidArgument for an invalid config (see validate()).
  static std::shared_ptr<ProviderClient> create(ProviderConfig config);

  const ProviderConfig& config() const { return config_; }
  ApiClient& api() { return *api_; }

  // The body sent to the provider for a chat request (JSON text) asking for `model` (the provider's
  // own name): Anthropic's Messages body, or the chat body with `model` replaced (and, for streams,
  // stream_options.include_usage so OpenAI-compatible servers report usage). Throws
  // InvalidArgument for a request the provider cannot take.
  std::string wire_body(std::string_view chat_json, std::string_view model, bool stream) const;

  // Sends a non-streamed call and waits for it (with retries per the client's policy). Throws
  // InvalidArgument before any I/O for a request the provider cannot take; network and HTTP
  // failures come back in the result.
  ProviderResult complete(std::string_view chat_json, std::string_view model);
  // Starts a streamed call. Throws like complete().
  std::unique_ptr<ProviderStream> stream(std::string_view chat_json, std::string_view model);

 private:
  explicit ProviderClient(ProviderConfig config);
  ProviderConfig config_;
  std::shared_ptr<const WireAdapter> adapter_;
  std::shared_ptr<ApiClient> api_;
};

}  // namespace orroute
