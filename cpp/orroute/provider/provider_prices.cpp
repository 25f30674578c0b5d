#include "orroute/provider/provider_prices.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>

#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/provider/json_read.h"

namespace orroute {

namespace {

// Field of LiteLLM's table -> the PriceSet member it fills.
struct FieldMap {
  std::string_view name;
  std::optional<Money> PriceSet::*optional_member;
  Money PriceSet::*member;
};

const FieldMap kFields[] = {
    {"input_cost_per_token", nullptr, &PriceSet::prompt},
    {"output_cost_per_token", nullptr, &PriceSet::completion},
    {"cache_read_input_token_cost", &PriceSet::input_cache_read, nullptr},
    {"cache_creation_input_token_cost", &PriceSet::input_cache_write, nullptr},
    {"cache_creation_input_token_cost_above_1hr", &PriceSet::input_cache_write_1h, nullptr},
    {"output_cost_per_reasoning_token", &PriceSet::internal_reasoning, nullptr},
    {"input_cost_per_audio_token", &PriceSet::audio, nullptr},
};

// The price as exact decimal text (the document keeps numbers as strings).
std::optional<Money> price(const rapidjson::Value& v) {
  if (!v.IsString()) return std::nullopt;
  const Money m = Money::parse(std::string_view(v.GetString(), v.GetStringLength()));  // throws on junk
  if (m.is_negative()) throw InvalidArgument("negative price");
  if (m > kMaxUnitPrice) throw InvalidArgument("price above $" + kMaxUnitPrice.to_string() + " per unit");
  return m;
}

void assign(PriceSet& set, const FieldMap& f, Money m) {
  if (f.member != nullptr) {
    set.*(f.member) = m;
  } else {
    set.*(f.optional_member) = m;
  }
}

// "input_cost_per_token_above_200k_tokens" -> ("input_cost_per_token", 200000).
std::optional<std::pair<std::string_view, int64_t>> split_tier(std::string_view key) {
  const size_t at = key.rfind("_above_");
  if (at == std::string_view::npos || key.size() < at + 7 + 8) return std::nullopt;
  std::string_view rest = key.substr(at + 7);
  if (rest.substr(rest.size() - 8) != "k_tokens") return std::nullopt;
  rest.remove_suffix(8);
  int64_t k = 0;
  const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), k);
  if (ec != std::errc() || p != rest.data() + rest.size() || k <= 0 || k > 100'000'000) return std::nullopt;
  return std::make_pair(key.substr(0, at), k * 1000);
}

}  // namespace

ProviderPrices ProviderPrices::from_litellm_json(std::string_view json, std::string_view litellm_provider) {
  rapidjson::Document doc;
  if (const JsonParse st = parse_json_text<rapidjson::kParseNumbersAsStringsFlag>(json, doc); st != JsonParse::kOk) {
    throw ParseError(std::string("LiteLLM price table: ") + json_parse_reason(st));
  }
  if (!doc.IsObject()) throw ParseError("LiteLLM price table: not a JSON object");
  ProviderPrices book;
  const std::string prefix = std::string(litellm_provider) + "/";
  for (const auto& entry : doc.GetObject()) {
    const rapidjson::Value& e = entry.value;
    if (json_string(e, "litellm_provider") != litellm_provider) continue;
    if (const auto mode = json_string(e, "mode"); mode && *mode != "chat") continue;
    std::string name(entry.name.GetString(), entry.name.GetStringLength());
    if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
    if (name.empty()) continue;
    try {
      Pricing p;
      bool has_prompt = false, has_completion = false;
      std::map<int64_t, std::vector<std::pair<const FieldMap*, Money>>> tier_fields;
      for (const auto& field : e.GetObject()) {
        const std::string_view key(field.name.GetString(), field.name.GetStringLength());
        for (const FieldMap& f : kFields) {
          if (key == f.name) {
            if (auto m = price(field.value)) {
              assign(p.base, f, *m);
              has_prompt |= f.member == &PriceSet::prompt;
              has_completion |= f.member == &PriceSet::completion;
            }
          }
        }
        if (const auto tier = split_tier(key)) {
          for (const FieldMap& f : kFields) {
            if (tier->first == f.name) {
              if (auto m = price(field.value)) tier_fields[tier->second].emplace_back(&f, *m);
            }
          }
        }
      }
      if (!has_prompt || !has_completion) continue;  // not priced per token (images, per-second...)
      for (const auto& [threshold, fields] : tier_fields) {
        PriceTier t;
        t.min_prompt_tokens = threshold + 1;  // "above 200k" = from 200,001 prompt tokens
        t.prices = p.base;
        for (const auto& [f, m] : fields) assign(t.prices, *f, m);
        p.tiers.push_back(std::move(t));
      }
      book.prices_.emplace(std::move(name), std::move(p));  // the first key of a name wins
    } catch (const Error& err) {
      book.warnings_.push_back("model '" + name + "': " + err.what());
    }
  }
  return book;
}

void ProviderPrices::set(std::string model, Pricing pricing) { prices_[std::move(model)] = std::move(pricing); }

const Pricing* ProviderPrices::find(std::string_view model) const {
  const auto it = prices_.find(model);
  return it == prices_.end() ? nullptr : &it->second;
}

}  // namespace orroute
