#include "orroute/engine/chat_sink.h"

#include <rapidjson/document.h>

#include <exception>
#include <string_view>
#include <utility>

#include "orroute/engine/chat_text.h"
#include "orroute/engine/plain_reply.h"
#include "orroute/json.h"
#include "orroute/net/protocol.h"
#include "orroute/no_destructor.h"
#include "orroute/utf8.h"

namespace orroute {

namespace {

// Calls `f` with every string member named `name` of `obj` (an object).
template <typename F>
void each_string(rapidjson::Value& obj, std::string_view name, F&& f) {
  for (auto& m : obj.GetObject()) {
    if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name && m.value.IsString()) f(m.value);
  }
}

// `body` (a chat completion) with each message's text parts whose text, joined as a consumer
// (and reply_summary) joins it, holds a key: that text masked in the first part's text, the
// others' emptied (the parts stay, and their join reads as the summary's masked content). A key
// split over the parts is whole in no string of the body (the scrub's whole-key and half-key
// searches pass it). Rare (a key found in a join): a document.
std::string mask_split_parts(std::string body, const ApiClient& keys) {
  rapidjson::Document doc;
  if (parse_json_text(body, doc) != JsonParse::kOk || !doc.IsObject()) return body;
  bool changed = false;
  const auto each = [](rapidjson::Value& obj, std::string_view name, auto&& f) {
    for (auto& m : obj.GetObject()) {
      if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name) f(m.value);
    }
  };
  each(doc, "choices", [&](rapidjson::Value& choices) {
    if (!choices.IsArray()) return;
    for (auto& choice : choices.GetArray()) {
      if (!choice.IsObject()) continue;
      each(choice, "message", [&](rapidjson::Value& message) {
        if (!message.IsObject()) return;
        each(message, "content", [&](rapidjson::Value& content) {
          if (!content.IsArray()) return;
          std::string joined;
          for (auto& part : content.GetArray()) {
            if (!part.IsObject()) continue;
            const rapidjson::Value* last = nullptr;
            each_string(part, "text", [&](rapidjson::Value& t) { last = &t; });
            if (last) joined.append(last->GetString(), last->GetStringLength());
          }
          if (!keys.mentions_key(joined)) return;
          const std::string masked = keys.scrub(joined);
          bool first = true;
          for (auto& part : content.GetArray()) {
            if (!part.IsObject()) continue;
            bool had = false;
            each_string(part, "text", [&](rapidjson::Value& t) {
              const std::string_view v = first ? std::string_view(masked) : std::string_view();
              t.SetString(v.data(), static_cast<rapidjson::SizeType>(v.size()), doc.GetAllocator());
              had = true;
            });
            if (had) first = false;
          }
          changed = true;
        });
      });
    }
  });
  return changed ? to_json(doc) : body;
}

}  // namespace

DataAction ChatSink::on_data(std::string_view bytes) {
  try {
    return read(bytes);
  } catch (const std::exception& e) {
    broken_ = std::string("the reply could not be read: ") + e.what();
    return DataAction::kAbort;
  }
}

DataAction ChatSink::read(std::string_view bytes) {
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
  // Only a piece of the answer restarts the idle timeout: comments, pings and valid events that
  // carry nothing (`data: {}` forever) keep it running, so they cannot hold the call and its
  // reservation.
  const uint64_t progress = acc_->progress();
  unfinished_ += bytes.size();
  parser_.feed(bytes, [&](SseEvent&& ev) {
    unfinished_ = 0;
    if (!end_marker_.admits(ev.data)) return keep = !end_marker_.closed();  // [DONE] ends the answer
    if (ev.data.empty()) return true;
    StreamTranslator* const translator = this->translator();
    if (!translator) return keep = take_chunk(ev.data);
    std::vector<std::string> chunks;
    const bool more = translator->translate(ev.data, chunks);
    for (const std::string& c : chunks) {
      if (!take_chunk(c)) return keep = false;
    }
    if (!more) {
      if (!acc().error()) wire_->error = translator->error();
      return keep = false;
    }
    if (translator->ended()) end_marker_.end();  // its end event: later ones are ignored
    return true;
  });
  if (keep && unfinished_ > kMaxBody) {  // one endless event: the parser would buffer it all
    broken_ = "a stream event is larger than " + std::to_string(kMaxBody) + " bytes";
    return DataAction::kAbort;
  }
  if (!keep) return DataAction::kAbort;
  return acc_->progress() != progress ? DataAction::kContinue : DataAction::kKeepAlive;
}

bool ChatSink::take_chunk(const std::string& event) {
  // An event echoing the attempt's key is scrubbed before anything reads or relays it.
  const ApiClient& keys = keys_client();
  const std::string scrubbed = keys.mentions_key(event) ? keys.scrub(event) : std::string();
  const std::string& data = scrubbed.empty() ? event : scrubbed;
  LocalJson<> chunk_json;  // one per stream event: no heap for a usual one
  rapidjson::Document& chunk = chunk_json.doc();
  const JsonParse st = parse_json_text(data, chunk, kMaxBody);
  if (st == JsonParse::kTooDeep || st == JsonParse::kTooLarge) {  // hostile, not junk: stop here
    broken_ = std::string("a stream event is ") + json_parse_reason(st);
    return false;
  }
  if (st != JsonParse::kOk || !chunk.IsObject()) {  // the client's rule (net/chat_stream.cpp)
    broken_ = "the server sent a stream event that is not a JSON object";
    return false;
  }
  // a tool call without an index is relayed with the one the answer files it under
  const bool numbered = acc_->number_tool_calls(chunk);
  const bool rewritten = scrubber_.scrub(chunk, keys) || numbered;
  if (!acc_->add(chunk)) return false;
  // The last usage is the stream's, its cost read from the event's digits (the chunk holds a
  // double, which a 17-digit decimal does not always survive). One event a stream has one.
  if (const auto usage = chunk.FindMember("usage"); usage != chunk.MemberEnd() && usage->value.IsObject()) {
    stream_usage_ = text_usage(data, kMaxBody);
  }
  if (!first_content_ && chunk.HasMember("choices") && chunk["choices"].IsArray() && !chunk["choices"].Empty()) {
    first_content_ = sender_->clock()->now();
  }
  delivered_ = true;
  const int64_t limit = sender_->meter_limit() > 0 ? sender_->output_limit() : 0;
  if (limit > 0) {
    // Counting each piece alone overcounts a little (a word split across chunks); past the
    // limit the whole answer so far is counted once more before deciding.
    const std::string piece = generated_text(chunk, "delta");
    generated_ += piece;
    metered_ += text_tokens(model_, piece);
    if (metered_ > limit) metered_ = text_tokens(model_, generated_);
  }
  if (sender_->emit(rewritten ? json_text(chunk) : data) == ChunkAction::kCancel) {
    user_stopped_ = true;
    return false;
  }
  if (limit > 0 && metered_ > limit) {
    // The upstream ignores max_tokens: stop here (one chunk over at most), and tell the
    // consumer the answer ended by length.
    cut_ = true;
    release_held();
    acc_->cut("length");
    sender_->emit(cut_chunk());
    return false;
  }
  return true;  // after a kPause the rest of this piece is still handed over (bounded)
}

void ChatSink::settle_held(const TransferResult& t) {
  // Only a stream that ended as it should: a failed one's error may carry the rest of the key.
  const bool clean_end = sender_->stream() && !user_stopped_ && !cut_ && t.status == TransferStatus::kOk &&
                         status_ >= 200 && status_ < 300 && broken_.empty() && !acc().error() && !wire_failed() &&
                         (!translator() || translator()->complete());
  if (!clean_end) {
    scrubber_.discard();
    return;
  }
  release_held();
}

void ChatSink::release_held() {
  LocalJson<> chunk_json;
  rapidjson::Document& chunk = chunk_json.doc();
  if (!scrubber_.flush(chunk, *acc_)) return;
  acc_->add(chunk);
  sender_->emit(json_text(chunk));
}

std::string ChatSink::cut_chunk() const {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("id", rapidjson::Value(acc().id().c_str(), a), a);
  d.AddMember("object", "chat.completion.chunk", a);
  d.AddMember("model", rapidjson::Value((acc().model().empty() ? model_ : acc().model()).c_str(), a), a);
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

bool ChatSink::rotated_key(const TransferResult& t, AttemptDone& done) {
  if ((status_ != 401 && status_ != 402) || key_.empty() || user_stopped_ || delivered_ ||
      t.status != TransferStatus::kOk || !done) {
    return false;
  }
  if (keys_client().keys().set_aside(key_, status_) == 0) return false;  // whose key it was
  try {
    sender_->start(wire_ ? wire_->candidate : model_, done);
  } catch (const std::exception&) {
    return false;  // not restarted: this attempt fails as it is
  }
  done = nullptr;
  return true;
}

void ChatSink::on_done(const TransferResult& transfer) {
  const TransferResult t = end_marker_.counted(transfer, parser_);
  auto done = std::move(done_);
  if (rotated_key(t, done)) return;
  AttemptResult r = finished_result(t);
  if (done) done(std::move(r));
}

AttemptResult ChatSink::finished_result(const TransferResult& t) {
  // Each result made where it is returned: assigned to a default one declared before the try, it
  // was a move-assignment of all of an AttemptResult's members and a destruction a call.
  try {
    settle_held(t);
    AttemptResult r = result_of(t);
    note_abandonment(t, r);
    // names a reply gives go to the ledger and key breakers: bounded, whatever the upstream sends
    if (r.provider.size() > kMaxName) r.provider = utf8_prefix(r.provider, kMaxName);
    if (r.served_model.size() > kMaxName) r.served_model = utf8_prefix(r.served_model, kMaxName);
    return r;
  } catch (const std::exception& e) {
    return unreadable_result(e.what());
  }
}

AttemptResult ChatSink::unreadable_result(const char* why) {
  AttemptResult r;
  r.http_status = 502;
  r.error_message = std::string("the reply could not be read: ") + why;
  ApiError err;
  err.status = 502;
  err.message = r.error_message;
  sender_->set_error(std::move(err));
  return r;
}

AttemptResult ChatSink::result_of(const TransferResult& t) {
  // A body (a plain reply or an error) is text from here on: bytes that are not UTF-8 become
  // U+FFFD once, so the caller, the ledger, the cache and the gateway's clients all get text.
  // (Stream events are made valid by the SSE parser.) An echoed key never passes either.
  repair_utf8(body_);
  repair_json_surrogates(body_);  // and no escape of a lone surrogate (utf8.h)
  body_ = keys_client().scrub(std::move(body_));
  if (!wire_) return result_for(t);
  Wire& wire = *wire_;
  const int64_t now_ms = sender_->clock()->unix_millis();
  if (status_ >= 200 && status_ < 300 && sender_->stream() && broken_.empty() && !cut_ && !wire.error &&
      !user_stopped_ && t.status == TransferStatus::kOk && !acc().error() && !wire.translator->complete()) {
    wire.error = wire.translator->error();  // ended before message_stop: a truncated reply
    if (!wire.error) {
      ApiError e;
      e.kind = ApiError::Kind::kStream;
      e.status = 502;
      e.message = wire.provider + " ended the stream before it was complete";
      wire.error = e;
    }
  }
  if (status_ >= 200 && status_ < 300 && !sender_->stream() && t.status == TransferStatus::kOk) {
    WireReply reply = wire.adapter->reply(body_, now_ms / 1000);
    if (reply.error) {
      unreadable_ = true;
      wire.error = std::move(reply.error);
    } else {
      // read below as any chat completion; scrubbed again: it joins the reply's text blocks, where
      // a key the upstream split over them (and the scrub of its body passed) is whole
      body_ = wire.client->scrub(std::move(reply.completion_json));
    }
  }
  AttemptResult r = wire.error ? wire_failure() : result_for(t);  // made in place, not assigned
  if (status_ != 0) r.provider = wire.provider;  // a reply came: this provider's breaker takes it
  return r;
}

AttemptResult ChatSink::wire_failure() {
  AttemptResult r;
  ApiError e = scrubbed(*wire_->error);
  r.http_status = e.status >= 400 ? e.status : 502;
  r.error_message = e.message;
  r.content_delivered = delivered_;
  sender_->set_error(std::move(e));
  return r;
}

void ChatSink::note_abandonment(const TransferResult& t, AttemptResult& r) const {
  if (r.ok) return;
  // (a transfer we stopped for an upstream error event is the upstream's failure, not ours)
  // (a 2xx body we could not read is an answer we refused, as a refused stream event is)
  const bool we_hung_up =
      r.cancelled || t.status == TransferStatus::kTimeout || !broken_.empty() || unreadable_;
  r.abandoned = abandonment_of(t.request_sent, status_, we_hung_up, delivered_);
  if (r.abandoned == Abandonment::kNone) return;
  r.streamed = sender_->stream();
  if (r.streamed) r.counted_output_tokens = metered_;
  if (r.provider.empty()) r.provider = !acc().provider().empty() ? acc().provider() : wire_ ? wire_->provider : std::string();
}

AttemptResult ChatSink::result_for(const TransferResult& t) {
  AttemptResult r;
  r.content_delivered = delivered_;
  std::optional<ApiError> err;
  if (cut_) {
    r.ok = true;
    r.http_status = status_;
    r.cut_at_reservation = true;
    r.body = acc().completion_json();
    r.served_model = acc().model();
    r.provider = acc().provider();
    r.counted_output_tokens = metered_;
    if (first_content_) r.ttft = *first_content_ - started_;
    return r;
  }
  if (broken_.empty() && sender_->stream() && !translator() && !delivered_ && t.status == TransferStatus::kOk &&
      status_ >= 200 && status_ < 300) {  // not an empty answer: no answer (a page, a plain reply)
    broken_ = "the server answered the stream with no event";
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
  if (user_stopped_ || (t.status == TransferStatus::kCancelled && !acc().error())) {
    r.cancelled = true;
  } else if (t.status == TransferStatus::kConnectError || t.status == TransferStatus::kTimeout) {
    r.timed_out = t.status == TransferStatus::kTimeout;
    r.error_message = t.error;
    ApiError e;
    e.kind = r.timed_out ? ApiError::Kind::kTimeout : ApiError::Kind::kConnection;
    e.message = sender_->client().scrub(t.error);
    err = e;
  } else if (status_ < 200 || status_ >= 300) {
    ApiError e = wire_ ? wire_->adapter->error(status_, headers_, body_, sender_->clock()->unix_millis())
                          : error_from_response(status_, headers_, body_, sender_->clock()->unix_millis());
    e = scrubbed(std::move(e));
    r.http_status = status_;
    r.provider = e.provider;
    r.error_message = e.message;
    if (auto v = headers_.get("Retry-After")) r.retry_after = std::string(*v);
    if (auto v = headers_.get("X-RateLimit-Reset")) r.rate_limit_reset = std::string(*v);
    err = std::move(e);
  } else if (sender_->stream()) {
    if (acc().error()) {
      ApiError e = scrubbed(*acc().error());
      r.http_status = e.status >= 400 ? e.status : 502;  // a mid-stream error is an upstream failure
      r.error_message = e.message;
      r.provider = e.provider.empty() ? acc().provider() : e.provider;
      err = std::move(e);
    } else {
      r.ok = true;
      r.http_status = status_;
      r.body = acc().completion_json();
      r.served_model = acc().model();
      r.provider = acc().provider();
      r.counted_output_tokens = metered_;
      if (stream_usage_) fill_usage(*stream_usage_, r);
      if (first_content_) r.ttft = *first_content_ - started_;
    }
  } else {
    // The body goes on to the caller as it came; its copy is read in place (strings decoded where
    // they lie, not copied), in one pass for what the engine takes from it, and a reply metered
    // by its text (a budget's) for its generated text too. An error reply and one that is not JSON
    // are read as a document.
    LocalText<> reading(body_);
    const bool metered = sender_->meter_limit() > 0;
    std::string generated;
    // Made where it lies (assigned to an empty one, it was a move and a destruction a call).
    std::optional<PlainReply> plain =
        metered ? read_plain_reply(reading.data(), reading.size(), kMaxBody, generated)
                : read_plain_reply(reading.data(), reading.size(), kMaxBody);
    if (plain) {
      take_reply(std::move(*plain), r);
      if (metered) r.counted_output_tokens = text_tokens(model_, generated);
    } else {
      reading.assign(body_);  // read in place: a fresh copy for the document
      err = read_document(reading, r);
    }
  }
  if (err) sender_->set_error(std::move(err));
  return r;
}

std::optional<ApiError> ChatSink::read_document(LocalText<>& reading, AttemptResult& r) {
  LocalJson<> reply_json;  // no heap for a usual reply
  rapidjson::Document& doc = reply_json.doc();
  if (const JsonParse st = parse_json_in_place(reading.data(), reading.size(), doc, kMaxBody);
      st != JsonParse::kOk || !doc.IsObject()) {
    unreadable_ = true;
    r.http_status = 502;
    r.error_message = st == JsonParse::kTooDeep ? "response JSON is nested too deeply" : "response is not JSON";
    ApiError e;
    e.status = 502;
    e.message = r.error_message;
    return e;
  }
  if (const rapidjson::Value* error = reply_members(doc).error; error && error->IsObject()) {
    ApiError e = error_from_stream_event(doc);
    r.http_status = e.status >= 400 ? e.status : 502;
    r.error_message = e.message;
    r.provider = e.provider;
    return e;
  }
  // kOk is an in-place parse: parse_json_in_place copies only a text with a NUL or a control
  // byte, which no JSON text holds raw (that parse fails).
  take_reply(plain_reply_of(doc, /*parsed_in_place=*/true), r);
  if (sender_->meter_limit() > 0) {
    r.counted_output_tokens = text_tokens(model_, generated_text(doc, "message"));
  }
  return std::nullopt;
}

void ChatSink::take_reply(PlainReply&& p, AttemptResult& r) {
  r.ok = true;
  r.http_status = status_;
  if (p.usage) fill_usage(*p.usage, r);
  r.served_model = std::move(p.served_model);
  r.provider = std::move(p.provider);
  r.body = std::move(body_);
  if (p.summary.parts > 1) {  // text of our join: a key split over the parts is whole only there
    const ApiClient& keys = keys_client();
    if (keys.mentions_key(p.summary.content)) {
      p.summary.content = keys.scrub(std::move(p.summary.content));
      r.body = mask_split_parts(std::move(r.body), keys);
    }
  }
  r.summary = std::move(p.summary);  // the caller's id and text without a second parse
}

const StreamAccumulator& ChatSink::acc() const {
  static const NoDestructor<StreamAccumulator> kNone;
  return acc_ ? *acc_ : *kNone;
}

ApiError ChatSink::scrubbed(ApiError e) {
  return keys_client().scrub(std::move(e));
}

void ChatSink::fill_usage(const Usage& u, AttemptResult& r) {
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

}  // namespace orroute
