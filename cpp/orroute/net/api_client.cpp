#include "orroute/net/api_client.h"

#include <sys/eventfd.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "orroute/cost/abandoned_calls.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/utf8.h"

namespace orroute {

namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kMaxBody = 64u << 20;  // a larger error or JSON body is a broken server

#if defined(__SSE2__)
// Where `part` (2+ bytes) first occurs in `hay`, 16 positions a step: only where both its first
// and its last byte match is the rest compared. Stops at the last whole step; `*searched` says
// how far it looked (the caller searches the rest).
const char* find_by_ends(const char* hay, size_t n, std::string_view part, size_t* searched) {
  const size_t k = part.size();
  const __m128i first = _mm_set1_epi8(part.front());
  const __m128i last = _mm_set1_epi8(part.back());
  size_t i = 0;
  for (; i + k + 15 <= n; i += 16) {
    const __m128i starts = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + i));
    const __m128i ends = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + i + k - 1));
    auto both = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(starts, first), _mm_cmpeq_epi8(ends, last))));
    for (; both != 0; both &= both - 1) {
      const char* at = hay + i + __builtin_ctz(both);
      if (std::memcmp(at + 1, part.data() + 1, k - 2) == 0) return at;
    }
  }
  *searched = i;
  return nullptr;
}
#endif

// Where `part` first occurs in `text` at or after `from` (npos: nowhere). Not
// std::string_view::find, which stops at every occurrence of the part's first byte: for a key's
// half (a run of hex digits) in a reply, that is most of the reply's digits, and a 73-character
// OpenRouter key was searched for in an 804-byte reply 4x slower. Nor glibc's memmem alone (~2.5
// instructions a byte for a key's half, searched for in every reply): its first and last bytes
// are matched 16 positions at a time first.
size_t find_in(std::string_view text, std::string_view part, size_t from = 0) {
  if (from > text.size()) return std::string_view::npos;
  const char* hay = text.data() + from;
  size_t n = text.size() - from;
#if defined(__SSE2__)
  if (part.size() >= 2) {
    size_t searched = 0;
    if (const char* at = find_by_ends(hay, n, part, &searched)) return static_cast<size_t>(at - text.data());
    hay += searched;
    n -= searched;
  }
#endif
  const void* at = memmem(hay, n, part.data(), part.size());
  return at == nullptr ? std::string_view::npos : static_cast<size_t>(static_cast<const char*>(at) - text.data());
}

// Whether `a` or `b` occurs in `text`: one pass for both (a key's two halves, searched for in
// every reply), where two find_in calls read the text twice. Where both the first and the last
// byte of either match, 16 positions a step, the rest is compared. The last start positions of
// each part: more steps for the shorter one, then one step of each that ends where the text
// does (it looks again at positions seen: memmem's set-up for the few left cost more than the
// whole search of a reply). A text shorter than a step past the longer part: memmem.
bool holds_either(std::string_view text, std::string_view a, std::string_view b) {
#if defined(__SSE2__)
  const size_t n = text.size();
  const size_t ka = a.size(), kb = b.size();
  if (ka >= 2 && kb >= 2 && n >= std::max(ka, kb) + 15) {
    const char* hay = text.data();
    const __m128i a_first = _mm_set1_epi8(a.front()), a_last = _mm_set1_epi8(a.back());
    const __m128i b_first = _mm_set1_epi8(b.front()), b_last = _mm_set1_epi8(b.back());
    // The start positions at..at+15 where `part`'s first and last bytes are, as a mask.
    const auto ends_match = [hay](size_t at, size_t k, __m128i first, __m128i last) {
      const __m128i starts = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + at));
      const __m128i ends = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + at + k - 1));
      return static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(starts, first), _mm_cmpeq_epi8(ends, last))));
    };
    const auto whole = [hay](size_t at, unsigned candidates, std::string_view part) {
      for (; candidates != 0; candidates &= candidates - 1) {
        if (std::memcmp(hay + at + __builtin_ctz(candidates) + 1, part.data() + 1, part.size() - 2) == 0) return true;
      }
      return false;
    };
    size_t i = 0;
    for (; i + std::max(ka, kb) + 15 <= n; i += 16) {
      const __m128i starts = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + i));
      const __m128i a_ends = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + i + ka - 1));
      const __m128i b_ends = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay + i + kb - 1));
      auto in_a = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(starts, a_first), _mm_cmpeq_epi8(a_ends, a_last))));
      auto in_b = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(starts, b_first), _mm_cmpeq_epi8(b_ends, b_last))));
      if ((in_a | in_b) != 0 && (whole(i, in_a, a) || whole(i, in_b, b))) return true;
    }
    const auto rest = [&](std::string_view part, __m128i first, __m128i last) {
      const size_t k = part.size();
      size_t at = i;
      for (; at + k + 15 <= n; at += 16) {
        if (whole(at, ends_match(at, k, first, last), part)) return true;
      }
      return whole(n - k - 15, ends_match(n - k - 15, k, first, last), part);
    };
    return rest(a, a_first, a_last) || rest(b, b_first, b_last);
  }
#endif
  return find_in(text, a) != std::string_view::npos || find_in(text, b) != std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Notifier

namespace {
// The notifier whose lent turn runs on this thread (its drain() follows), else null.
thread_local const Notifier* t_turning = nullptr;
}  // namespace

Notifier::Notifier(bool lendable) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw Error(std::string("cannot create an eventfd: ") + std::strerror(errno));
  if (!lendable) return;
  try {
    watch_ = std::make_shared<LoopWatch>();
    watch_->add(fd_);
  } catch (...) {
    close(fd_);
    throw;
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) close(fd_);
}

void Notifier::notify(uint64_t token) {
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = tokens_.empty();
    tokens_.push_back(token);
  }
  // One write per batch (the reader drains everything queued), after the lock: the write wakes
  // the reader, whose drain() would otherwise find the lock still held and sleep on it, and wake
  // this thread back to be let in (three switches instead of one, at every call at concurrency 64).
  if (was_empty && t_turning != this) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
  }
}

bool Notifier::turn() {
  if (!watch_ || !watch_->lent()) return false;
  t_turning = this;
  watch_->turn();
  t_turning = nullptr;
  return true;
}

std::vector<uint64_t> Notifier::drain() {
  // The eventfd is reset before the tokens are taken: a write for tokens taken below may come
  // after this read (notify() writes after its lock) and cost one empty drain later, but no
  // write is ever left unread while its tokens wait (the descriptor would stay readable).
  uint64_t counter = 0;
  [[maybe_unused]] ssize_t n = read(fd_, &counter, sizeof counter);
  std::vector<uint64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(tokens_);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Call

// Forwards one attempt's transfer to its Call; events of an older attempt are ignored.
class Call::AttemptSink : public Sink {
 public:
  AttemptSink(std::shared_ptr<Call> call, int attempt) : call_(std::move(call)), attempt_(attempt) {}
  void on_head(int status, const Headers& headers) override { call_->on_head(attempt_, status, headers); }
  DataAction on_data(std::string_view bytes) override { return call_->on_data(attempt_, bytes); }
  void on_done(const TransferResult& result) override { call_->on_done(attempt_, result); }

 private:
  std::shared_ptr<Call> call_;
  int attempt_;
};

Call::Call(std::shared_ptr<ApiClient> client, CallSpec spec) : client_(std::move(client)), spec_(std::move(spec)) {}

void Call::start_attempt() {
  std::optional<std::string> key;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled_ || state_ != State::kRunning) return;
  }
  if (client_->keys_.size() > 0) {
    key = client_->keys_.next();
    if (!key) {
      ApiError err;
      err.kind = ApiError::Kind::kStatus;
      err.status = 401;
      err.code_json = "401";
      err.message = client_->keys_.exhausted_message();
      fail(std::move(err));
      return;
    }
  }
  HttpRequest req = client_->build(spec_, key);
  std::unique_lock<std::mutex> lock(mu_);
  ++attempt_;
  transfer_open_ = true;
  key_ = key ? std::move(*key) : std::string();  // build() has copied it into the request
  status_ = 0;
  headers_.fields.clear();
  body_.clear();
  too_large_.clear();
  streaming_ = false;
  done_.reset();
  parser_.reset();
  auto sink = std::make_shared<AttemptSink>(shared_from_this(), attempt_);
  lock.unlock();
  const TransferId id = client_->transport_->submit(std::move(req), std::move(sink));
  lock.lock();
  transfer_ = id;
  if (cancelled_) {  // cancel() ran between submit and here: make sure the transfer stops
    lock.unlock();
    client_->transport_->cancel(id);
  }
}

void Call::on_head(int attempt, int status, const Headers& headers) {
  if (attempt != attempt_) return;
  status_ = status;
  headers_ = headers;
  if (spec_.stream && status >= 200 && status < 300) {
    streaming_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    response_.status = status;
    response_.headers = headers;
    response_.attempts = attempt;
  }
}

DataAction Call::on_data(int attempt, std::string_view bytes) {
  if (attempt != attempt_) return DataAction::kAbort;
  if (!streaming_) {
    if (body_.size() + bytes.size() > kMaxBody) {
      too_large_ = "the reply is larger than " + std::to_string(kMaxBody) + " bytes";
      return DataAction::kAbort;
    }
    body_.append(bytes);
    return DataAction::kContinue;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (cancelled_) return DataAction::kAbort;
  if (queue_.size() >= spec_.queue_capacity) {  // backpressure: keep the bytes in libcurl
    paused_ = true;
    return DataAction::kPause;
  }
  const size_t before = queue_.size();
  parser_.feed(bytes, [this](SseEvent&& ev) {
    if (!done_.admits(ev.data)) return !done_.closed();
    // an event echoing the key is scrubbed before the consumer sees it
    queue_.push_back(client_->mentions_key(ev.data) ? client_->scrub(std::move(ev.data)) : std::move(ev.data));
    return true;
  });
  if (done_.closed()) return DataAction::kAbort;  // on_done counts it a normal end
  if (parser_.pending_bytes() > kMaxBody) {  // one endless event: the parser would buffer it all
    too_large_ = "a stream event is larger than " + std::to_string(kMaxBody) + " bytes";
    parser_.reset();
    return DataAction::kAbort;
  }
  if (queue_.size() == before) return DataAction::kKeepAlive;  // comments only: still idle
  delivered_ = true;
  notify_locked(lock);
  return DataAction::kContinue;
}

void Call::notify_locked(std::unique_lock<std::mutex>& lock) {
  std::shared_ptr<Notifier> n = std::move(notifier_);
  notifier_.reset();
  const uint64_t token = token_;
  lock.unlock();
  cv_.notify_all();
  if (n) n->notify(token);
  lock.lock();
}

void Call::on_done(int attempt, const TransferResult& transfer) {
  if (attempt != attempt_) return;
  // A stream the upstream ended inside an event was cut (counted(): a connection error, retried
  // only if nothing was handed over yet); before [DONE] and between events, it ended as before.
  const TransferResult result = streaming_ ? done_.counted(transfer, parser_) : done_.counted(transfer);
  {
    std::unique_lock<std::mutex> lock(mu_);
    transfer_open_ = false;
    if (!cancelled_ && state_ != State::kRunning) return;
    // the caller's cancel() hung up too: a request that went out is billed all the same
    const bool we_hung_up = cancelled_ || result.status == TransferStatus::kTimeout || !too_large_.empty();
    if (abandonment_of(result.request_sent, status_, we_hung_up, delivered_) != Abandonment::kNone) {
      ++abandoned_attempts_;
    }
    if (cancelled_) {  // the cut's end, which arm() waits for after cancel()
      notify_locked(lock);
      return;
    }
  }
  const RetryPolicy& policy = client_->config_.retry;
  if (!too_large_.empty()) {  // a broken server: a retry would send as much again
    ApiError err;
    err.kind = streaming_ ? ApiError::Kind::kStream : ApiError::Kind::kStatus;
    err.status = 502;
    err.message = too_large_;
    fail(std::move(err));
    return;
  }
  if (result.status == TransferStatus::kOk) {
    repair_utf8(body_);  // a reply or error body is text: what is not UTF-8 becomes U+FFFD
    repair_json_surrogates(body_);  // and no escape of a lone surrogate (utf8.h)
    body_ = client_->scrub(std::move(body_));  // and an echoed key never passes
    if (status_ >= 200 && status_ < 300) {
      if (!streaming_) {
        std::lock_guard<std::mutex> lock(mu_);
        response_.status = status_;
        response_.headers = std::move(headers_);
        response_.body = std::move(body_);
        response_.attempts = attempt;
      }
      finish_ok();
      return;
    }
    ApiError err = client_->scrub(error_from_response(status_, headers_, body_, now_unix_ms()));
    if ((status_ == 401 || status_ == 402) && !key_.empty()) {
      // This key is rejected: set it aside and, if another is left, try it at once.
      if (client_->keys_.set_aside(key_, status_) > 0) {
        retry_or_fail(std::move(err), std::chrono::milliseconds(0), /*counts=*/false);
        return;
      }
      err.message += " — " + client_->keys_.exhausted_message();
    }
    if (status_ == 404 && not_found_retries_ < spec_.not_found_retries) {
      ++not_found_retries_;
      retry_or_fail(std::move(err),
                    std::chrono::milliseconds(static_cast<int64_t>(spec_.not_found_delay_s * 1000)), false);
      return;
    }
    if (is_retryable_status(status_)) {
      retry_or_fail(err, policy.delay(retries_, err.retry_after, client_->uniform01()), true);
      return;
    }
    fail(std::move(err));
    return;
  }
  if (result.status == TransferStatus::kCancelled) {
    ApiError err;
    err.kind = ApiError::Kind::kCancelled;
    err.message = result.error;
    fail(std::move(err));
    return;
  }
  ApiError err;
  err.kind = result.status == TransferStatus::kTimeout ? ApiError::Kind::kTimeout : ApiError::Kind::kConnection;
  err.status = result.http_status;
  err.message = client_->scrub(result.error);
  bool delivered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delivered = delivered_;
  }
  if (delivered) {  // part of the stream was handed over: a retry would repeat it
    fail(std::move(err));
    return;
  }
  retry_or_fail(err, policy.delay(retries_, std::nullopt, client_->uniform01()), true);
}

void Call::retry_or_fail(ApiError err, std::optional<std::chrono::milliseconds> delay, bool counts) {
  const int max_retries = spec_.max_retries >= 0 ? spec_.max_retries : client_->config_.retry.max_retries;
  if (!delay || (counts && retries_ >= max_retries)) {
    fail(std::move(err));
    return;
  }
  if (counts) ++retries_;
  client_->transport_->post([self = shared_from_this()] { self->start_attempt(); }, *delay);
}

void Call::fail(ApiError err) {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ != State::kRunning) return;
  error_ = std::move(err);
  state_ = State::kFailed;
  notify_locked(lock);
}

void Call::finish_ok() {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ != State::kRunning) return;
  state_ = State::kDone;
  notify_locked(lock);
}

bool Call::wait(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [this] { return state_ != State::kRunning; };
  if (timeout_ms < 0) {
    cv_.wait(lock, done);
    return true;
  }
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
}

Call::State Call::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

int Call::attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempt_;
}

int Call::abandoned_attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abandoned_attempts_;
}

Call::Next Call::next(std::string& data, bool block, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return !queue_.empty() || state_ != State::kRunning; };
  if (!ready()) {
    if (!block) return Next::kPending;
    if (timeout_ms < 0) {
      cv_.wait(lock, ready);
    } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
      return Next::kPending;
    }
  }
  if (!queue_.empty()) {
    data = std::move(queue_.front());
    queue_.pop_front();
    if (paused_ && queue_.size() <= spec_.queue_capacity / 2) {
      paused_ = false;
      const TransferId id = transfer_;
      lock.unlock();
      client_->transport_->resume(id);
    }
    return Next::kItem;
  }
  return state_ == State::kDone ? Next::kEnd : Next::kError;
}

void Call::arm(std::shared_ptr<Notifier> notifier, uint64_t token) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!queue_.empty() || (state_ != State::kRunning && !(cancelled_ && transfer_open_))) {
    lock.unlock();
    notifier->notify(token);
    return;
  }
  notifier_ = std::move(notifier);
  token_ = token;
}

void Call::cancel() {
  TransferId id;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ != State::kRunning || cancelled_) return;
    cancelled_ = true;
    id = transfer_;
    error_ = ApiError{};
    error_.kind = ApiError::Kind::kCancelled;
    error_.message = "the call was cancelled";
    state_ = State::kFailed;
    queue_.clear();
    notify_locked(lock);
  }
  if (id != 0) client_->transport_->cancel(id);
}

// ---------------------------------------------------------------------------------------------
// ApiClient

std::shared_ptr<ApiClient> ApiClient::create(ClientConfig config) {
  if (config.base_url.rfind("http://", 0) != 0 && config.base_url.rfind("https://", 0) != 0) {
    throw InvalidArgument("base_url must start with http:// or https://, got \"" + config.base_url + "\"");
  }
  while (!config.base_url.empty() && config.base_url.back() == '/') config.base_url.pop_back();
  return std::shared_ptr<ApiClient>(new ApiClient(std::move(config)));
}

ApiClient::ApiClient(ClientConfig config)
    : config_(std::move(config)),
      chat_completions_url_(url_for("/chat/completions")),
      keys_(config_.api_keys),
      transport_(std::make_unique<Transport>(config_.transport)),
      constant_headers_(constant_headers(config_)),
      rng_(std::random_device{}()) {
  config_.api_keys.clear();  // the KeyRing holds them; no second copy
  if (config_.stream_timeouts.total_ms <= 0) config_.stream_timeouts.total_ms = kDefaultStreamTimeouts.total_ms;
}

int64_t stream_deadline_ms(double seconds) {
  if (!(seconds > 0 && seconds < 1e9)) throw InvalidArgument("stream_deadline must be seconds > 0");
  return static_cast<int64_t>(std::ceil(seconds * 1e3));
}

ApiClient::~ApiClient() = default;

std::shared_ptr<Call> ApiClient::start(CallSpec spec) {
  if (spec.path.empty()) throw InvalidArgument("API call without a path");
  if (spec.queue_capacity == 0) spec.queue_capacity = 1;
  auto call = std::shared_ptr<Call>(new Call(shared_from_this(), std::move(spec)));
  call->start_attempt();
  return call;
}

std::string ApiClient::url_for(const std::string& path) const {
  if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) return path;
  if (!path.empty() && path.front() != '/') return config_.base_url + "/" + path;
  return config_.base_url + path;
}

HttpRequest ApiClient::build(const CallSpec& spec, const std::optional<std::string>& key) const {
  HttpRequest req;
  req.method = spec.method;
  req.url = url_for(spec.path);
  req.body = spec.body;
  req.keep_ok_headers = spec.keep_ok_headers;
  req.timeouts = spec.timeouts ? *spec.timeouts : (spec.stream ? config_.stream_timeouts : config_.timeouts);
  // A stream never goes without a total deadline (kDefaultStreamTimeouts): a call's own
  // timeouts that set none get the client's.
  if (spec.stream && req.timeouts.total_ms <= 0) req.timeouts.total_ms = config_.stream_timeouts.total_ms;
  // A call that carries its own credentials (openai's extra_headers={"Authorization": ...}) is
  // sent with those alone, never with the ring's key beside them.
  const bool own_auth = spec.extra_headers.get(config_.auth_header).has_value();
  req.headers.fields.reserve(3 + spec.extra_headers.fields.size());
  if (key && !own_auth) req.headers.add(config_.auth_header, config_.auth_prefix + *key);
  if (!spec.body.empty()) req.headers.add("Content-Type", "application/json");
  // A stream asks for SSE; a plain call sends no Accept line (any type, RFC 9110 §12.5.1; the
  // transport keeps libcurl's "Accept: */*" off too): libcurl prints every header byte through
  // its printf, ~125 instructions a byte, and "Accept: application/json" was ~3k a call.
  if (spec.stream) req.headers.add("Accept", "text/event-stream");
  req.shared = constant_headers_;  // the client's own, after these and before the call's extra ones
  req.shared_at = req.headers.fields.size();
  for (const auto& [k, v] : spec.extra_headers.fields) req.headers.add(k, v);
  return req;
}

std::shared_ptr<const HeaderLines> ApiClient::constant_headers(const ClientConfig& config) {
  Headers h;
  if (!config.app_url.empty()) h.add("HTTP-Referer", config.app_url);
  if (!config.app_name.empty()) {
    h.add("X-OpenRouter-Title", config.app_name);
    h.add("X-Title", config.app_name);
  }
  h.add("User-Agent", config.user_agent);
  for (const auto& [k, v] : config.headers.fields) h.add(k, v);
  return std::make_shared<const HeaderLines>(h);
}

std::string ApiClient::scrub(std::string text) const {
  // A whole key holds both of its halves: a text with neither (every reply, as a rule) has no
  // key to mask and none split across a tool call, and is returned without a search for each.
  if (!holds_half_a_key_maybe_escaped(text)) return text;
  text = mask_keys(std::move(text));
  if (!holds_half_a_key_maybe_escaped(text)) return text;
  return scrub_tool_calls(std::move(text));
}

bool ApiClient::holds_half_a_key_maybe_escaped(std::string_view text) const {
  if (holds_half_a_key(text)) return true;
  return text.find("\\u00") != std::string_view::npos && holds_half_a_key(unescape_key_chars(text));
}

bool ApiClient::holds_half_a_key(std::string_view text) const {
  std::lock_guard<std::mutex> lock(keys_.mu_);
  return std::any_of(keys_.entries_.begin(), keys_.entries_.end(), [&](const KeyRing::Entry& e) {
    const std::string_view key = e.key;
    const size_t half = key.size() / 2;
    return holds_either(text, key.substr(0, half), key.substr(half));
  });
}

std::string ApiClient::scrub_tool_calls(std::string body) const {
  rapidjson::Document doc;
  if (parse_json_text(body, doc) != JsonParse::kOk || !doc.IsObject()) return body;
  const auto choices = doc.FindMember("choices");
  if (choices == doc.MemberEnd() || !choices->value.IsArray()) return body;
  bool changed = false;
  for (auto& choice : choices->value.GetArray()) {
    const auto message = choice.IsObject() ? choice.FindMember("message") : choice.MemberEnd();
    if (!choice.IsObject() || message == choice.MemberEnd() || !message->value.IsObject()) continue;
    const auto calls = message->value.FindMember("tool_calls");
    if (calls == message->value.MemberEnd() || !calls->value.IsArray()) continue;
    for (auto& call : calls->value.GetArray()) {
      const auto id = call.IsObject() ? call.FindMember("id") : call.MemberEnd();
      if (!call.IsObject() || id == call.MemberEnd() || !id->value.IsString()) continue;
      const auto function = call.FindMember("function");
      if (function == call.MemberEnd() || !function->value.IsObject()) continue;
      const auto name = function->value.FindMember("name");
      if (name == function->value.MemberEnd() || !name->value.IsString()) continue;
      std::string head(id->value.GetString(), id->value.GetStringLength());
      std::string tail(name->value.GetString(), name->value.GetStringLength());
      if (!scrub_across(head, tail)) continue;
      id->value.SetString(head.data(), static_cast<rapidjson::SizeType>(head.size()), doc.GetAllocator());
      name->value.SetString(tail.data(), static_cast<rapidjson::SizeType>(tail.size()), doc.GetAllocator());
      changed = true;
    }
  }
  return changed ? to_json(doc) : body;
}

bool ApiClient::scrub_across(std::string& head, std::string& tail) const {
  // A key crossing the join starts inside the longest end of `head` that begins one.
  const size_t start = key_start_at_end(head);
  if (start == 0) return false;
  std::string joined = head.substr(head.size() - start) + tail;
  std::string masked = mask_keys(joined);
  if (masked == joined) return false;
  head.resize(head.size() - start);
  tail = std::move(masked);
  return true;
}

std::string ApiClient::mask_keys(std::string text) const {
  std::lock_guard<std::mutex> lock(keys_.mu_);
  auto mask_all = [this](std::string& t) {
    bool hit = false;
    for (const auto& e : keys_.entries_) {
      if (e.key.empty()) continue;
      for (size_t pos = find_in(t, e.key); pos != std::string::npos; pos = find_in(t, e.key, pos)) {
        const std::string masked = mask_key(e.key);
        t.replace(pos, e.key.size(), masked);
        pos += masked.size();
        hit = true;
      }
    }
    return hit;
  };
  mask_all(text);
  if (text.find("\\u00") != std::string::npos) {
    std::string plain = unescape_key_chars(text);
    if (mask_all(plain)) return plain;
  }
  return text;
}

bool ApiClient::mentions_key(std::string_view text) const {
  std::lock_guard<std::mutex> lock(keys_.mu_);
  auto holds = [this](std::string_view t) {
    for (const auto& e : keys_.entries_) {
      if (!e.key.empty() && find_in(t, e.key) != std::string_view::npos) return true;
    }
    return false;
  };
  if (holds(text)) return true;
  return text.find("\\u00") != std::string_view::npos && holds(unescape_key_chars(text));
}

size_t ApiClient::key_start_at_end(std::string_view text) const {
  std::lock_guard<std::mutex> lock(keys_.mu_);
  size_t longest = 0;
  for (const auto& e : keys_.entries_) {
    const std::string& key = e.key;
    // from the longest candidate down: the first that matches is this key's longest
    for (size_t len = std::min(text.size(), key.size() - 1); len > longest; --len) {
      const size_t at = text.size() - len;
      if (text[at] == key[0] && text.compare(at, len, key, 0, len) == 0) {
        longest = len;
        break;
      }
    }
  }
  return longest;
}

ApiError Call::scrubbed(ApiError e) const { return client_->scrub(std::move(e)); }

ApiError ApiClient::scrub(ApiError e) const {
  e.message = scrub(std::move(e.message));
  e.body = scrub(std::move(e.body));
  e.code_json = scrub(std::move(e.code_json));
  e.metadata_json = scrub(std::move(e.metadata_json));
  e.generation_id = scrub(std::move(e.generation_id));  // X-Generation-Id: any bytes the upstream sent
  e.provider = scrub(std::move(e.provider));
  return e;
}

Headers ApiClient::scrub(Headers h) const {
  for (auto& [name, value] : h.fields) {
    name = scrub(std::move(name));
    value = scrub(std::move(value));
  }
  return h;
}

double ApiClient::uniform01() {
  std::lock_guard<std::mutex> lock(rng_mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

}  // namespace orroute
