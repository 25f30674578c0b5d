#include "orroute/catalog/catalog.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/utf8.h"

namespace orroute {
namespace {

using rapidjson::Value;

// Why an entry (or a field of it) is unusable: `field` is a dotted path inside the entry.
struct EntryError {
  std::string field;
  std::string why;
};

[[noreturn]] void fail(std::string field, std::string why) {
  throw EntryError{std::move(field), std::move(why)};
}

// Numbers are parsed as strings (kParseNumbersAsStringsFlag) so prices given as JSON numbers keep
// their exact decimal text; integers are therefore read back from that text here.
std::optional<int64_t> opt_int(const Value& obj, const char* key, const std::string& field) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) fail(field, "not an integer");
  const std::string_view s(it->value.GetString(), it->value.GetStringLength());
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    // Accept integral values written with a fraction or exponent ("128000.0", "1e6").
    try {
      const Int128 one = Money::dollars(1).units();
      const Int128 u = Money::parse(s).units();
      if (u % one == 0 && u / one <= INT64_MAX && u / one >= INT64_MIN) {
        return static_cast<int64_t>(u / one);
      }
    } catch (const InvalidArgument&) {
    }
    fail(field, "not an integer ('" + std::string(s) + "')");
  }
  return v;
}

std::optional<std::string> opt_string(const Value& obj, const char* key, const std::string& field) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) fail(field, "not a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<bool> opt_bool(const Value& obj, const char* key, const std::string& field) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsBool()) fail(field, "not a boolean");
  return it->value.GetBool();
}

std::vector<std::string> string_list(const Value& obj, const char* key, const std::string& field) {
  std::vector<std::string> out;
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return out;
  if (!it->value.IsArray()) fail(field, "not an array of strings");
  for (const Value& v : it->value.GetArray()) {
    if (!v.IsString()) fail(field, "not an array of strings");
    out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return out;
}

const Value* opt_object(const Value& obj, const char* key, const std::string& field) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  if (!it->value.IsObject()) fail(field, "not an object");
  return &it->value;
}

// Prices: "-1" marks a dynamic (router) price; any other negative amount is an error.
struct PriceText {
  std::optional<Money> value;
  bool dynamic = false;
};

PriceText price(const Value& obj, const char* key, const std::string& field) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return {};
  if (!it->value.IsString()) fail(field, "not a decimal string");
  const std::string_view s(it->value.GetString(), it->value.GetStringLength());
  Money m;
  try {
    m = Money::parse(s);
  } catch (const InvalidArgument&) {
    fail(field, "not a decimal string ('" + std::string(s) + "')");
  }
  if (m == -Money::dollars(1)) return {Money(), true};
  if (m.is_negative()) fail(field, "negative price ('" + std::string(s) + "')");
  if (m > kMaxUnitPrice) fail(field, "price above $" + kMaxUnitPrice.to_string() + " per unit ('" + std::string(s) + "')");
  return {m, false};
}

// Applies every price key present in `obj` onto `set`. Returns true if any price was "-1".
bool read_prices(const Value& obj, PriceSet& set, const std::string& prefix) {
  bool dynamic = false;
  const auto req = [&](const char* key, Money& slot) {
    const PriceText p = price(obj, key, prefix + key);
    dynamic |= p.dynamic;
    if (p.value) slot = *p.value;
  };
  const auto opt = [&](const char* key, std::optional<Money>& slot) {
    const PriceText p = price(obj, key, prefix + key);
    dynamic |= p.dynamic;
    if (p.value) slot = p.value;
  };
  req("prompt", set.prompt);
  req("completion", set.completion);
  opt("request", set.request);
  opt("image", set.image);
  opt("web_search", set.web_search);
  opt("internal_reasoning", set.internal_reasoning);
  opt("input_cache_read", set.input_cache_read);
  opt("input_cache_write", set.input_cache_write);
  opt("input_cache_write_1h", set.input_cache_write_1h);
  opt("audio", set.audio);
  opt("audio_output", set.audio_output);
  opt("image_output", set.image_output);
  opt("image_token", set.image_token);
  opt("input_audio_cache", set.input_audio_cache);
  return dynamic;
}

constexpr std::string_view kPriceKeys[] = {
    "prompt",     "completion",         "request",          "image",
    "web_search", "internal_reasoning", "input_cache_read", "input_cache_write",
    "input_cache_write_1h", "audio", "audio_output", "image_output", "image_token",
    "input_audio_cache"};

bool is_price_key(std::string_view k) {
  return std::find(std::begin(kPriceKeys), std::end(kPriceKeys), k) != std::end(kPriceKeys);
}

Pricing read_pricing(const Value& entry, std::vector<std::string>& soft_warnings) {
  const Value* obj = opt_object(entry, "pricing", "pricing");
  if (obj == nullptr) fail("pricing", "missing");
  // Prompt and completion prices must be listed: a null one would price those tokens at $0 and
  // leave them out of every reservation ("0" says free).
  for (const char* key : {"prompt", "completion"}) {
    const auto it = obj->FindMember(key);
    if (it == obj->MemberEnd()) fail(std::string("pricing.") + key, "missing");
    if (it->value.IsNull()) fail(std::string("pricing.") + key, "null");
  }
  Pricing p;
  p.dynamic = read_prices(*obj, p.base, "pricing.");
  if (const auto it = obj->FindMember("discount"); it != obj->MemberEnd() && it->value.IsString()) {
    p.discount = std::string(it->value.GetString(), it->value.GetStringLength());
  }
  const auto ov = obj->FindMember("overrides");
  if (ov == obj->MemberEnd() || ov->value.IsNull()) return p;
  if (!ov->value.IsArray()) fail("pricing.overrides", "not an array");
  size_t i = 0;
  for (const Value& o : ov->value.GetArray()) {
    const std::string prefix = "pricing.overrides[" + std::to_string(i++) + "].";
    if (!o.IsObject()) fail(prefix.substr(0, prefix.size() - 1), "not an object");
    PriceTier tier;
    tier.prices = p.base;
    tier.min_prompt_tokens = opt_int(o, "min_prompt_tokens", prefix + "min_prompt_tokens");
    if (const auto v = opt_int(o, "utc_start", prefix + "utc_start")) {
      tier.utc_start = static_cast<int32_t>(*v);
    }
    if (const auto v = opt_int(o, "utc_end", prefix + "utc_end")) {
      tier.utc_end = static_cast<int32_t>(*v);
    }
    p.dynamic |= read_prices(o, tier.prices, prefix);
    // A condition we do not understand could make the tier apply when it should not: drop it.
    std::string unknown;
    for (const auto& m : o.GetObject()) {
      const std::string_view k(m.name.GetString(), m.name.GetStringLength());
      if (!is_price_key(k) && k != "min_prompt_tokens" && k != "utc_start" && k != "utc_end") {
        unknown = std::string(k);
      }
    }
    if (!unknown.empty()) {
      soft_warnings.push_back(prefix + unknown + ": unknown override condition, tier ignored");
      continue;
    }
    p.tiers.push_back(std::move(tier));
  }
  return p;
}

ModelInfo read_model(const Value& e, std::vector<std::string>& soft) {
  ModelInfo m;
  // Informational strings: a wrong type is noted and the field left empty; the entry stays.
  const auto info = [&](const char* key) -> std::optional<std::string> {
    try {
      return opt_string(e, key, key);
    } catch (const EntryError& err) {
      soft.push_back(err.field + ": " + err.why + ", ignored");
      return std::nullopt;
    }
  };
  m.canonical_slug = info("canonical_slug").value_or("");
  m.name = info("name").value_or(m.id);
  m.description = info("description").value_or("");
  m.hugging_face_id = info("hugging_face_id");
  m.expiration_date = info("expiration_date");
  m.knowledge_cutoff = info("knowledge_cutoff");
  try {
    m.created = opt_int(e, "created", "created").value_or(0);
  } catch (const EntryError& err) {
    soft.push_back(err.field + ": " + err.why + ", ignored");
  }
  // Fields that drive selection and billing: a wrong type skips the entry.
  const auto ctx = opt_int(e, "context_length", "context_length");
  if (ctx && *ctx < 0) fail("context_length", "negative");
  m.context_length = ctx.value_or(0);
  if (const Value* arch = opt_object(e, "architecture", "architecture")) {
    m.modality = opt_string(*arch, "modality", "architecture.modality").value_or("");
    m.input_modalities = string_list(*arch, "input_modalities", "architecture.input_modalities");
    m.output_modalities = string_list(*arch, "output_modalities", "architecture.output_modalities");
    m.tokenizer = opt_string(*arch, "tokenizer", "architecture.tokenizer").value_or("Other");
    m.instruct_type = opt_string(*arch, "instruct_type", "architecture.instruct_type");
  }
  // Older listings only have the "in->out" modality string; derive the lists from it.
  if (m.input_modalities.empty() && m.output_modalities.empty()) {
    const std::string mod = m.modality.empty() ? "text->text" : m.modality;
    const auto arrow = mod.find("->");
    const auto split = [](std::string_view s) {
      std::vector<std::string> v;
      while (!s.empty()) {
        const auto plus = s.find('+');
        v.emplace_back(s.substr(0, plus));
        if (plus == std::string_view::npos) break;
        s.remove_prefix(plus + 1);
      }
      return v;
    };
    if (arrow != std::string::npos) {
      m.input_modalities = split(std::string_view(mod).substr(0, arrow));
      m.output_modalities = split(std::string_view(mod).substr(arrow + 2));
    }
  }
  if (m.tokenizer.empty()) m.tokenizer = "Other";
  if (const Value* top = opt_object(e, "top_provider", "top_provider")) {
    m.top_provider_context_length =
        opt_int(*top, "context_length", "top_provider.context_length");
    m.max_completion_tokens =
        opt_int(*top, "max_completion_tokens", "top_provider.max_completion_tokens");
    if (m.max_completion_tokens && *m.max_completion_tokens < 0) {
      fail("top_provider.max_completion_tokens", "negative");
    }
    m.is_moderated = opt_bool(*top, "is_moderated", "top_provider.is_moderated").value_or(false);
  }
  if (const Value* lim = opt_object(e, "per_request_limits", "per_request_limits")) {
    m.per_request_prompt_tokens = opt_int(*lim, "prompt_tokens", "per_request_limits.prompt_tokens");
    m.per_request_completion_tokens =
        opt_int(*lim, "completion_tokens", "per_request_limits.completion_tokens");
  }
  m.supported_parameters = string_list(e, "supported_parameters", "supported_parameters");
  std::sort(m.supported_parameters.begin(), m.supported_parameters.end());
  try {
    if (const Value* r = opt_object(e, "reasoning", "reasoning")) {
      ReasoningInfo ri;
      ri.mandatory = opt_bool(*r, "mandatory", "reasoning.mandatory").value_or(false);
      ri.default_enabled = opt_bool(*r, "default_enabled", "reasoning.default_enabled").value_or(false);
      ri.supported_efforts = string_list(*r, "supported_efforts", "reasoning.supported_efforts");
      ri.default_effort = opt_string(*r, "default_effort", "reasoning.default_effort");
      ri.supports_max_tokens = opt_bool(*r, "supports_max_tokens", "reasoning.supports_max_tokens");
      m.reasoning = std::move(ri);
    }
  } catch (const EntryError& err) {
    soft.push_back(err.field + ": " + err.why + ", ignored");
  }
  m.pricing = read_pricing(e, soft);
  return m;
}

}  // namespace

std::string_view ModelInfo::provider() const {
  std::string_view s = id;
  if (!s.empty() && s.front() == '~') s.remove_prefix(1);
  const auto slash = s.find('/');
  return slash == std::string_view::npos ? std::string_view() : s.substr(0, slash);
}

std::string_view ModelInfo::variant() const {
  const auto colon = id.rfind(':');
  return colon == std::string::npos ? std::string_view() : std::string_view(id).substr(colon + 1);
}

bool ModelInfo::supports_parameter(std::string_view p) const {
  return std::binary_search(supported_parameters.begin(), supported_parameters.end(), p,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

bool ModelInfo::has_input(std::string_view mod) const {
  return std::find(input_modalities.begin(), input_modalities.end(), mod) != input_modalities.end();
}

bool ModelInfo::has_output(std::string_view mod) const {
  return std::find(output_modalities.begin(), output_modalities.end(), mod) !=
         output_modalities.end();
}

bool ModelInfo::is_free() const { return variant() == "free" || pricing.is_zero(); }

ModelCatalog ModelCatalog::from_json(std::string_view json) {
  return from_text(std::string(json));
}

// The parse proper, on a buffer it owns: the document's strings are decoded in place (one copy of
// the text instead of one per string).
ModelCatalog ModelCatalog::from_text(std::string json) {
  rapidjson::Document doc;
  if (const JsonParse st = parse_json_in_place<rapidjson::kParseNumbersAsStringsFlag>(json, doc);
      st == JsonParse::kTooLarge || st == JsonParse::kTooDeep) {
    throw ParseError(std::string("not a models response: ") + json_parse_reason(st));
  }
  if (doc.HasParseError()) {
    throw ParseError("not a models response: invalid JSON at offset " +
                     std::to_string(doc.GetErrorOffset()) + ": " +
                     rapidjson::GetParseError_En(doc.GetParseError()));
  }
  const Value* data = nullptr;
  if (doc.IsArray()) {
    data = &doc;
  } else if (doc.IsObject()) {
    const auto it = doc.FindMember("data");
    if (it != doc.MemberEnd() && it->value.IsArray()) data = &it->value;
  }
  if (data == nullptr) {
    std::string what = doc.IsObject() ? "a JSON object without a \"data\" array" : "not an object";
    if (doc.IsObject() && doc.HasMember("error")) what = "an error response";
    throw ParseError("not a models response (expected {\"data\": [models...]}): got " + what);
  }
  ModelCatalog cat;
  cat.models_.reserve(data->Size());
  size_t i = 0;
  for (const Value& e : data->GetArray()) {
    const size_t pos = i++;
    std::string label = "entry #" + std::to_string(pos);
    if (!e.IsObject()) {
      cat.warnings_.push_back(label + ": not an object, skipped");
      continue;
    }
    const auto id_it = e.FindMember("id");
    if (id_it == e.MemberEnd() || !id_it->value.IsString() || id_it->value.GetStringLength() == 0) {
      cat.warnings_.push_back(label + ": id: missing or not a string, skipped");
      continue;
    }
    std::string id(id_it->value.GetString(), id_it->value.GetStringLength());
    label = "model '" + id + "'";
    if (cat.index_.count(id) != 0) {
      cat.warnings_.push_back(label + ": id: duplicate, later entry skipped");
      continue;
    }
    std::vector<std::string> soft;
    try {
      ModelInfo m = read_model(e, soft);
      m.id = id;
      if (m.name.empty()) m.name = id;
      m.capabilities = derive_capabilities(m);
      cat.index_.emplace(id, cat.models_.size());
      cat.models_.push_back(std::move(m));
    } catch (const EntryError& err) {
      cat.warnings_.push_back(label + ": " + err.field + ": " + err.why + ", skipped");
    }
    for (const std::string& w : soft) cat.warnings_.push_back(label + ": " + w);
  }
  return cat;
}

ModelCatalog ModelCatalog::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read model catalog file '" + path + "'");
  std::string text;
  // Room for the whole file at once (growing by doubling would copy it and fault in twice the
  // pages); a size that cannot be read is only a missed hint.
  if (in.seekg(0, std::ios::end)) {
    if (const std::streamoff size = in.tellg(); size > 0) text.reserve(static_cast<size_t>(size));
  }
  in.clear();
  in.seekg(0, std::ios::beg);
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw InvalidArgument("cannot read model catalog file '" + path + "'");
  try {
    return from_text(std::move(text));
  } catch (const ParseError& e) {
    throw ParseError("'" + path + "': " + e.what());
  }
}

const ModelInfo* ModelCatalog::find(std::string_view id) const {
  const auto it = index_.find(id);
  return it == index_.end() ? nullptr : &models_[it->second];
}

namespace {

// The part of an id after the provider and before any ":variant" ("openai/gpt-4o:free" -> "gpt-4o").
std::string_view id_stem(std::string_view id) {
  const auto slash = id.find('/');
  std::string_view stem = id.substr(slash == std::string_view::npos ? 0 : slash + 1);
  return stem.substr(0, stem.find(':'));
}

// Levenshtein distance, case-sensitive; only used on the error path of `at`.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::vector<std::string> ModelCatalog::nearest_ids(std::string_view id, size_t n) const {
  // Ids whose stem contains the query's stem first (in catalog order); when none do, the ids
  // whose stems are closest by edit distance (so a retired name like "claude-3-sonnet" still
  // points at its successors), ties broken by catalog order.
  const std::string_view stem = id_stem(id);
  std::vector<std::string> out;
  if (stem.empty() || n == 0) return out;
  for (const ModelInfo& m : models_) {
    if (m.id.find(stem) != std::string::npos) out.push_back(m.id);
    if (out.size() == n) return out;
  }
  if (!out.empty()) return out;
  std::vector<std::pair<size_t, size_t>> scored;  // (distance, catalog index)
  scored.reserve(models_.size());
  for (size_t i = 0; i < models_.size(); ++i) {
    scored.emplace_back(edit_distance(stem, id_stem(models_[i].id)), i);
  }
  const size_t k = std::min(n, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end());
  for (size_t i = 0; i < k; ++i) {
    // A suggestion that shares less than half its letters with the query is noise.
    if (scored[i].first * 2 > stem.size()) break;
    out.push_back(models_[scored[i].second].id);
  }
  return out;
}

const ModelInfo& ModelCatalog::at(std::string_view id) const {
  if (const ModelInfo* m = find(id)) return *m;
  std::string close;
  for (const std::string& c : nearest_ids(id, 3)) close += (close.empty() ? "" : ", ") + c;
  throw NotFound("unknown model '" + client_text(id) + "'" +
                 (close.empty() ? std::string(" (not in the catalog)") : "; did you mean: " + close));
}

std::vector<const ModelInfo*> ModelCatalog::filter(const ModelFilter& f) const {
  std::vector<const ModelInfo*> out;
  for (const ModelInfo& m : models_) {
    if ((m.capabilities & f.capabilities) != f.capabilities) continue;
    if (m.pricing.dynamic && !f.include_dynamic) continue;
    if (f.max_prompt_price_per_mtok &&
        (m.pricing.dynamic || m.pricing.base.prompt * 1'000'000 > *f.max_prompt_price_per_mtok)) {
      continue;
    }
    if (f.max_completion_price_per_mtok &&
        (m.pricing.dynamic ||
         m.pricing.base.completion * 1'000'000 > *f.max_completion_price_per_mtok)) {
      continue;
    }
    if (f.min_context && m.context_length < *f.min_context) continue;
    if (!f.providers.empty() &&
        std::find(f.providers.begin(), f.providers.end(), m.provider()) == f.providers.end()) {
      continue;
    }
    if (f.free && m.is_free() != *f.free) continue;
    out.push_back(&m);
  }
  return out;
}

Money ModelCatalog::cost(std::string_view model_id, const UsageCounts& usage) const {
  const ModelInfo& m = at(model_id);
  return price_call(m.pricing, usage, m.id);
}

Money ModelCatalog::worst_case(std::string_view model_id, int64_t prompt_tokens,
                               std::optional<int64_t> max_output_tokens, int64_t requests,
                               bool may_write_cache) const {
  const ModelInfo& m = at(model_id);
  int64_t out = 0;
  if (max_output_tokens) {
    out = *max_output_tokens;
  } else if (m.max_completion_tokens) {
    out = *m.max_completion_tokens;
  } else {
    out = std::max<int64_t>(m.context_length - prompt_tokens, 0);
  }
  return worst_case_cost(m.pricing, prompt_tokens, out, requests, 0, 0, may_write_cache, m.id);
}

}  // namespace orroute
