#include "orroute/net/sse_parser.h"

#include <cstring>

#include "orroute/utf8.h"

namespace orroute {

namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

void SseParser::reset() {
  bom_seen_ = 0;
  at_start_ = true;
  line_.clear();
  last_was_cr_ = false;
  has_data_ = false;
  data_.clear();
  event_.clear();
  id_.clear();
}

size_t SseParser::skip_bom(std::string_view bytes) {
  size_t i = 0;
  while (at_start_ && i < bytes.size()) {
    if (bytes[i] != kBom[bom_seen_]) {
      at_start_ = false;
      line_.append(kBom.substr(0, bom_seen_));  // the start of a line after all
      return i;
    }
    ++i;
    at_start_ = ++bom_seen_ < kBom.size();
  }
  return i;
}

bool SseParser::feed(std::string_view bytes, const EventSink& sink) {
  size_t i = at_start_ ? skip_bom(bytes) : 0;
  while (i < bytes.size()) {
    if (last_was_cr_ && bytes[i] == '\n') {  // the LF of a CRLF split across the previous line end
      last_was_cr_ = false;
      ++i;
      continue;
    }
    last_was_cr_ = false;
    // Find the next line end with memchr-speed scans (events are mostly long JSON lines).
    const char* start = bytes.data() + i;
    const size_t rest = bytes.size() - i;
    const void* lf = std::memchr(start, '\n', rest);
    const void* cr = std::memchr(start, '\r', lf ? static_cast<size_t>(static_cast<const char*>(lf) - start) : rest);
    const char* end = cr ? static_cast<const char*>(cr) : static_cast<const char*>(lf);
    if (end == nullptr) {
      line_.append(start, rest);
      return true;
    }
    const size_t len = static_cast<size_t>(end - start);
    bool keep_going;
    if (line_.empty()) {
      keep_going = process_line(std::string_view(start, len), sink);
    } else {
      line_.append(start, len);
      std::string line = std::move(line_);
      line_.clear();
      keep_going = process_line(line, sink);
    }
    i += len + 1;
    if (*end == '\r') {
      if (i < bytes.size()) {
        if (bytes[i] == '\n') ++i;
      } else {
        last_was_cr_ = true;
      }
    }
    if (!keep_going) return false;
  }
  return true;
}

bool SseParser::ends_inside_event() const {
  // The data the pending event would carry if its blank line came now (what process_line would
  // make of the unfinished line, then dispatch).
  const std::string_view line = line_;
  if (!line.empty() && line.front() != ':') {
    const size_t colon = line.find(':');
    if (line.substr(0, colon) == "data") {
      if (has_data_) return true;  // a second data line begun: the event's data is not [DONE]
      std::string_view value;
      if (colon != std::string_view::npos) value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return !is_done_marker(value);
    }
  }
  return has_data_ && !is_done_marker(data_);
}

bool SseParser::process_line(std::string_view line, const EventSink& sink) {
  if (line.empty()) {  // blank line: dispatch
    if (!has_data_) {
      event_.clear();
      return true;
    }
    SseEvent ev{std::move(event_), std::move(data_), id_};
    // The stream is text: its bytes are decoded as UTF-8 with U+FFFD for what is not (WHATWG),
    // per event, so a character split between two reads is whole again here.
    repair_utf8(ev.data);
    repair_json_surrogates(ev.data);  // and no escape of a lone surrogate (utf8.h)
    repair_utf8(ev.event);
    repair_utf8(ev.id);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return sink(std::move(ev));
  }
  if (line.front() == ':') return true;  // comment / keep-alive
  std::string_view field = line;
  std::string_view value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  }  // "retry" and unknown fields are ignored
  return true;
}

}  // namespace orroute
