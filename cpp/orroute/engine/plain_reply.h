// What the engine takes from a plain (not streamed) chat completion: its usage, the model and
// provider that served it, its id and first message's text. Read in one pass without a document
// (read_plain_reply), or from a parsed one (plain_reply_of): the same answers, whatever the reply.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>

#include "orroute/net/protocol.h"
#include "orroute/route/attempt_loop.h"

namespace orroute {

struct PlainReply {
  std::optional<Usage> usage;  // the first `usage` member, when it is an object
  std::string served_model;    // the first `model` member, when it is a string
  std::string provider;        // the first `provider` member, when it is a string
  ReplySummary summary;        // the last `id`, the text of the last `choices`' first message
};

// The members of a reply's top level the engine reads, found in one pass: the first of each name
// where a reader takes the first (as FindMember does), the last "id" and "choices" (as
// reply_summary takes them). Null if none.
struct ReplyMembers {
  const rapidjson::Value* error = nullptr;
  const rapidjson::Value* usage = nullptr;
  const rapidjson::Value* model = nullptr;
  const rapidjson::Value* provider = nullptr;
  const rapidjson::Value* id = nullptr;
  const rapidjson::Value* choices = nullptr;
};
ReplyMembers reply_members(const rapidjson::Value& doc);

// A `usage` object of a document parsed in place (its strings point into the text): parse_usage
// with `cost` read from its own digits, as read_plain_reply reads it.
Usage usage_in_place(const rapidjson::Value& usage);

// The first `usage` object of a JSON object's text (a stream event, an embeddings reply), read by
// usage_in_place; none when the text is no JSON object or holds none.
std::optional<Usage> text_usage(std::string text, size_t max_bytes);

// A reply read as a document (`doc` an object whose first `error` member is not an object). When
// it was parsed in place (`parsed_in_place`: its strings point into the text), `usage.cost` is
// read from its digits, as read_plain_reply reads it.
PlainReply plain_reply_of(const rapidjson::Value& doc, bool parsed_in_place = false);

// The same, read from `text` in one pass without a document (its strings decoded where they lie:
// `text` is the caller's copy, given up), and `usage.cost` read exactly from its own decimal digits
// (a document holds it as a double, which a 17-digit decimal does not always survive). What the
// guard of every parse refuses (size, depth, bytes) is refused as it reads. Nothing when the reply
// is to be read as a document: not JSON, not an object, refused by the guard (the document's parse
// says why), or an error reply (its first `error` member an object).
// `text` is the `size` bytes there, followed by a NUL.
std::optional<PlainReply> read_plain_reply(char* text, size_t size, size_t max_bytes);
inline std::optional<PlainReply> read_plain_reply(std::string& text, size_t max_bytes) {
  return read_plain_reply(text.data(), text.size(), max_bytes);
}
// The same, and `generated` the reply's generated text as generated_text(doc, "message") has it
// (what a reply metered by its text is counted from), read in the same pass.
std::optional<PlainReply> read_plain_reply(char* text, size_t size, size_t max_bytes, std::string& generated);
inline std::optional<PlainReply> read_plain_reply(std::string& text, size_t max_bytes, std::string& generated) {
  return read_plain_reply(text.data(), text.size(), max_bytes, generated);
}

}  // namespace orroute
