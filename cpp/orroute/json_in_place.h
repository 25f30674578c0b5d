// RapidJSON's in-place parse with a string scan that knows where its text ends.
//
// RapidJSON 1.1's SSE2 scan of a string's characters (ScanCopyUnescapedString for its
// InsituStringStream) reads byte by byte up to the next 16-byte boundary, and only then 16 bytes a
// load: an aligned load never reaches into a page the text does not touch, and the stream does not
// know where its text ends. Most strings of a request or a reply (keys, ids, names, short values)
// end before that boundary, so they were read one byte at a time (the ~49 strings of an 800-byte
// chat reply and its request: ~2.6k instructions more than this scan). A stream that knows its end
// loads 16 bytes at any address as long as they lie inside the text and its terminating NUL, so no
// read leaves the text's buffer at all (no page question, nothing for AddressSanitizer to see), and
// only a string's last bytes before the very end of the text are read one by one.
//
// Hooked into RapidJSON by its own means: a stream type of ours (InPlaceStream) makes the reader
// take its generic ScanCopyUnescapedString template, whose explicit specialization for that stream
// (below) is this scan, as RapidJSON specializes SkipWhitespace for its own streams.
#pragma once

#include <rapidjson/document.h>

#include <bit>
#include <cstddef>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace orroute::json_detail {

// RapidJSON's in-place stream over `size` bytes at `text` followed by a NUL (a std::string's
// data()): the same reading and writing, and the end known to the string scan.
struct InPlaceStream : rapidjson::InsituStringStream {
  InPlaceStream(char* text, size_t size) : rapidjson::InsituStringStream(text), end_(text + size) {}
  const char* end_;  // the terminating NUL
};

// Moves `s` over a string's characters up to the first '"', '\\' or byte below 0x20 (its closing
// quote, an escape, or a byte JSON refuses raw; the terminating NUL at the latest), copying them
// down to s.dst_ where an escape earlier in the string left the write position behind the read
// position (in-place decoding), as RapidJSON's scan does. Reads nothing past s.end_.
inline void scan_unescaped(InPlaceStream& s) noexcept {
  char* p = s.src_;
  char* q = s.dst_;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  // The 16 bytes at p lie inside the text and its NUL while p + 15 <= end_.
  while (s.end_ - p >= 15) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i stops = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
                                       _mm_cmpeq_epi8(_mm_max_epu8(bytes, control), control));  // <= 0x1F
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(stops));
    if (mask != 0) {
      const int n = std::countr_zero(mask);
      if (q != p) {
        for (int i = 0; i < n; ++i) q[i] = p[i];  // q < p: a forward copy never reads what it wrote
      }
      s.src_ = p + n;
      s.dst_ = q + n;
      return;
    }
    if (q != p) _mm_storeu_si128(reinterpret_cast<__m128i*>(q), bytes);
    p += 16;
    q += 16;
  }
#endif
  for (; *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20; ++p, ++q) *q = *p;
  s.src_ = p;
  s.dst_ = q;
}

}  // namespace orroute::json_detail

namespace rapidjson {

// As RapidJSON's own in-place stream: the reader keeps a copy of it in registers while it reads.
template <>
struct StreamTraits<orroute::json_detail::InPlaceStream> {
  enum { copyOptimization = 1 };
};

template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString(
    orroute::json_detail::InPlaceStream& is, orroute::json_detail::InPlaceStream& /*os: the same stream*/) {
  orroute::json_detail::scan_unescaped(is);
}

#ifdef RAPIDJSON_SIMD
// Whitespace as RapidJSON skips it for its in-place stream (aligned loads: within the page).
template <>
inline void SkipWhitespace(orroute::json_detail::InPlaceStream& is) {
  is.src_ = const_cast<char*>(SkipWhitespace_SIMD(is.src_));
}
#endif

}  // namespace rapidjson
