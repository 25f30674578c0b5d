// Keeps a key an upstream echoes in streamed text from reaching the consumer split over two events
// ("...sk-or-v1-12" + "34ab..."). Each event is scrubbed whole where it is read (Call, ChatSink);
// this scrubs the texts a consumer joins (choices[].delta.content, reasoning, refusal) across
// events: the end of a text that could begin a key is held back and put in front of the same text
// of the next chunk, where the joined text is scrubbed. The chunks are parsed JSON, so a key
// spelled with escapes reads as the key here.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orroute {

class ApiClient;
class StreamAccumulator;

// One per stream; not thread-safe. Holds less than the longest key's length per text (choice
// indexes are clamped to 0..255, as the accumulator does).
class StreamScrubber {
 public:
  // Scrubs the texts of `chunk` of `keys`' keys in place: what the previous chunks held back goes in front, a key
  // in the joined text is masked, and an end that could begin a key is held back. A choice that
  // finishes in this chunk gets everything held for it. True if `chunk` changed (relayed text must
  // then be written anew from it).
  bool scrub(rapidjson::Document& chunk, const ApiClient& keys);
  // At the end of the stream: `out` becomes a chat.completion.chunk like the stream's (`acc`'s id,
  // created and model) carrying every text still held back, in choice order. False (and `out`
  // untouched) if none is.
  bool flush(rapidjson::Document& out, const StreamAccumulator& acc);
  bool holding() const { return !held_.empty(); }

 private:
  struct Held {
    size_t choice;
    const char* field;  // one of kFields
    std::string text;
  };
  // `text` of `field` in `choice` after what was held for it, scrubbed, without its end that could
  // begin a key (now held); nullopt when that is `text` as it came.
  std::optional<std::string> scrub_text(size_t choice, const char* field, std::string_view text,
                                        const ApiClient& keys);
  std::string take_held(size_t choice, const char* field);

  std::vector<Held> held_;
};

}  // namespace orroute
