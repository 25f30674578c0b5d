#include "orroute/json_reader.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rapidjson/reader.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace orroute {

namespace {

// The first byte in [p, end) that ends a string's plain run ('"', '\\' or a control byte below
// 0x20), or end. 16 bytes a step from `p` on (unaligned loads, never past `end`), the last few
// one by one.
char* string_stop(char* p, char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  while (end - p >= 16) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(s, quote), _mm_cmpeq_epi8(s, backslash)),
                                     _mm_cmpeq_epi8(_mm_max_epu8(s, control), control));  // s <= 0x1F
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  while (p < end && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
  return p;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One number event from RapidJSON's own reader into the document (Default: anything else fails).
struct NumberSink : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NumberSink> {
  explicit NumberSink(rapidjson::Document& d) : doc(d) {}
  bool Default() { return false; }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned u) { return doc.Uint(u); }
  bool Int64(int64_t i) { return doc.Int64(i); }
  bool Uint64(uint64_t u) { return doc.Uint64(u); }
  bool Double(double d) { return doc.Double(d); }
  rapidjson::Document& doc;
};

// Recursive descent over [p, end) into the document's SAX handler (its values and members are
// pushed on its stack and gathered by EndObject / EndArray, as RapidJSON's reader does).
class Reader {
 public:
  Reader(char* begin, char* end, rapidjson::Document& doc, int max_depth)
      : p_(begin), end_(end), doc_(doc), max_depth_(max_depth) {}

  bool root() {
    skip_space();
    if (!value(0)) return false;
    skip_space();
    return p_ == end_;
  }
  bool too_deep() const { return too_deep_; }

 private:
  void skip_space() {
    // one test for the usual case, a byte that is no white space (every byte of a compact text
    // between its values: above ' ', or the end)
    while (p_ < end_ && static_cast<unsigned char>(*p_) <= ' ' &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  bool value(int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': {
        const char* s = nullptr;
        rapidjson::SizeType n = 0;
        return string(s, n) && doc_.String(s, n, false);
      }
      case 't': return literal("true", 4) && doc_.Bool(true);
      case 'f': return literal("false", 5) && doc_.Bool(false);
      case 'n': return literal("null", 4) && doc_.Null();
      default: return number();
    }
  }

  bool literal(const char* word, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  bool object(int depth) {
    if (depth > max_depth_) {
      too_deep_ = true;
      return false;
    }
    ++p_;  // '{'
    doc_.StartObject();
    skip_space();
    rapidjson::SizeType members = 0;
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return doc_.EndObject(0);
    }
    for (;;) {
      if (p_ == end_ || *p_ != '"') return false;
      const char* key = nullptr;
      rapidjson::SizeType n = 0;
      if (!string(key, n)) return false;
      doc_.Key(key, n, false);
      skip_space();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_space();
      if (!value(depth)) return false;
      ++members;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        skip_space();
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return doc_.EndObject(members);
    }
  }

  bool array(int depth) {
    if (depth > max_depth_) {
      too_deep_ = true;
      return false;
    }
    ++p_;  // '['
    doc_.StartArray();
    skip_space();
    rapidjson::SizeType elements = 0;
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return doc_.EndArray(0);
    }
    for (;;) {
      if (!value(depth)) return false;
      ++elements;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        skip_space();
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      return doc_.EndArray(elements);
    }
  }

  // The string at p_ (its opening quote) decoded in place: `out` and `n` its text, NUL-ended as
  // RapidJSON's in-place reader leaves it. A decoded string is never longer than its source
  // (an escape of 2 bytes is 1, "\uXXXX" at most 3, a surrogate pair of 12 bytes 4), so the
  // decoded text is written at or before where it is read.
  bool string(const char*& out, rapidjson::SizeType& n) {
    char* const start = ++p_;
    char* w = start;  // the end of the decoded text (== p_ until the first escape)
    for (;;) {
      char* const run = p_;
      p_ = string_stop(p_, end_);
      if (p_ == end_) return false;  // no closing quote
      if (w != run) std::memmove(w, run, static_cast<size_t>(p_ - run));
      w += p_ - run;
      if (*p_ == '"') {
        ++p_;
        *w = '\0';  // at or before the closing quote, which is read
        out = start;
        n = static_cast<rapidjson::SizeType>(w - start);
        return true;
      }
      if (*p_ != '\\') return false;  // a control byte: must be escaped
      if (end_ - p_ < 2) return false;
      const char e = p_[1];
      p_ += 2;
      switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: its low half must follow
            unsigned low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = (((cp - 0xD800) << 10) | (low - 0xDC00)) + 0x10000;
          }
          w = put_utf8(w, cp);  // a lone low surrogate as its 3 bytes, as RapidJSON does
          break;
        }
        default: return false;
      }
    }
  }

  bool hex4(unsigned& cp) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const int d = hex_digit(p_[i]);
      if (d < 0) return false;
      cp = (cp << 4) | static_cast<unsigned>(d);
    }
    p_ += 4;
    return true;
  }

  static char* put_utf8(char* w, unsigned cp) {
    if (cp < 0x80) {
      *w++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
      *w++ = static_cast<char>(0xC0 | (cp >> 6));
      *w++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *w++ = static_cast<char>(0xE0 | (cp >> 12));
      *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *w++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *w++ = static_cast<char>(0xF0 | (cp >> 18));
      *w++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *w++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
    return w;
  }

  // A number per RFC 8259's grammar. A plain integer of up to 18 digits (every one fits in 64
  // bits) is made here; any other (a fraction, an exponent, more digits) is read by RapidJSON's
  // reader, for exactly its value, its integer or double type and its errors (a number too big
  // for a double is refused).
  bool number() {
    char* const start = p_;
    const bool minus = *p_ == '-';
    if (minus) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    } else {
      return false;
    }
    const char* const digits_end = p_;
    bool plain = true;
    if (p_ < end_ && *p_ == '.') {
      plain = false;
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      plain = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    const char* const digits = start + (minus ? 1 : 0);
    if (plain && digits_end - digits <= 18) {
      uint64_t v = 0;
      for (const char* d = digits; d < digits_end; ++d) v = v * 10 + static_cast<uint64_t>(*d - '0');
      return minus ? doc_.Int64(-static_cast<int64_t>(v)) : doc_.Uint64(v);
    }
    // RapidJSON reads from `start` up to the first byte that cannot continue a number: the one
    // at p_, inside the text or its terminating NUL.
    rapidjson::StringStream in(start);
    NumberSink sink(doc_);
    rapidjson::Reader reader;
    reader.Parse<rapidjson::kParseStopWhenDoneFlag>(in, sink);
    return !reader.HasParseError() && in.Tell() == static_cast<size_t>(p_ - start);
  }

  char* p_;
  char* const end_;
  rapidjson::Document& doc_;
  const int max_depth_;
  bool too_deep_ = false;
};

}  // namespace

JsonParse read_json_in_place(char* text, size_t size, rapidjson::Document& doc, size_t max_bytes,
                             int max_depth) noexcept {
  if (size > max_bytes) {
    doc.SetNull();
    return JsonParse::kTooLarge;
  }
  Reader reader(text, text + size, doc, std::min(max_depth, kMaxJsonDepth));  // recursion bounded
  bool ok = false;
  auto generate = [&reader, &ok](rapidjson::Document&) { return ok = reader.root(); };
  doc.Populate(generate);
  if (ok) return JsonParse::kOk;
  doc.SetNull();
  return reader.too_deep() ? JsonParse::kTooDeep : JsonParse::kInvalid;
}

JsonParse read_json_in_place(std::string& text, rapidjson::Document& doc, size_t max_bytes, int max_depth) noexcept {
  if (max_depth > kMaxJsonDepth) return parse_json_in_place(text, doc, max_bytes, max_depth);  // no deep recursion here
  return read_json_in_place(text.data(), text.size(), doc, max_bytes, max_depth);
}

}  // namespace orroute
