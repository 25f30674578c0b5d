// Byte classes of ASCII text, the same whatever the process locale (Python sets LC_CTYPE from the
// environment, and <cctype> follows it): bytes of UTF-8 text are never letters, digits nor spaces.
#pragma once

namespace orroute::ascii {

constexpr bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
constexpr bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
constexpr char lower(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

}  // namespace orroute::ascii
