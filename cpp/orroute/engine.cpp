#include "orroute/engine.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <unordered_map>
#include <utility>

#include "orroute/cost/usage_audit.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/route/redis_router_state.h"
#endif
#include "orroute/net/sse_parser.h"
#include "orroute/select/expected_cost.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

const std::vector<std::string>& default_fallback_order() {
  // The guide's dated ids are gone from OpenRouter: claude-3-5-sonnet-20241022 -> its successor
  // claude-sonnet-4.5, claude-3-haiku-20240307 -> claude-3-haiku, llama-3-1-8b-instruct ->
  // llama-3.1-8b-instruct, gemini-pro-1.5 -> its successor gemini-2.5-pro.
  static const std::vector<std::string> order = {
      "openai/gpt-4o",           "openai/gpt-4o-mini",
      "anthropic/claude-sonnet-4.5", "anthropic/claude-3-haiku",
      "meta-llama/llama-3.1-8b-instruct", "google/gemini-2.5-pro"};
  return order;
}

namespace {

int64_t to_us(Duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

// Runs loop steps on the transport thread (backoff and admission waits need no thread of their own).
class TransportScheduler final : public Scheduler {
 public:
  explicit TransportScheduler(Transport& t) : transport_(t) {}
  void post(std::function<void()> fn, Duration delay) override {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(std::max(delay, Duration(0)));
    transport_.post(std::move(fn), ms);
  }

 private:
  Transport& transport_;
};

// Prices through the CallPricer (variants, routers, `models` lists, unknown ids); prompt tokens
// per model family, counted once per tokenizer; charges checked by audit_charge.
class CatalogPrices final : public PriceBook {
 public:
  CatalogPrices(const CallPricer& pricer, std::string messages_json, std::string tools_json,
                RequestShape shape, int64_t counted)
      : pricer_(pricer), catalog_(pricer.catalog()), messages_(std::move(messages_json)),
        tools_(std::move(tools_json)), shape_(std::move(shape)), counted_(counted) {}

  int64_t prompt_tokens(const std::string& model, int64_t counted) const override {
    const ModelTokenizer t = tokenizer_for_model(model);
    const std::string key = t.encoding + "/" + std::to_string(t.factor);
    std::lock_guard lock(mu_);
    auto it = counts_.find(key);
    if (it != counts_.end()) return it->second;
    int64_t n = counted;
    try {
      n = count_chat_tokens_json(model, messages_, tools_).tokens;
    } catch (const Error&) {
    }
    counts_.emplace(key, n);
    return n;
  }
  std::optional<Money> worst_case(const std::string& model, int64_t prompt_tokens,
                                  int64_t max_output_tokens) const override {
    return pricer_.worst_case(model, shape_, prompt_tokens, max_output_tokens, nullptr);
  }
  std::string unpriced_reason(const std::string& model) const override {
    std::string why;
    pricer_.worst_case(model, shape_, 0, 0, &why);
    return why.empty() ? PriceBook::unpriced_reason(model) : why;
  }
  Charge actual(const std::string& model, const AttemptResult& r, Money reserved) const override {
    Usage u;
    u.present = r.usage_present;
    u.prompt_tokens = r.input_tokens;
    u.completion_tokens = r.output_tokens;
    u.cached_tokens = r.cached_tokens;
    u.cache_write_tokens = r.cache_write_tokens;
    u.audio_tokens = r.audio_tokens;
    u.reasoning_tokens = r.reasoning_tokens;
    u.audio_output_tokens = r.audio_output_tokens;
    u.image_output_tokens = r.image_output_tokens;
    u.cost = r.reported_cost;
    u.cost_reported = r.cost_reported;
    u.cost_problem = r.cost_problem;
    u.token_problem = r.token_problem;
    ChargeInput in;
    in.requested = model;
    in.served = r.served_model;
    in.shape = shape_;
    in.usage = &u;
    try {
      in.counted_prompt_tokens = prompt_tokens(model, counted_);
    } catch (...) {
      in.counted_prompt_tokens = counted_;
    }
    in.counted_completion_tokens = r.counted_output_tokens;
    in.context_length = context_length(model);
    in.metered = r.cut_at_reservation;
    in.reserved = reserved;
    const AuditedCharge a = audit_charge(pricer_, in);
    Charge c;
    c.cost = a.cost;
    c.source = a.source;
    c.problem = a.problem;
    c.counts = a.counts;
    return c;
  }
  std::optional<int64_t> context_length(const std::string& model) const override {
    const ModelInfo* m = catalog_.find(model);
    if (!m || m->context_length <= 0) return std::nullopt;
    return m->context_length;
  }

 private:
  const CallPricer& pricer_;
  const ModelCatalog& catalog_;
  std::string messages_, tools_;
  RequestShape shape_;
  int64_t counted_ = 0;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, int64_t> counts_;
};

// Reservations through the BudgetGuard (cutoff, approval hook, atomic check-and-reserve).
class LedgerGate final : public BudgetGate {
 public:
  LedgerGate(BudgetGuard& guard, SpendScope scope, std::string task_id, std::string task_type,
             const ModelCatalog& catalog, const PriceBook& prices, int64_t prompt_tokens,
             int64_t max_tokens)
      : guard_(guard), scope_(std::move(scope)), task_id_(std::move(task_id)),
        task_type_(std::move(task_type)), catalog_(catalog), prices_(prices),
        prompt_tokens_(prompt_tokens), max_tokens_(max_tokens) {}

  Hold reserve(const std::string& model, Money worst_case) override {
    ReserveRequest req;
    req.scope = scope_;
    req.amount = worst_case;
    req.model = model;
    req.task_id = task_id_;
    Hold h;
    try {
      const ReserveOutcome o = guard_.reserve(req);
      switch (o.status) {
        case ReserveStatus::kReserved:
          h.id = static_cast<uint64_t>(o.reservation_id);
          // The row keeps the expected cost (not this worst case) for estimate-vs-actual reports.
          estimates_[h.id] =
              expected_cost(catalog_, model, task_type_,
                            prices_.prompt_tokens(model, prompt_tokens_), max_tokens_)
                  .value_or(worst_case);
          return h;
        case ReserveStatus::kExceeded:
          h.ok = false;
          h.error_kind = ErrorKind::kBudgetExceeded;
          h.refusal = "budget " + (o.blocking ? o.blocking->budget.name() : std::string("?")) +
                      ": worst case " + worst_case.to_string() + " USD on " + model +
                      " exceeds the " +
                      (o.remaining ? o.remaining->to_string() : std::string("?")) +
                      " USD remaining";
          return h;
        case ReserveStatus::kCutoff:
          h.ok = false;
          h.stop = true;
          h.error_kind = ErrorKind::kEmergencyCutoff;
          h.refusal = "emergency cutoff: " + o.cutoff_reason;
          return h;
      }
    } catch (const Error& e) {
      h.ok = false;
      h.stop = true;
      h.error_kind = e.kind();
      h.refusal = e.what();
    } catch (const std::exception& e) {  // an approval hook's own failure: refuse, never send
      h.ok = false;
      h.stop = true;
      h.error_kind = ErrorKind::kApprovalDenied;
      h.refusal = std::string("the approval hook failed: ") + e.what();
    }
    return h;
  }

  // The model's author as the catalog names it ("openai" for "openai/gpt-4o"); "" if none.
  std::string author_of(const std::string& model) const {
    if (const ModelInfo* m = catalog_.find(model)) return std::string(m->provider());
    const auto slash = model.find('/');
    return slash == std::string::npos ? std::string() : model.substr(0, slash);
  }

  void settle(uint64_t id, Money actual, const CallInfo& info) override {
    CallRecord rec;
    rec.scope = scope_;
    rec.task_id = task_id_;
    rec.task_type = task_type_;
    rec.model_requested = info.model;
    rec.model_used = info.result && !info.result->served_model.empty() ? info.result->served_model
                                                                      : info.model;
    rec.provider = author_of(info.model);  // the model's author, for reports by provider
    if (info.result) {
      rec.prompt_tokens = info.result->input_tokens;
      rec.completion_tokens = info.result->output_tokens;
      rec.cached_tokens = info.result->cached_tokens;
      rec.cache_write_tokens = info.result->cache_write_tokens;
      rec.reasoning_tokens = info.result->reasoning_tokens;
      if (info.result->ttft) rec.ttft_us = to_us(*info.result->ttft);
    }
    auto it = estimates_.find(id);
    if (it != estimates_.end()) rec.estimated_cost = it->second;
    rec.cost = actual;
    rec.latency_us = to_us(info.latency);
    rec.attempts = info.attempts;
    if (info.charge) {
      rec.cost_source = info.charge->problem.empty()
                            ? info.charge->source
                            : info.charge->source + ": " + info.charge->problem;
    }
    try {
      SettleOutcome out = guard_.ledger().settle(static_cast<int64_t>(id), std::move(rec));
      std::lock_guard lock(mu_);
      for (Alert& a : out.alerts) alerts_.push_back(std::move(a));
    } catch (const std::exception&) {
      // The call succeeded but its row could not be written (storage failure): give the
      // reservation back now rather than leave it held until it expires.
      release(id);
    }
  }

  void release(uint64_t id) override {
    try {
      guard_.ledger().release(static_cast<int64_t>(id));
    } catch (const std::exception&) {
      // Storage failure: the ledger reclaims the reservation by its TTL.
    }
  }

  // The alerts settled calls crossed, once each.
  std::vector<Alert> take_alerts() {
    std::lock_guard lock(mu_);
    return std::exchange(alerts_, {});
  }

 private:
  BudgetGuard& guard_;
  SpendScope scope_;
  std::string task_id_, task_type_;
  const ModelCatalog& catalog_;
  const PriceBook& prices_;
  int64_t prompt_tokens_, max_tokens_;
  std::unordered_map<uint64_t, Money> estimates_;  // touched by one run's steps, never concurrently
  std::mutex mu_;
  std::vector<Alert> alerts_;
};

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// Text of the last user message (string content or text parts).
std::string last_user_text(const rapidjson::Value& messages) {
  for (auto it = messages.End(); it != messages.Begin();) {
    --it;
    if (!it->IsObject() || !it->HasMember("role") || !(*it)["role"].IsString()) continue;
    if (std::string_view((*it)["role"].GetString()) != "user") continue;
    if (!it->HasMember("content")) return {};
    const auto& c = (*it)["content"];
    if (c.IsString()) return c.GetString();
    std::string out;
    if (c.IsArray()) {
      for (const auto& part : c.GetArray()) {
        if (part.IsObject() && part.HasMember("text") && part["text"].IsString()) {
          out += part["text"].GetString();
          out += '\n';
        }
      }
    }
    return out;
  }
  return {};
}

// Appends the generated text of a message or delta (content, reasoning, refusal, tool calls) to
// `out`: what the answer's tokens are counted from when the usage cannot be believed.
void append_generated_text(const rapidjson::Value& msg, std::string& out) {
  if (!msg.IsObject()) return;
  for (const char* f : {"content", "reasoning", "refusal"}) {
    auto it = msg.FindMember(f);
    if (it == msg.MemberEnd()) continue;
    if (it->value.IsString()) {
      out.append(it->value.GetString(), it->value.GetStringLength());
    } else if (it->value.IsArray()) {
      for (const auto& part : it->value.GetArray()) {
        if (!part.IsObject()) continue;
        auto t = part.FindMember("text");
        if (t != part.MemberEnd() && t->value.IsString()) out.append(t->value.GetString(), t->value.GetStringLength());
      }
    }
  }
  auto calls = msg.FindMember("tool_calls");
  if (calls == msg.MemberEnd() || !calls->value.IsArray()) return;
  for (const auto& c : calls->value.GetArray()) {
    if (!c.IsObject()) continue;
    auto fn = c.FindMember("function");
    if (fn == c.MemberEnd() || !fn->value.IsObject()) continue;
    for (const char* f : {"name", "arguments"}) {
      auto it = fn->value.FindMember(f);
      if (it != fn->value.MemberEnd() && it->value.IsString()) out.append(it->value.GetString(), it->value.GetStringLength());
    }
  }
}

// The generated text of every choice of a completion (`key` "message") or chunk ("delta").
std::string generated_text(const rapidjson::Value& doc, const char* key) {
  std::string out;
  if (!doc.IsObject()) return out;
  auto choices = doc.FindMember("choices");
  if (choices == doc.MemberEnd() || !choices->value.IsArray()) return out;
  for (const auto& c : choices->value.GetArray()) {
    if (!c.IsObject()) continue;
    auto m = c.FindMember(key);
    if (m != c.MemberEnd()) append_generated_text(m->value, out);
  }
  return out;
}

int64_t text_tokens(const std::string& model, const std::string& text) {
  if (text.empty()) return 0;
  try {
    return count_text_tokens(model, text).tokens;
  } catch (const std::exception&) {
    return static_cast<int64_t>(text.size());  // at most one token per byte
  }
}

// Sends chat attempts over the transport and reads the response (plain JSON or SSE).
class ChatSender final : public AttemptSender, public std::enable_shared_from_this<ChatSender> {
 public:
  // `meter_limit` > 0: the reservation's output tokens; answers are counted as they arrive and a
  // stream is cut once it passes them; it is also sent as max_tokens when the body has none.
  ChatSender(std::shared_ptr<ApiClient> client, const Clock* clock, std::string body_json,
             bool stream, std::vector<std::string> server_models, ChunkCallback on_chunk,
             int64_t meter_limit)
      : client_(std::move(client)), clock_(clock), body_json_(std::move(body_json)),
        stream_(stream), server_models_(std::move(server_models)), on_chunk_(std::move(on_chunk)),
        meter_limit_(meter_limit) {}
  int64_t meter_limit() const { return meter_limit_; }

  std::function<void()> send(const std::string& model, int,
                             std::function<void(AttemptResult)> done) override;

  std::optional<ApiError> last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  void set_error(std::optional<ApiError> e) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(e);
  }
  const Clock* clock() const { return clock_; }
  bool stream() const { return stream_; }
  // Hands a chunk to the consumer; a kPause holds the transfer (counted: see resume()).
  ChunkAction emit(const std::string& chunk) {
    if (!on_chunk_) return ChunkAction::kContinue;
    const ChunkAction a = on_chunk_(chunk);
    if (a == ChunkAction::kPause) holds_.fetch_add(1);
    return a;
  }
  // True while the consumer is behind (more kPause than resume()).
  bool held() const { return holds_.load() > 0; }
  // One resume per kPause, in either order with it; resumes the transfer when none is left.
  void resume() {
    if (holds_.fetch_sub(1) != 1) return;
    TransferId id = 0;
    {
      std::lock_guard lock(send_mu_);  // waits for send() to have stored the id
      id = transfer_;
    }
    if (id != 0) client_->transport().resume(id);
  }
  std::pair<std::string, int> progress() const {
    std::lock_guard lock(send_mu_);
    return {model_, sent_};
  }
  ApiClient& client() { return *client_; }

 private:
  std::shared_ptr<ApiClient> client_;
  const Clock* clock_;
  std::string body_json_;
  bool stream_;
  std::vector<std::string> server_models_;
  ChunkCallback on_chunk_;
  int64_t meter_limit_ = 0;
  mutable std::mutex mu_;
  std::optional<ApiError> last_error_;
  std::atomic<int> holds_{0};
  mutable std::mutex send_mu_;  // guards the fields below
  TransferId transfer_ = 0;     // the latest attempt's transfer
  std::string model_;
  int sent_ = 0;
};

class ChatSink final : public Sink {
 public:
  ChatSink(std::shared_ptr<ChatSender> sender, std::string model,
           std::function<void(AttemptResult)> done)
      : sender_(std::move(sender)), model_(std::move(model)), done_(std::move(done)),
        started_(sender_->clock()->now()) {}

  void on_head(int status, const Headers& headers) override {
    status_ = status;
    headers_ = headers;
  }

  // Every byte here is the upstream's: nothing it sends may throw out of the transport thread.
  DataAction on_data(std::string_view bytes) override {
    try {
      return read(bytes);
    } catch (const std::exception& e) {
      broken_ = std::string("the reply could not be read: ") + e.what();
      return DataAction::kAbort;
    }
  }

  DataAction read(std::string_view bytes) {
    // The consumer is behind: libcurl keeps these bytes and the transfer waits for resume().
    if (sender_->stream() && sender_->held()) return DataAction::kPause;
    if (!(sender_->stream() && status_ >= 200 && status_ < 300)) {
      if (body_.size() + bytes.size() > kMaxBody) {
        broken_ = "the reply is larger than " + std::to_string(kMaxBody) + " bytes";
        return DataAction::kAbort;
      }
      body_.append(bytes);
      return DataAction::kContinue;
    }
    bool keep = true;
    unfinished_ += bytes.size();
    parser_.feed(bytes, [&](SseEvent&& ev) {
      unfinished_ = 0;
      if (ev.data.empty() || is_done_marker(ev.data)) return true;
      rapidjson::Document chunk;
      const JsonParse st = parse_json_text(ev.data, chunk, kMaxBody);
      if (st == JsonParse::kTooDeep || st == JsonParse::kTooLarge) {  // hostile, not junk: stop here
        broken_ = std::string("a stream event is ") + json_parse_reason(st);
        return keep = false;
      }
      if (st != JsonParse::kOk || !chunk.IsObject()) return true;  // tolerate junk events
      const bool fine = acc_.add(chunk);
      if (!fine) return keep = false;
      if (!first_content_ && chunk.HasMember("choices") && chunk["choices"].IsArray() &&
          !chunk["choices"].Empty()) {
        first_content_ = sender_->clock()->now();
      }
      delivered_ = true;
      if (sender_->meter_limit() > 0) {
        // Counting each piece alone overcounts a little (a word split across chunks); past the
        // limit the whole answer so far is counted once more before deciding.
        const std::string piece = generated_text(chunk, "delta");
        generated_ += piece;
        metered_ += text_tokens(model_, piece);
        if (metered_ > sender_->meter_limit()) metered_ = text_tokens(model_, generated_);
      }
      if (sender_->emit(ev.data) == ChunkAction::kCancel) {
        user_stopped_ = true;
        return keep = false;
      }
      if (sender_->meter_limit() > 0 && metered_ > sender_->meter_limit()) {
        // The upstream ignores max_tokens: stop here (one chunk over at most), and tell the
        // consumer the answer ended by length.
        cut_ = true;
        acc_.cut("length");
        sender_->emit(cut_chunk());
        return keep = false;
      }
      return true;  // after a kPause the rest of this piece is still handed over (bounded)
    });
    if (keep && unfinished_ > kMaxBody) {  // one endless event: the parser would buffer it all
      broken_ = "a stream event is larger than " + std::to_string(kMaxBody) + " bytes";
      return DataAction::kAbort;
    }
    return keep ? DataAction::kContinue : DataAction::kAbort;
  }

  std::string cut_chunk() const {
    rapidjson::Document d(rapidjson::kObjectType);
    auto& a = d.GetAllocator();
    d.AddMember("id", rapidjson::Value(acc_.id().c_str(), a), a);
    d.AddMember("object", "chat.completion.chunk", a);
    d.AddMember("model", rapidjson::Value((acc_.model().empty() ? model_ : acc_.model()).c_str(), a), a);
    rapidjson::Value choice(rapidjson::kObjectType);
    choice.AddMember("index", 0, a);
    choice.AddMember("delta", rapidjson::Value(rapidjson::kObjectType), a);
    choice.AddMember("finish_reason", "length", a);
    rapidjson::Value choices(rapidjson::kArrayType);
    choices.PushBack(choice, a);
    d.AddMember("choices", choices, a);
    rapidjson::Value flag(rapidjson::kObjectType);
    flag.AddMember("cut_at_reservation", true, a);
    d.AddMember("orroute", flag, a);
    return json_text(d);
  }

  void on_done(const TransferResult& t) override {
    auto done = std::move(done_);
    AttemptResult r;
    try {
      r = result_of(t);
    } catch (const std::exception& e) {
      r = AttemptResult{};
      r.http_status = 502;
      r.error_message = std::string("the reply could not be read: ") + e.what();
      ApiError err;
      err.status = 502;
      err.message = r.error_message;
      sender_->set_error(std::move(err));
    }
    if (done) done(std::move(r));
  }

  AttemptResult result_of(const TransferResult& t) {
    AttemptResult r;
    r.content_delivered = delivered_;
    std::optional<ApiError> err;
    if (cut_) {
      r.ok = true;
      r.http_status = status_;
      r.cut_at_reservation = true;
      r.body = acc_.completion_json();
      r.served_model = acc_.model();
      r.provider = acc_.provider();
      r.counted_output_tokens = metered_;
      if (first_content_) r.ttft = *first_content_ - started_;
      return r;
    }
    if (!broken_.empty()) {
      r.http_status = 502;
      r.error_message = broken_;
      ApiError e;
      e.status = 502;
      e.message = broken_;
      sender_->set_error(std::move(e));
      return r;
    }
    if (user_stopped_ || (t.status == TransferStatus::kCancelled && !acc_.error())) {
      r.cancelled = true;
    } else if (t.status == TransferStatus::kConnectError || t.status == TransferStatus::kTimeout) {
      r.timed_out = t.status == TransferStatus::kTimeout;
      r.error_message = t.error;
      ApiError e;
      e.kind = r.timed_out ? ApiError::Kind::kTimeout : ApiError::Kind::kConnection;
      e.message = sender_->client().scrub(t.error);
      err = e;
    } else if (status_ < 200 || status_ >= 300) {
      ApiError e = error_from_response(status_, headers_, body_, sender_->clock()->unix_millis());
      r.http_status = status_;
      r.provider = e.provider;
      r.error_message = e.message;
      if (auto v = headers_.get("Retry-After")) r.retry_after = std::string(*v);
      if (auto v = headers_.get("X-RateLimit-Reset")) r.rate_limit_reset = std::string(*v);
      err = std::move(e);
    } else if (sender_->stream()) {
      if (acc_.error()) {
        ApiError e = *acc_.error();
        r.http_status = e.status >= 400 ? e.status : 502;  // a mid-stream error is an upstream failure
        r.error_message = e.message;
        r.provider = e.provider.empty() ? acc_.provider() : e.provider;
        err = std::move(e);
      } else {
        r.ok = true;
        r.http_status = status_;
        r.body = acc_.completion_json();
        r.served_model = acc_.model();
        r.provider = acc_.provider();
        r.counted_output_tokens = metered_;
        if (acc_.has_usage()) read_usage_json(acc_.usage_json(), r);
        if (first_content_) r.ttft = *first_content_ - started_;
      }
    } else {
      rapidjson::Document doc;
      if (const JsonParse st = parse_json_text(body_, doc, kMaxBody); st != JsonParse::kOk || !doc.IsObject()) {
        r.http_status = 502;
        r.error_message = st == JsonParse::kTooDeep ? "response JSON is nested too deeply" : "response is not JSON";
        ApiError e;
        e.status = 502;
        e.message = r.error_message;
        err = e;
      } else if (doc.HasMember("error") && doc["error"].IsObject()) {
        ApiError e = error_from_stream_event(doc);
        r.http_status = e.status >= 400 ? e.status : 502;
        r.error_message = e.message;
        r.provider = e.provider;
        err = std::move(e);
      } else {
        r.ok = true;
        r.http_status = status_;
        if (doc.HasMember("usage") && doc["usage"].IsObject()) fill_usage(parse_usage(doc["usage"]), r);
        if (doc.HasMember("model") && doc["model"].IsString()) r.served_model = doc["model"].GetString();
        if (doc.HasMember("provider") && doc["provider"].IsString()) r.provider = doc["provider"].GetString();
        if (sender_->meter_limit() > 0) {
          r.counted_output_tokens = text_tokens(model_, generated_text(doc, "message"));
        }
        r.body = std::move(body_);
      }
    }
    if (err) sender_->set_error(std::move(err));
    return r;
  }

 private:
  static void fill_usage(const Usage& u, AttemptResult& r) {
    r.input_tokens = u.prompt_tokens;
    r.output_tokens = u.completion_tokens;
    r.cached_tokens = u.cached_tokens;
    r.cache_write_tokens = u.cache_write_tokens;
    r.audio_tokens = u.audio_tokens;
    r.reasoning_tokens = u.reasoning_tokens;
    r.audio_output_tokens = u.audio_output_tokens;
    r.image_output_tokens = u.image_output_tokens;
    r.reported_cost = u.cost;
    r.usage_present = u.present;
    r.cost_reported = u.cost_reported;
    r.cost_problem = u.cost_problem;
    r.token_problem = u.token_problem;
  }
  void read_usage_json(const std::string& json, AttemptResult& r) {
    rapidjson::Document d;
    if (parse_json_text(json, d) == JsonParse::kOk && d.IsObject()) fill_usage(parse_usage(d), r);
  }

  // A non-streamed reply larger than this is refused (memory is bounded whatever the upstream).
  static constexpr size_t kMaxBody = 64u << 20;

  std::shared_ptr<ChatSender> sender_;
  std::string model_;
  std::function<void(AttemptResult)> done_;
  Instant started_;
  int status_ = 0;
  Headers headers_;
  std::string body_;
  SseParser parser_;
  StreamAccumulator acc_;
  std::optional<Instant> first_content_;
  bool delivered_ = false;
  bool user_stopped_ = false;
  bool cut_ = false;          // stopped at the reservation (see read())
  int64_t metered_ = 0;       // output tokens counted so far
  size_t unfinished_ = 0;     // bytes fed since the last complete event
  std::string generated_;     // the answer's text so far (metered streams; bounded by the cut)
  std::string broken_;        // why reading stopped ("" = it did not)
};

}  // namespace

std::string chat_attempt_body(std::string_view request_json, const std::string& model, bool stream,
                              const std::vector<std::string>& server_models,
                              std::optional<int64_t> reserved_max_tokens) {
  rapidjson::Document d;
  if (const JsonParse st = parse_json_text(request_json, d); st != JsonParse::kOk || !d.IsObject()) {
    throw InvalidArgument(std::string("chat request must be a JSON object") +
                          (st == JsonParse::kOk ? "" : std::string(" (") + json_parse_reason(st) + ")"));
  }
  auto& a = d.GetAllocator();
  // Replace in place: every other member keeps its value and its place.
  if (auto it = d.FindMember("model"); it != d.MemberEnd()) {
    it->value.SetString(model.c_str(), static_cast<rapidjson::SizeType>(model.size()), a);
  } else {
    d.AddMember("model", rapidjson::Value(model.c_str(), a), a);
  }
  if (auto it = d.FindMember("stream"); it != d.MemberEnd()) {
    it->value.SetBool(stream);
  } else {
    d.AddMember("stream", stream, a);
  }
  if (stream && !d.HasMember("stream_options")) {
    rapidjson::Value so(rapidjson::kObjectType);
    so.AddMember("include_usage", true, a);
    d.AddMember("stream_options", so, a);
  }
  if (!d.HasMember("usage")) {  // OpenRouter reports usage.cost when asked
    rapidjson::Value u(rapidjson::kObjectType);
    u.AddMember("include", true, a);
    d.AddMember("usage", u, a);
  }
  auto unset = [&](const char* f) {
    auto it = d.FindMember(f);
    return it == d.MemberEnd() || it->value.IsNull();
  };
  if (reserved_max_tokens && unset("max_tokens") && unset("max_completion_tokens")) {
    if (auto it = d.FindMember("max_tokens"); it != d.MemberEnd()) {
      it->value.SetInt64(*reserved_max_tokens);
    } else {
      d.AddMember("max_tokens", rapidjson::Value(*reserved_max_tokens), a);
    }
  }
  if (!server_models.empty() && !d.HasMember("models")) {
    rapidjson::Value ms(rapidjson::kArrayType);
    ms.PushBack(rapidjson::Value(model.c_str(), a), a);
    for (const auto& m : server_models) {
      if (m != model && ms.Size() < 3) ms.PushBack(rapidjson::Value(m.c_str(), a), a);
    }
    d.AddMember("models", ms, a);
  }
  return json_text(d);
}

namespace {

std::function<void()> ChatSender::send(const std::string& model, int,
                                       std::function<void(AttemptResult)> done) {
  HttpRequest req;
  req.method = "POST";
  req.url = client_->url_for("/chat/completions");
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Accept", stream_ ? "text/event-stream" : "application/json");
  if (auto key = client_->keys().next()) req.headers.add("Authorization", "Bearer " + *key);
  const ClientConfig& cfg = client_->config();
  if (!cfg.app_name.empty()) {
    req.headers.add("X-Title", cfg.app_name);
    req.headers.add("X-OpenRouter-Title", cfg.app_name);
  }
  if (!cfg.app_url.empty()) req.headers.add("HTTP-Referer", cfg.app_url);
  if (!cfg.user_agent.empty()) req.headers.add("User-Agent", cfg.user_agent);
  req.body = chat_attempt_body(body_json_, model, stream_, server_models_,
                               meter_limit_ > 0 ? std::optional<int64_t>(meter_limit_) : std::nullopt);
  req.timeouts = stream_ ? cfg.stream_timeouts : cfg.timeouts;
  auto sink = std::make_shared<ChatSink>(shared_from_this(), model, std::move(done));
  Transport& transport = client_->transport();
  TransferId id = 0;
  {
    // resume() reads the id under this lock, so it never misses a transfer that just started.
    std::lock_guard lock(send_mu_);
    id = transport.submit(std::move(req), std::move(sink));
    transfer_ = id;
    model_ = model;
    ++sent_;
  }
  auto client = client_;  // keeps the transport alive for the cancel function
  return [client, id] { client->transport().cancel(id); };
}

}  // namespace

class Engine::Impl {
 public:
  Impl(Engine& e, const Clock* clk)
      : engine(e), clock(clk), state_owner(make_state(e.config_, *clk)), state(*state_owner),
        metrics(e.config_.metrics), analyzer(e.config_.thresholds) {}

  static std::unique_ptr<RouterState> make_state(const EngineConfig& c, const Clock& clk) {
    if (c.router_state.empty()) return std::make_unique<InMemoryRouterState>(c.breaker);
#ifdef ORROUTE_HAVE_REDIS
    return std::make_unique<RedisRouterState>(c.router_state, clk, c.breaker);
#else
    (void)clk;
    throw InvalidArgument("this orroute was built without Redis (hiredis): router_state must be "
                          "empty");
#endif
  }

  Engine& engine;
  const Clock* clock;
  std::shared_ptr<ApiClient> client;
  std::unique_ptr<TransportScheduler> scheduler;
  std::unique_ptr<RouterState> state_owner;
  RouterState& state;
  Metrics metrics;
  ComplexityAnalyzer analyzer;
  std::unique_ptr<ModelSelector> selector;
  std::unique_ptr<CallPricer> pricer;  // over the catalog in use (built after any refresh)
  std::vector<std::string> key_scopes;
  ProviderMemory providers;  // which upstream last served each model (provider breakers)

  mutable std::mutex feedback_mu;
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> feedback;
  std::shared_ptr<FeedbackStore> feedback_store;  // where feedback is kept; may be null

  // The endpoint breaker's name: the base URL's host.
  std::string endpoint() const { return url_host(client->config().base_url); }

  std::unordered_map<std::string, double> predicted(const std::string& task_type) const {
    std::unordered_map<std::string, double> out;
    std::lock_guard lock(feedback_mu);
    for (const auto& [key, v] : feedback) {
      if (key.second == task_type && v.second > 0) out[key.first] = v.first / static_cast<double>(v.second);
    }
    return out;
  }

  // Feeds measured behaviour back to the selector (every strategy avoids failing models).
  void update_selector(const std::string& model) {
    if (!selector) return;
    const Instant now = clock->now();
    const ModelStats s = metrics.model(model, now);
    orroute::ModelMetrics mm;
    mm.success_rate = s.success_rate();
    if (s.latency.p50) mm.latency_ms = *s.latency.p50 * 1000.0;
    if (s.tokens_per_second.p50) mm.tokens_per_second = *s.tokens_per_second.p50;
    mm.available = state.breaker_snapshot("model:" + model, now).state != BreakerState::kOpen &&
                   state.held_for("model:" + model, now).count() == 0;
    try {
      selector->set_metrics(model, mm);
    } catch (const Error&) {
      // not a catalog model
    }
  }
};

Engine::Engine(EngineConfig config, std::shared_ptr<const ModelCatalog> catalog,
               std::shared_ptr<Ledger> ledger, QualityPriors priors, const Clock* clock)
    : config_(std::move(config)), catalog_(std::move(catalog)), ledger_(std::move(ledger)) {
  if (!catalog_) throw InvalidArgument("engine: a catalog is required");
  if (!clock) throw InvalidArgument("engine: a clock is required");
  if (config_.max_candidates < 1) throw InvalidArgument("engine: max_candidates must be >= 1");
  if (config_.server_side_fallbacks < 0 || config_.server_side_fallbacks > 3) {
    throw InvalidArgument("engine: server_side_fallbacks must be in [0, 3]");
  }
  RecoveryPolicy validate(config_.loop.retry);
  (void)validate;
  config_.client.retry.max_retries = 0;  // the attempt loop retries, with breakers and fallbacks
  if (ledger_) guard_ = std::make_unique<BudgetGuard>(*ledger_);
  impl_ = std::make_unique<Impl>(*this, clock);
  impl_->client = ApiClient::create(config_.client);
  impl_->scheduler = std::make_unique<TransportScheduler>(impl_->client->transport());
  if (config_.refresh_catalog) {
    CallSpec spec;
    spec.method = "GET";
    spec.path = "/models";
    spec.max_retries = 0;
    spec.timeouts = Timeouts{2'000, 5'000, 5'000, 5'000};
    try {
      auto call = impl_->client->start(spec);
      if (call->wait(6'000) && call->state() == Call::State::kDone) {
        auto fresh = std::make_shared<ModelCatalog>(ModelCatalog::from_json(call->response().body));
        if (fresh->size() > 0) catalog_ = std::move(fresh);
      } else {
        call->cancel();
      }
    } catch (const Error&) {
      // Offline or not a models endpoint: keep the given catalog.
    }
  }
  for (const auto& [scope, limit] : config_.limits) {
    impl_->state.set_limit(scope, limit);
    if (scope.rfind("model:", 0) != 0 && scope.rfind("provider:", 0) != 0) {
      impl_->key_scopes.push_back(scope);
    }
  }
  impl_->pricer = std::make_unique<CallPricer>(*catalog_, config_.pricing);
  try {
    impl_->selector = std::make_unique<ModelSelector>(catalog_, std::move(priors), config_.strategy);
  } catch (const Error&) {
    impl_->selector.reset();  // an empty or odd catalog: explicit fallbacks still work
  }
}

Engine::~Engine() {
  // Stop the transport (and every callback into this engine) before the members go away.
  if (impl_) {
    impl_->scheduler.reset();
    impl_->client.reset();
  }
}

void Engine::set_limit(const std::string& scope, const RateLimit& limit) {
  impl_->state.set_limit(scope, limit);
}

EnginePlan Engine::plan(const EngineTask& task) const {
  rapidjson::Document body;
  if (const JsonParse st = parse_json_text(task.request_json, body); st != JsonParse::kOk) {
    throw InvalidArgument(st == JsonParse::kInvalid ? std::string("task request is not valid JSON")
                                                    : std::string("task request JSON is ") + json_parse_reason(st));
  }
  if (!body.IsObject()) throw InvalidArgument("task request must be a JSON object");
  std::string preferred = config_.preferred_model;
  if (body.HasMember("model") && body["model"].IsString()) preferred = body["model"].GetString();
  const bool by_strategy = task.strategy && task.fallbacks.empty();
  if (!body.HasMember("model")) {  // the router picks the model; validate the rest
    body.AddMember("model", "router", body.GetAllocator());
  }
  validate_chat_request(body);
  EnginePlan plan;
  const auto& messages = body["messages"];
  const std::string messages_json = json_text(messages);
  const std::string tools_json = body.HasMember("tools") ? json_text(body["tools"]) : std::string();

  // validate_chat_request checked the range; with both set, reserve for the larger.
  for (const char* f : {"max_tokens", "max_completion_tokens"}) {
    if (body.HasMember(f) && body[f].IsInt64()) plan.max_tokens = std::max(plan.max_tokens, body[f].GetInt64());
  }
  if (plan.max_tokens == 0) plan.max_tokens = config_.default_max_tokens;

  const std::string reference =
      preferred.empty() || by_strategy ? std::string("openai/gpt-4o") : preferred;
  if (by_strategy) preferred.clear();  // e.g. "orroute/auto": not a model to call
  plan.prompt_tokens = count_chat_tokens_json(reference, messages_json, tools_json).tokens;

  const std::string prompt = last_user_text(messages);
  ComplexityInput in;
  in.prompt = prompt;
  in.prior_turns = static_cast<int32_t>(messages.Size()) - 1;
  in.prompt_tokens = plan.prompt_tokens;
  in.tools = body.HasMember("tools") && body["tools"].IsArray() ? static_cast<int32_t>(body["tools"].Size()) : 0;
  in.max_output_tokens = plan.max_tokens;
  in.declared_type = task.task_type;
  plan.complexity = impl_->analyzer.analyze(in);
  plan.task_type = plan.complexity.task_type;
  plan.reasons = plan.complexity.reasons;
  plan.reasons.push_back("complexity " + std::to_string(plan.complexity.score).substr(0, 4) + " -> " +
                         to_string(plan.complexity.tier));

  static const std::vector<std::string> kNone;
  const std::vector<std::string>& explicit_order =
      !task.fallbacks.empty() ? task.fallbacks : by_strategy ? kNone : config_.fallbacks;
  if (!explicit_order.empty()) {
    // A task's own model goes before the engine's chain (a task's own list is its exact order).
    if (task.fallbacks.empty() && !preferred.empty()) plan.candidates.push_back(preferred);
    for (const std::string& id : explicit_order) {
      if (std::find(plan.candidates.begin(), plan.candidates.end(), id) == plan.candidates.end()) {
        plan.candidates.push_back(id);
      }
    }
    plan.reasons.push_back("explicit fallback order");
  } else {
    if (!preferred.empty()) plan.candidates.push_back(preferred);
    std::vector<Candidate> ranked;
    if (impl_->selector) {
      SelectionRequest req;
      req.task_type = plan.task_type;
      req.input_tokens = plan.prompt_tokens;
      req.budget = task.max_cost;
      if (by_strategy) req.strategy = task.strategy;
      Constraints c = impl_->selector->default_constraints();
      c.required_capabilities |= task.required_capabilities;
      if (task.min_quality) c.min_quality = task.min_quality;
      c.expected_output_tokens = plan.max_tokens;
      req.constraints = c;
      req.predicted_quality = impl_->predicted(plan.task_type);  // feedback; wins over a predictor
      req.prompt = prompt;  // a learned quality predictor, when installed, reads it
      req.limit = static_cast<size_t>(config_.max_candidates);
      // The difficulty floor (docs/router.md): not when the caller names the model; that choice is
      // the caller's, and its fallbacks are ranked as the caller's strategy alone says.
      if (preferred.empty() && plan.complexity.tier != ComplexityTier::kEconomy) {
        req.quality_floor = quality_floor(plan.complexity.tier);
        req.quality_floor_why = "complexity " + std::to_string(plan.complexity.score).substr(0, 4) +
                                " -> " + to_string(plan.complexity.tier);
      } else if (!preferred.empty() && plan.complexity.tier != ComplexityTier::kEconomy) {
        plan.reasons.push_back("no complexity floor: the caller named the model");
      }
      for (int pass = 0; pass < 2 && ranked.empty(); ++pass) {
        try {
          ranked = impl_->selector->rank(req);
        } catch (const InvalidArgument&) {
          if (req.task_type == "general") break;
          req.task_type = "general";  // a guessed type the selector does not know
        } catch (const NoModelAvailable& e) {
          plan.reasons.push_back(std::string("selector: ") + e.what());
          break;
        }
      }
    }
    for (const Candidate& c : ranked) {
      if (static_cast<int>(plan.candidates.size()) >= config_.max_candidates) break;
      if (std::find(plan.candidates.begin(), plan.candidates.end(), c.model->id) == plan.candidates.end()) {
        plan.candidates.push_back(c.model->id);
      }
    }
    if (!ranked.empty()) {
      plan.reasons.insert(plan.reasons.end(), ranked.front().reasons.begin(), ranked.front().reasons.end());
    }
    if (plan.candidates.empty()) {
      for (const std::string& id : default_fallback_order()) {
        if (catalog_->find(id)) plan.candidates.push_back(id);
      }
      if (plan.candidates.empty()) throw NoModelAvailable("no candidate model for this task");
      plan.reasons.push_back("integration guide default order");
    }
  }
  // The estimate is exactly what the attempt loop reserves for the first candidate: the same
  // pricer, the same request shape (plus the server-side fallbacks it would send), and the prompt
  // counted with that model's own tokenizer.
  RequestShape shape = request_shape(task.request_json);
  if (shape.models.empty()) {
    for (size_t i = 1; i < plan.candidates.size() &&
                       static_cast<int>(shape.models.size()) < config_.server_side_fallbacks; ++i) {
      shape.models.push_back(plan.candidates[i]);
    }
  }
  int64_t first_prompt = plan.prompt_tokens;
  try {
    first_prompt = count_chat_tokens_json(plan.candidates.front(), messages_json, tools_json).tokens;
  } catch (const Error&) {
  }
  plan.estimate = impl_->pricer->worst_case(plan.candidates.front(), shape, first_prompt,
                                            plan.max_tokens, nullptr);
  return plan;
}

std::shared_ptr<ApiClient> Engine::client() const { return impl_->client; }

std::shared_ptr<EngineRun> Engine::submit(const EngineTask& task, EnginePlan plan,
                                          ChunkCallback on_chunk, DoneCallback on_done) {
  rapidjson::Document body;
  if (parse_json_text(task.request_json, body) != JsonParse::kOk || !body.IsObject() || !body.HasMember("messages")) {
    throw InvalidArgument("task request must be a JSON object with messages (plan() it first)");
  }
  const std::string messages_json = json_text(body["messages"]);
  const std::string tools_json = body.HasMember("tools") ? json_text(body["tools"]) : std::string();

  std::vector<std::string> server_models;
  if (config_.server_side_fallbacks > 0) {
    for (size_t i = 1; i < plan.candidates.size() &&
                       static_cast<int>(server_models.size()) < config_.server_side_fallbacks; ++i) {
      server_models.push_back(plan.candidates[i]);
    }
  }
  // Under a ledger the request carries the max_tokens that was reserved, and answers are metered.
  const int64_t meter_limit = guard_ ? plan.max_tokens : 0;
  RequestShape shape = request_shape(task.request_json);
  if (shape.models.empty()) shape.models = server_models;  // they may answer too: reserve for them
  auto sender = std::make_shared<ChatSender>(impl_->client, impl_->clock, task.request_json,
                                             task.stream, std::move(server_models),
                                             std::move(on_chunk), meter_limit);
  // Per-run pieces: prices (per-family prompt counts) and the budget gate (scope, task id).
  auto prices = std::make_shared<CatalogPrices>(*impl_->pricer, messages_json, tools_json,
                                                std::move(shape), plan.prompt_tokens);
  std::shared_ptr<LedgerGate> gate;
  if (guard_) {
    gate = std::make_shared<LedgerGate>(*guard_, task.scope, task.task_id, plan.task_type,
                                        *catalog_, *prices, plan.prompt_tokens, plan.max_tokens);
  }

  LoopContext ctx;
  ctx.clock = impl_->clock;
  ctx.state = &impl_->state;
  ctx.metrics = &impl_->metrics;
  ctx.scheduler = impl_->scheduler.get();
  ctx.budget = gate.get();
  ctx.prices = prices.get();
  ctx.config = config_.loop;
  ctx.config.key_scopes = impl_->key_scopes;
  ctx.config.endpoint = impl_->endpoint();
  ctx.providers = &impl_->providers;

  RouteRequest req;
  req.candidates = plan.candidates;
  req.prompt_tokens = plan.prompt_tokens;
  req.max_output_tokens = plan.max_tokens;
  req.max_cost = task.max_cost;

  Impl* impl = impl_.get();
  auto finish = [impl, sender, prices, gate, plan = std::move(plan),
                 on_done = std::move(on_done)](RouteOutcome out) mutable {
    EngineResult res;
    res.api_error = sender->last_error();
    if (out.ok) res.api_error.reset();
    res.budget_error = out.budget_error;
    res.completion_json = out.result.body;
    res.prompt_tokens = out.result.input_tokens;
    res.completion_tokens = out.result.output_tokens;
    res.cut_at_reservation = out.ok && out.result.cut_at_reservation;
    if (gate) res.alerts = gate->take_alerts();
    if (!out.model.empty()) impl->update_selector(out.model);
    res.route = std::move(out);
    res.plan = std::move(plan);
    if (on_done) on_done(std::move(res));
  };
  auto run = start_route(ctx, std::move(req), sender, std::move(finish));
  return std::make_shared<EngineRun>(std::move(run), [sender] { sender->resume(); },
                                     [sender] { return sender->progress(); });
}

EngineResult Engine::run(const EngineTask& task) {
  EnginePlan p = plan(task);
  auto promise = std::make_shared<std::promise<EngineResult>>();
  auto future = promise->get_future();
  submit(task, std::move(p), nullptr, [promise](EngineResult r) { promise->set_value(std::move(r)); });
  return future.get();
}

std::shared_ptr<StreamedRun> StreamedRun::start(Engine& engine, EngineTask task, EnginePlan plan,
                                                size_t capacity) {
  auto self = std::make_shared<StreamedRun>(capacity);
  task.stream = true;
  std::weak_ptr<StreamedRun> weak = self;
  // The callbacks hold the run weakly: a consumer that drops it cancels nothing by accident but
  // frees the queue; the engine's own handle keeps the request alive until it ends.
  auto run = engine.submit(
      task, std::move(plan),
      [weak](const std::string& chunk) {
        auto s = weak.lock();
        return s ? s->queue_.push(chunk) : ChunkAction::kCancel;
      },
      [weak](EngineResult r) {
        if (auto s = weak.lock()) {
          {
            std::lock_guard lock(s->mu_);
            s->result_ = std::move(r);
          }
          s->queue_.finish();  // after the result: finished() implies result() is set
        }
      });
  {
    std::lock_guard lock(self->mu_);
    self->run_ = run;
  }
  self->queue_.set_resume([weak_run = std::weak_ptr<EngineRun>(run)] {
    if (auto r = weak_run.lock()) r->resume();
  });
  return self;
}

std::optional<EngineResult> StreamedRun::result() const {
  std::lock_guard lock(mu_);
  return result_;
}

void StreamedRun::cancel() {
  queue_.close();
  std::shared_ptr<EngineRun> run;
  {
    std::lock_guard lock(mu_);
    run = run_;
  }
  if (run) run->cancel();
}

std::pair<std::string, int> StreamedRun::progress() const {
  std::shared_ptr<EngineRun> run;
  {
    std::lock_guard lock(mu_);
    run = run_;
  }
  return run ? run->progress() : std::pair<std::string, int>{"", 0};
}

HealthReport Engine::health() const {
  const Instant now = impl_->clock->now();
  std::vector<std::string> models;
  for (const ModelStats& s : impl_->metrics.all(now)) models.push_back(s.model);
  for (const auto& list : {config_.fallbacks, std::vector<std::string>{config_.preferred_model}}) {
    for (const std::string& m : list) {
      if (!m.empty() && std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
    }
  }
  std::vector<std::string> keys;
  if (config_.loop.provider_breakers) {
    if (const std::string host = impl_->endpoint(); !host.empty()) keys.push_back(endpoint_breaker_key(host));
    for (const std::string& p : impl_->providers.providers()) keys.push_back(provider_breaker_key(p));
  }
  return assess_health(models, impl_->state, impl_->metrics, now, {}, keys);
}

std::vector<ModelStats> Engine::metrics() const { return impl_->metrics.all(impl_->clock->now()); }

void Engine::record_feedback(const std::string& model, const std::string& task_type, double score,
                             const std::string& source, const std::string& result_id) {
  if (!(score >= 0.0 && score <= 1.0)) throw InvalidArgument("feedback score must be in [0, 1]");
  std::shared_ptr<FeedbackStore> store;
  {
    std::lock_guard lock(impl_->feedback_mu);
    store = impl_->feedback_store;
  }
  // Durable first (a failed write changes nothing), and not under the lock plan() takes.
  if (store) {
    FeedbackEntry e;
    e.model = model;
    e.task_type = task_type;
    e.score = score;
    e.source = source;
    e.result_id = result_id;
    store->add(e);
  }
  std::lock_guard lock(impl_->feedback_mu);
  auto& v = impl_->feedback[{model, task_type}];
  v.first += score;
  v.second += 1;
}

void Engine::set_feedback_store(std::shared_ptr<FeedbackStore> store) {
  const std::vector<FeedbackSummary> kept =
      store ? store->summary() : std::vector<FeedbackSummary>{};
  std::lock_guard lock(impl_->feedback_mu);
  impl_->feedback_store = std::move(store);
  for (const FeedbackSummary& s : kept) {
    auto& v = impl_->feedback[{s.model, s.task_type}];
    v.first += s.sum;
    v.second += s.count;
  }
}

}  // namespace orroute
