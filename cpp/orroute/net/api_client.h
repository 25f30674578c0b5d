// An OpenAI-compatible API client on the shared Transport: builds authenticated requests, runs the
// attempt loop (retries with backoff, key rotation), and exposes each call as a Call the caller
// waits on (blocking, or through a Notifier for event loops) or reads as a stream of SSE events
// through a bounded queue whose backpressure pauses the transfer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/net/http.h"
#include "orroute/net/keys.h"
#include "orroute/net/protocol.h"
#include "orroute/net/sse_parser.h"
#include "orroute/net/transport.h"

namespace orroute {

// Wakes an event loop from the transport thread without touching it: tokens are queued and an
// eventfd becomes readable; the loop's reader drains the tokens. Thread-safe.
// A `lendable` notifier is also a LoopWatch: fd() is then the watch's descriptor (the eventfd is in
// its set), so a transport's loop can be lent to the event loop that watches it
// (start_sending_here with watch()); its reader runs the lent loop's turn before it drains.
class Notifier {
 public:
  // Throws Error if no eventfd (or, lendable, no epoll descriptor) can be created.
  explicit Notifier(bool lendable = false);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  // The descriptor to watch for readability.
  int fd() const { return watch_ ? watch_->fd() : fd_; }
  // Null unless lendable.
  const std::shared_ptr<LoopWatch>& watch() const { return watch_; }
  // Queues `token` and makes fd() readable (not from inside this notifier's lent turn, which its
  // drain() follows: no write to wake the thread already awake).
  void notify(uint64_t token);
  // The lent loop's turn, if a loop is lent to this notifier (then true); the event loop's thread.
  bool turn();
  // Takes every queued token and resets fd() (non-blocking).
  std::vector<uint64_t> drain();

 private:
  int fd_ = -1;
  std::shared_ptr<LoopWatch> watch_;
  std::mutex mu_;
  std::vector<uint64_t> tokens_;
};

// OpenRouter's API root: the one default every entry point (client, manager, gateway, CLI,
// settings) uses; Python reads it as _core.DEFAULT_BASE_URL.
inline constexpr std::string_view kDefaultBaseUrl = "https://openrouter.ai/api/v1";

struct ClientConfig {
  std::string base_url = std::string(kDefaultBaseUrl);
  std::vector<std::string> api_keys;
  std::string app_name;  // X-OpenRouter-Title and X-Title
  std::string app_url;   // HTTP-Referer
  std::string user_agent = "orroute";
  // How a key is sent: `auth_header: auth_prefix + key`. Anthropic uses "x-api-key" with no prefix,
  // Azure OpenAI "api-key".
  std::string auth_header = "Authorization";
  std::string auth_prefix = "Bearer ";
  Headers headers;  // sent on every request (e.g. anthropic-version), before a call's extra_headers
  Timeouts timeouts{10'000, 0, 0, 600'000};         // non-streamed calls
  // Streamed calls; a total of 0 becomes kDefaultStreamTimeouts' (no stream without a deadline).
  Timeouts stream_timeouts = kDefaultStreamTimeouts;
  RetryPolicy retry;
  TransportOptions transport;
};

// A stream deadline given in seconds, in milliseconds; throws InvalidArgument unless 0 < s < 1e9
// (stream_deadline= of the client and of the manager).
int64_t stream_deadline_ms(double seconds);

// One API call to send.
struct CallSpec {
  std::string method = "GET";
  std::string path;  // appended to base_url ("/chat/completions"), or an absolute http(s) URL
  std::string body;  // JSON text ("" = no body)
  bool stream = false;
  int max_retries = -1;  // -1: the client's RetryPolicy
  std::optional<Timeouts> timeouts;
  Headers extra_headers;
  int not_found_retries = 0;        // retry a 404 this many times (generation stats lag behind)
  double not_found_delay_s = 0.5;   // wait before each such retry
  size_t queue_capacity = 64;       // stream events held before the transfer is paused
  // False: a 2xx reply's header fields are not kept (Response::headers empty): the caller reads
  // its body only. A failure's are (retry hints, the error).
  bool keep_ok_headers = true;
};

// The final response of a non-streamed call.
struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  int attempts = 0;
};

class ApiClient;

// A stream's events in order (std::deque's calls): the deque is made at the first event, since
// making one takes two blocks from the heap, which every plain call paid for and never used.
class EventQueue {
 public:
  bool empty() const { return !q_ || q_->empty(); }
  size_t size() const { return q_ ? q_->size() : 0; }
  void push_back(std::string event) {
    if (!q_) q_.emplace();
    q_->push_back(std::move(event));
  }
  std::string& front() { return q_->front(); }  // not empty
  void pop_front() { q_->pop_front(); }         // not empty
  void clear() {
    if (q_) q_->clear();
  }

 private:
  std::optional<std::deque<std::string>> q_;
};

// One call in flight (all its attempts). Thread-safe: the transport thread produces, one consumer
// reads. Streams: next() hands over SSE event data in order; once the queue holds queue_capacity
// events the transfer is paused until the consumer catches up.
class Call : public std::enable_shared_from_this<Call> {
 public:
  enum class State { kRunning, kDone, kFailed };
  enum class Next { kItem, kPending, kEnd, kError };

  // Blocks until the call finished or `timeout_ms` passed (<0: no limit). True if finished.
  bool wait(int64_t timeout_ms = -1);
  State state() const;
  // The response once kDone (a 2xx status; streams: status and headers only).
  const Response& response() const { return response_; }
  // The failure once kFailed.
  const ApiError& error() const { return error_; }

  // Streams: the next event's data (without "[DONE]"). kItem: `data` set. kPending: nothing yet
  // (only when block is false, or the wait timed out). kEnd: the stream ended normally. kError: see
  // error(). Blocks up to `timeout_ms` (<0: no limit) when `block`.
  Next next(std::string& data, bool block, int64_t timeout_ms = -1);

  // Notifies `notifier` with `token` once: when an event or the end is available (at once if it
  // already is); after cancel(), when the transfer it cut has ended (abandoned_attempts() then
  // counts it). Used by event loops instead of blocking.
  void arm(std::shared_ptr<Notifier> notifier, uint64_t token);

  // Aborts the call: the transfer is cancelled promptly and its connection freed; a waiting
  // consumer sees kError with kind kCancelled. No-op once finished.
  void cancel();
  // `e` with the client's keys scrubbed out of it (ApiClient::scrub).
  ApiError scrubbed(ApiError e) const;
  // The client whose keys this call's texts are scrubbed of.
  const ApiClient& client() const { return *client_; }

  int attempts() const;
  // Attempts the upstream received in full that we cut before a usable answer (a timeout, a reply
  // too large, the caller's cancel()): each may be billed in full (abandonment_of, docs/cost.md
  // rule 5). The attempt cancel() cut is counted once its transfer has ended (arm() tells when).
  int abandoned_attempts() const;

 private:
  friend class ApiClient;
  class AttemptSink;
  Call(std::shared_ptr<ApiClient> client, CallSpec spec);

  void start_attempt();
  void on_head(int attempt, int status, const Headers& headers);
  DataAction on_data(int attempt, std::string_view bytes);
  void on_done(int attempt, const TransferResult& result);
  // Schedules another attempt after `delay`, or fails with `err` when no retry is left.
  void retry_or_fail(ApiError err, std::optional<std::chrono::milliseconds> delay, bool counts);
  void fail(ApiError err);          // takes mu_
  void finish_ok();                 // takes mu_
  void notify_locked(std::unique_lock<std::mutex>& lock);

  std::shared_ptr<ApiClient> client_;
  CallSpec spec_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kRunning;
  Response response_;
  ApiError error_;
  int attempt_ = 0;   // current attempt number (1-based)
  int retries_ = 0;   // retries used
  int not_found_retries_ = 0;
  TransferId transfer_ = 0;
  std::string key_;  // key of the current attempt
  bool cancelled_ = false;
  bool transfer_open_ = false;  // the current attempt's transfer has not ended yet
  // Current attempt's response (transport thread only).
  int status_ = 0;
  Headers headers_;
  std::string body_;
  std::string too_large_;   // why the attempt's reply was cut for its size ("" if it was not)
  bool streaming_ = false;  // a 2xx head arrived for a stream: body is SSE
  bool delivered_ = false;  // an event was handed to the queue: no retry after this
  int abandoned_attempts_ = 0;  // guarded by mu_
  SseParser parser_;
  DoneMarker done_;  // events after [DONE] are ignored and close the transfer
  // Stream queue (guarded by mu_).
  EventQueue queue_;
  bool paused_ = false;
  std::shared_ptr<Notifier> notifier_;
  uint64_t token_ = 0;
};

// Thread-safe; share one per engine. Owns its Transport (one thread, one multi handle).
class ApiClient : public std::enable_shared_from_this<ApiClient> {
 public:
  // Throws InvalidArgument if base_url is not http(s).
  static std::shared_ptr<ApiClient> create(ClientConfig config);
  ~ApiClient();

  // Starts a call; never blocks. Throws InvalidArgument for a malformed spec.
  std::shared_ptr<Call> start(CallSpec spec);

  const ClientConfig& config() const { return config_; }
  // The header lines every request of this client carries after its own (referer, titles, user
  // agent, the configured headers), formatted once: an engine's chat attempts send them too.
  const std::shared_ptr<const HeaderLines>& shared_headers() const { return constant_headers_; }
  KeyRing& keys() { return keys_; }
  Transport& transport() { return *transport_; }
  // The URL for `path` (base_url + path, or path itself when absolute).
  std::string url_for(const std::string& path) const;
  // url_for("/chat/completions"), made once: every chat attempt of an engine sends to it.
  const std::string& chat_completions_url() const { return chat_completions_url_; }
  // Replaces every configured key inside `text` by its masked form, also where the text is JSON
  // that spells a key with \u escapes (an upstream echoing the key it was sent: once parsed,
  // "\u0073k-or-..." reads as "sk-or-..."). Key characters never need escaping in JSON, so
  // un-escaping just those keeps the document's meaning; the text is returned as it came when no
  // key is in it. A key split over a reply's tool call id and name is masked too
  // (scrub_across). Thread-safe.
  std::string scrub(std::string text) const;
  // `e` with every text an upstream wrote (message, body, code, metadata, and the generation id
  // and provider, which a header or an error's metadata may carry) scrubbed.
  ApiError scrub(ApiError e) const;
  // `h` with every field's name and value scrubbed: the reply's header fields a caller is shown.
  Headers scrub(Headers h) const;
  // True if scrub() would change `text` (it holds a key, plain or escaped). No copy unless the
  // text has \u00 escapes: the cheap test for every stream event.
  bool mentions_key(std::string_view text) const;
  // The length of the longest end of `text` that begins a configured key without being all of
  // it: what a stream holds back until its next piece shows whether the key follows (0: none).
  // Reads at most the longest key's length from the end. Thread-safe.
  size_t key_start_at_end(std::string_view text) const;
  // A key begun at the end of `head` and going on in `tail` (a tool call's id and name, which a
  // consumer shows side by side): the key's start moves from `head` to `tail`, where the key is
  // masked. True if one was; both are left as they came otherwise. Thread-safe.
  bool scrub_across(std::string& head, std::string& tail) const;

 private:
  friend class Call;
  explicit ApiClient(ClientConfig config);
  // scrub() of one text without the tool-call rule: every whole key masked.
  std::string mask_keys(std::string text) const;
  // True if `text` holds the first or the second half of a key: every key split in two (one
  // part in a tool call's id, the rest in its name) leaves one of them whole.
  bool holds_half_a_key(std::string_view text) const;
  // The same, also where JSON \u escapes spell the half.
  bool holds_half_a_key_maybe_escaped(std::string_view text) const;
  // `body` (a chat completion) with each tool call's id and name scrubbed across (scrub_across).
  std::string scrub_tool_calls(std::string body) const;
  HttpRequest build(const CallSpec& spec, const std::optional<std::string>& key) const;
  // The headers every request of `config` carries (referer, titles, user agent, its headers),
  // formatted once.
  static std::shared_ptr<const HeaderLines> constant_headers(const ClientConfig& config);
  double uniform01();

  ClientConfig config_;
  std::string chat_completions_url_;
  KeyRing keys_;
  std::unique_ptr<Transport> transport_;
  std::shared_ptr<const HeaderLines> constant_headers_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace orroute
