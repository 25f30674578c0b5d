// The one way bytes from outside (an upstream, a client, a file, a user) become a RapidJSON
// document. RapidJSON's default parser recurses once per nesting level, so 20 MB of `[` overflows
// the stack; here the text is first scanned for nesting depth and size (linear, no recursion, no
// allocation). A document that passes nests at most kMaxJsonDepth levels, so the parser's own
// recursion is bounded, and so is code that walks it recursively (json_to_py, Writer, CopyFrom, the
// schema checker). Only a caller that lifts the depth limit gets kParseIterativeFlag (no recursion
// at any depth), which costs a fifth more instructions per byte.
#pragma once

#include <rapidjson/document.h>

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>

#include "orroute/json_in_place.h"

// rapidjson 1.1.0's member iterators compare through member operators that take a ConstIterator:
// comparing two non-const ones (`doc.FindMember("k") != doc.MemberEnd()`) converts the right-hand
// side, and under C++20 the reversed rewrite (`end == it`) converts the other side, so clang warns
// at every such comparison in our code (-Wambiguous-reversed-operator; GCC says nothing). These
// exact matches for two iterators of one kind are chosen before either (later rapidjson releases
// fixed it the same way). A pragma around the include cannot help: the warning is at the use.
namespace rapidjson {
template <bool kConst, class E, class A>
bool operator==(const GenericMemberIterator<kConst, E, A>& a, const GenericMemberIterator<kConst, E, A>& b) {
  return a - b == 0;
}
template <bool kConst, class E, class A>
bool operator!=(const GenericMemberIterator<kConst, E, A>& a, const GenericMemberIterator<kConst, E, A>& b) {
  return a - b != 0;
}
}  // namespace rapidjson

namespace orroute {

// Deepest nesting accepted. Real requests and replies nest fewer than 20 levels.
inline constexpr int kMaxJsonDepth = 128;
// Largest text parsed when the caller has no tighter bound of its own.
inline constexpr size_t kMaxJsonBytes = size_t{128} << 20;

enum class JsonParse { kOk, kTooLarge, kTooDeep, kInvalid };

// A document whose values start in a buffer inside it (on the stack where it is declared): parsing
// a small request or reply takes nothing from the heap. A default rapidjson::Document takes a
// 64 KB chunk from malloc for its first value, a size glibc serves only after consolidating its
// fast bins, and frees it at the end: several µs for each of the few parses on a call's path.
// Past the buffer it grows in 64 KB chunks as any document does. For a document that lives only
// where it is declared (not returned nor moved out; `doc()` may be passed on by reference).
template <size_t kBytes = 4096>
class LocalJson {
 public:
  LocalJson() : pool_(buffer_, sizeof buffer_), doc_(&pool_) {}
  LocalJson(const LocalJson&) = delete;
  LocalJson& operator=(const LocalJson&) = delete;
  rapidjson::Document& doc() { return doc_; }

 private:
  alignas(alignof(std::max_align_t)) char buffer_[kBytes];
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;  // declared after the pool it allocates from (destroyed before it)
};

// A copy of a text followed by a NUL, for a parse in place (parse_json_in_place, read_plain_reply):
// in a buffer inside it (on the stack where it is declared) when it fits, else on the heap. A
// request's or a reply's copy on a call's path was an allocation each.
template <size_t kBytes = 4096>
class LocalText {
 public:
  explicit LocalText(std::string_view text) { assign(text); }
  LocalText(const LocalText&) = delete;
  LocalText& operator=(const LocalText&) = delete;
  // `text` copied again (a parse in place changed the copy).
  void assign(std::string_view text) {
    size_ = text.size();
    if (size_ < kBytes) {
      text.copy(buffer_, size_);
      buffer_[size_] = '\0';
      data_ = buffer_;
    } else {
      heap_.assign(text);
      data_ = heap_.data();
    }
  }
  char* data() { return data_; }
  size_t size() const { return size_; }

 private:
  char buffer_[kBytes];
  std::string heap_;
  char* data_ = buffer_;
  size_t size_ = 0;
};

// A short English reason for a status other than kOk ("nested too deeply", ...).
const char* json_parse_reason(JsonParse status) noexcept;

// True if `text` never nests arrays/objects deeper than `max_depth` (brackets inside strings are
// not counted). Linear, no allocation. It does not validate the JSON.
bool json_depth_ok(std::string_view text, int max_depth = kMaxJsonDepth) noexcept;

namespace json_detail {

// The size and depth checks, and whether `text` holds a byte no JSON text holds raw that
// RapidJSON 1.1's fast readers let through (`unsafe_bytes`): a NUL, which they take as the end of
// the text (`{}` NUL `junk` parses), or a control byte 0x1A-0x1F, which their SSE2 string scan
// passes unescaped (it tests up to 0x19). One pass over the text, sixteen bytes a step.
JsonParse precheck(std::string_view text, size_t max_bytes, int max_depth, bool& unsafe_bytes) noexcept;

// A sized stream that reads a NUL inside the text as 0x01 (a byte invalid everywhere in JSON), so
// RapidJSON rejects it where it lies instead of ending the text there; with no SSE2 scan of its
// own, strings are checked byte by byte (every control byte refused). For texts that hold unsafe
// bytes: an error and its offset come from RapidJSON, as for any other invalid text.
class StrictStream {
 public:
  using Ch = char;
  explicit StrictStream(std::string_view text) : begin_(text.data()), src_(text.data()), end_(text.data() + text.size()) {}
  Ch Peek() const { return src_ == end_ ? '\0' : *src_ == '\0' ? '\x01' : *src_; }
  Ch Take() {
    const Ch c = Peek();
    if (src_ != end_) ++src_;
    return c;
  }
  size_t Tell() const { return static_cast<size_t>(src_ - begin_); }
  // Never written: the copying parse only reads its stream.
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

 private:
  const char* begin_;
  const char* src_;
  const char* end_;
};

// `doc` parsed from `text` whose depth is known to be at most `max_depth`: recursively when that
// bounds the recursion (kMaxJsonDepth), else iteratively. A text with unsafe bytes goes through
// StrictStream. A text with a NUL right after it (`nul_after`) is read as a C string: a quarter
// fewer instructions than a sized read.
template <unsigned kFlags>
void parse_checked(std::string_view text, bool nul_after, bool unsafe_bytes, rapidjson::Document& doc,
                   int max_depth) {
  if (unsafe_bytes) {
    StrictStream stream(text);
    if (max_depth > kMaxJsonDepth) {
      doc.ParseStream<kFlags | rapidjson::kParseIterativeFlag>(stream);
    } else {
      doc.ParseStream<kFlags>(stream);
    }
  } else if (max_depth > kMaxJsonDepth) {
    doc.Parse<kFlags | rapidjson::kParseIterativeFlag>(text.data(), text.size());
  } else if (nul_after) {
    doc.Parse<kFlags>(text.data());
  } else {
    doc.Parse<kFlags>(text.data(), text.size());
  }
}

template <unsigned kFlags>
JsonParse parse_json(std::string_view text, bool nul_after, rapidjson::Document& doc, size_t max_bytes,
                     int max_depth) noexcept {
  bool unsafe_bytes = false;
  JsonParse status = precheck(text, max_bytes, max_depth, unsafe_bytes);
  if (status == JsonParse::kOk) {
    parse_checked<kFlags>(text, nul_after, unsafe_bytes, doc, max_depth);
    if (!doc.HasParseError()) return JsonParse::kOk;
    status = JsonParse::kInvalid;
  }
  doc.SetNull();
  return status;
}

}  // namespace json_detail

// Never with rapidjson::kParseFullPrecisionFlag: in rapidjson 1.1.0 it reads a zero with a large
// exponent as garbage ("0.000e100" -> 5.1e294) through a clz(0), undefined behaviour (found by
// libFuzzer, session 22). The default number parse is deterministic but not correctly rounded
// (a 17-digit decimal lands one unit off in about a quarter of cases).
//
// Parses `text` into `doc` with `kFlags` after the size and depth checks. On any status but kOk,
// `doc` is null. Never throws; recursion is bounded by the depth checked.
template <unsigned kFlags = rapidjson::kParseDefaultFlags>
JsonParse parse_json_text(std::string_view text, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                          int max_depth = kMaxJsonDepth) noexcept {
  return json_detail::parse_json<kFlags>(text, false, doc, max_bytes, max_depth);
}

// The same for a std::string, which is NUL-terminated: read as a C string (see parse_checked).
// (A template on exactly std::string, so a literal or a string_view still takes the overload above.)
template <unsigned kFlags = rapidjson::kParseDefaultFlags, typename String>
  requires std::same_as<String, std::string>
JsonParse parse_json_text(const String& text, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                          int max_depth = kMaxJsonDepth) noexcept {
  return json_detail::parse_json<kFlags>(text, true, doc, max_bytes, max_depth);
}

// parse_json_text on a buffer the caller owns and gives up: the `size` bytes at `text`, followed by
// a NUL (`text[size]`). Strings are decoded in place (kParseInsituFlag) instead of copied into the
// document, about a third faster on a catalog of long descriptions. `doc` points into `text`,
// which must outlive it. A text holding unsafe bytes (a NUL or 0x1A-0x1F: never valid JSON) takes
// the copying parse through StrictStream, so the error and its offset are the same as
// parse_json_text's.
template <unsigned kFlags = rapidjson::kParseDefaultFlags>
JsonParse parse_json_in_place(char* text, size_t size, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                              int max_depth = kMaxJsonDepth) noexcept {
  const std::string_view view(text, size);
  bool unsafe_bytes = false;
  if (json_detail::precheck(view, max_bytes, max_depth, unsafe_bytes) != JsonParse::kOk || unsafe_bytes) {
    // rare (a hostile or broken text): the copying parse checks it again and says why
    return json_detail::parse_json<kFlags>(view, false, doc, max_bytes, max_depth);
  }
  json_detail::InPlaceStream stream(text, size);
  if (max_depth > kMaxJsonDepth) {
    doc.ParseStream<kFlags | rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag>(stream);
  } else {
    doc.ParseStream<kFlags | rapidjson::kParseInsituFlag>(stream);
  }
  if (!doc.HasParseError()) return JsonParse::kOk;
  doc.SetNull();
  return JsonParse::kInvalid;
}

// The same on a std::string the caller gives up.
template <unsigned kFlags = rapidjson::kParseDefaultFlags>
JsonParse parse_json_in_place(std::string& text, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                              int max_depth = kMaxJsonDepth) noexcept {
  return parse_json_in_place<kFlags>(text.data(), text.size(), doc, max_bytes, max_depth);
}

}  // namespace orroute
