// Quality priors: per-model and per-family scores in [0, 1] by category (coding, math, ...), derived
// from public ratings by tools/derive_priors.py and shipped as python/orroute/data/quality_priors.json.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace orroute {

// Categories of the prior table, in this order.
enum class QualityCategory : int {
  kOverall = 0,
  kCoding,
  kMath,
  kInstructionFollowing,
  kCreative,
  kHardPrompts,
};
inline constexpr int kNumQualityCategories = 6;
// "overall", "coding", "math", "instruction_following", "creative", "hard_prompts".
std::string_view quality_category_name(QualityCategory c);

// Scores of one model; a NaN entry means "not rated in this category" (callers fall back to overall).
struct QualityScores {
  std::array<double, kNumQualityCategories> score{};
  std::string source;  // where the numbers come from ("lmarena:...", "family of x/y", "tier default")
  // Score in `c`, or overall if `c` is not rated, or nullopt if neither is.
  std::optional<double> get(QualityCategory c) const;
};

// The prior table. Immutable after construction (merge() returns a new table); thread-safe to read.
class QualityPriors {
 public:
  QualityPriors() = default;
  // Parses the JSON written by tools/derive_priors.py ({"models": {...}, "families": {...},
  // "tier_defaults": {...}}; every section optional). Throws ParseError naming the bad entry.
  static QualityPriors from_json(std::string_view json);
  // A copy with `overrides`' models, families and tier defaults replacing ours (per id/category).
  QualityPriors merge(const QualityPriors& overrides) const;

  // Scores for `model_id`: the exact id (without "~" prefix and ":variant" suffix), else its
  // family (family_key), else nullopt.
  std::optional<QualityScores> lookup(std::string_view model_id) const;
  // Default scores of a price tier ("flagship", "premium", "standard", "economy"), if listed.
  std::optional<QualityScores> tier_default(std::string_view tier) const;
  size_t model_count() const { return models_.size(); }
  size_t family_count() const { return families_.size(); }

 private:
  std::map<std::string, QualityScores, std::less<>> models_;
  std::map<std::string, QualityScores, std::less<>> families_;
  std::map<std::string, QualityScores, std::less<>> tiers_;
};

// Provider + slug without version/date tokens: "anthropic/claude-opus-4.5" -> "anthropic/claude-opus".
// Same rule as family_key() in tools/derive_priors.py. Pure.
std::string family_key(std::string_view model_id);

}  // namespace orroute
