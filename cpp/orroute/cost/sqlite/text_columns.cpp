#include "orroute/cost/sqlite/text_columns.h"

#include <cstdlib>
#include <sstream>

namespace orroute::sqlite {

std::vector<std::pair<int64_t, TimeUs>> decode_windows(const std::string& text) {
  std::vector<std::pair<int64_t, TimeUs>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string::npos) end = text.size();
    const size_t colon = text.find(':', pos);
    if (colon < end) {
      out.emplace_back(std::strtoll(text.c_str() + pos, nullptr, 10),
                       std::strtoll(text.c_str() + colon + 1, nullptr, 10));
    }
    pos = end + 1;
  }
  return out;
}

std::string encode_thresholds(const std::vector<int32_t>& t) {
  std::string out;
  for (const int32_t v : t) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

std::vector<int32_t> decode_thresholds(const std::string& s) {
  std::vector<int32_t> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(static_cast<int32_t>(std::stol(part)));
  }
  return out;
}

// ---- schema ------------------------------------------------------------------------------------

}  // namespace orroute::sqlite
