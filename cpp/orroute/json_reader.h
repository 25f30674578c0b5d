// A reply's JSON read in one pass: the documents parse_json_in_place (orroute/json.h) accepts,
// with the same values, in about half of RapidJSON's reader's instructions on a chat reply.
// Why a reader of our own for the one text every call reads: RapidJSON scans a string byte by
// byte until the text's next 16-byte boundary before its SSE2 loop, so the short keys and values
// of a reply (most under 16 bytes) never reach it, and the size and depth checks before its parse
// are two more passes over the text. Here the checks ride along (depth counted as it nests, the
// size known) and a string is scanned 16 bytes at a time from its first byte (unaligned loads
// that stay inside the text). Numbers other than plain integers of up to 18 digits are read by
// RapidJSON itself, so a fraction, an exponent or a huge integer gets exactly its value or its
// error. tests/cpp/test_json_reader.cpp holds the two readers to the same answers.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <string>

#include "orroute/json.h"

namespace orroute {

// Parses `text` into `doc` in place: strings are decoded inside `text` and the document points
// at them (as parse_json_in_place), so `text` must outlive `doc` and is changed. Accepts exactly
// what parse_json_in_place<kParseDefaultFlags> accepts (RFC 8259 text, any root value; bytes
// above 0x7F are not checked) with the same limits: kTooLarge past `max_bytes`, kTooDeep when it
// nests past `max_depth` levels of arrays and objects before any other fault (recursion never
// goes deeper; a `max_depth` above kMaxJsonDepth is parse_json_in_place's iterative parse),
// kInvalid otherwise. Stricter than RapidJSON 1.1 where it accepts what is not JSON (and Python's
// json refuses): bytes after a NUL that follows the root value, and the control bytes 0x1A-0x1F
// inside a string, which its SSE2 scan misses. On any status but kOk, `doc` is null. Never
// throws; no allocation besides the document's.
JsonParse read_json_in_place(std::string& text, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                             int max_depth = kMaxJsonDepth) noexcept;

// The same on the `size` bytes at `text`, which the caller owns and keeps; `text[size]` must be
// a NUL (a number is read up to the first byte that cannot continue it). `max_depth` at most
// kMaxJsonDepth.
JsonParse read_json_in_place(char* text, size_t size, rapidjson::Document& doc, size_t max_bytes = kMaxJsonBytes,
                             int max_depth = kMaxJsonDepth) noexcept;

}  // namespace orroute
