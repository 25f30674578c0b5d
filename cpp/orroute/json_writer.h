// rapidjson's Writer into a StringBuffer, which copies a string that needs no escape (most keys
// and texts of a request) in one step: the stock writer copies every string byte by byte (~30
// instructions a byte; its SSE2 scan only starts at 16 bytes). Writes exactly the bytes
// rapidjson::Writer<rapidjson::StringBuffer> writes (tests/cpp/test_json_writer.cpp).
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstring>

namespace orroute {

class JsonWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
  using Base = rapidjson::Writer<rapidjson::StringBuffer>;

 public:
  using Base::Base;

  bool String(const char* s, rapidjson::SizeType n, bool copy = false) {
    if (!plain(s, n)) return Base::String(s, n, copy);
    Prefix(rapidjson::kStringType);
    char* p = os_->Push(size_t{n} + 2);
    p[0] = '"';
    if (n > 0) std::memcpy(p + 1, s, n);
    p[n + 1] = '"';
    return EndValue(true);
  }
  bool String(const char* s) { return String(s, static_cast<rapidjson::SizeType>(std::strlen(s))); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy = false) { return String(s, n, copy); }
  bool Key(const char* s) { return String(s); }

 private:
  // No byte the writer escapes: '"', '\\' and the control characters below 0x20.
  static bool plain(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\') return false;
    }
    return true;
  }
};

}  // namespace orroute
