#include "orroute/net/keys.h"

#include <algorithm>

#include "orroute/net/protocol.h"

namespace orroute {

KeyRing::KeyRing(std::vector<std::string> keys) {
  for (auto& k : keys) {
    if (k.empty()) continue;
    if (std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == k; })) continue;
    entries_.push_back(Entry{std::move(k), 0});
  }
}

std::optional<std::string> KeyRing::next() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t n = 0; n < entries_.size(); ++n) {
    Entry& e = entries_[cursor_++ % entries_.size()];
    if (e.set_aside_status == 0) return e.key;
  }
  return std::nullopt;
}

size_t KeyRing::set_aside(const std::string& key, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t usable = 0;
  for (Entry& e : entries_) {
    if (e.key == key && e.set_aside_status == 0) e.set_aside_status = status;
    if (e.set_aside_status == 0) ++usable;
  }
  return usable;
}

size_t KeyRing::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t KeyRing::usable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.set_aside_status == 0; }));
}

std::string KeyRing::exhausted_message() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string msg = "no usable API key: all " + std::to_string(entries_.size()) +
                    (entries_.size() == 1 ? " key was" : " keys were") + " set aside after the server rejected them (";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i) msg += ", ";
    msg += mask_key(entries_[i].key) + ": " + std::to_string(entries_[i].set_aside_status);
  }
  return msg + ")";
}

std::vector<std::string> KeyRing::masked() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(mask_key(e.key));
  return out;
}

namespace {

// A character a key may hold: the only ones un-escaped before matching.
bool key_char(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
         c == '.' || c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// `text` with each \u00XX that spells a key character (and is not itself escaped: an odd run of
// backslashes ends in it) replaced by that character.
std::string unescape_key_chars(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '\\') {
      out.push_back(text[i++]);
      continue;
    }
    size_t run = 0;
    while (i + run < text.size() && text[i + run] == '\\') ++run;
    const size_t after = i + run;
    if (run % 2 == 1 && after + 5 <= text.size() && text[after] == 'u' && text[after + 1] == '0' &&
        text[after + 2] == '0' && hex_value(text[after + 3]) >= 0 && hex_value(text[after + 4]) >= 0) {
      const unsigned c = static_cast<unsigned>(hex_value(text[after + 3]) * 16 + hex_value(text[after + 4]));
      if (key_char(c)) {
        out.append(run - 1, '\\');
        out.push_back(static_cast<char>(c));
        i = after + 5;
        continue;
      }
    }
    out.append(run, '\\');
    i = after;
  }
  return out;
}

}  // namespace orroute
