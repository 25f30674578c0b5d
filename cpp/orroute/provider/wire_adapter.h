// The per-provider part of one chat attempt, without I/O: the request (path and body), the reply
// (a non-streamed body -> chat.completion + usage), the stream (each SSE event's data -> chat
// chunks) and error bodies. An engine's sender asks its provider's adapter at each of these points,
// so the same send/receive code serves every wire format: OpenAI-compatible kinds pass through,
// Anthropic is translated. Immutable and thread-safe; stream translators are per stream.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/net/http.h"
#include "orroute/net/protocol.h"
#include "orroute/provider/provider.h"

namespace orroute {

// Turns one stream's SSE event data into chat.completion.chunk texts. Not thread-safe.
class StreamTranslator {
 public:
  virtual ~StreamTranslator() = default;
  // Appends the chunks of one event to `out` (pass-through: the data itself; "[DONE]" is never
  // given). False when the stream cannot go on; error() then says why (a mid-stream error event's
  // chunk is appended first). Never throws.
  virtual bool translate(std::string_view data, std::vector<std::string>& out) = 0;
  // The error after translate() returned false, or after the transfer ended while !complete().
  virtual std::optional<ApiError> error() const = 0;
  // True if the stream may end here (Anthropic: message_stop arrived; pass-through: always).
  virtual bool complete() const = 0;
  // True once the format's own end event came (Anthropic's message_stop; pass-through: never, its
  // [DONE] is not given here). Readers then ignore what follows and close the transfer, as after
  // OpenAI's [DONE] (DoneMarker): the same rule for every provider.
  virtual bool ended() const { return false; }
};

// A non-streamed reply in the chat shape: completion_json + usage, or error.
struct WireReply {
  std::string completion_json;
  std::optional<Usage> usage;  // nullopt: the reply carried none (the caller decides)
  std::optional<ApiError> error;
};

class WireAdapter {
 public:
  // The adapter of `config`'s kind. Throws InvalidArgument like validate(config).
  static std::shared_ptr<const WireAdapter> for_provider(const ProviderConfig& config);
  virtual ~WireAdapter() = default;

  // Path (relative to the base URL) and body of an attempt at `model` (the provider's own name).
  // Throws InvalidArgument for a request this provider cannot take (before any I/O).
  struct Request {
    std::string path;
    std::string body;
  };
  virtual Request request(std::string_view chat_json, std::string_view model, bool stream) const = 0;
  // A translator for one stream; `created` stamps translated chunks (Unix seconds).
  virtual std::unique_ptr<StreamTranslator> stream_translator(int64_t created) const = 0;
  // A 2xx non-streamed body. Never throws.
  virtual WireReply reply(std::string_view body, int64_t created) const = 0;
  // A non-2xx response. Never throws.
  virtual ApiError error(int status, const Headers& headers, std::string_view body, int64_t now_ms) const = 0;
};

}  // namespace orroute
