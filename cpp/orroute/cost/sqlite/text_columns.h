// TEXT columns with lists: a reservation's budget windows ("budget:start;...") and a budget's
// alert thresholds ("50,80,100").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "orroute/cost/ledger.h"

namespace orroute::sqlite {

std::vector<std::pair<int64_t, TimeUs>> decode_windows(const std::string& text);
std::string encode_thresholds(const std::vector<int32_t>& t);
std::vector<int32_t> decode_thresholds(const std::string& s);

}  // namespace orroute::sqlite
