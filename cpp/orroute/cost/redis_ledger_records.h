// How the Redis ledger writes values: money as decimal attodollar strings (exact at any size),
// and budgets as length-prefixed field records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/cost/ledger.h"

namespace orroute::redis_ledger {

// `m` in attodollars as a decimal string ("-12").
std::string units_string(Money m);
// The Money of a units_string(). Throws Error if `s` is not one ("" is zero).
Money parse_units(std::string_view s);

// Tags are stored with encode_tags() (ledger.h): the scripts match a tag budget by searching
// "\nk=v\n" in "\n" + tags.

// Length-prefixed fields ("3:abc0:"): any bytes survive.
void put_field(std::string& out, std::string_view f);
// The fields of a put_field() record. Throws Error if it is corrupt.
std::vector<std::string> split_fields(std::string_view s);

// The key a budget is found by: its scope and window.
std::string budget_identity(const BudgetScope& scope, Window w);
std::string encode_budget(const BudgetSpec& b);
// Throws Error if `text` is not an encode_budget() record.
Budget decode_budget(int64_t id, std::string_view text);

}  // namespace orroute::redis_ledger
