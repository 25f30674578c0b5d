// The one way the core writes JSON text: `JsonWriter` (a rapidjson Writer into a StringBuffer)
// and `append_json_string`. Both escape a string as RFC 8259 asks, with rapidjson's choice of
// escapes ('"' and '\\' by backslash, \b \t \n \f \r by name, every other byte below 0x20 as
// \u00XX, upper-case digits; every other byte as it is).
//
// Never write with a plain `rapidjson::Writer<rapidjson::StringBuffer>`: rapidjson 1.1.0's SSE2
// string scan (its specialisation for exactly that writer, compiled in with RAPIDJSON_SSE2, which
// the core's reader needs) tests bytes against 0x19, so 0x1A-0x1F in a string of 16 bytes or more
// went out raw — invalid JSON, e.g. any message holding a terminal colour code (ESC, 0x1B).
// JsonWriter writes every string itself; tests/py/test_json_text.py fails the build if a plain
// writer comes back (tests/cpp/test_json_writer.cpp checks the bytes).
//
// It also copies a string that needs no escape (most keys and texts of a request) in one step:
// the stock writer copies every string byte by byte (~30 instructions a byte).
//
// And it writes UTF-8 only: a string holding bytes that are not (a parsed upstream string can,
// though the upstream's bytes were repaired before the parse: rapidjson 1.1.0 decodes the escape
// of a lone low surrogate, "\udc00", to ED B0 80) is written with each maximal ill-formed subpart
// as U+FFFD (repair_utf8's rule, the one upstream_str decodes with), never raw.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "orroute/utf8.h"

namespace orroute {

namespace json_detail {

// True if byte `c` is written as it is: not '"', '\\' nor a control byte below 0x20.
inline bool plain_byte(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; }

// True if no byte of `s` needs an escape (kAscii: and every byte is ASCII). Eight bytes a step,
// ~2 instructions a byte where a byte at a time took ~5. Per byte, without a carry between bytes:
// the high bit of (x & 0x7F) + k is set iff (x & 0x7F) >= 0x80 - k; so for a byte below 0x80,
// ok's high bit is set iff it is >= 0x20, not '"' and not '\\' (plain_byte); a byte at 0x80 and
// above is plain (its high bit or'ed in), or with kAscii refused (and'ed out).
template <bool kAscii>
inline bool plain_words(const char* s, size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kLow7 = kOnes * 0x7F;
  constexpr uint64_t kHigh = kOnes * 0x80;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    const uint64_t q = w ^ (kOnes * '"');
    const uint64_t b = w ^ (kOnes * '\\');
    const uint64_t ok = ((w & kLow7) + kOnes * 0x60) & ((q & kLow7) + kLow7) & ((b & kLow7) + kLow7);
    const uint64_t pass = kAscii ? ok & ~w : ok | w;
    if ((pass & kHigh) != kHigh) return false;
  }
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!plain_byte(c) || (kAscii && c >= 0x80)) return false;
  }
  return true;
}

// True if no byte of `s` needs an escape.
inline bool plain(const char* s, size_t n) { return plain_words<false>(s, n); }
// True if every byte of `s` is ASCII that needs no escape (so it is UTF-8 too).
inline bool plain_ascii(const char* s, size_t n) { return plain_words<true>(s, n); }

// Writes the escape of `c` (a byte `plain` refuses) at `out`, which has room for 6 bytes; returns
// its length.
inline size_t escape(unsigned char c, char* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out[0] = '\\';
  switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\t': out[1] = 't'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\r': out[1] = 'r'; return 2;
    default:
      out[1] = 'u';
      out[2] = '0';
      out[3] = '0';
      out[4] = kHex[c >> 4];
      out[5] = kHex[c & 15];
      return 6;
  }
}

// `s` (valid UTF-8) escaped, between quotes, through `put(const char*, size_t)` (runs of plain
// bytes at once).
template <typename Put>
void write_escaped(const char* s, size_t n, Put&& put) {
  put("\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (plain_byte(c)) continue;
    if (i > run) put(s + run, i - run);
    char e[6];
    put(e, escape(c, e));
    run = i + 1;
  }
  if (n > run) put(s + run, n - run);
  put("\"", 1);
}

// `s` (not valid UTF-8) escaped, between quotes, through `put`, each ill-formed part as U+FFFD.
template <typename Put>
void write_repaired(const char* s, size_t n, Put&& put) {
  std::string repaired(s, n);
  repair_utf8(repaired);
  write_escaped(repaired.data(), repaired.size(), put);
}

// `s` escaped, between quotes, through `put`: what is not UTF-8 written as U+FFFD.
template <typename Put>
void write_string(const char* s, size_t n, Put&& put) {
  if (!utf8_valid(std::string_view(s, n))) [[unlikely]] {
    write_repaired(s, n, put);
  } else {
    write_escaped(s, n, put);
  }
}

}  // namespace json_detail

// `text` as a JSON string, appended to `out`.
inline void append_json_string(std::string& out, std::string_view text) {
  json_detail::write_string(text.data(), text.size(), [&](const char* p, size_t n) { out.append(p, n); });
}

class JsonWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
  using Base = rapidjson::Writer<rapidjson::StringBuffer>;

 public:
  using Base::Base;

  // Every string this writer is given is known to be UTF-8 (a Python str's, which CPython
  // encodes only when it is): not checked again (a CJK prompt's check costs ~20-40 instructions a
  // character). Only for text made from Python values; an upstream's strings are always checked.
  void trust_utf8() { trusted_utf8_ = true; }

  // Every string is written here, never by Base::String (see the top of this file).
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/ = false) {
    Prefix(rapidjson::kStringType);
    const auto put = [this](const char* p, size_t k) { std::memcpy(os_->Push(k), p, k); };
    if (json_detail::plain_ascii(s, n)) {
      copy(s, n);
    } else if (!trusted_utf8_ && !utf8_valid(std::string_view(s, n))) [[unlikely]] {
      json_detail::write_repaired(s, n, put);  // U+FFFD for what is not UTF-8
    } else if (json_detail::plain(s, n)) {
      copy(s, n);
    } else {
      json_detail::write_escaped(s, n, put);
    }
    return EndValue(true);
  }
  bool String(const char* s) { return String(s, static_cast<rapidjson::SizeType>(std::strlen(s))); }
  bool String(const std::string& s) { return String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy = false) { return String(s, n, copy); }
  bool Key(const char* s) { return String(s); }
  bool Key(const std::string& s) { return String(s); }

 private:
  // `s` (n bytes needing no escape) between quotes, in one step.
  void copy(const char* s, size_t n) {
    char* p = os_->Push(n + 2);
    p[0] = '"';
    if (n > 0) std::memcpy(p + 1, s, n);
    p[n + 1] = '"';
  }

  bool trusted_utf8_ = false;
};

}  // namespace orroute
