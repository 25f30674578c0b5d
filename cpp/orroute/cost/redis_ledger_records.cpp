#include "orroute/cost/redis_ledger_records.h"

#include <algorithm>
#include <cstdlib>

#include "orroute/error.h"

namespace orroute::redis_ledger {

namespace {

__extension__ typedef unsigned __int128 UInt128;

}  // namespace

std::string units_string(Money m) {
  const Int128 v = m.units();
  const bool neg = v < 0;
  UInt128 u = neg ? static_cast<UInt128>(-(v + 1)) + 1 : static_cast<UInt128>(v);
  std::string out;
  do {
    out.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  } while (u != 0);
  if (neg) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

Money parse_units(std::string_view s) {
  if (s.empty()) return Money();
  bool neg = false;
  size_t i = 0;
  if (s[0] == '-') {
    neg = true;
    i = 1;
  }
  Int128 v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') throw Error("redis ledger: bad amount '" + std::string(s) + "'");
    v = v * 10 + (s[i] - '0');
  }
  return Money::from_units(neg ? -v : v);
}

void put_field(std::string& out, std::string_view f) {
  out += std::to_string(f.size());
  out += ':';
  out += f;
}

std::vector<std::string> split_fields(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t colon = s.find(':', pos);
    if (colon == std::string_view::npos) throw Error("redis ledger: corrupt budget record");
    const size_t len = std::strtoull(std::string(s.substr(pos, colon - pos)).c_str(), nullptr, 10);
    if (colon + 1 + len > s.size()) throw Error("redis ledger: corrupt budget record");
    out.emplace_back(s.substr(colon + 1, len));
    pos = colon + 1 + len;
  }
  return out;
}

std::string budget_identity(const BudgetScope& scope, Window w) {
  std::string out;
  put_field(out, to_string(scope.kind));
  put_field(out, scope.key);
  put_field(out, scope.value);
  put_field(out, to_string(w));
  return out;
}

std::string encode_budget(const BudgetSpec& b) {
  std::string out;
  put_field(out, to_string(b.scope.kind));
  put_field(out, b.scope.key);
  put_field(out, b.scope.value);
  put_field(out, to_string(b.window));
  put_field(out, b.time_zone.empty() ? "UTC" : b.time_zone);
  put_field(out, units_string(b.limit));
  put_field(out, to_string(b.policy));
  std::string t;
  for (const int32_t v : b.thresholds_pct) {
    if (!t.empty()) t += ',';
    t += std::to_string(v);
  }
  put_field(out, t);
  return out;
}

Budget decode_budget(int64_t id, std::string_view text) {
  const auto f = split_fields(text);
  if (f.size() != 8) throw Error("redis ledger: corrupt budget record");
  Budget b;
  b.id = id;
  b.scope.kind = parse_scope_kind(f[0]);
  b.scope.key = f[1];
  b.scope.value = f[2];
  b.window = parse_window(f[3]);
  b.time_zone = f[4];
  b.limit = parse_units(f[5]);
  b.policy = parse_policy(f[6]);
  b.thresholds_pct.clear();
  size_t pos = 0;
  const std::string& t = f[7];
  while (pos < t.size()) {
    size_t comma = t.find(',', pos);
    if (comma == std::string::npos) comma = t.size();
    if (comma > pos) b.thresholds_pct.push_back(std::stoi(t.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return b;
}

}  // namespace orroute::redis_ledger
