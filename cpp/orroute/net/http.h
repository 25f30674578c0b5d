// Plain HTTP values shared by the transport and the protocol layer: a request to send, the head of
// a response, and how a transfer ended. No libcurl types leak out of transport.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orroute {

// Response or request header fields in arrival order; names keep their case, look-ups ignore it.
struct Headers {
  std::vector<std::pair<std::string, std::string>> fields;

  // First value of `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> get(std::string_view name) const;
  void add(std::string name, std::string value) { fields.emplace_back(std::move(name), std::move(value)); }
};

// Timeouts of one transfer, in milliseconds; 0 means none.
struct Timeouts {
  int64_t connect_ms = 10'000;  // TCP + TLS handshake
  int64_t first_byte_ms = 0;    // from submit to the first byte of the response head
  // Longest gap between two pieces of the body (not counted while paused); bytes the sink calls
  // keep-alives (DataAction::kKeepAlive: SSE comments, pings) are no piece.
  int64_t idle_ms = 0;
  int64_t total_ms = 0;         // whole transfer
};

// A stream's default timeouts. The total deadline bounds how long an upstream can hold a call (and
// its budget reservation) by trickling an answer that never ends; the idle gap alone cannot. No
// stream goes without one: ApiClient gives a stream whose timeouts set no total its client's
// (this one unless the client was given another).
inline constexpr Timeouts kDefaultStreamTimeouts{10'000, 600'000, 600'000, 3'600'000};

// Header lines formatted once ("Name: value"; "Name;" for an empty value, which libcurl sends as
// "Name:") and shared by many requests: a client's constant headers. The transport links them
// into each request's header list instead of formatting and copying them for every call.
// Immutable after construction, safe to share across threads.
class HeaderLines {
 public:
  explicit HeaderLines(const Headers& headers);
  size_t size() const { return offsets_.size(); }
  // The i-th line, NUL-terminated; valid as long as this object.
  const char* line(size_t i) const { return text_.data() + offsets_[i]; }
  // Appends the line of one header, NUL-terminated, to `text`.
  static void append(std::string& text, std::string_view name, std::string_view value);
  // The bytes append() writes for one header.
  static size_t bytes(std::string_view name, std::string_view value) { return name.size() + value.size() + 3; }

 private:
  std::string text_;
  std::vector<size_t> offsets_;
};

struct HttpRequest {
  std::string method = "GET";  // GET, POST, DELETE, ...
  std::string url;
  // Sent in order; `shared`'s lines (if any) go between the first `shared_at` of these and the rest.
  Headers headers;
  std::shared_ptr<const HeaderLines> shared;
  size_t shared_at = 0;
  std::string body;  // sent as is (set Content-Type yourself)
  Timeouts timeouts;
  // False: the head of a 2xx response reaches the sink without its header fields (a caller that
  // reads a success's body only); any other status's fields are kept (an error reads them).
  bool keep_ok_headers = true;
};

// How a transfer ended, as a value (an HTTP error status is kOk here: the status says it).
enum class TransferStatus {
  kOk,            // a complete response was received (any status code)
  kConnectError,  // DNS, refused, TLS, reset or closed before a complete response
  kTimeout,       // one of the Timeouts expired (see TransferResult::timeout)
  kCancelled,     // Transport::cancel or the sink stopped it
};

enum class TimeoutKind { kNone, kConnect, kFirstByte, kIdle, kTotal };

struct TransferResult {
  TransferStatus status = TransferStatus::kOk;
  TimeoutKind timeout = TimeoutKind::kNone;
  int http_status = 0;     // 0 if no response head arrived
  std::string error;       // human-readable reason when status != kOk
  bool got_body = false;   // at least one body byte reached the sink
  // The whole request (head and body) went out: the server may be running it even if no answer
  // came back (what a cancelled or timed-out call may still be billed for).
  bool request_sent = false;
};

const char* to_string(TimeoutKind kind);

}  // namespace orroute
