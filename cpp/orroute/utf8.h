// Upstream text made valid UTF-8. An upstream's bytes are hostile: a reply, a stream event or an
// error body may hold bytes that are not UTF-8, and every consumer downstream (Python's str, the
// gateway's clients, the ledger, the cache) needs text. The rule is the one of WHATWG's UTF-8
// decode (what an event stream's bytes go through, and what Python's errors="replace" does): each
// maximal ill-formed subpart (Unicode §3.9, "U+FFFD substitution of maximal subparts") becomes one
// U+FFFD; surrogates (ED A0..ED BF) and overlong forms are ill-formed.
#pragma once

#include <string>
#include <string_view>

namespace orroute {

// True if `s` is well-formed UTF-8. Linear, no allocation; ASCII runs are checked 8 bytes at a time.
bool utf8_valid(std::string_view s) noexcept;

// Replaces every maximal ill-formed subpart of `s` with U+FFFD (EF BF BD). Returns true if `s`
// changed. Well-formed text is left as it is after one scan (no copy).
bool repair_utf8(std::string& s);

// In JSON text `s`, every \u escape of a surrogate that is not half of a pair (a high one, D800-DBFF,
// followed at once by the escape of a low one, DC00-DFFF) rewritten as \ufffd, in place (the same
// six bytes). Such an escape is valid JSON but stands for no character: rapidjson 1.1.0 decodes a
// lone low one to bytes that are not UTF-8 (ED B0 80) and refuses a lone high one (the reply "not
// JSON"), strict decoders (orjson) refuse both, and Python's json gives a str that cannot be
// encoded. Upstream JSON goes through this with repair_utf8, before it is parsed or relayed, so
// a relayed reply reads as the parsed one does (JsonWriter's U+FFFD). Only backslash escapes are
// looked at (an escaped backslash and what follows it is left alone); `s` need not be valid
// JSON. Returns true if `s` changed. Linear, no allocation.
bool repair_json_surrogates(std::string& s) noexcept;

// The longest prefix of `s` of at most `max_bytes` that does not end inside a UTF-8 sequence (so
// valid UTF-8 stays valid when cut).
std::string utf8_prefix(std::string_view s, size_t max_bytes);

// Text a client (or an upstream) sent, as an error or a log line quotes it: whole up to
// `max_bytes`, else its first `max_bytes` (cut on a character) + "… (N bytes)". Every message that
// echoes client text quotes it through this: a 2 MB model name is not sent back whole.
inline constexpr size_t kQuotedTextBytes = 200;
std::string client_text(std::string_view s, size_t max_bytes = kQuotedTextBytes);

}  // namespace orroute
