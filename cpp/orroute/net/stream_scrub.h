// Keeps a key an upstream echoes in streamed text from reaching the consumer split over two events
// ("...sk-or-v1-12" + "34ab..."). Each event is scrubbed whole where it is read (Call, ChatSink);
// this scrubs the texts a consumer joins across events (choices[].delta.content, reasoning,
// refusal, and tool_calls[].function.name and .arguments per tool call): the end of a text that could begin
// a key is held back and put in front of the same text of the next chunk, where the joined text
// is scrubbed. A tool call's id whose end could begin a key is held until its name shows whether
// the key goes on there (a consumer shows the two side by side; ApiClient::scrub_across). The
// chunks are parsed JSON, so a key spelled with escapes reads as the key here.
//
// What is held goes out when its choice finishes (in that chunk), when the choice's next tool call
// begins (a tool call's arguments: tool calls stream one after another), or at the normal end of
// the stream (flush()). A stream that fails or is cancelled drops it (discard()): its error may
// carry the rest of the key, and the consumer never gets the held start of one unmasked.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/json.h"  // member iterators compared without clang's C++20 warning

namespace orroute {

class ApiClient;
class StreamAccumulator;

// One per stream; not thread-safe. Holds less than the longest key's length per text. Indexes are
// clamped as the accumulator does (choices to 0..255, tool calls to 0..1023), and a choice holds
// the arguments of one tool call at a time, so what is held is bounded whatever the upstream sends.
class StreamScrubber {
 public:
  // What the chunk flush() writes names (the stream's own chunks' id, created and model).
  struct ChunkHead {
    std::string_view id;
    int64_t created = 0;
    std::string_view model;
  };

  // Scrubs the texts of `chunk` of `keys`' keys in place: what the previous chunks held back goes in front, a key
  // in the joined text is masked, and an end that could begin a key is held back. A choice that
  // finishes in this chunk (other than with "error") gets everything held for it. True if `chunk`
  // changed (relayed text must then be written anew from it).
  bool scrub(rapidjson::Document& chunk, const ApiClient& keys);
  // At the normal end of the stream: `out` becomes a chat.completion.chunk named by `head`
  // carrying every text still held back, in choice order. False (and `out` untouched) if none is.
  bool flush(rapidjson::Document& out, const ChunkHead& head);
  // flush() named like `acc`'s chunks.
  bool flush(rapidjson::Document& out, const StreamAccumulator& acc);
  // The stream failed or was cancelled: what is held is dropped, never released.
  void discard() { held_.clear(); }
  bool holding() const { return !held_.empty(); }

 private:
  static constexpr size_t kNoTool = SIZE_MAX;  // a text of the delta itself, not a tool call's
  struct Held {
    size_t choice;
    const char* field;  // one of kFields, or of kToolFields, or kId
    size_t tool;        // the tool call's index for kToolFields, else kNoTool
    std::string text;
  };
  struct Slot {  // which text of the stream
    size_t choice;
    const char* field;
    size_t tool = kNoTool;
  };
  // `text` of `slot` after what was held for it, scrubbed, without its end that could begin a key
  // (now held); with everything held for it when `last`. nullopt when that is `text` as it came.
  std::optional<std::string> pass(const Slot& slot, std::string_view text, bool last, const ApiClient& keys);
  std::optional<std::string> scrub_text(const Slot& slot, std::string_view text, const ApiClient& keys);
  std::string take_held(const Slot& slot);
  // The delta's content, reasoning and refusal of `choice`; true if one changed.
  bool scrub_fields(size_t choice, bool last, rapidjson::Value& delta, rapidjson::Document& chunk,
                    const ApiClient& keys);
  // The delta's tool-call names and arguments of `choice`; then what is held for the choice's other tool
  // calls (all of them when `last`) is added as entries of its own. True if the delta changed.
  bool scrub_tool_calls(size_t choice, bool last, rapidjson::Value& delta, rapidjson::Document& chunk,
                        const ApiClient& keys);
  // Moves the held texts of `choice`'s tool calls other than `keep` into `delta.tool_calls`.
  bool release_tool_calls(size_t choice, size_t keep, rapidjson::Value& delta, rapidjson::Document& chunk);
  bool holds_for(size_t choice) const;
  bool holds(const Slot& slot) const;
  // Holds `call`'s id when its end could begin a key whose rest the name brings (nothing held
  // for the tool call yet); true if it did (the id left `call`).
  bool hold_id(size_t choice, size_t tool, rapidjson::Value& call, const ApiClient& keys);
  // With the tool call's id held: its name so far joins the id's end, and once that is no longer a
  // key's start (or the choice ends) the id goes back into `call`, a key across the two masked
  // (ApiClient::scrub_across) and the name scrubbed as any. True if `call` changed.
  bool scrub_id_and_name(size_t choice, size_t tool, bool last, rapidjson::Value& call, rapidjson::Document& chunk,
                         const ApiClient& keys);

  std::vector<Held> held_;
};

}  // namespace orroute
