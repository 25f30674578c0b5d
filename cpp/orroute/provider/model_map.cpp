#include "orroute/provider/model_map.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace orroute {

namespace {

// The author whose models a first-party provider serves.
std::string_view author_for(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kAnthropic:
      return "anthropic";
    case ProviderKind::kOpenAI:
    case ProviderKind::kAzure:
      return "openai";
    case ProviderKind::kGemini:
      return "google";
    default:
      return "";
  }
}

std::string hyphenate(std::string s) {
  std::replace(s.begin(), s.end(), '.', '-');
  return s;
}

// The trailing date of a canonical slug ("...-20250929" or "...-2024-08-06"), or "".
std::string trailing_date(std::string_view slug) {
  auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  };
  if (slug.size() > 9 && slug[slug.size() - 9] == '-' && digits(slug.substr(slug.size() - 8))) {
    return std::string(slug.substr(slug.size() - 8));
  }
  return "";
}

}  // namespace

void ModelMap::set(std::string_view model, std::string_view provider, std::string_view native) {
  const std::string p(provider);
  auto& slot = forward_[{std::string(model), p}];
  if (!slot.empty()) {
    const auto it = reverse_.find({slot, p});
    if (it != reverse_.end() && it->second == model) reverse_.erase(it);
  }
  slot = std::string(native);
  reverse_.emplace(Key{std::string(native), p}, std::string(model));
}

size_t ModelMap::derive(const ModelCatalog& catalog, const ProviderPrices& prices, std::string_view provider,
                        ProviderKind kind) {
  const std::string p(provider);
  const std::string_view author = author_for(kind);
  size_t added = 0;
  for (const ModelInfo& m : catalog) {
    if (!m.variant().empty()) continue;
    if (forward_.count({m.id, p}) != 0) continue;
    if (kind == ProviderKind::kOpenRouter) {
      set(m.id, p, m.id);
      ++added;
      continue;
    }
    if (author.empty() || m.provider() != author) continue;
    const std::string name = m.id.substr(m.id.find('/') + 1);
    std::vector<std::string> candidates{name, hyphenate(name)};
    const std::string date = trailing_date(m.canonical_slug);
    if (!date.empty()) candidates.push_back(hyphenate(name) + "-" + date);
    if (!m.canonical_slug.empty()) {
      const std::string canon = m.canonical_slug.substr(m.canonical_slug.find('/') + 1);
      candidates.push_back(canon);
      candidates.push_back(hyphenate(canon));
    }
    for (const auto& c : candidates) {
      if (prices.find(c) != nullptr) {
        set(m.id, p, c);
        ++added;
        break;
      }
    }
  }
  return added;
}

std::optional<std::string> ModelMap::native(std::string_view model, std::string_view provider) const {
  const auto it = forward_.find({std::string(model), std::string(provider)});
  if (it == forward_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> ModelMap::model_for(std::string_view provider, std::string_view native) const {
  const auto it = reverse_.find({std::string(native), std::string(provider)});
  if (it == reverse_.end()) return std::nullopt;
  return it->second;
}

}  // namespace orroute
