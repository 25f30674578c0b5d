// A reply's generated text collected in the reader's one pass (read_plain_reply), as
// generated_text(doc, "message") collects it from a document: a reply metered by its text (any
// call with a budget) is then read without a document, and its output counted from the same text.
#pragma once

#include <rapidjson/reader.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "orroute/json.h"

namespace orroute {

// Reader events in, generated_text(doc, "message")'s text out: every `choices` member's array,
// every object in it, every `message` object of that, whose text is appended when it closes in
// append_generated_text's order (its reasoning_details' text and summaries unless its first
// `reasoning` is a string, then its contents, reasonings and refusals, strings or each object
// part's `text`s, then its tool calls' function names and arguments). Every member of a name is
// read, as each_member reads them. Not thread-safe; one reply per object.
class GeneratedTextReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, GeneratedTextReader> {
 public:
  bool Default() {  // a number, true, false or null
    value(nullptr, 0);
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    value(s, n);
    return true;
  }
  bool StartObject() {
    open(true);
    return true;
  }
  bool StartArray() {
    open(false);
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    close();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    close();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    next_ = Next::kNone;
    first_reasoning_next_ = false;
    if (in_[depth_] != In::kOther) key(std::string_view(s, n));  // most keys are in nothing read
    return true;
  }

  // The text collected (given up).
  std::string take() { return std::move(out_); }

 private:
  // What a container is, for the keys and elements inside it.
  enum class In : uint8_t { kOther, kRoot, kChoices, kChoice, kMessage, kParts, kPart, kDetails, kDetail, kCalls, kCall, kFunction };
  // What the value after the last key is read as.
  enum class Next : uint8_t { kNone, kChoices, kMessage, kText, kString, kDetails, kCalls, kFunction };

  // The fast paths inline (the reader's loop calls them for every value), the rest out of line.
  void value(const char* s, rapidjson::SizeType n) {
    if (next_ != Next::kNone || first_reasoning_next_) read_value(s, n);
  }
  void open(bool object) {
    if (depth_ > 0 && next_ == Next::kNone && !first_reasoning_next_ && in_[depth_] == In::kOther) {
      in_[++depth_] = In::kOther;  // inside something not read
    } else {
      open_read(object);
    }
  }
  void close() {
    if (in_[depth_] == In::kMessage || in_[depth_] == In::kDetail || in_[depth_] == In::kFunction) close_read();
    --depth_;
  }
  void key(std::string_view name);
  void read_value(const char* s, rapidjson::SizeType n);
  void open_read(bool object);
  void close_read();
  // The container opening as the value of the last key (`next_`).
  In member_container(bool object);
  // The container opening as an element of the array at depth_.
  In element_container(bool object);

  // What the container at each depth is. Bounded by the reader beside it (JsonTee), which ends the
  // reading at the container that opens at depth kMaxJsonDepth, after this one saw it (129 at most).
  std::array<In, kMaxJsonDepth + 2> in_{};
  int depth_ = 0;
  Next next_ = Next::kNone;
  std::string* field_ = nullptr;     // where kText's string (or its parts' texts) and kString go
  std::string* parts_of_ = nullptr;  // where the parts array being read appends its texts
  bool first_reasoning_next_ = false;  // the value read next is the message's first `reasoning`
  // The message being read: its first `reasoning` seen, and whether it is a string (its
  // reasoning_details are then not counted: OpenRouter repeats the string there).
  bool reasoning_seen_ = false, reasoning_is_string_ = false;
  std::string details_, content_, reasoning_, refusal_, calls_;
  std::string detail_text_, detail_summary_;  // the reasoning_details entry being read
  std::string function_name_, function_arguments_;  // the tool call's function being read
  std::string out_;
};

// Reader events handed to two handlers (each sees every one); false when either stopped.
template <typename A, typename B>
class JsonTee : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, JsonTee<A, B>> {
 public:
  JsonTee(A& a, B& b) : a_(a), b_(b) {}
  bool Null() { return both(a_.Null(), b_.Null()); }
  bool Bool(bool v) { return both(a_.Bool(v), b_.Bool(v)); }
  bool Int(int v) { return both(a_.Int(v), b_.Int(v)); }
  bool Uint(unsigned v) { return both(a_.Uint(v), b_.Uint(v)); }
  bool Int64(int64_t v) { return both(a_.Int64(v), b_.Int64(v)); }
  bool Uint64(uint64_t v) { return both(a_.Uint64(v), b_.Uint64(v)); }
  bool Double(double v) { return both(a_.Double(v), b_.Double(v)); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return both(a_.String(s, n, copy), b_.String(s, n, copy)); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return both(a_.Key(s, n, copy), b_.Key(s, n, copy)); }
  bool StartObject() { return both(a_.StartObject(), b_.StartObject()); }
  bool EndObject(rapidjson::SizeType n) { return both(a_.EndObject(n), b_.EndObject(n)); }
  bool StartArray() { return both(a_.StartArray(), b_.StartArray()); }
  bool EndArray(rapidjson::SizeType n) { return both(a_.EndArray(n), b_.EndArray(n)); }

 private:
  static bool both(bool a, bool b) { return a && b; }  // each handler saw the event (no short cut)
  A& a_;
  B& b_;
};

}  // namespace orroute
