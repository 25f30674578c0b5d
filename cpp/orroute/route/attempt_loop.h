// The attempt loop: runs one request over an ordered list of candidate models. For each candidate
// it checks the context window and the circuit breakers, reserves the worst-case cost, admits the
// request under the rate limits (waiting up to a bound), sends it, and on failure classifies,
// retries with backoff / Retry-After or falls back to the next candidate; on success it settles
// cost, usage, breaker and metrics. Everything it touches sits behind the small interfaces below,
// so the Engine plugs in the real transport, ledger and catalog, and tests plug in fakes.
//
// The loop never blocks a thread: waits are scheduled on a Scheduler (the transport thread in the
// Engine) and attempts complete through callbacks.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/catalog/pricing.h"
#include "orroute/cost/abandoned_calls.h"
#include "orroute/error.h"
#include "orroute/route/capped_names.h"
#include "orroute/route/clock.h"
#include "orroute/route/metrics.h"
#include "orroute/route/rate_limiter.h"
#include "orroute/route/retry_policy.h"
#include "orroute/route/router_state.h"
#include "orroute/utf8.h"

namespace orroute {

// How one attempt ended, as the sender reports it.
// What the caller of a non-streamed chat completion needs at once, read from the parse the
// network thread already made: the completion's "id" and its first choice's message text.
struct ReplySummary {
  std::string id;       // "" when the reply has no string id
  std::string content;  // string content, or the text parts joined; "" otherwise
  size_t parts = 0;     // the text parts joined into `content` (0: string content): a key split
                        // over them is whole only in the join (ChatSink masks it there)
};

struct AttemptResult {
  bool ok = false;
  int http_status = 0;              // 0 when no response head arrived
  bool timed_out = false;
  bool cancelled = false;
  bool content_delivered = false;   // streaming: content already reached the caller
  std::string error_message;        // error text (never contains the API key)
  std::optional<std::string> retry_after;       // Retry-After header, if any
  std::optional<std::string> rate_limit_reset;  // X-RateLimit-Reset header, if any
  int64_t input_tokens = 0;         // usage reported by the response
  int64_t output_tokens = 0;
  // Breakdowns of input_tokens (cached, cache_write, audio) and output_tokens (reasoning,
  // audio_output, image_output) from the usage details; 0 when not reported.
  int64_t cached_tokens = 0;
  int64_t cache_write_tokens = 0;
  int64_t audio_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t audio_output_tokens = 0;
  int64_t image_output_tokens = 0;
  std::optional<Money> reported_cost;  // usage.cost when the server reports it
  bool usage_present = false;       // the reply carried a usage object
  bool cost_reported = false;       // usage.cost was there (valid or not)
  std::string cost_problem;         // why usage.cost is unusable ("" = fine or absent)
  std::string token_problem;        // why the usage token counts are unusable ("" = fine)
  int64_t counted_output_tokens = 0;  // our tokenizer's count of the answer received
  bool cut_at_reservation = false;  // streamed: cut when it would pass its reservation
  std::optional<Duration> ttft;     // streamed calls: time to the first content
  std::string body;                 // response body (non-streamed) for the caller
  std::optional<ReplySummary> summary;  // id and text of `body` when the sink parsed it already
  std::string served_model;         // the "model" field of the response, if any
  // The upstream the reply names: the top-level "provider" of a completion ("OpenAI", "Together"),
  // or error.metadata.provider_name of an error; "" when the reply names none or none arrived.
  std::string provider;
  // The upstream got the whole request but the attempt ended without a usable answer in a way
  // it may still bill (cost/abandoned_calls.h); `streamed` says counted_output_tokens holds what
  // arrived.
  Abandonment abandoned = Abandonment::kNone;
  bool streamed = false;
};

// How an attempt's result is handed on: by rvalue reference, so no hop moves it (an AttemptResult
// is ~0.5 KB of strings; RouteDone below hands over a run's ~0.85 KB outcome where it lies).
using AttemptDone = std::function<void(AttemptResult&&)>;

// Sends one attempt. `done` must be called exactly once, from any thread; the returned function
// cancels the attempt (done then reports cancelled), and may be called after done (no-op).
class AttemptSender {
 public:
  virtual ~AttemptSender() = default;
  virtual std::function<void()> send(const std::string& model, int attempt_number,
                                     AttemptDone done) = 0;
};

// Runs functions later (backoff, admission waits). Thread-safe.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void post(std::function<void()> fn, Duration delay) = 0;
};

// What a successful attempt is charged, and where the figure came from (see usage_audit.h).
struct Charge {
  Money cost;
  std::string source = "upstream";  // "upstream", "catalog", "tokenizer", "metered", "reservation"
  std::string problem;              // why the upstream's figure was replaced ("" = it was not)
  std::optional<UsageCounts> counts;  // the token counts charged, when the pricer checked them
};

// Budget reservations (the ledger, through the Engine). Thread-safe.
class BudgetGate {
 public:
  virtual ~BudgetGate() = default;
  struct Hold {
    bool ok = true;
    uint64_t id = 0;           // pass to settle / release (0 = nothing to settle)
    std::string refusal;       // !ok: why (names the budget; no secrets)
    bool stop = false;         // !ok: no other candidate may be tried (refuse policy, cutoff)
    ErrorKind error_kind = ErrorKind::kBudgetExceeded;  // !ok: what refused
  };
  // What a settled call was, for the ledger's record.
  struct CallInfo {
    std::string model;
    const AttemptResult* result = nullptr;
    Duration latency{0};
    int attempts = 1;
    const Charge* charge = nullptr;
    std::string outcome = "ok";  // the ledger row's outcome: "ok", or "cancelled"/"error" when
    std::string error_class;     // an abandoned attempt is billed (with the error's class)
    // false: a failed call nothing was billed for, whose cost (0) says nothing of its estimate
    // (its row carries none, so the ledger's estimate accuracy is the billed calls').
    bool billed = true;
  };
  // Reserves `worst_case` for a call to `model`; atomic check-and-reserve. Must not throw.
  virtual Hold reserve(const std::string& model, Money worst_case) = 0;
  // Settles a reservation to the actual cost of a call (0 for a failed one nothing was billed
  // for: its row records the failure). Must not throw.
  virtual void settle(uint64_t id, Money actual, const CallInfo& info) = 0;
  // Releases a reservation (failed or cancelled call). Must not throw.
  virtual void release(uint64_t id) = 0;
};

// Prices and context windows (the catalog and cost engine, through the Engine). Thread-safe.
class PriceBook {
 public:
  virtual ~PriceBook() = default;
  // Worst-case cost of a call; nullopt if the model cannot be priced (then, under a budget, the
  // candidate is refused with unpriced_reason(): nothing is sent unmetered).
  virtual std::optional<Money> worst_case(const std::string& model, int64_t prompt_tokens,
                                          int64_t max_output_tokens) const = 0;
  // Why worst_case() gave nullopt for `model` (names the model and the setting to change).
  virtual std::string unpriced_reason(const std::string& model) const {
    return "model '" + client_text(model) + "' cannot be priced";
  }
  // Whether `model` must be priced to be sent even without a budget: its reply carries no cost
  // of its own (another provider, charged at its own price list), so a call that cannot be
  // priced would be paid for and reported as $0.
  virtual bool priced_only(const std::string& /*model*/) const { return false; }
  // The charge of the successful attempt `r` on `model` (reserved: `reserved`). Must not throw.
  virtual Charge actual(const std::string& model, const AttemptResult& r, Money reserved) const = 0;
  // The charge of an attempt the upstream may bill although it failed (r.abandoned != kNone):
  // what it generated when that is known, else the reservation. Must not throw.
  virtual Charge abandoned(const std::string& /*model*/, const AttemptResult& /*r*/, Money reserved) const {
    return reserved_charge(reserved);
  }
  // The whole reservation, when what a cut call generated cannot be known.
  static Charge reserved_charge(Money reserved) {
    return Charge{reserved, "reservation", "the call was cut and what it generated is unknown", std::nullopt};
  }
  // Context window in tokens; nullopt if unknown.
  virtual std::optional<int64_t> context_length(const std::string& model) const = 0;
  // Prompt tokens of the request for `model` (tokenizers differ by family); `counted` is the
  // request's own count.
  virtual int64_t prompt_tokens(const std::string& /*model*/, int64_t counted) const {
    return counted;
  }
  // The tokens the request's images take in `model`'s context, beside prompt_tokens (which
  // counts the text alone): for the skip of a model whose context cannot hold the prompt.
  virtual int64_t image_context_tokens(const std::string& /*model*/) const { return 0; }
};

// Which upstream provider last served each model (learned from replies), so the next call to that
// model is gated by that provider's breaker before it is sent. The names come from the upstream:
// only the first kMaxNames distinct ones keep a breaker of their own, every later one shares
// kOtherProvider's, so a reply naming a new provider each time cannot grow the breakers. Each
// name's breaker key is made once and kept for the memory's life: the keys it hands out stay
// valid as long as it does. Thread-safe.
class ProviderMemory {
 public:
  static constexpr size_t kMaxNames = 256;
  static constexpr std::string_view kOtherProvider = "(other)";
  // Models are the caller's names: past this many, a new one's provider is not remembered.
  static constexpr size_t kMaxModels = 4096;

  // The provider that last served `model` ("" if none is known yet).
  std::string last(const std::string& model) const;
  // The breaker key of that provider (provider_breaker_key; "" if none is known yet).
  std::string_view last_key(const std::string& model) const;
  // Remembers that `provider` served `model`; returns the key of the breaker it goes by
  // (`provider`'s, or kOtherProvider's once kMaxNames other names were seen; "" for "").
  std::string_view note(const std::string& model, const std::string& provider);
  // Every provider seen, sorted (for health reports); at most kMaxNames + 1.
  std::vector<std::string> providers() const;

 private:
  mutable std::mutex mu_;
  // The key of each model's last provider, an entry of keys_.
  std::unordered_map<std::string, const std::string*> by_model_;
  NameMap<std::string> keys_;  // name -> breaker key, for the names that keep their own breaker
  std::string other_key_;      // kOtherProvider's breaker key
};

// Breaker keys: "model:<id>", "provider:<name from the reply>", "endpoint:<host of the base URL>".
std::string provider_breaker_key(std::string_view provider);
std::string endpoint_breaker_key(const std::string& endpoint);
// The host[:port] of an http(s) URL ("openrouter.ai" for "https://openrouter.ai/api/v1"); "" if
// it has none. Never throws.
std::string url_host(std::string_view url);

struct LoopConfig {
  RecoveryConfig retry;
  Duration max_admission_wait = std::chrono::seconds(5);  // wait this long for a rate limit,
                                                          // else take the next candidate
  std::vector<std::string> key_scopes;  // extra limiter scopes every attempt books ("key:<name>")
  // Provider breakers: one per upstream provider the replies name, and one for the endpoint
  // (`endpoint`: the base URL's host) that takes failures with no reply or no provider named.
  bool provider_breakers = true;
  std::string endpoint;  // "" = no endpoint breaker
  // Several providers: the endpoint of each candidate (replaces `endpoint` when set).
  std::function<std::string(const std::string& candidate)> endpoint_of;
};

// The breaker keys of a model that do not change from call to call.
struct ModelKeys {
  std::string model;     // "model:<id>": its breaker, and its rate limiter's scope
  std::string endpoint;  // "endpoint:<host>" of the endpoint it is sent to; "" = no endpoint breaker
};
// `model`'s keys under `config` (the endpoint's only with provider breakers).
ModelKeys model_keys(const std::string& model, const LoopConfig& config);

// Each model's ModelKeys made once and kept (made per attempt, they were two strings allocated and
// freed a call), for the runs of one LoopConfig. Models are the caller's names: past kMaxModels,
// a new one's keys are not kept (its runs make their own). Thread-safe; the keys it hands out stay
// valid as long as it does.
class ModelKeyMemory {
 public:
  static constexpr size_t kMaxModels = 4096;
  // `config` must outlive the memory; its endpoints must not change once a key is made.
  explicit ModelKeyMemory(const LoopConfig& config) : config_(config) {}

  // `model`'s keys, made on the first call; nullptr past kMaxModels models.
  const ModelKeys* find(const std::string& model);

 private:
  const LoopConfig& config_;
  std::mutex mu_;
  NameMap<ModelKeys> by_model_;
};

// One attempt, for the caller's record.
struct AttemptRecord {
  std::string model;
  std::string outcome;        // "ok", an ErrorClass name, or "skipped:<why>" (nothing sent)
  int http_status = 0;
  std::string message;
  Duration latency{0};        // send to end (0 when skipped)
  Duration waited{0};         // backoff / admission wait before it
};

struct RouteRequest {
  std::vector<std::string> candidates;  // exact order to try
  int64_t prompt_tokens = 0;
  int64_t max_output_tokens = 0;        // 0: unknown (reserve/admit with 0 output tokens)
  std::optional<Money> max_cost;        // candidates whose worst case exceeds this are skipped
};

struct RouteOutcome {
  bool ok = false;
  ErrorClass error = ErrorClass::kOther;  // !ok
  bool budget_refused = false;            // !ok: every candidate was refused by the budget
  bool nothing_sent = false;              // !ok: no request reached the network
  ErrorKind budget_error = ErrorKind::kBudgetExceeded;  // budget_refused: what refused
  int http_status = 0;
  std::string message;
  std::string model;                      // model that answered (ok) or last tried
  AttemptResult result;                   // last attempt's result
  Money cost;                             // settled cost (ok)
  Money abandoned_cost;                   // settled for attempts cut after the upstream got them
  Charge charge;                          // where `cost` came from (ok)
  std::vector<AttemptRecord> attempts;
};

// Shared pieces the loop runs with. All pointers must outlive every run.
struct LoopContext {
  const Clock* clock = nullptr;
  RouterState* state = nullptr;
  Metrics* metrics = nullptr;
  Scheduler* scheduler = nullptr;
  BudgetGate* budget = nullptr;  // may be null: no budget
  const PriceBook* prices = nullptr;  // may be null: nothing priced, no context check
  // May be null: providers are not remembered across runs and no provider breaker is kept.
  ProviderMemory* providers = nullptr;
  // May be null: LoopConfig's defaults. Shared by every run, not copied into each (its strings,
  // key scopes and std::function were a copy, a move and a destruction a call).
  const LoopConfig* config = nullptr;
  // May be null: each attempt makes its model's keys. Else made for `config` (the same settings).
  ModelKeyMemory* keys = nullptr;
};

// Handle of a running request. Thread-safe.
class RouteRun {
 public:
  virtual ~RouteRun() = default;
  // Cancels: the in-flight attempt is aborted, the reservation released, `on_done` gets an
  // outcome with error kCancelled (unless it already finished). Idempotent.
  virtual void cancel() = 0;
};

// Called with the run's outcome, never null, the callee's to keep: the run made it on the heap,
// so the result that keeps it takes the pointer (a move of it into the result was ~470
// instructions a call, and a second allocation).
using RouteDone = std::function<void(std::unique_ptr<RouteOutcome>)>;

// Starts the loop. `sender` must outlive the run; `on_done` is called exactly once, from whichever
// thread finished the last step (never while a loop lock is held). Throws InvalidArgument if
// `request.candidates` is empty or a context pointer (clock, state, metrics, scheduler) is null.
std::shared_ptr<RouteRun> start_route(LoopContext context, RouteRequest request,
                                      std::shared_ptr<AttemptSender> sender,
                                      RouteDone on_done);

}  // namespace orroute
