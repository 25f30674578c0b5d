#include "orroute/select/quality_priors.h"

#include <rapidjson/document.h>

#include <cmath>
#include <limits>
#include <vector>

#include "orroute/error.h"
#include "orroute/json.h"

namespace orroute {
namespace {

constexpr std::array<std::string_view, kNumQualityCategories> kCategoryNames{
    "overall", "coding", "math", "instruction_following", "creative", "hard_prompts"};

std::string_view base_id(std::string_view id) {
  if (!id.empty() && id.front() == '~') id.remove_prefix(1);
  return id.substr(0, id.find(':'));
}

void read_section(const rapidjson::Value& doc, const char* key,
                  std::map<std::string, QualityScores, std::less<>>& out) {
  const auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return;
  if (!it->value.IsObject()) throw ParseError(std::string("quality priors: '") + key + "' is not an object");
  for (const auto& entry : it->value.GetObject()) {
    const std::string name(entry.name.GetString(), entry.name.GetStringLength());
    if (!entry.value.IsObject()) {
      throw ParseError(std::string("quality priors: ") + key + "['" + name + "'] is not an object");
    }
    QualityScores s;
    s.score.fill(std::numeric_limits<double>::quiet_NaN());
    for (int c = 0; c < kNumQualityCategories; ++c) {
      const auto v = entry.value.FindMember(kCategoryNames[static_cast<size_t>(c)].data());
      if (v == entry.value.MemberEnd() || v->value.IsNull()) continue;
      if (!v->value.IsNumber() || v->value.GetDouble() < 0.0 || v->value.GetDouble() > 1.0) {
        throw ParseError(std::string("quality priors: ") + key + "['" + name + "']." +
                         std::string(kCategoryNames[static_cast<size_t>(c)]) +
                         " must be a number in [0, 1]");
      }
      s.score[static_cast<size_t>(c)] = v->value.GetDouble();
    }
    const auto src = entry.value.FindMember("source");
    s.source = src != entry.value.MemberEnd() && src->value.IsString() ? src->value.GetString()
                                                                       : std::string(key);
    out[name] = std::move(s);
  }
}

bool is_version_token(std::string_view t) {
  // ^v?\d[\d.]*[a-z]?$  but not a parameter size ^a?\d+(\.\d+)?[bm]$
  std::string_view s = t;
  if (!s.empty() && (s.back() == 'b' || s.back() == 'm')) {
    std::string_view core = s.substr(0, s.size() - 1);
    if (!core.empty() && core.front() == 'a') core.remove_prefix(1);
    if (!core.empty() && core.find_first_not_of("0123456789.") == std::string_view::npos &&
        std::isdigit(static_cast<unsigned char>(core.front()))) {
      return false;
    }
  }
  if (!s.empty() && s.front() == 'v') s.remove_prefix(1);
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == s.size()) return true;
  return i + 1 == s.size() && std::islower(static_cast<unsigned char>(s[i]));
}

}  // namespace

std::string_view quality_category_name(QualityCategory c) {
  return kCategoryNames[static_cast<size_t>(c)];
}

std::optional<double> QualityScores::get(QualityCategory c) const {
  const double v = score[static_cast<size_t>(c)];
  if (!std::isnan(v)) return v;
  const double o = score[0];
  if (!std::isnan(o)) return o;
  return std::nullopt;
}

QualityPriors QualityPriors::from_json(std::string_view json) {
  rapidjson::Document doc;
  if (parse_json_text(json, doc) != JsonParse::kOk || !doc.IsObject()) {
    throw ParseError("quality priors: not a JSON object");
  }
  QualityPriors p;
  read_section(doc, "models", p.models_);
  read_section(doc, "families", p.families_);
  read_section(doc, "tier_defaults", p.tiers_);
  return p;
}

QualityPriors QualityPriors::merge(const QualityPriors& o) const {
  QualityPriors out = *this;
  const auto over = [](auto& dst, const auto& src) {
    for (const auto& [k, v] : src) {
      auto it = dst.find(k);
      if (it == dst.end()) {
        dst[k] = v;
        continue;
      }
      for (size_t c = 0; c < v.score.size(); ++c) {
        if (!std::isnan(v.score[c])) it->second.score[c] = v.score[c];
      }
      it->second.source = v.source;
    }
  };
  over(out.models_, o.models_);
  over(out.families_, o.families_);
  over(out.tiers_, o.tiers_);
  return out;
}

std::optional<QualityScores> QualityPriors::lookup(std::string_view model_id) const {
  if (auto it = models_.find(model_id); it != models_.end()) return it->second;
  if (auto it = models_.find(base_id(model_id)); it != models_.end()) return it->second;
  if (auto it = families_.find(family_key(model_id)); it != families_.end()) return it->second;
  return std::nullopt;
}

std::optional<QualityScores> QualityPriors::tier_default(std::string_view tier) const {
  if (auto it = tiers_.find(tier); it != tiers_.end()) return it->second;
  return std::nullopt;
}

std::string family_key(std::string_view model_id) {
  const std::string_view id = base_id(model_id);
  const auto slash = id.find('/');
  const std::string_view provider = slash == std::string_view::npos ? "" : id.substr(0, slash);
  std::string_view slug = slash == std::string_view::npos ? id : id.substr(slash + 1);
  std::string lower(slug);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string out(provider);
  out += '/';
  bool first = true;
  std::string_view rest = lower;
  while (true) {
    const auto dash = rest.find('-');
    const std::string_view tok = rest.substr(0, dash);
    const bool drop = tok.empty() || tok == "latest" || tok == "preview" || tok == "exp" ||
                      tok == "experimental" || is_version_token(tok);
    if (!drop) {
      if (!first) out += '-';
      out += tok;
      first = false;
    }
    if (dash == std::string_view::npos) break;
    rest.remove_prefix(dash + 1);
  }
  return out;
}

}  // namespace orroute
