#include "orroute/cost/call_pricing.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>

#include "orroute/cost/prompt_bounds.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/utf8.h"

namespace orroute {
namespace {

void scale_set(PriceSet& p, int64_t pct) {
  auto s = [pct](Money& m) { m = scale(m, pct, 100); };
  auto so = [pct](std::optional<Money>& m) {
    if (m) *m = scale(*m, pct, 100);
  };
  s(p.prompt);
  s(p.completion);
  for (auto* o : {&p.request, &p.image, &p.web_search, &p.internal_reasoning, &p.input_cache_read,
                  &p.input_cache_write, &p.input_cache_write_1h, &p.audio, &p.audio_output,
                  &p.image_output, &p.image_token, &p.input_audio_cache}) {
    so(*o);
  }
}

Pricing scaled(Pricing p, int64_t pct) {
  scale_set(p.base, pct);
  for (PriceTier& t : p.tiers) scale_set(t.prices, pct);
  return p;
}

// Every prompt token at the dearer of the text and the audio price (a prompt with audio in it:
// which of its tokens are audio is known only upstream).
Pricing with_audio_prompt(Pricing p) {
  auto raise = [](PriceSet& s) {
    if (s.audio) s.prompt = std::max(s.prompt, *s.audio);
  };
  raise(p.base);
  for (PriceTier& t : p.tiers) raise(t.prices);
  return p;
}

// Adds a per-request fee to every price set (the web plugin bills per request).
Pricing with_fee(Pricing p, Money fee) {
  auto add = [fee](PriceSet& s) { s.request = s.request.value_or(Money()) + fee; };
  add(p.base);
  for (PriceTier& t : p.tiers) add(t.prices);
  return p;
}

// The web plugin's fee for one request of `results` results: one fee per five (rounded up).
Money web_fee(const PricingPolicy& policy, const Pricing& p,
              int64_t results = RequestShape::kWebResultsPerFee) {
  const int64_t fees = (results + RequestShape::kWebResultsPerFee - 1) / RequestShape::kWebResultsPerFee;
  return std::max(policy.web_search_fee, p.base.web_search.value_or(Money())) * std::max<int64_t>(1, fees);
}

// The web plugin `plugin`'s max_results into `shape` (the largest asked for); anything but a
// whole number in [1, kMaxWebResults] leaves the request unbounded.
void read_web_results(const rapidjson::Value& plugin, RequestShape& shape) {
  auto it = plugin.FindMember("max_results");
  if (it == plugin.MemberEnd() || it->value.IsNull()) return;
  const rapidjson::Value& v = it->value;
  if (!v.IsInt64() || v.GetInt64() < 1 || v.GetInt64() > RequestShape::kMaxWebResults) {
    shape.unbounded = "the web plugin's max_results must be a whole number from 1 to " +
                      std::to_string(RequestShape::kMaxWebResults) + " (its fee is per result)";
    return;
  }
  shape.web_results = std::max(shape.web_results, v.GetInt64());
}

// An OpenRouter preset is applied upstream: its model, fallbacks, tools (server tools among them)
// and parameters are not in the request, so what the call may cost cannot be told here.
constexpr const char* kPresetRefusal =
    "an OpenRouter preset is applied upstream (its model, tools and parameters are not in the request), so "
    "the call's cost cannot be reserved; send the preset's settings in the request instead";

// The file-parser plugin `plugin`'s pdf.engine into `shape` (a name that is not a string leaves
// the request unbounded: which engine, and so which fee, could not be told).
void read_pdf_engine(const rapidjson::Value& plugin, RequestShape& shape) {
  auto pdf = plugin.FindMember("pdf");
  if (pdf == plugin.MemberEnd() || pdf->value.IsNull()) return;
  const rapidjson::Value* engine = nullptr;
  if (pdf->value.IsObject()) {
    auto it = pdf->value.FindMember("engine");
    if (it == pdf->value.MemberEnd() || it->value.IsNull()) return;  // none named
    engine = &it->value;
  }
  if (engine == nullptr || !engine->IsString()) {
    shape.unbounded = "the file-parser plugin's pdf.engine must be a string";
    return;
  }
  shape.pdf_engine.assign(engine->GetString(), engine->GetStringLength());
}

// The UTF-8 bytes of a message's tool calls' arguments (`tool_calls`: its member, null when absent).
int64_t tool_call_bytes(const rapidjson::Value* tool_calls) {
  int64_t n = 0;
  if (tool_calls == nullptr || !tool_calls->IsArray()) return n;
  for (const auto& call : tool_calls->GetArray()) {
    if (!call.IsObject()) continue;
    auto f = call.FindMember("function");
    if (f == call.MemberEnd() || !f->value.IsObject()) continue;
    auto args = f->value.FindMember("arguments");
    if (args != f->value.MemberEnd() && args->value.IsString()) n += args->value.GetStringLength();
  }
  return n;
}

// The image parts of the body's messages (`messages`: its member, null when absent) into
// shape.images (those at detail "low" also into low_detail_images), their text's bytes into
// shape.text_bytes, and the parts whose tokens the upstream alone can tell into
// shape.unsized_parts: a file (a PDF's text is extracted upstream, and may be far longer than its
// bytes), a video, an image at its original resolution.
void read_parts(const rapidjson::Value* messages, RequestShape& shape) {
  if (messages == nullptr || !messages->IsArray()) return;
  const auto text = [](const rapidjson::Value& v) {
    return v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view();
  };
  for (const auto& m : messages->GetArray()) {
    static constexpr std::array<std::string_view, 4> kRead = {"content", "reasoning", "reasoning_details",
                                                              "tool_calls"};
    const auto [content, reasoning, reasoning_details, tool_calls] = members_named(m, kRead);
    if (reasoning != nullptr || reasoning_details != nullptr) ++shape.replayed_reasoning;
    shape.text_bytes += tool_call_bytes(tool_calls);
    if (content != nullptr) shape.text_bytes += static_cast<int64_t>(text(*content).size());
    if (content == nullptr || !content->IsArray()) continue;
    for (const auto& part : content->GetArray()) {
      if (!part.IsObject()) continue;
      auto type_it = part.FindMember("type");
      const std::string_view type = type_it == part.MemberEnd() ? std::string_view() : text(type_it->value);
      if (type == "text") {
        auto t = part.FindMember("text");
        if (t != part.MemberEnd()) shape.text_bytes += static_cast<int64_t>(text(t->value).size());
      } else if (type == "image_url") {
        ++shape.images;
        auto image = part.FindMember("image_url");
        if (image != part.MemberEnd() && image->value.IsObject()) {
          auto detail = image->value.FindMember("detail");
          if (detail != image->value.MemberEnd() && text(detail->value) == "original") ++shape.unsized_parts;
          if (detail != image->value.MemberEnd() && text(detail->value) == "low") ++shape.low_detail_images;
        }
      } else if (type == "file" || type == "video_url" || type == "input_video" || type == "input_audio") {
        ++shape.unsized_parts;
        if (type == "file") ++shape.files;
        if (type == "input_audio") ++shape.audio_parts;
      }
    }
  }
}

// The output a request may be billed: each of its `n` completions up to max_tokens, plus the
// prediction's rejected tokens and a reasoning budget (saturating: a hostile n cannot wrap the bound).
int64_t output_bound(int64_t max_output_tokens, const RequestShape& shape) noexcept {
  int64_t per_choice = 0;
  int64_t total = 0;
  if (__builtin_add_overflow(max_output_tokens, shape.prediction_bytes, &per_choice) ||
      __builtin_add_overflow(per_choice, shape.reasoning_tokens, &per_choice) ||
      __builtin_mul_overflow(per_choice, shape.choices, &total)) {
    return std::numeric_limits<int64_t>::max() / 2;
  }
  return total;
}

// The bytes of the body's `prediction` text (its member, null when absent): {"type": "content",
// "content": a string or an array of {"type": "text", "text": ...} parts}.
int64_t prediction_bytes(const rapidjson::Value* prediction) {
  if (prediction == nullptr || !prediction->IsObject()) return 0;
  auto content = prediction->FindMember("content");
  if (content == prediction->MemberEnd()) return 0;
  if (content->value.IsString()) return content->value.GetStringLength();
  int64_t n = 0;
  if (content->value.IsArray()) {
    for (const auto& part : content->value.GetArray()) {
      if (!part.IsObject()) continue;
      auto text = part.FindMember("text");
      if (text != part.MemberEnd() && text->value.IsString()) n += text->value.GetStringLength();
    }
  }
  return n;
}

// The body's `reasoning.max_tokens` (`reasoning`: its member, null when absent) into
// shape.reasoning_tokens; anything but a whole number from 0 leaves the request unbounded.
void read_reasoning_budget(const rapidjson::Value* reasoning, RequestShape& shape) {
  if (reasoning == nullptr || !reasoning->IsObject()) return;
  auto budget = reasoning->FindMember("max_tokens");
  if (budget == reasoning->MemberEnd() || budget->value.IsNull()) return;
  if (!budget->value.IsInt64() || budget->value.GetInt64() < 0) {
    shape.unbounded = "reasoning.max_tokens must be a whole number from 0 (its tokens are billed as output)";
    return;
  }
  shape.reasoning_tokens = budget->value.GetInt64();
}

// A tool the model calls is priced in tokens (`function`, and `custom` tools: text the model
// writes); any other type is run by the upstream and billed per use (OpenRouter's server tools:
// `openrouter:web_search`, ...), a cost no reservation can bound. `tools`: the body's member, null
// when absent.
void read_server_tools(const rapidjson::Value* tools, RequestShape& shape) {
  if (tools == nullptr || !tools->IsArray()) return;
  shape.tools = tools->Size();
  for (const auto& t : tools->GetArray()) {
    if (!t.IsObject()) continue;
    auto type = t.FindMember("type");
    if (type == t.MemberEnd() || !type->value.IsString()) continue;
    const std::string_view name(type->value.GetString(), type->value.GetStringLength());
    if (name == "function" || name == "custom") continue;
    shape.unbounded = "the tool type '" + client_text(name, 60) +
                      "' is run and billed by the upstream per use, a cost orroute cannot reserve "
                      "(for web search, the web plugin: plugins [{\"id\": \"web\", \"max_results\": n}])";
    return;
  }
}

void max_into(Money& into, Money v) { into = std::max(into, v); }
void max_into(Money& into, const std::optional<Money>& v) {
  if (v) into = std::max(into, *v);
}

// Folds one price set into the router's flat bound: every input kind into `prompt`, every output
// kind into `completion`, so no token can be billed above it.
void fold(PriceSet& into, const PriceSet& p) {
  for (const auto* v : {&p.input_cache_write, &p.input_cache_write_1h, &p.audio, &p.image_token,
                        &p.input_cache_read, &p.input_audio_cache}) {
    max_into(into.prompt, *v);
  }
  max_into(into.prompt, p.prompt);
  max_into(into.completion, p.completion);
  for (const auto* v : {&p.internal_reasoning, &p.audio_output, &p.image_output}) {
    max_into(into.completion, *v);
  }
  for (auto [dst, src] : {std::pair{&into.request, &p.request}, std::pair{&into.image, &p.image},
                          std::pair{&into.web_search, &p.web_search}}) {
    if (*src) *dst = std::max(dst->value_or(Money()), **src);
  }
}

std::string_view base_of(std::string_view id) {
  const auto colon = id.rfind(':');
  return colon == std::string_view::npos ? id : id.substr(0, colon);
}

std::string_view suffix_of(std::string_view id) {
  const auto colon = id.rfind(':');
  return colon == std::string_view::npos ? std::string_view() : id.substr(colon + 1);
}

}  // namespace

bool model_pattern_matches(std::string_view pattern, std::string_view id) {
  // Iterative glob with '*' only (OpenRouter's allowed_models use "author/*" and "*").
  size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < id.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == id[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int64_t reserved_output_tokens(int64_t max_output_tokens, const RequestShape& shape) noexcept {
  return output_bound(max_output_tokens, shape);
}

RequestShape request_shape(std::string_view request_json) noexcept {
  LocalJson<> json;  // no heap for a usual request
  rapidjson::Document& d = json.doc();
  if (parse_json_text(request_json, d) != JsonParse::kOk) return RequestShape{};
  return request_shape_of(d);
}

RequestShape request_shape_of(const rapidjson::Value& d) noexcept {
  RequestShape shape;
  try {
    if (!d.IsObject()) return shape;
    // The members read below, the first of each name (as FindMember finds it), in one pass.
    static constexpr std::array<std::string_view, 9> kRead = {
        "models", "web_search_options", "preset", "plugins", "tools", "messages", "prediction", "reasoning", "n"};
    const auto [models, web_search, preset, plugins, tools, messages, prediction, reasoning, n] =
        members_named(d, kRead);
    if (models != nullptr && models->IsArray()) {
      for (const auto& m : models->GetArray()) {
        if (m.IsString()) shape.models.emplace_back(m.GetString(), m.GetStringLength());
      }
    }
    if (web_search != nullptr) shape.web_plugin = true;
    if (preset != nullptr && !preset->IsNull()) shape.unbounded = kPresetRefusal;
    if (plugins != nullptr && plugins->IsArray()) {
      for (const auto& p : plugins->GetArray()) {
        if (!p.IsObject()) continue;
        auto id = p.FindMember("id");
        if (id == p.MemberEnd() || !id->value.IsString()) continue;
        const std::string_view name(id->value.GetString(), id->value.GetStringLength());
        auto enabled = p.FindMember("enabled");
        const bool on = enabled == p.MemberEnd() || !enabled->value.IsFalse();
        if (name == "web" && on) {
          shape.web_plugin = true;
          read_web_results(p, shape);
        }
        if (name == "file-parser" && on) read_pdf_engine(p, shape);
        if (name == "auto-router" || name == "auto-beta-router") {
          auto allowed = p.FindMember("allowed_models");
          if (allowed != p.MemberEnd() && allowed->value.IsArray()) {
            for (const auto& a : allowed->value.GetArray()) {
              if (a.IsString()) shape.allowed_models.emplace_back(a.GetString(), a.GetStringLength());
            }
          }
        }
      }
    }
    read_server_tools(tools, shape);
    read_parts(messages, shape);
    shape.prediction_bytes = prediction_bytes(prediction);
    read_reasoning_budget(reasoning, shape);
    if (n != nullptr && n->IsInt64() && n->GetInt64() > 1) shape.choices = n->GetInt64();
  } catch (const std::exception&) {  // out of memory: what it costs is not known, so not sent
    RequestShape refused;
    refused.unbounded = "the request could not be read for its price";
    return refused;
  }
  return shape;
}

std::string RequestShape::file_fee_refusal(const ModelInfo* model, std::string_view id) const {
  if (files == 0) return {};
  // OpenRouter's PDF engines: "cloudflare-ai" free ("pdf-text", deprecated, is redirected to it),
  // "native" billed as the model's input tokens (reserved at its context window, as every part
  // only the upstream can size), "mistral-ocr" per page: a count known only once the file is parsed.
  // With no engine named, a model that takes files natively gets the file as it is; any other
  // (or a router, whose pick is not known) may have it OCR'd.
  if (pdf_engine == "cloudflare-ai" || pdf_engine == "pdf-text" || pdf_engine == "native") return {};
  if (pdf_engine.empty() && model != nullptr && !model->pricing.dynamic &&
      (model->capabilities & static_cast<uint32_t>(Capability::kFileInput)) != 0) {
    return {};
  }
  const std::string why =
      pdf_engine.empty()
          ? "model '" + client_text(id) + "' does not take files natively, so OpenRouter may parse the file with "
            "its OCR engine (mistral-ocr)"
          : "the file-parser engine '" + client_text(pdf_engine, 40) + "'" +
                (pdf_engine == "mistral-ocr" ? std::string() : std::string(" is not one orroute knows the price of and"));
  return why + ", billed per page, a count known only once the file is parsed, so the call's cost cannot be "
               "reserved; name a free engine: plugins [{\"id\": \"file-parser\", \"pdf\": {\"engine\": "
               "\"cloudflare-ai\"}}]" +
         (pdf_engine.empty() ? std::string(", or use a model that takes files natively") : std::string());
}

CallPricer::CallPricer(const ModelCatalog& catalog, PricingPolicy policy)
    : catalog_(catalog), policy_(std::move(policy)) {
  if (policy_.endpoint_markup_pct < 100) throw InvalidArgument("endpoint_markup_pct must be >= 100");
  if (policy_.cost_check_multiple < 1) throw InvalidArgument("cost_check_multiple must be >= 1");
  if (policy_.web_search_fee.is_negative()) throw InvalidArgument("web_search_fee must be >= 0");
  if (const auto& u = policy_.unpriced_model_price;
      u && (u->prompt.is_negative() || u->completion.is_negative())) {
    throw InvalidArgument("unpriced_model_price must be >= 0");
  }
  any_router_ = router_pricing({});
}

std::optional<Pricing> CallPricer::router_pricing(const std::vector<std::string>& patterns) const {
  Pricing out;
  bool any = false;
  for (const ModelInfo& m : catalog_) {
    if (m.pricing.dynamic) continue;
    if (!patterns.empty() &&
        std::none_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return model_pattern_matches(p, m.id); })) {
      continue;
    }
    fold(out.base, m.pricing.base);
    for (const PriceTier& t : m.pricing.tiers) fold(out.base, t.prices);
    any = true;
  }
  if (!any) return std::nullopt;
  return out;
}

const ModelInfo* CallPricer::model_or_base(std::string_view id) const {
  const ModelInfo* m = catalog_.find(id);
  if (m == nullptr && !suffix_of(id).empty()) m = catalog_.find(base_of(id));
  return m;
}

int64_t CallPricer::context_window(std::string_view id) const {
  const ModelInfo* m = model_or_base(id);
  return m ? m->context_length : 0;
}

PriceBound CallPricer::bound(std::string_view id, const RequestShape& shape) const {
  PriceBound b;
  try {
    if (id.find("@preset/") != std::string_view::npos) {  // not even unpriced_model_price bounds it
      b.refusal = "model '" + client_text(id) + "': " + kPresetRefusal;
      return b;
    }
    if (const ModelInfo* m = catalog_.find(id)) {
      if (!m->pricing.dynamic) {
        b.listed = &m->pricing;
        return b;
      }
      // A router: whatever it picks, bounded by the dearest model it may pick.
      if (shape.allowed_models.empty()) {
        if (any_router_) b.listed = &*any_router_;
      } else {
        b.derived = router_pricing(shape.allowed_models);
      }
      if (b.pricing()) return b;
    } else if (const std::string_view suffix = suffix_of(id); !suffix.empty()) {
      if (const ModelInfo* base = catalog_.find(base_of(id)); base && !base->pricing.dynamic) {
        if (suffix == "free") {
          b.derived = Pricing{};
        } else if (suffix == "online") {  // the base prices plus the web search fee
          b.derived = with_fee(base->pricing, web_fee(policy_, base->pricing));
        } else {  // may reach the dearest endpoint: the base prices at endpoint_markup_pct
          b.derived = scaled(base->pricing, policy_.endpoint_markup_pct);
        }
        return b;
      }
    }
    if (policy_.unpriced_model_price) {
      b.derived = Pricing{};
      b.derived->base = *policy_.unpriced_model_price;
      return b;
    }
    b.refusal = "model '" + client_text(id) +
                "' has no price in the catalog, so its cost cannot be reserved; set "
                "unpriced_model_price to reserve for unknown models, or use a catalog model";
  } catch (const std::exception& e) {
    b.listed = nullptr;
    b.derived.reset();
    b.refusal = "model '" + client_text(id) + "' could not be priced: " + e.what();
  }
  return b;
}

const Pricing& CallPricer::charged(const Pricing& bound, const RequestShape& shape,
                                   std::optional<Pricing>& scratch) const {
  if (!shape.web_plugin) return bound;
  scratch = with_fee(bound, web_fee(policy_, bound, shape.web_results));
  return *scratch;
}

std::optional<Money> shaped_worst_case(const Pricing& pricing, const RequestShape& shape,
                                       int64_t prompt_tokens, int64_t max_output_tokens,
                                       int64_t context_window, std::string_view id,
                                       std::string* refusal) noexcept {
  if (!shape.unbounded.empty()) {
    if (refusal) *refusal = shape.unbounded;
    return std::nullopt;
  }
  try {
    // The text at the most the model's tokenizer may count it and the images at the most its rule
    // bills them (cost/prompt_bounds.h); a model with no rule may bill them anything up to its
    // window, as a file.
    const std::optional<int64_t> images = image_prompt_tokens(id, shape);
    int64_t prompt = text_prompt_tokens(id, shape, prompt_tokens, context_window) + images.value_or(0);
    if (shape.unsized_parts > 0 || !images) {  // the whole context window: what the upstream may fill
      if (context_window <= 0) {
        if (refusal) {
          *refusal = "the request has a file, a video, audio or an image whose tokens only the upstream can tell "
                     "(an image at its original size, or one no rule of this model bounds), and model '" +
                     client_text(id) + "' lists no context length to bound them";
        }
        return std::nullopt;
      }
      prompt = std::max(prompt, context_window);
    }
    std::optional<Pricing> audio;  // a prompt with audio: every token at the dearer audio price
    if (shape.audio_parts > 0) audio = with_audio_prompt(pricing);
    return worst_case_cost(audio ? *audio : pricing, prompt, output_bound(max_output_tokens, shape), 1, shape.images, 0,
                           true, id);
  } catch (const std::exception& e) {
    if (refusal) *refusal = "model '" + client_text(id) + "' could not be priced: " + e.what();
    return std::nullopt;
  }
}

std::optional<Money> CallPricer::worst_case(std::string_view model_id, const RequestShape& shape,
                                            int64_t prompt_tokens, int64_t max_output_tokens,
                                            std::string* refusal) const {
  std::optional<Money> worst;
  auto consider = [&](std::string_view id) -> bool {
    PriceBound b = bound(id, shape);
    if (!b.pricing()) {
      if (refusal) *refusal = b.refusal;
      return false;
    }
    if (shape.files > 0) {  // the file-parser plugin runs at OpenRouter, not at a direct provider
      if (std::string why = shape.file_fee_refusal(model_or_base(id), id); !why.empty()) {
        if (refusal) *refusal = std::move(why);
        return false;
      }
    }
    std::optional<Pricing> scratch;
    const Pricing* charged_at = nullptr;
    try {
      charged_at = &charged(*b.pricing(), shape, scratch);
    } catch (const std::exception& e) {
      if (refusal) *refusal = "model '" + client_text(id) + "' could not be priced: " + e.what();
      return false;
    }
    const std::optional<Money> c =
        shaped_worst_case(*charged_at, shape, prompt_tokens, max_output_tokens, context_window(id), id, refusal);
    if (!c) return false;
    worst = worst ? std::max(*worst, *c) : *c;
    return true;
  };
  if (!consider(model_id)) return std::nullopt;
  for (const std::string& m : shape.models) {
    if (m != model_id && !consider(m)) return std::nullopt;
  }
  return worst;
}

bool CallPricer::is_router(std::string_view id) const {
  const ModelInfo* m = catalog_.find(id);
  return m && m->pricing.dynamic;
}

bool CallPricer::router_may_pick(std::string_view served, const RequestShape& shape) const {
  const ModelInfo* s = catalog_.find(served);
  // A free variant or a free model is never a router's paid pick: an upstream naming one had
  // the call booked at nothing.
  if (!s || s->pricing.dynamic || s->pricing.is_zero() || suffix_of(served) == "free") return false;
  return shape.allowed_models.empty() ||
         std::any_of(shape.allowed_models.begin(), shape.allowed_models.end(),
                     [&](const std::string& p) { return model_pattern_matches(p, served); });
}

std::string_view CallPricer::priced_id(std::string_view requested, std::string_view served,
                                       const RequestShape& shape) const {
  // The served model counts only if the request could reach it as itself: a member of the
  // `models` list, or a router's pick. A variant served under its base id (":free" answered as
  // "x/y") keeps the variant's own price, and an upstream naming some model it was never asked
  // for is priced as what was asked.
  std::string_view id = requested;
  if (served.empty() || served == requested) return id;
  for (const std::string& m : shape.models) {
    if (m == served) return m;
    if (base_of(m) == served && m != requested) id = m;
  }
  if (id == requested && is_router(requested) && router_may_pick(served, shape)) id = served;
  return id;
}

std::optional<Money> CallPricer::price(std::string_view requested, std::string_view served,
                                       const RequestShape& shape, const UsageCounts& usage) const {
  const std::string_view id = priced_id(requested, served, shape);
  PriceBound b = bound(id, shape);
  if (!b.pricing()) return std::nullopt;
  try {
    std::optional<Pricing> scratch;
    UsageCounts counts = usage;
    if (counts.images == 0) counts.images = shape.images;  // the images sent, billed whether reported or not
    return price_call(charged(*b.pricing(), shape, scratch), counts, id);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace orroute
