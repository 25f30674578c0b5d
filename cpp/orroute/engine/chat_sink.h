#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "orroute/engine/chat_sender.h"
#include "orroute/engine/plain_reply.h"
#include "orroute/json.h"
#include "orroute/net/http.h"
#include "orroute/net/protocol.h"
#include "orroute/net/sse_parser.h"
#include "orroute/net/stream_scrub.h"
#include "orroute/net/transport.h"
#include "orroute/provider/wire_adapter.h"
#include "orroute/route/attempt_loop.h"
#include "orroute/route/clock.h"

namespace orroute {

// Reads one attempt's reply (plain JSON or SSE) into its AttemptResult; streamed chunks go to the
// sender's consumer, metered against the reservation when it has a meter limit.
class ChatSink final : public Sink {
 public:
  ChatSink(std::shared_ptr<ChatSender> sender, std::string model, std::string key,
           AttemptDone done)
      : sender_(std::move(sender)), model_(std::move(model)), key_(std::move(key)),
        done_(std::move(done)), started_(sender_->clock()->now()) {
    if (sender_->stream()) acc_ = std::make_unique<StreamAccumulator>();
  }

  // The reply comes in `adapter`'s wire format (a provider other than the engine's endpoint):
  // each stream event, a plain reply and an error body are translated to the chat shape first;
  // `provider` is named in the result (its breaker) and `client` scrubs its keys.
  // `candidate` is what a restart with the provider's next key sends again.
  void use_wire(std::shared_ptr<const WireAdapter> adapter, std::string provider, std::shared_ptr<ApiClient> client,
                std::string candidate) {
    auto translator = adapter->stream_translator(sender_->clock()->unix_millis() / 1000);
    wire_ = std::make_unique<Wire>(Wire{std::move(adapter), std::move(translator), std::move(provider),
                                        std::move(client), std::move(candidate), std::nullopt});
  }

  void on_head(int status, const Headers& headers) override {
    status_ = status;
    // Only an error reply's headers are read (Retry-After, X-RateLimit-Reset, the error's
    // details): a 2xx keeps none (the sender asks the transport not to collect them either).
    if (status >= 200 && status < 300) {
      headers_.fields.clear();
    } else {
      headers_ = headers;
    }
  }

  // Every byte here is the upstream's: nothing it sends may throw out of the transport thread.
  DataAction on_data(std::string_view bytes) override;

  // on_data's body: buffers a plain reply (bounded), or parses, meters and hands on SSE chunks.
  DataAction read(std::string_view bytes);

  // The closing chunk of a stream cut at its reservation (finish reason "length").
  std::string cut_chunk() const;

  void on_done(const TransferResult& t) override;

  // The attempt's outcome once the transfer ended (ok, cut at the reservation, or why not).
  AttemptResult result_of(const TransferResult& t);

 private:
  // One chat chunk's JSON text: accumulated, metered, handed to the consumer. False: stop reading.
  bool take_chunk(const std::string& event);
  // Hands the consumer the text held back in case a key followed (once the stream ends).
  void release_held();
  // At the end of transfer `t`: release_held() if the stream ended as it should, else drops it.
  void settle_held(const TransferResult& t);
  AttemptResult result_for(const TransferResult& t);
  // on_done's result: result_of's, bounded, or why the reply could not be read.
  AttemptResult finished_result(const TransferResult& t);
  // The failed attempt of a reply that threw `why` as it was read.
  [[gnu::cold]] AttemptResult unreadable_result(const char* why);
  // The failed attempt of a direct provider's reply its adapter refused (Wire::error).
  AttemptResult wire_failure();
  // Marks a failed attempt the upstream may still bill (AttemptResult::abandoned).
  void note_abandonment(const TransferResult& t, AttemptResult& r) const;
  static void fill_usage(const Usage& u, AttemptResult& r);
  // A plain 2xx reply read as a document (`reading`: a copy of the body, given up): the error to
  // report, if it is not JSON or an error reply; else its success in `r` (take_reply).
  std::optional<ApiError> read_document(LocalText<>& reading, AttemptResult& r);
  // `r` the success that `p` read, with the body.
  void take_reply(PlainReply&& p, AttemptResult& r);
  // True when the server rejected this attempt's key (401/402) and another key is left: the key
  // is set aside and the sender restarts the attempt with the next one.
  bool rotated_key(const TransferResult& t, AttemptDone& done);

  // `e` with the attempt's keys scrubbed out (an upstream may echo the key it was sent).
  ApiError scrubbed(ApiError e);

  // The stream's accumulator; an empty one for a plain reply (nothing folded in).
  const StreamAccumulator& acc() const;
  // The client whose keys this attempt sent and scrubs: a direct provider's, else the engine's.
  ApiClient& keys_client() const { return wire_ ? *wire_->client : sender_->client(); }
  // A direct provider's stream translator (null at the engine's own endpoint).
  StreamTranslator* translator() const { return wire_ ? wire_->translator.get() : nullptr; }
  // A direct provider's adapter refused the reply or stopped its stream (Wire::error is set).
  bool wire_failed() const { return wire_ && wire_->error; }

  // Longest served-model or provider name kept from a reply (they key ledger rows and breakers;
  // real ones are a few dozen bytes).
  static constexpr size_t kMaxName = 256;

  // A non-streamed reply larger than this is refused (memory is bounded whatever the upstream).
  static constexpr size_t kMaxBody = 64u << 20;

  std::shared_ptr<ChatSender> sender_;
  std::string model_;
  std::string key_;  // the API key this attempt sent ("" = none)
  AttemptDone done_;
  DoneMarker end_marker_;  // events after [DONE] (or the translator's end) are ignored and close the transfer
  Instant started_;
  int status_ = 0;
  Headers headers_;
  std::string body_;
  SseParser parser_;
  // Streams only (504 bytes): without it a plain reply's sink stays inside glibc's per-thread
  // cache (1032 bytes) instead of the large-chunk range, whose malloc consolidates the fast bins.
  std::unique_ptr<StreamAccumulator> acc_;
  StreamScrubber scrubber_;  // a key split over two events never reaches the consumer
  std::optional<Instant> first_content_;
  bool delivered_ = false;
  bool user_stopped_ = false;
  bool cut_ = false;          // stopped at the reservation (see read())
  int64_t metered_ = 0;       // output tokens counted so far
  size_t unfinished_ = 0;     // bytes fed since the last complete event
  std::string generated_;     // the answer's text so far (metered streams; bounded by the cut)
  std::optional<Usage> stream_usage_;  // the last usage a stream's events gave
  std::string broken_;        // why reading stopped ("" = it did not)
  bool unreadable_ = false;  // a 2xx non-streamed reply whose body could not be read (it was billed)
  // A direct provider's attempt (use_wire): the reply comes in its adapter's wire format.
  struct Wire {
    std::shared_ptr<const WireAdapter> adapter;
    std::unique_ptr<StreamTranslator> translator;
    std::string provider;
    std::shared_ptr<ApiClient> client;  // whose keys were sent
    std::string candidate;              // "<model>@<provider>": what a restart sends again
    std::optional<ApiError> error;      // the adapter refused the reply or stopped the stream
  };
  // Null at the engine's own endpoint. Apart from the sink, which every attempt allocates: inside
  // it, a plain reply's sink was above glibc's per-thread cache (see chat_sender.cpp).
  std::unique_ptr<Wire> wire_;
};

}  // namespace orroute
