#include "orroute/engine/plain_reply.h"

#include <rapidjson/reader.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

#include "orroute/engine/chat_text.h"
#include "orroute/engine/generated_text_reader.h"
#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/net/usage_members.h"

namespace orroute {

ReplyMembers reply_members(const rapidjson::Value& doc) {
  ReplyMembers out;
  const auto first = [](const rapidjson::Value*& slot, const rapidjson::Value& v) {
    if (slot == nullptr) slot = &v;
  };
  for (const auto& m : doc.GetObject()) {
    const std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (name == "id") {
      out.id = &m.value;
    } else if (name == "choices") {
      out.choices = &m.value;
    } else if (name == "usage") {
      first(out.usage, m.value);
    } else if (name == "model") {
      first(out.model, m.value);
    } else if (name == "provider") {
      first(out.provider, m.value);
    } else if (name == "error") {
      first(out.error, m.value);
    }
  }
  return out;
}

namespace {

// A cost's digits as the reply wrote them, from just past its key (`key_end`: the byte after the
// NUL that was the key's closing quote). Read in place, a key's text is where it was written,
// its closing quote made a NUL: white space, the colon, white space and the number follow it
// (the parser found them so; nothing is written outside strings). A key written with escapes
// ("co\u0073t") is decoded into fewer bytes, and what follows its NUL is the rest of its escapes
// (hex digits, letters, the quote): no colon there, nothing taken; its cost is read through its
// double. Stops at the text's own NUL at the latest.
std::string_view number_after_key(const char* key_end) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  const char* p = key_end;
  while (space(*p)) ++p;
  if (*p != ':') return {};
  ++p;
  while (space(*p)) ++p;
  const char* end = p;
  while ((*end >= '0' && *end <= '9') || *end == '-' || *end == '+' || *end == '.' || *end == 'e' || *end == 'E') ++end;
  return {p, static_cast<size_t>(end - p)};
}

}  // namespace

Usage usage_in_place(const rapidjson::Value& usage) {
  UsageMembers u;
  u.top = members_named(usage, kUsageMembers);
  if (u.top[3] != nullptr) u.prompt_details = members_named(*u.top[3], kPromptDetailMembers);
  if (u.top[4] != nullptr) u.completion_details = members_named(*u.top[4], kCompletionDetailMembers);
  for (const auto& member : usage.GetObject()) {  // the first `cost`, as members_named finds it
    const rapidjson::Value& name = member.name;
    if (std::string_view(name.GetString(), name.GetStringLength()) != "cost") continue;
    if (member.value.IsNumber()) u.cost_text = number_after_key(name.GetString() + name.GetStringLength() + 1);
    break;
  }
  return parse_usage(u);
}

PlainReply plain_reply_of(const rapidjson::Value& doc, bool parsed_in_place) {
  PlainReply out;
  const ReplyMembers m = reply_members(doc);
  if (m.usage && m.usage->IsObject()) out.usage = parsed_in_place ? usage_in_place(*m.usage) : parse_usage(*m.usage);
  if (m.model && m.model->IsString()) out.served_model.assign(m.model->GetString(), m.model->GetStringLength());
  if (m.provider && m.provider->IsString()) out.provider.assign(m.provider->GetString(), m.provider->GetStringLength());
  out.summary = reply_summary(m.id, m.choices);
  return out;
}

namespace {

// The reader's events, kept only where plain_reply_of reads: every other value is passed over
// with nothing made of it (a document builds a value for each and links each object's members).
// The containers read: the reply; its first `usage` and that one's first details objects; its last
// `choices`, that one's first element, its last `message`, the parts of that one's last `content`
// (the last `text` of each). A value read is kept as the document would hold it (the same
// rapidjson::Value from the same event: an integer's flags, a string pointing into the text).
class PlainReplyReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PlainReplyReader> {
 public:
  bool Null() { return scalar(rapidjson::Value()); }
  bool Bool(bool b) { return scalar(rapidjson::Value(b)); }
  bool Int(int i) { return number(rapidjson::Value(i)); }
  bool Uint(unsigned u) { return number(rapidjson::Value(u)); }
  bool Int64(int64_t i) { return number(rapidjson::Value(i)); }
  bool Uint64(uint64_t u) { return number(rapidjson::Value(u)); }
  bool Double(double d) { return number(rapidjson::Value(d)); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return scalar(rapidjson::Value(s, n)); }
  bool StartObject() { return open(true); }
  bool StartArray() { return open(false); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  bool Key(const char* s, rapidjson::SizeType n, bool);

  bool root_object() const { return root_object_; }
  // The first `error` member is an object: an error reply, read with a document.
  bool error_reply() const { return error_.set && error_.value.IsObject(); }
  PlainReply result();

 private:
  // What a container is, for the keys and elements inside it.
  enum class In : uint8_t { kOther, kRoot, kUsage, kPromptDetails, kCompletionDetails, kChoices, kChoice, kMessage, kParts, kPart };
  struct Slot {
    rapidjson::Value value;
    bool set = false;
    const rapidjson::Value* get() const { return set ? &value : nullptr; }
  };

  // The value after a key: into `target_` (if any); a container opened there is `opens_`.
  bool scalar(rapidjson::Value&& v) {
    element();
    if (target_ != nullptr) {
      target_->value = std::move(v);
      target_->set = true;
      if (target_ == &content_ && content_.value.IsString()) {
        text_.assign(content_.value.GetString(), content_.value.GetStringLength());
      }
      target_ = nullptr;
    }
    return true;
  }
  bool number(rapidjson::Value&& v) {
    if (target_ == &usage_top_[5]) cost_text_ = number_after_key(cost_key_end_);
    return scalar(std::move(v));
  }
  bool open(bool object) {
    // Deeper than any parse's guard lets through (json_depth_ok): refused here, so RapidJSON's
    // recursion ends at this depth, and read as a document, whose guard says why.
    if (depth_ == kMaxJsonDepth) return false;
    In inside = element();
    if (!object && (inside == In::kChoice || inside == In::kPart)) inside = In::kOther;  // objects, or nothing read
    if (depth_ == 0) {
      root_object_ = object;
      inside = object ? In::kRoot : In::kOther;
    } else if (target_ != nullptr) {
      target_->value = object ? rapidjson::Value(rapidjson::kObjectType) : rapidjson::Value(rapidjson::kArrayType);
      target_->set = true;
      // Only an object of the kind the key named is read into (an array where `choices` or
      // `content` was named).
      if ((opens_ == In::kChoices || opens_ == In::kParts) != object) inside = opens_;
      target_ = nullptr;
    }
    if (inside == In::kPart) part_text_ = Slot{};
    ++depth_;
    in_[depth_] = inside;
    return true;
  }
  bool close() {
    if (in_[depth_] == In::kPart && part_text_.set && part_text_.value.IsString()) {
      text_.append(part_text_.value.GetString(), part_text_.value.GetStringLength());
      ++parts_;
    }
    --depth_;
    return true;
  }
  // A value inside an array: whether a container that opens here is read (returned; kOther if
  // not). Inside an object, what the key before it chose (`opens_`, for open()).
  In element() {
    switch (in_[depth_]) {
      case In::kChoices:
        return elements_++ == 0 ? In::kChoice : In::kOther;  // the first choice only
      case In::kParts:
        return In::kPart;
      default:
        return In::kOther;
    }
  }
  // The first member of a name: `slot` the key's value goes to, unless an earlier one took it.
  void first(Slot& slot, In opens = In::kOther) {
    if (slot.set) return;
    target_ = &slot;
    opens_ = opens;
  }
  // The last member of a name: each one read over the one before.
  void last(Slot& slot, In opens = In::kOther) {
    target_ = &slot;
    opens_ = opens;
  }

  std::array<In, kMaxJsonDepth + 2> in_{};  // what the container at each depth is (open() bounds it)
  int depth_ = 0;
  bool root_object_ = false;
  Slot* target_ = nullptr;
  In opens_ = In::kOther;
  size_t elements_ = 0;  // of the `choices` array being read
  Slot error_, usage_, model_, provider_, id_, choices_;
  std::array<Slot, 6> usage_top_;
  std::array<Slot, 3> prompt_details_, completion_details_;
  const char* cost_key_end_ = nullptr;
  std::string_view cost_text_;
  Slot message_, content_, part_text_;
  std::string text_;  // the summary's text: the last content read, as reply_summary joins it
  size_t parts_ = 0;  // the text parts joined into text_
};

// Where `name` is in `names`, or N. (Inlined into Key, see there.)
template <std::size_t N>
[[gnu::always_inline]] inline std::size_t index_of(std::string_view name, const std::array<std::string_view, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return i;
  }
  return N;
}

// Inlined into the reader's loop (as it was while one parse called it): the metered reading's
// parse (read_plain_reply with `generated`) calls it too, and a second caller made the compiler
// keep it out of line, which cost the plain reading ~0.7k instructions a reply.
[[gnu::always_inline]] inline bool PlainReplyReader::Key(const char* s, rapidjson::SizeType n, bool) {
  target_ = nullptr;
  const std::string_view name(s, n);
  switch (in_[depth_]) {
    case In::kRoot:
      if (name == "id") {
        last(id_);
      } else if (name == "choices") {
        last(choices_, In::kChoices);
        elements_ = 0;
        message_ = Slot{};  // the summary is the last choices' alone
        text_.clear();
        parts_ = 0;
      } else if (name == "usage") {
        first(usage_, In::kUsage);
      } else if (name == "model") {
        first(model_);
      } else if (name == "provider") {
        first(provider_);
      } else if (name == "error") {
        first(error_);
      }
      break;
    case In::kUsage:
      if (const std::size_t i = index_of(name, kUsageMembers); i < kUsageMembers.size()) {
        first(usage_top_[i], i == 3 ? In::kPromptDetails : i == 4 ? In::kCompletionDetails : In::kOther);
        if (i == 5 && target_ != nullptr) cost_key_end_ = s + n + 1;  // past the NUL that was its closing quote
      }
      break;
    case In::kPromptDetails:
      if (const std::size_t i = index_of(name, kPromptDetailMembers); i < kPromptDetailMembers.size()) {
        first(prompt_details_[i]);
      }
      break;
    case In::kCompletionDetails:
      if (const std::size_t i = index_of(name, kCompletionDetailMembers); i < kCompletionDetailMembers.size()) {
        first(completion_details_[i]);
      }
      break;
    case In::kChoice:
      if (name == "message") {
        last(message_, In::kMessage);
        content_ = Slot{};
        text_.clear();
        parts_ = 0;
      }
      break;
    case In::kMessage:
      if (name == "content") {
        last(content_, In::kParts);
        text_.clear();
        parts_ = 0;
      }
      break;
    case In::kPart:
      if (name == "text") last(part_text_);
      break;
    default:
      break;
  }
  return true;
}

PlainReply PlainReplyReader::result() {
  PlainReply out;
  if (usage_.set && usage_.value.IsObject()) {
    UsageMembers m;
    for (std::size_t i = 0; i < m.top.size(); ++i) m.top[i] = usage_top_[i].get();
    for (std::size_t i = 0; i < m.prompt_details.size(); ++i) m.prompt_details[i] = prompt_details_[i].get();
    for (std::size_t i = 0; i < m.completion_details.size(); ++i) m.completion_details[i] = completion_details_[i].get();
    m.cost_text = cost_text_;
    out.usage = parse_usage(m);
  }
  if (model_.set && model_.value.IsString()) out.served_model.assign(model_.value.GetString(), model_.value.GetStringLength());
  if (provider_.set && provider_.value.IsString()) {
    out.provider.assign(provider_.value.GetString(), provider_.value.GetStringLength());
  }
  if (id_.set && id_.value.IsString()) out.summary.id.assign(id_.value.GetString(), id_.value.GetStringLength());
  out.summary.content = std::move(text_);
  out.summary.parts = parts_;
  return out;
}

// `text` (`size` bytes there, followed by a NUL) read in place by `handler` (the reader, or the
// reader and another handler); false when it is refused. The reading is its own guard (the
// guard's pass over the text, json_detail::precheck, was a tenth of the reading): the size first;
// the depth counted by the reader, which stops at kMaxJsonDepth; a byte below 0x20 in a string
// refused by the string scan (json_in_place.h), as anywhere else by RapidJSON; a NUL, where
// RapidJSON's reading of a text ends, taken only at the text's end. A reply refused is read as a
// document, whose guard says why.
template <typename Handler>
bool read_in_place(char* text, size_t size, size_t max_bytes, Handler& handler) {
  if (size > max_bytes) return false;
  json_detail::InPlaceStream stream(text, size);
  rapidjson::Reader parser;
  parser.Parse<rapidjson::kParseInsituFlag>(stream, handler);
  return !parser.HasParseError() && stream.src_ == stream.end_;
}

std::optional<PlainReply> reply_read(bool parsed, PlainReplyReader& reader) {
  if (!parsed || !reader.root_object() || reader.error_reply()) return std::nullopt;
  return reader.result();
}

}  // namespace

std::optional<Usage> text_usage(std::string text, size_t max_bytes) {
  LocalJson<> json;  // no heap for a usual event
  rapidjson::Document& doc = json.doc();
  if (parse_json_in_place(text, doc, max_bytes) != JsonParse::kOk || !doc.IsObject()) return std::nullopt;
  const rapidjson::Value* usage = reply_members(doc).usage;  // the first, as the accumulator takes it
  if (usage == nullptr || !usage->IsObject()) return std::nullopt;
  return usage_in_place(*usage);
}

std::optional<PlainReply> read_plain_reply(char* text, size_t size, size_t max_bytes) {
  PlainReplyReader reader;
  return reply_read(read_in_place(text, size, max_bytes, reader), reader);
}

std::optional<PlainReply> read_plain_reply(char* text, size_t size, size_t max_bytes, std::string& generated) {
  PlainReplyReader reader;  // its depth bound ends the reading for both (JsonTee)
  GeneratedTextReader text_reader;
  JsonTee<PlainReplyReader, GeneratedTextReader> both(reader, text_reader);
  std::optional<PlainReply> out = reply_read(read_in_place(text, size, max_bytes, both), reader);
  if (out) generated = text_reader.take();
  return out;
}

}  // namespace orroute
