// The byte layer of the project's binary files (the bundled catalog snapshot, the learned router):
// fixed-size values in host byte order, strings as a uint32 length then the bytes. The reader
// trusts nothing: every length and count is checked against the bytes left before anything is
// copied or allocated, and a short or corrupt input throws ParseError naming the file.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "orroute/error.h"

namespace orroute {

class ByteWriter {
 public:
  template <typename T>
  void raw(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void str(std::string_view s) {
    raw<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void bytes(const char* p, size_t n) { out_.append(p, n); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  // `what` names the file in errors ("catalog snapshot: truncated (at byte 12)").
  ByteReader(std::string_view in, std::string_view what) : in_(in), what_(what) {}

  template <typename T>
  T raw() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));  // memcpy: the input need not be aligned
    pos_ += sizeof(T);
    return v;
  }
  std::string str() { return std::string(bytes(raw<uint32_t>())); }
  std::string_view bytes(size_t n) {
    need(n);
    const std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // A count of items each taking at least `min_bytes`: bounded by what is left, so a corrupt count
  // cannot ask for a huge allocation.
  uint32_t count(size_t min_bytes) {
    const uint32_t n = raw<uint32_t>();
    if (n > (in_.size() - pos_) / min_bytes) fail("a count larger than the bytes left");
    return n;
  }
  bool at_end() const { return pos_ == in_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw ParseError(std::string(what_) + ": " + why + " (at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(size_t n) const {
    if (n > in_.size() - pos_) fail("truncated");
  }
  std::string_view in_;
  std::string_view what_;
  size_t pos_ = 0;
};

}  // namespace orroute
