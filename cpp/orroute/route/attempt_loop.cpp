#include "orroute/route/attempt_loop.h"

#include <algorithm>
#include <atomic>
#include <span>
#include <utility>

#include "orroute/error.h"
#include "orroute/no_destructor.h"

namespace orroute {

namespace {

constexpr std::string_view kProviderKeyPrefix = "provider:";

// The provider a key of provider_breaker_key names ("" for "").
std::string_view provider_of_key(std::string_view key) {
  return key.empty() ? key : key.substr(kProviderKeyPrefix.size());
}

}  // namespace

std::string ProviderMemory::last(const std::string& model) const {
  return std::string(provider_of_key(last_key(model)));
}

std::string_view ProviderMemory::last_key(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = by_model_.find(model);
  return it == by_model_.end() ? std::string_view() : std::string_view(*it->second);
}

std::string_view ProviderMemory::note(const std::string& model, const std::string& provider) {
  if (provider.empty()) return {};
  std::lock_guard lock(mu_);
  // One lookup in each table (an answered call notes its provider: every call of a manager).
  const std::string* key = nullptr;
  if (auto it = keys_.find(provider); it != keys_.end()) {
    key = &it->second;
  } else if (keys_.size() < kMaxNames) {
    key = &keys_.emplace(provider, provider_breaker_key(provider)).first->second;
  } else {
    if (other_key_.empty()) other_key_ = provider_breaker_key(kOtherProvider);
    key = &other_key_;
  }
  if (auto it = by_model_.find(model); it != by_model_.end()) {
    it->second = key;
  } else if (by_model_.size() < kMaxModels) {
    by_model_.emplace(model, key);
  }
  return *key;
}

std::vector<std::string> ProviderMemory::providers() const {
  std::vector<std::string> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [model, key] : by_model_) out.emplace_back(provider_of_key(*key));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string provider_breaker_key(std::string_view provider) {
  std::string key(kProviderKeyPrefix);
  key += provider;
  return key;
}

std::string endpoint_breaker_key(const std::string& endpoint) { return "endpoint:" + endpoint; }

ModelKeys model_keys(const std::string& model, const LoopConfig& config) {
  ModelKeys keys{"model:" + model, {}};
  if (config.provider_breakers) {
    const std::string& endpoint = config.endpoint_of ? config.endpoint_of(model) : config.endpoint;
    if (!endpoint.empty()) keys.endpoint = endpoint_breaker_key(endpoint);
  }
  return keys;
}

const ModelKeys* ModelKeyMemory::find(const std::string& model) {
  std::lock_guard lock(mu_);
  if (auto it = by_model_.find(model); it != by_model_.end()) return &it->second;
  if (by_model_.size() >= kMaxModels) return nullptr;
  return &by_model_.emplace(model, model_keys(model, config_)).first->second;
}

std::string url_host(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  return std::string(rest);
}

namespace {

// splitmix64's output step: spreads a counter's value over every bit.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The settings of a run whose context names none.
const LoopConfig& default_loop_config() {
  static const NoDestructor<LoopConfig> kDefaults;
  return *kDefaults;
}

// Per-run jitter source; seeds differ per run without touching a shared generator.
uint64_t next_seed() {
  static std::atomic<uint64_t> counter{0x9E3779B97F4A7C15ULL};
  return mix64(counter.fetch_add(0x9E3779B97F4A7C15ULL));
}

// A run's backoff jitter: splitmix64, 8 bytes. (A std::mt19937_64 per run was 2.5 KB to seed on
// every call's path and made each run a 4 KB allocation, for a number drawn only on a retry.)
class Jitter {
 public:
  explicit Jitter(uint64_t seed) : state_(seed) {}
  // Uniform in [0, 1): the top 53 bits of the next value.
  double uniform01() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return static_cast<double>(mix64(state_) >> 11) * 0x1.0p-53;
  }

 private:
  uint64_t state_;
};

class Run final : public RouteRun, public std::enable_shared_from_this<Run> {
 public:
  // Taken over from start_route's arguments (by value, each was moved once more).
  Run(LoopContext&& ctx, RouteRequest&& req, std::shared_ptr<AttemptSender>&& sender, RouteDone&& on_done)
      : ctx_(std::move(ctx)),
        req_(std::move(req)),
        sender_(std::move(sender)),
        on_done_(std::move(on_done)),
        config_(ctx_.config ? *ctx_.config : default_loop_config()),
        policy_(config_.retry),
        rng_(next_seed()) {}

  // Runs the next step; an exception from any piece the loop calls (router state, ledger, hook)
  // ends the run with an error instead of reaching the thread that runs it.
  void step() noexcept;
  void cancel() override;

 private:
  using Lock = std::unique_lock<std::mutex>;
  struct Permits {
    // Breaker keys taken (empty = not taken): the model's kept keys (ModelKeyMemory), the
    // provider memory's, or the run's own_keys_.
    std::string_view model_key, provider_key, endpoint_key;
    // What the state found each key to when it allowed it: the records go without a lookup.
    BreakerHandle model_handle, provider_handle, endpoint_handle;
    uint64_t reservation = 0;
    bool reserved = false;
    Money amount;  // what was reserved
    uint64_t ticket = 0;

    // Holds nothing again, as a default Permits.
    void reset() noexcept {
      model_key = provider_key = endpoint_key = {};
      model_handle = provider_handle = endpoint_handle = BreakerHandle{};
      reservation = 0;
      reserved = false;
      amount = Money();
      ticket = 0;
    }
  };

  void step_locked();
  void on_attempt(AttemptResult&& r, uint64_t generation) noexcept;
  void on_attempt_locked(AttemptResult&& r, uint64_t generation);
  void fail_internal(const char* what) noexcept;
  void release_permits(CallOutcome outcome, Instant now);
  // Books an attempt the upstream may bill although it was cut (r.abandoned), in place of
  // releasing its reservation.
  void settle_abandoned(const std::string& model, const AttemptResult& r, ErrorClass cls,
                        Duration latency);
  // Records a failed attempt nothing was billed for (an error status, a connection that
  // failed) at cost 0, in place of releasing its reservation: every call has its row.
  void settle_failed(const std::string& model, const AttemptResult& r, ErrorClass cls,
                     Duration latency);
  void settle_breakers(const std::string& model, const AttemptResult& r, CallOutcome outcome,
                       Instant now);
  void skip(const std::string& model, const std::string& why, std::string message = {});
  void next_candidate();
  void finish(Lock& lock);  // unlocks
  void finish_exhausted(Lock& lock);
  void schedule_step(Duration delay);
  double uniform01() { return rng_.uniform01(); }
  // `model`'s keys: those the context keeps, else made into own_keys_.
  const ModelKeys& keys_of(const std::string& model);

  LoopContext ctx_;
  RouteRequest req_;
  std::shared_ptr<AttemptSender> sender_;
  RouteDone on_done_;
  const LoopConfig& config_;  // *ctx_.config, or the defaults
  RecoveryPolicy policy_;
  Jitter rng_;

  std::mutex mu_;
  bool finished_ = false;
  bool cancelled_ = false;
  bool in_flight_ = false;
  uint64_t generation_ = 0;  // attempt counter; stale callbacks/cancels are ignored
  std::function<void()> cancel_attempt_;
  size_t idx_ = 0;
  int failures_on_model_ = 0;
  Duration waited_{0};            // wait before the next attempt (for its record)
  Duration admission_waited_{0};  // admission wait spent on the current candidate
  Instant attempt_started_{};
  Permits permits_;
  ModelKeys own_keys_;  // the current model's keys when the context keeps none for it
  int budget_refusals_ = 0;
  std::string budget_message_;
  ErrorKind budget_error_ = ErrorKind::kBudgetExceeded;
  // The cheapest worst case among the candidates a budget refused: what a budget must allow.
  std::string cheapest_refused_model_;
  std::optional<Money> cheapest_refused_worst_;

  void note_refused(const std::string& model, Money worst) {
    if (!cheapest_refused_worst_ || worst < *cheapest_refused_worst_) {
      cheapest_refused_worst_ = worst;
      cheapest_refused_model_ = model;
    }
  }
  // Apart from the run (848 bytes): with it inside, a run was above glibc's per-thread cache
  // (1032 bytes), in the large-chunk range whose malloc consolidates the fast bins first. Handed
  // to on_done as it is (RouteDone): the caller's result keeps this allocation.
  std::unique_ptr<RouteOutcome> outcome_ = std::make_unique<RouteOutcome>();
};

void Run::skip(const std::string& model, const std::string& why, std::string message) {
  AttemptRecord rec;
  rec.model = model;
  rec.outcome = "skipped:" + why;
  rec.message = std::move(message);
  rec.waited = waited_;
  waited_ = Duration(0);
  outcome_->attempts.push_back(std::move(rec));
}

const ModelKeys& Run::keys_of(const std::string& model) {
  if (const ModelKeys* kept = ctx_.keys ? ctx_.keys->find(model) : nullptr) return *kept;
  own_keys_ = model_keys(model, config_);
  return own_keys_;
}

void Run::next_candidate() {
  ++idx_;
  failures_on_model_ = 0;
  admission_waited_ = Duration(0);
}

void Run::release_permits(CallOutcome outcome, Instant now) {
  // The breakers taken, in the order they were asked, in one step.
  BreakerRecord records[3];
  size_t n = 0;
  if (!permits_.model_key.empty()) records[n++] = {permits_.model_key, permits_.model_handle, outcome};
  if (!permits_.endpoint_key.empty()) {
    records[n++] = {permits_.endpoint_key, permits_.endpoint_handle, outcome};
  }
  if (!permits_.provider_key.empty()) {
    records[n++] = {permits_.provider_key, permits_.provider_handle, outcome};
  }
  if (n != 0) ctx_.state->breakers_record(std::span<const BreakerRecord>(records, n), now);
  if (permits_.reserved && ctx_.budget) ctx_.budget->release(permits_.reservation);
  permits_.reset();
}

// Attributes an attempt's outcome: the model's breaker always; the provider the reply names
// (top-level "provider", or the error's metadata.provider_name) gets it too. The endpoint takes it
// only when no reply arrived at all (connection error, timeout): any reply proves the endpoint
// answers, and a reply naming no provider (a 500, a 503 "no provider available") stays the
// model's alone, else one model's errors would block every model. Breakers taken but not to
// blame are released neutrally. The reservation is left alone (the caller settles it).
void Run::settle_breakers(const std::string& model, const AttemptResult& r, CallOutcome outcome,
                          Instant now) {
  // Every record below goes to the state in one step, in the order they were made one by one.
  BreakerRecord records[4];
  size_t n = 0;
  if (!permits_.model_key.empty()) records[n++] = {permits_.model_key, permits_.model_handle, outcome};
  // the breaker key of the provider the reply names (the memory keeps it: no key made a call)
  const std::string_view named = ctx_.providers ? ctx_.providers->note(model, r.provider) : std::string_view();
  if (config_.provider_breakers) {
    // The provider the reply names is most often the one whose breaker this call was let through
    // (the provider that served the model last time): then that permit is the named one.
    const bool named_is_permit = !named.empty() && permits_.provider_key == named;
    if (named_is_permit) {
      records[n++] = {permits_.provider_key, permits_.provider_handle, outcome};
    } else {
      if (!named.empty()) {
        // When OpenRouter routed this call elsewhere than last time, the named breaker is
        // recorded without a permit (it may be open: the call went there anyway).
        records[n++] = {named, BreakerHandle{}, outcome};
      }
      if (!permits_.provider_key.empty()) {
        records[n++] = {permits_.provider_key, permits_.provider_handle, CallOutcome::kNeutral};
      }
    }
    if (!permits_.endpoint_key.empty()) {
      const bool replied = r.ok || r.http_status != 0;
      const CallOutcome endpoint_outcome =
          r.cancelled ? CallOutcome::kNeutral : (replied ? CallOutcome::kSuccess : outcome);
      records[n++] = {permits_.endpoint_key, permits_.endpoint_handle, endpoint_outcome};
    }
  }
  if (n != 0) ctx_.state->breakers_record(std::span<const BreakerRecord>(records, n), now);
  permits_.model_key = {};
  if (config_.provider_breakers) permits_.provider_key = permits_.endpoint_key = {};
}

void Run::schedule_step(Duration delay) {
  auto self = shared_from_this();
  ctx_.scheduler->post([self] { self->step(); }, delay);
}

void Run::step() noexcept {
  try {
    step_locked();
  } catch (const std::exception& e) {
    fail_internal(e.what());
  } catch (...) {
    fail_internal("unknown error");
  }
}

void Run::fail_internal(const char* what) noexcept {
  try {
    Lock lock(mu_);
    if (finished_) return;
    auto cancel_fn = in_flight_ ? cancel_attempt_ : nullptr;
    in_flight_ = false;
    ++generation_;  // a late answer of the attempt in flight is ignored
    cancel_attempt_ = nullptr;
    outcome_->ok = false;
    outcome_->error = ErrorClass::kOther;
    outcome_->message = std::string("internal error in the attempt loop: ") + what;
    if (cancel_fn) {
      lock.unlock();
      cancel_fn();
      lock.lock();
      if (finished_) return;
    }
    finish(lock);
  } catch (...) {
    // Out of memory while failing: nothing more can be done safely.
  }
}

void Run::step_locked() {
  Lock lock(mu_);
  while (true) {
    if (finished_) return;
    if (cancelled_) {
      outcome_->ok = false;
      outcome_->error = ErrorClass::kCancelled;
      outcome_->message = "cancelled";
      finish(lock);
      return;
    }
    if (idx_ >= req_.candidates.size()) {
      finish_exhausted(lock);
      return;
    }
    const std::string& model = req_.candidates[idx_];
    const Instant now = ctx_.clock->now();

    const int64_t prompt_tokens =
        ctx_.prices ? ctx_.prices->prompt_tokens(model, req_.prompt_tokens) : req_.prompt_tokens;
    if (ctx_.prices && failures_on_model_ == 0 && admission_waited_.count() == 0) {
      const auto window = ctx_.prices->context_length(model);
      // The images (not in prompt_tokens) at this model's bound for them.
      const int64_t images = window ? ctx_.prices->image_context_tokens(model) : 0;
      if (window && prompt_tokens + images >= *window) {
        skip(model, to_string(ErrorClass::kContextTooLong),
             std::to_string(prompt_tokens + images) + " prompt tokens" +
                 (images > 0 ? " (" + std::to_string(images) + " for its images)" : std::string()) + " >= context " +
                 std::to_string(*window));
        next_candidate();
        continue;
      }
      if (req_.max_cost) {
        const auto worst = ctx_.prices->worst_case(model, prompt_tokens, req_.max_output_tokens);
        if (!worst || *worst > *req_.max_cost) {
          ++budget_refusals_;
          budget_message_ = worst ? "task budget " + req_.max_cost->to_string() +
                                        " USD < worst-case " + worst->to_string() + " USD on " +
                                        client_text(model)
                                  : ctx_.prices->unpriced_reason(model);
          budget_error_ = ErrorKind::kBudgetExceeded;
          if (worst) note_refused(model, *worst);
          skip(model, "budget", budget_message_);
          next_candidate();
          continue;
        }
      }
    }

    // Breakers: the model's, then (provider breakers) the endpoint's and that of the provider
    // that last served this model (the provider of this call is only known from its reply),
    // asked in that order in one step; the first that refuses skips the model, and those before
    // it are released.
    // The keys are named in permits_ before they are asked: until breakers_allow returns, none
    // of them is held, so if anything on the way throws the run's end records none of them (a
    // "release" of a breaker never taken gives back another call's half-open probe).
    permits_.reset();
    BreakerPass passes[3];
    std::string_view* taken[3];
    BreakerHandle* handles[3];
    size_t asked = 0;
    size_t allowed = 0;
    const ModelKeys* keys = nullptr;  // the model's: its key is also its rate limiter's scope
    try {
      keys = &keys_of(model);
      permits_.model_key = keys->model;
      permits_.endpoint_key = keys->endpoint;
      if (config_.provider_breakers && ctx_.providers) permits_.provider_key = ctx_.providers->last_key(model);
      for (auto [key, handle] : {std::pair{&permits_.model_key, &permits_.model_handle},
                                 std::pair{&permits_.endpoint_key, &permits_.endpoint_handle},
                                 std::pair{&permits_.provider_key, &permits_.provider_handle}}) {
        if (key->empty()) continue;
        passes[asked] = {*key, BreakerHandle{}};
        taken[asked] = key;
        handles[asked] = handle;
        ++asked;
      }
      allowed = ctx_.state->breakers_allow(std::span<BreakerPass>(passes, asked), now);
    } catch (...) {
      permits_.reset();  // none held (breakers_allow gives back what it took when it throws)
      throw;
    }
    for (size_t i = 0; i < asked; ++i) *handles[i] = passes[i].handle;
    if (allowed < asked) {
      const bool model_refused = allowed == 0;
      const std::string refused_key(*taken[allowed]);
      for (size_t i = allowed; i < asked; ++i) *taken[i] = {};  // not taken: nothing to record
      release_permits(CallOutcome::kNeutral, now);
      if (model_refused) {
        skip(model, "circuit_open");
      } else {
        skip(model, taken[allowed] == &permits_.endpoint_key ? "endpoint_circuit_open" : "provider_circuit_open",
             refused_key);
      }
      next_candidate();
      continue;
    }

    // Budget: reserve the worst case before anything is sent. A candidate that cannot be priced is
    // refused (money fails closed); the next one may be priceable.
    if (ctx_.budget && ctx_.prices) {
      const auto worst = ctx_.prices->worst_case(model, prompt_tokens, req_.max_output_tokens);
      if (!worst) {
        release_permits(CallOutcome::kNeutral, now);
        ++budget_refusals_;
        budget_message_ = ctx_.prices->unpriced_reason(model);
        budget_error_ = ErrorKind::kUnpricedModel;
        skip(model, "unpriced", budget_message_);
        next_candidate();
        continue;
      }
      BudgetGate::Hold hold = ctx_.budget->reserve(model, *worst);
      if (!hold.ok) {
        release_permits(CallOutcome::kNeutral, now);
        ++budget_refusals_;
        budget_message_ = hold.refusal;
        budget_error_ = hold.error_kind;
        if (hold.error_kind == ErrorKind::kBudgetExceeded) note_refused(model, *worst);
        skip(model, "budget", hold.refusal);
        if (hold.stop) {
          idx_ = req_.candidates.size();
          finish_exhausted(lock);
          return;
        }
        next_candidate();
        continue;
      }
      permits_.reserved = true;
      permits_.reservation = hold.id;
      permits_.amount = *worst;
    } else if (ctx_.prices && ctx_.prices->priced_only(model) &&
               !ctx_.prices->worst_case(model, prompt_tokens, req_.max_output_tokens)) {
      // No budget, but nothing would meter this call: refused the same way.
      release_permits(CallOutcome::kNeutral, now);
      ++budget_refusals_;
      budget_message_ = ctx_.prices->unpriced_reason(model);
      budget_error_ = ErrorKind::kUnpricedModel;
      skip(model, "unpriced", budget_message_);
      next_candidate();
      continue;
    }

    // Rate limits: the model's and the key's; wait up to a bound, else move on.
    // The model's scope alone is the breaker's key itself (no vector and no copy a call).
    std::vector<std::string> with_keys;
    std::span<const std::string> scopes(&keys->model, 1);
    if (!config_.key_scopes.empty()) {
      with_keys.reserve(1 + config_.key_scopes.size());
      with_keys.push_back(keys->model);
      with_keys.insert(with_keys.end(), config_.key_scopes.begin(), config_.key_scopes.end());
      scopes = with_keys;
    }
    const Admission admission = ctx_.state->try_admit(
        scopes, LimitUsage{1, prompt_tokens, req_.max_output_tokens}, now);
    if (!admission.admitted) {
      release_permits(CallOutcome::kNeutral, now);
      if (admission.never || admission_waited_ + admission.retry_in > config_.max_admission_wait) {
        skip(model, "rate_limited", admission.blocked_by);
        next_candidate();
        continue;
      }
      admission_waited_ += admission.retry_in;
      waited_ += admission.retry_in;
      lock.unlock();
      schedule_step(admission.retry_in);
      return;
    }
    permits_.ticket = admission.ticket;

    // Send.
    in_flight_ = true;
    const uint64_t generation = ++generation_;
    attempt_started_ = now;
    outcome_->model = model;
    lock.unlock();
    auto self = shared_from_this();
    std::function<void()> cancel_fn = sender_->send(
        model, static_cast<int>(generation),
        [self, generation](AttemptResult&& r) { self->on_attempt(std::move(r), generation); });
    lock.lock();
    if (in_flight_ && generation_ == generation) {
      if (cancelled_) {
        cancel_attempt_ = cancel_fn;
        lock.unlock();
        if (cancel_fn) cancel_fn();
      } else {
        cancel_attempt_ = std::move(cancel_fn);  // a copy was an allocation an attempt
      }
    }
    return;
  }
}

void Run::settle_abandoned(const std::string& model, const AttemptResult& r, ErrorClass cls,
                           Duration latency) {
  if (!permits_.reserved || !ctx_.budget) return;
  const Charge charge = ctx_.prices ? ctx_.prices->abandoned(model, r, permits_.amount)
                                    : PriceBook::reserved_charge(permits_.amount);
  AttemptResult booked = r;  // the counts charged are the counts recorded
  if (charge.counts) {
    booked.input_tokens = charge.counts->prompt_tokens;
    booked.output_tokens = charge.counts->completion_tokens;
  } else {  // booked at the reservation: record the prompt we sent and what arrived, if anything
    booked.input_tokens = ctx_.prices ? ctx_.prices->prompt_tokens(model, req_.prompt_tokens) : req_.prompt_tokens;
    booked.output_tokens = r.counted_output_tokens;
  }
  BudgetGate::CallInfo info{model, &booked, latency, static_cast<int>(outcome_->attempts.size()) + 1, &charge,
                            cls == ErrorClass::kCancelled ? "cancelled" : "error", to_string(cls)};
  ctx_.budget->settle(permits_.reservation, charge.cost, info);
  permits_.reserved = false;  // booked: release_permits must not give it back
  outcome_->abandoned_cost += charge.cost;
}

void Run::settle_failed(const std::string& model, const AttemptResult& r, ErrorClass cls,
                        Duration latency) {
  if (!permits_.reserved || !ctx_.budget) return;
  BudgetGate::CallInfo info{model, &r, latency, static_cast<int>(outcome_->attempts.size()) + 1, nullptr,
                            "error", to_string(cls), /*billed=*/false};
  ctx_.budget->settle(permits_.reservation, Money::zero(), info);
  permits_.reserved = false;  // written as its row: release_permits must not give it back
}

void Run::on_attempt(AttemptResult&& r, uint64_t generation) noexcept {
  try {
    on_attempt_locked(std::move(r), generation);
  } catch (const std::exception& e) {
    fail_internal(e.what());
  } catch (...) {
    fail_internal("unknown error");
  }
}

void Run::on_attempt_locked(AttemptResult&& r, uint64_t generation) {
  Lock lock(mu_);
  if (finished_ || generation != generation_ || !in_flight_) return;
  in_flight_ = false;
  cancel_attempt_ = nullptr;
  const Instant now = ctx_.clock->now();
  // The candidate list never changes during a run (next_candidate() only moves idx_).
  const std::string& model = req_.candidates[idx_];
  AttemptRecord rec;
  rec.model = model;
  rec.http_status = r.http_status;
  rec.latency = now - attempt_started_;
  rec.waited = waited_;
  waited_ = Duration(0);

  if (r.ok) {
    Charge charge;
    if (ctx_.prices) {
      charge = ctx_.prices->actual(model, r, permits_.amount);
    } else {
      charge.cost = r.reported_cost.value_or(Money::zero());
    }
    if (charge.cost.is_negative()) charge.cost = Money::zero();  // a refund is not ours to book
    if (charge.counts) {  // the checked counts replace what the upstream claimed, everywhere
      r.input_tokens = charge.counts->prompt_tokens;
      r.output_tokens = charge.counts->completion_tokens;
      r.cached_tokens = charge.counts->cached_tokens;
      r.cache_write_tokens = charge.counts->cache_write_tokens;
      r.audio_tokens = charge.counts->audio_tokens;
      r.reasoning_tokens = charge.counts->reasoning_tokens;
      r.audio_output_tokens = charge.counts->audio_output_tokens;
      r.image_output_tokens = charge.counts->image_output_tokens;
    }
    const Money cost = charge.cost;
    if (permits_.reserved && ctx_.budget) {
      BudgetGate::CallInfo info{model, &r, rec.latency,
                                static_cast<int>(outcome_->attempts.size()) + 1, &charge, "ok", ""};
      ctx_.budget->settle(permits_.reservation, cost, info);
    }
    permits_.reserved = false;
    if (permits_.ticket) {
      ctx_.state->settle_admission(permits_.ticket, LimitUsage{1, r.input_tokens, r.output_tokens});
    }
    settle_breakers(model, r, CallOutcome::kSuccess, now);
    release_permits(CallOutcome::kSuccess, now);
    ctx_.metrics->record_success(model, now, rec.latency, r.ttft, r.input_tokens, r.output_tokens,
                                 cost);
    ctx_.metrics->record_usage_check(model, !charge.problem.empty(), r.cut_at_reservation);
    rec.outcome = "ok";
    outcome_->attempts.push_back(std::move(rec));
    outcome_->ok = true;
    outcome_->model = model;
    outcome_->cost = cost;
    outcome_->charge = std::move(charge);
    outcome_->http_status = r.http_status;
    outcome_->result = std::move(r);
    finish(lock);
    return;
  }

  // Failure. The request reached the server (or tried to): it counts against the rate limits
  // with its input tokens. Its reservation is settled at 0 (failed calls are not billed; the row
  // records the failure), unless the upstream got the call and may bill it although it was cut:
  // then that is booked. A call we cancelled before it was sent is released.
  ErrorClass cls = r.cancelled ? ErrorClass::kCancelled
                               : classify(r.http_status, r.timed_out, r.error_message);
  const bool outage = counts_as_outage(cls);
  if (cls != ErrorClass::kCancelled && r.content_delivered) cls = ErrorClass::kStreamBroken;
  if (r.abandoned != Abandonment::kNone) {
    settle_abandoned(model, r, cls, rec.latency);
  } else if (cls != ErrorClass::kCancelled) {
    settle_failed(model, r, cls, rec.latency);
  }
  if (permits_.ticket) {
    const int64_t sent_tokens =
        ctx_.prices ? ctx_.prices->prompt_tokens(model, req_.prompt_tokens) : req_.prompt_tokens;
    ctx_.state->settle_admission(permits_.ticket, LimitUsage{1, sent_tokens, r.output_tokens});
  }
  settle_breakers(model, r, outage ? CallOutcome::kOutage : CallOutcome::kNeutral, now);
  release_permits(CallOutcome::kNeutral, now);
  if (cls != ErrorClass::kCancelled) ctx_.metrics->record_failure(model, now, cls, rec.latency);

  std::optional<Duration> server_wait;
  if (r.retry_after) server_wait = parse_retry_after(*r.retry_after, ctx_.clock->unix_millis());
  if (!server_wait && r.rate_limit_reset && cls == ErrorClass::kRateLimited) {
    server_wait = parse_rate_limit_reset(*r.rate_limit_reset, ctx_.clock->unix_millis());
  }
  if (cls == ErrorClass::kRateLimited && server_wait) {
    // for every run, not just this one
    ctx_.state->hold("model:" + model, now + rate_limit_hold(*server_wait));
  }

  rec.outcome = to_string(cls);
  rec.message = r.error_message;
  outcome_->attempts.push_back(std::move(rec));
  outcome_->error = cls;
  outcome_->http_status = r.http_status;
  outcome_->message = r.error_message;
  outcome_->model = model;
  outcome_->result = std::move(r);

  if (cancelled_ || cls == ErrorClass::kCancelled) {
    outcome_->error = ErrorClass::kCancelled;
    outcome_->message = "cancelled";
    finish(lock);
    return;
  }
  const RecoveryPolicy::Decision d =
      policy_.decide(cls, ++failures_on_model_, server_wait, uniform01());
  switch (d.action) {
    case Recovery::kRetrySame:
      ctx_.metrics->record_retry(model);
      waited_ = d.delay;
      lock.unlock();
      schedule_step(d.delay);
      return;
    case Recovery::kNextModel:
      ctx_.metrics->record_fallback(model);
      next_candidate();
      lock.unlock();
      schedule_step(Duration(0));
      return;
    case Recovery::kStop:
      finish(lock);
      return;
  }
}

void Run::finish_exhausted(Lock& lock) {
  outcome_->ok = false;
  const bool sent = std::any_of(outcome_->attempts.begin(), outcome_->attempts.end(),
                                [](const AttemptRecord& a) { return a.outcome.rfind("skipped:", 0) != 0; });
  if (!sent) {
    outcome_->nothing_sent = true;
    if (budget_refusals_ > 0) {
      outcome_->budget_refused = true;
      outcome_->message = budget_message_;
      outcome_->budget_error = budget_error_;
      const size_t n = req_.candidates.size();
      if (n > 1 && budget_refusals_ == static_cast<int>(n) && cheapest_refused_worst_ &&
          budget_error_ == ErrorKind::kBudgetExceeded) {
        outcome_->message = "the budget is too small for every candidate model (" +
                           std::to_string(n) + " tried): the cheapest, " +
                           cheapest_refused_model_ + ", may cost up to $" +
                           cheapest_refused_worst_->to_string() + " for this request; " +
                           budget_message_;
      }
    } else {
      std::string msg = "no candidate model could take the request:";
      for (const AttemptRecord& a : outcome_->attempts) {
        // Appended piece by piece: `" " + std::string&&` trips GCC 12's -Wrestrict at -O3
        // (a false positive, GCC bug 105329) in the release build.
        msg += ' ';
        msg += client_text(a.model);
        msg += " (";
        msg += std::string_view(a.outcome).substr(8);
        msg += ')';
      }
      outcome_->message = msg;
    }
  }
  finish(lock);
}

void Run::finish(Lock& lock) {
  finished_ = true;
  if (!outcome_->ok) {
    const Instant now = ctx_.clock->now();
    if (permits_.ticket) ctx_.state->forget_admission(permits_.ticket);
    release_permits(CallOutcome::kNeutral, now);
  }
  auto done = std::move(on_done_);
  lock.unlock();
  if (!done) return;
  try {
    // Handed over where it lies: once finished_ is set under the lock, nothing else in the run
    // reads or writes it.
    done(std::move(outcome_));
  } catch (...) {
    // The caller's callback failed; the run itself is over and holds nothing.
  }
}

void Run::cancel() {
  Lock lock(mu_);
  if (finished_ || cancelled_) return;
  cancelled_ = true;
  if (in_flight_) {
    auto fn = cancel_attempt_;  // empty while send() is still running: step() cancels after
    lock.unlock();
    if (fn) fn();
    return;
  }
  // Waiting (backoff or admission): nothing is held; finish now.
  outcome_->ok = false;
  outcome_->error = ErrorClass::kCancelled;
  outcome_->message = "cancelled";
  finish(lock);
}

}  // namespace

std::shared_ptr<RouteRun> start_route(LoopContext context, RouteRequest request,
                                      std::shared_ptr<AttemptSender> sender,
                                      RouteDone on_done) {
  if (request.candidates.empty()) throw InvalidArgument("route: no candidate models");
  if (!context.clock || !context.state || !context.metrics || !context.scheduler || !sender) {
    throw InvalidArgument("route: clock, state, metrics, scheduler and sender are required");
  }
  if (request.prompt_tokens < 0 || request.max_output_tokens < 0) {
    throw InvalidArgument("route: token counts must be >= 0");
  }
  auto run = std::make_shared<Run>(std::move(context), std::move(request), std::move(sender), std::move(on_done));
  run->step();
  return run;
}

}  // namespace orroute
