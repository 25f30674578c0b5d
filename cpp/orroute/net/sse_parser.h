// Incremental Server-Sent Events parser (the text/event-stream format of WHATWG HTML §9.2),
// separate from any I/O: feed it bytes as they arrive, in pieces of any size, and it reports each
// complete event. Comment lines (": OPENROUTER PROCESSING") are skipped, LF, CRLF and CR line ends
// are all accepted, multi-line `data:` fields are joined with '\n', a byte order mark starting the
// stream is dropped. As the standard decodes the
// stream, an event's fields are valid UTF-8: bytes that are not become U+FFFD (orroute/utf8.h).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "orroute/net/http.h"

namespace orroute {

// One dispatched event. `data` is the joined data lines; `event` is the `event:` field ("" if none).
struct SseEvent {
  std::string event;
  std::string data;
  std::string id;
};

// Not thread-safe: one parser per stream, used by one thread at a time.
class SseParser {
 public:
  // Called once per complete event (an event is complete at the blank line after it). Return false
  // to stop: feed() then returns at once and the rest of the input is dropped.
  using EventSink = std::function<bool(SseEvent&&)>;

  // Consumes `bytes` (any split of the stream), calling `sink` for each event completed inside them.
  // Returns false if the sink asked to stop. Never throws for malformed input (unknown fields are
  // ignored, as the standard says); memory grows only with the longest unfinished event (the caller
  // caps it with pending_bytes()).
  bool feed(std::string_view bytes, const EventSink& sink);

  // Bytes held for the unfinished line and event: what a caller caps, since an event may never end.
  size_t pending_bytes() const { return line_.size() + data_.size() + event_.size() + id_.size(); }

  // True if a partial line or event is buffered (the stream ended in the middle of an event).
  bool has_partial() const { return !line_.empty() || has_data_ || !event_.empty(); }

  // At the end of the stream: true if it ended inside an event that carries data (a `data:` line
  // begun, or data lines without the blank line that dispatches them), so the answer was cut
  // there. False when nothing is pending but a comment or another field, and for a lone
  // `data: [DONE]` whose blank line (or line end) is missing: a server that leaves it out ended
  // well. Never throws.
  bool ends_inside_event() const;

  // Forgets any partial input.
  void reset();

 private:
  // Returns false if the sink asked to stop.
  bool process_line(std::string_view line, const EventSink& sink);
  // How many leading bytes of `bytes` belong to a byte order mark starting the stream (a part of
  // one split over feeds is kept back; a part that turns out no mark goes back into line_).
  size_t skip_bom(std::string_view bytes);

  size_t bom_seen_ = 0;       // bytes of the mark matched so far
  bool at_start_ = true;      // no byte of the stream but a mark's has come yet
  std::string line_;         // current unfinished line
  bool last_was_cr_ = false;  // a CR ended the previous line: a following LF belongs to it
  bool has_data_ = false;  // at least one data: line in the current event
  std::string data_;
  std::string event_;
  std::string id_;
};

// True if an event's data is OpenAI's end-of-stream marker "[DONE]".
inline bool is_done_marker(std::string_view data) { return data == "[DONE]"; }

// `data: [DONE]` ends an OpenAI-style stream (and end() a stream of another format): nothing
// after it is part of the answer (no content, no usage), and an upstream sending more is cut off
// there. One per stream reader (Call,
// ChatSink); not thread-safe.
class DoneMarker {
 public:
  // True if `data` is an event of the answer; false for [DONE] and every event after it (then
  // closed(): the reader stops the transfer).
  bool admits(std::string_view data) {
    if (seen_) {
      closed_ = true;
      return false;
    }
    seen_ = is_done_marker(data);
    return !seen_;
  }
  // The stream ended by its own format's end event (Anthropic's message_stop): what follows is
  // treated as what follows [DONE], for every provider alike.
  void end() { seen_ = true; }
  // An event came after [DONE]: the reader is to stop the transfer.
  bool closed() const { return closed_; }
  // `t` as it counts: a transfer that ended in any way after [DONE] (stopped by the reader, or
  // cut by the upstream) ended as it should, the answer being whole.
  TransferResult counted(TransferResult t) const {
    if (seen_) {
      t.status = TransferStatus::kOk;
      t.timeout = TimeoutKind::kNone;
      t.error.clear();
    }
    return t;
  }
  // The same, for a stream read with `parser`: a transfer that ended well before [DONE] but
  // inside an event (parser.ends_inside_event()) was cut, and counts as a connection closed before
  // a complete response (kConnectError), not as the whole answer.
  TransferResult counted(TransferResult t, const SseParser& parser) const {
    t = counted(std::move(t));
    if (!seen_ && t.status == TransferStatus::kOk && parser.ends_inside_event()) {
      t.status = TransferStatus::kConnectError;
      t.error = "the stream ended inside an event: the reply was cut";
    }
    return t;
  }
  void reset() { seen_ = closed_ = false; }

 private:
  bool seen_ = false;
  bool closed_ = false;
};

}  // namespace orroute
