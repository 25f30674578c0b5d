#include "orroute/net/protocol.h"

#include <curl/curl.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <utility>
#include <cmath>

#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/net/usage_members.h"
#include "orroute/utf8.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

std::string str_or(const rapidjson::Value& obj, const char* name, std::string fallback = "") {
  if (!obj.IsObject()) return fallback;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return fallback;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

int64_t int_or(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return 0;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return 0;
  if (it->value.IsInt64()) return it->value.GetInt64();
  if (it->value.IsNumber()) {  // a double outside int64 would be undefined behaviour to convert
    const double d = it->value.GetDouble();
    return std::isfinite(d) && std::fabs(d) < 9.0e18 ? static_cast<int64_t>(d) : 0;
  }
  return 0;
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::optional<double> parse_double(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    const double v = std::stod(std::string(s), &used);
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// Fills kind/status/message/code/metadata from a body's "error" object.
void fill_from_error_object(ApiError& err, const rapidjson::Value& error) {
  if (const auto* msg = member(error, "message"); msg && msg->IsString()) err.message = msg->GetString();
  if (const auto* code = member(error, "code"); code && !code->IsNull()) err.code_json = to_json(*code);
  if (const auto* md = member(error, "metadata"); md && md->IsObject()) {
    err.metadata_json = to_json(*md);
    // The upstream's own message is the useful part of "Provider returned error".
    if (const auto* raw = member(*md, "raw"); raw && !raw->IsNull()) {
      const std::string raw_text = raw->IsString() ? std::string(raw->GetString()) : to_json(*raw);
      if (!raw_text.empty() && err.message.find(raw_text) == std::string::npos) {
        err.message += " (" + (raw_text.size() > 300 ? raw_text.substr(0, 300) + "…" : raw_text) + ")";
      }
    }
    if (const auto* pn = member(*md, "provider_name"); pn && pn->IsString()) {
      err.provider = pn->GetString();
      err.message += " [provider: " + std::string(pn->GetString()) + "]";
    }
  }
}

// The wait a server's hint names, in seconds (unbounded; nullopt if neither header is usable).
std::optional<double> hinted_seconds(const Headers& headers, int64_t now_ms) {
  if (auto ra = headers.get("retry-after")) {
    if (auto v = parse_double(*ra)) return *v;
    const std::string date(*ra);
    const time_t t = curl_getdate(date.c_str(), nullptr);
    if (t >= 0) return static_cast<double>(t) - static_cast<double>(now_ms) / 1000.0;
  }
  if (auto reset = headers.get("x-ratelimit-reset")) {
    if (auto v = parse_double(*reset)) {
      double at_ms = *v;
      if (at_ms < 1e11) {
        if (at_ms < 1e9) return at_ms;  // already a delay in seconds
        at_ms *= 1000.0;                // Unix seconds
      }
      return (at_ms - static_cast<double>(now_ms)) / 1000.0;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string to_json(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<double> retry_after_seconds(const Headers& headers, int64_t now_ms) {
  const auto hinted = hinted_seconds(headers, now_ms);
  if (!hinted) return std::nullopt;
  return std::clamp(*hinted, 0.0, kMaxRetryAfterSeconds);
}

ApiError error_from_response(int status, const Headers& headers, std::string_view body, int64_t now_ms) {
  ApiError err;
  err.kind = ApiError::Kind::kStatus;
  err.status = status;
  err.body = std::string(body);
  err.retry_after = retry_after_seconds(headers, now_ms);
  if (auto gen = headers.get("x-generation-id")) err.generation_id = std::string(*gen);
  rapidjson::Document doc;
  if (parse_json_text(body, doc) == JsonParse::kOk && doc.IsObject()) {
    if (const auto* error = member(doc, "error"); error && error->IsObject()) {
      fill_from_error_object(err, *error);
    } else if (error && error->IsString()) {
      err.message = error->GetString();
    } else if (const auto* msg = member(doc, "message"); msg && msg->IsString()) {
      err.message = msg->GetString();
    }
    if (err.generation_id.empty()) err.generation_id = str_or(doc, "id");
  }
  if (err.message.empty()) {
    std::string snippet(body.substr(0, std::min<size_t>(body.size(), 200)));
    err.message = "HTTP " + std::to_string(status) + (snippet.empty() ? "" : ": " + snippet);
  }
  return err;
}

ApiError error_from_stream_event(const rapidjson::Value& event) {
  ApiError err;
  err.kind = ApiError::Kind::kStream;
  err.body = to_json(event);
  err.generation_id = str_or(event, "id");
  if (const auto* error = member(event, "error")) {
    if (error->IsObject()) {
      fill_from_error_object(err, *error);
      if (const auto* code = member(*error, "code"); code && code->IsInt()) err.status = code->GetInt();
    } else if (error->IsString()) {
      err.message = error->GetString();
    }
  }
  if (err.provider.empty()) err.provider = str_or(event, "provider");
  if (err.message.empty()) err.message = "the stream reported an error";
  return err;
}

bool is_retryable_status(int status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

namespace {

// A duration from a count of milliseconds without undefined behaviour: NaN is 0, the rest is
// clamped to [0, ~31 years] before the conversion to int64.
std::chrono::milliseconds clamped_ms(double ms) {
  constexpr double kMaxMs = 1e12;
  if (!(ms > 0)) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::min(ms, kMaxMs)));
}

}  // namespace

std::optional<std::chrono::milliseconds> RetryPolicy::delay(int retry, std::optional<double> retry_after,
                                                            double uniform01) const {
  if (retry_after) {
    if (std::isnan(*retry_after) || *retry_after > max_retry_after_seconds) return std::nullopt;
    return clamped_ms(std::ceil(*retry_after * 1000.0));
  }
  const double cap = std::min(max_seconds, base_seconds * std::pow(2.0, std::min(retry, 30)));
  const double u = std::clamp(uniform01, 0.0, 1.0);
  return clamped_ms(cap * u * 1000.0);
}

namespace {

// Largest token count believed: more tokens than any context window holds is a lie.
constexpr int64_t kMaxReportedTokens = 1'000'000'000;

// A token count from an untrusted usage object (`found`: its member `name`, null if absent): a
// non-negative integral number up to kMaxReportedTokens, else 0 with `problem` naming the field
// (the first one only).
int64_t token_field(const rapidjson::Value* found, const char* name, std::string& problem) {
  if (found == nullptr || found->IsNull()) return 0;
  const rapidjson::Value& v = *found;
  auto bad = [&](const char* why) {
    if (problem.empty()) problem = std::string(name) + " " + why;
    return int64_t{0};
  };
  if (v.IsInt64()) {
    const int64_t n = v.GetInt64();
    if (n < 0) return bad("is negative");
    if (n > kMaxReportedTokens) return bad("is absurdly large");
    return n;
  }
  if (v.IsUint64()) return bad("is absurdly large");
  if (v.IsDouble()) {
    const double d = v.GetDouble();
    if (!std::isfinite(d) || d < 0) return bad("is negative or not finite");
    if (d > static_cast<double>(kMaxReportedTokens)) return bad("is absurdly large");
    if (d != std::floor(d)) return bad("is not a whole number");
    return static_cast<int64_t>(d);
  }
  return bad("is not a number");
}

// Token counts by name (`names` are literals: NUL-terminated), each into its `out`.
template <std::size_t N>
void token_counts(const std::array<const rapidjson::Value*, N>& found, const std::array<std::string_view, N>& names,
                  const std::array<int64_t*, N>& out, std::string& problem) {
  for (std::size_t i = 0; i < N; ++i) *out[i] = token_field(found[i], names[i].data(), problem);
}

// A cost's decimal text (as JSON wrote it) in exact money; nothing when Money does not take it
// (an exponent beyond its range: such a text is read through its double, as before).
std::optional<Money> exact_cost(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  try {
    return Money::parse(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Usage parse_usage(const rapidjson::Value& usage) noexcept {
  if (!usage.IsObject()) return Usage{};
  UsageMembers m;
  m.top = members_named(usage, kUsageMembers);
  if (m.top[3] != nullptr) m.prompt_details = members_named(*m.top[3], kPromptDetailMembers);  // none unless an object
  if (m.top[4] != nullptr) m.completion_details = members_named(*m.top[4], kCompletionDetailMembers);
  return parse_usage(m);
}

Usage parse_usage(const UsageMembers& m) noexcept {
  Usage u;
  u.present = true;
  std::string& tp = u.token_problem;
  const auto& top = m.top;
  u.prompt_tokens = token_field(top[0], "prompt_tokens", tp);
  u.completion_tokens = token_field(top[1], "completion_tokens", tp);
  u.total_tokens = token_field(top[2], "total_tokens", tp);
  token_counts(m.prompt_details, kPromptDetailMembers, {&u.cached_tokens, &u.cache_write_tokens, &u.audio_tokens}, tp);
  token_counts(m.completion_details, kCompletionDetailMembers,
               {&u.reasoning_tokens, &u.audio_output_tokens, &u.image_output_tokens}, tp);
  const auto* c = top[5];
  if (c == nullptr || c->IsNull()) return u;
  u.cost_reported = true;
  try {
    if (c->IsInt64()) {
      const int64_t n = c->GetInt64();
      if (n > 1'000'000'000 || n < -1'000'000'000) {
        u.cost_problem = "cost is absurdly large";
      } else {
        u.cost = Money::dollars(n);
      }
    } else if (c->IsNumber()) {
      const double d = c->GetDouble();
      if (!std::isfinite(d)) {
        u.cost_problem = "cost is not finite";
      } else if (std::fabs(d) > 1e9) {
        u.cost_problem = "cost is absurdly large";
      } else if (const std::optional<Money> exact = exact_cost(m.cost_text)) {
        u.cost = exact;  // the upstream's own digits
      } else {
        u.cost = Money::from_double(d);
      }
    } else if (c->IsString()) {
      u.cost = Money::parse(std::string_view(c->GetString(), c->GetStringLength()));
      if (u.cost->to_double() > 1e9 || u.cost->to_double() < -1e9) {
        u.cost.reset();
        u.cost_problem = "cost is absurdly large";
      }
    } else {
      u.cost_problem = "cost is not a number";
    }
  } catch (const std::exception&) {  // Money::parse: not a decimal, or beyond int128
    u.cost.reset();
    u.cost_problem = "cost is not a decimal number";
  }
  if (u.cost && u.cost->is_negative()) u.cost_problem = "cost is negative";
  return u;
}

namespace {

using Problem = std::optional<ChatRequestProblem>;

Problem problem(std::string field, std::string message) {
  return ChatRequestProblem{std::move(field), std::move(message)};
}

Problem bad(const std::string& field, const std::string& what) {
  return problem(field, "'" + field + "' " + what);
}

// A JSON value shown in a message: at most 40 bytes of its JSON text (client_text: cut on a
// UTF-8 character, so a message stays valid UTF-8 for Python and a JSON error body).
std::string shown(const rapidjson::Value& v) { return client_text(to_json(v), 40); }

bool is_whole(const rapidjson::Value& v) { return v.IsInt64() || v.IsUint64(); }

// The top-level fields the rules read, found in one pass over the body's members instead of one
// FindMember per rule (17 lookups by name, ~2k instructions on a three-field body). The first
// member of a name, as FindMember finds it (check_unique_keys has refused a name given twice).
class TopFields {
 public:
  enum Field {
    kModel, kModels, kMessages, kStream, kMaxTokens, kMaxCompletionTokens, kN, kTemperature, kTopP,
    kTools, kToolChoice, kResponseFormat, kStreamOptions, kProvider, kReasoning, kUsage, kStop, kCount
  };
  static constexpr std::string_view kNames[kCount] = {
      "model", "models", "messages", "stream", "max_tokens", "max_completion_tokens", "n",
      "temperature", "top_p", "tools", "tool_choice", "response_format", "stream_options",
      "provider", "reasoning", "usage", "stop"};

  explicit TopFields(const rapidjson::Value& body) {
    for (const auto& m : body.GetObject()) {
      const std::string_view name(m.name.GetString(), m.name.GetStringLength());
      for (int f = 0; f < kCount; ++f) {
        if (kNames[f] == name) {
          if (values_[f] == nullptr) values_[f] = &m.value;
          break;
        }
      }
    }
  }
  const rapidjson::Value* operator[](Field f) const { return values_[f]; }
  static const char* name(Field f) { return kNames[f].data(); }  // each a literal: NUL-terminated

 private:
  const rapidjson::Value* values_[kCount] = {};
};

Problem check_messages(const rapidjson::Value* messages) {
  static const char* const kRoles[] = {"assistant", "developer", "function", "system", "tool", "user"};
  if (messages == nullptr) return bad("messages", "is required");
  if (!messages->IsArray() || messages->Empty()) return bad("messages", "must be a non-empty array");
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const auto& m = (*messages)[i];
    const auto at = [i] { return "messages[" + std::to_string(i) + "]"; };  // for a problem only
    if (!m.IsObject()) return bad(at(), "must be an object");
    const auto* role = member(m, "role");
    const bool known = role != nullptr && role->IsString() &&
                       std::any_of(std::begin(kRoles), std::end(kRoles),
                                   [&](const char* r) { return role->GetString() == std::string_view(r); });
    if (!known) {
      return bad(at() + ".role",
                 "must be one of assistant, developer, function, system, tool, user; got " +
                     (role == nullptr ? std::string("nothing") : shown(*role)));
    }
    const std::string_view r = role->GetString();
    const auto* content = member(m, "content");
    if (content != nullptr && !content->IsNull()) {
      if (!content->IsString() && !content->IsArray()) {
        return bad(at() + ".content", "must be a string or an array of parts");
      }
      if (content->IsArray()) {
        for (const auto& part : content->GetArray()) {
          if (!part.IsObject()) return bad(at() + ".content", "parts must be objects");
        }
      }
    } else if (r == "user" || r == "system") {
      return bad(at() + ".content", "is required");
    }
    if (const auto* calls = member(m, "tool_calls"); calls && !calls->IsNull()) {
      bool ok = calls->IsArray();
      if (ok) {
        for (const auto& c : calls->GetArray()) ok = ok && c.IsObject();
      }
      if (!ok) return bad(at() + ".tool_calls", "must be an array of objects");
    }
  }
  return std::nullopt;
}

Problem check_tools(const rapidjson::Value* tools) {
  if (tools == nullptr) return std::nullopt;
  if (!tools->IsArray()) return bad("tools", "must be an array of tool objects");
  for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
    const auto& t = (*tools)[i];
    const auto at = [i] { return "tools[" + std::to_string(i) + "]"; };  // for a problem only
    if (!t.IsObject()) return bad(at(), "must be an object");
    const auto* type = member(t, "type");
    if (type != nullptr && !(type->IsString() && type->GetString() == std::string_view("function"))) {
      continue;  // another kind of tool (a server tool): its shape is the upstream's business
    }
    const auto* fn = member(t, "function");
    const auto* name = fn ? member(*fn, "name") : nullptr;
    if (fn == nullptr || !fn->IsObject() || name == nullptr || !name->IsString()) {
      return bad(at() + ".function", "must be an object with a 'name' string");
    }
    if (const auto* params = member(*fn, "parameters"); params && !params->IsNull() && !params->IsObject()) {
      return bad(at() + ".function.parameters", "must be a JSON Schema object");
    }
  }
  return std::nullopt;
}

Problem check_numbers(const TopFields& body, const ChatRequestRules& rules) {
  // The output bound is what a budget reserves for: it must be a whole number the engine's
  // integers hold (2**63 or 1e300 would wrap or be ignored, and the call would run unbounded).
  for (const TopFields::Field field : {TopFields::kMaxTokens, TopFields::kMaxCompletionTokens}) {
    const char* f = TopFields::name(field);
    const auto* v = body[field];
    if (v == nullptr || v->IsNull()) continue;
    if (!v->IsInt64() || v->GetInt64() < 1 || v->GetInt64() > kMaxOutputTokens) {
      return bad(f, "must be a whole number from 1 to " + std::to_string(kMaxOutputTokens) + "; got " +
                        shown(*v));
    }
  }
  if (const auto* n = body[TopFields::kN]; n && !n->IsNull()) {
    if (!is_whole(*n) || (n->IsInt64() && n->GetInt64() < 1)) return bad("n", "must be a positive integer");
    if (rules.max_n > 0 && (!n->IsInt64() || n->GetInt64() > rules.max_n)) {
      return bad("n", "must be at most " + std::to_string(rules.max_n));
    }
  }
  struct Range {
    TopFields::Field field;
    double hi;
    const char* text;
  };
  static const Range kRanges[] = {{TopFields::kTemperature, 2.0, "2"}, {TopFields::kTopP, 1.0, "1"}};
  for (const Range& range : kRanges) {
    const auto* v = body[range.field];
    if (v == nullptr || v->IsNull()) continue;
    if (!v->IsNumber() || !(v->GetDouble() >= 0.0 && v->GetDouble() <= range.hi)) {
      return bad(TopFields::name(range.field), std::string("must be a number between 0 and ") + range.text);
    }
  }
  return std::nullopt;
}

Problem check_shapes(const TopFields& body) {
  if (const auto* c = body[TopFields::kToolChoice]; c && !c->IsNull() && !c->IsString() && !c->IsObject()) {
    return bad("tool_choice", "must be a string or an object");
  }
  for (const TopFields::Field f : {TopFields::kResponseFormat, TopFields::kStreamOptions, TopFields::kProvider,
                                   TopFields::kReasoning, TopFields::kUsage}) {
    if (const auto* v = body[f]; v && !v->IsNull() && !v->IsObject()) return bad(TopFields::name(f), "must be an object");
  }
  if (const auto* stop = body[TopFields::kStop]; stop && !stop->IsNull()) {
    bool ok = stop->IsString() || stop->IsArray();
    if (ok && stop->IsArray()) {
      for (const auto& s : stop->GetArray()) ok = ok && s.IsString();
    }
    if (!ok) return bad("stop", "must be a string or an array of strings");
  }
  return std::nullopt;
}

// The name `object` holds twice, if any. Small objects (a message, a content part) are compared
// pairwise; a large one is sorted, so a hostile object of many keys costs n log n.
std::optional<std::string_view> repeated_name(const rapidjson::Value& object) {
  const auto name = [](const rapidjson::Value& n) { return std::string_view(n.GetString(), n.GetStringLength()); };
  const auto members = object.GetObject();
  const size_t count = members.MemberCount();
  if (count <= 16) {
    for (auto a = members.begin(); a != members.end(); ++a) {
      for (auto b = a + 1; b != members.end(); ++b) {
        if (name(a->name) == name(b->name)) return name(a->name);
      }
    }
    return std::nullopt;
  }
  std::vector<std::string_view> names;
  names.reserve(count);
  for (const auto& m : members) names.push_back(name(m.name));
  std::sort(names.begin(), names.end());
  if (auto it = std::adjacent_find(names.begin(), names.end()); it != names.end()) return *it;
  return std::nullopt;
}

// The first object in `v` (depth first) that names a key twice: its path from `v` ("" for `v`
// itself, else like ".messages[0]") and the key. The depth is bounded by the parse
// (kMaxJsonDepth), and so is the recursion.
bool find_repeated_key(const rapidjson::Value& v, std::string& where, std::string_view& key) {
  if (v.IsObject()) {
    if (auto k = repeated_name(v)) {
      key = *k;
      where.clear();
      return true;
    }
    for (const auto& m : v.GetObject()) {
      if (find_repeated_key(m.value, where, key)) {
        where.insert(0, "." + std::string(m.name.GetString(), m.name.GetStringLength()));
        return true;
      }
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (find_repeated_key(v[i], where, key)) {
        where.insert(0, "[" + std::to_string(i) + "]");
        return true;
      }
    }
  }
  return false;
}

}  // namespace

// JSON parsers disagree on a key given twice in one object: RapidJSON keeps both and finds the
// first, Python, Go and JavaScript keep the last. A request naming `messages` or `max_tokens`
// twice would be counted and reserved by one value and answered by the upstream for the other
// (a short prompt reserved, a long one sent), so such a request is refused, at any depth.
std::optional<ChatRequestProblem> check_unique_keys(const rapidjson::Value& body) {
  std::string where;
  std::string_view key;
  if (!find_repeated_key(body, where, key)) return std::nullopt;
  const std::string field = where.empty() ? std::string("body") : client_text(where.substr(1), 80);
  return problem(field, "'" + field + "' names the key '" + client_text(key, 40) +
                            "' twice (JSON parsers disagree on which one counts): give each key once");
}

std::optional<ChatRequestProblem> check_chat_request(const rapidjson::Value& body, const ChatRequestRules& rules) {
  if (!body.IsObject()) return problem("body", "the request body must be a JSON object");
  if (auto p = check_unique_keys(body)) return p;
  const TopFields fields(body);
  const auto* model = fields[TopFields::kModel];
  const auto* models = fields[TopFields::kModels];
  if (model == nullptr && !rules.model_chosen && (rules.require_model || models == nullptr)) {
    return bad("model", "is required (a model id such as \"openai/gpt-4o-mini\", an alias or a route name)");
  }
  if (model != nullptr) {
    const bool blank = !model->IsString() ||
                       std::all_of(model->GetString(), model->GetString() + model->GetStringLength(),
                                   [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
    if (blank) return bad("model", "must be a non-empty string such as \"openai/gpt-4o\"");
  }
  if (models != nullptr) {
    if (!models->IsArray()) return bad("models", "must be an array of model ids");
    if (models->Size() > 3) {
      return bad("models", "(the fallback list) may hold at most 3 model ids; got " + std::to_string(models->Size()));
    }
    for (const auto& m : models->GetArray()) {
      if (!m.IsString()) return bad("models", "must contain only strings");
    }
  }
  if (auto p = check_messages(fields[TopFields::kMessages])) return p;
  if (const auto* stream = fields[TopFields::kStream]; stream && !stream->IsBool()) {
    return bad("stream", "must be a boolean");
  }
  if (auto p = check_numbers(fields, rules)) return p;
  if (auto p = check_tools(fields[TopFields::kTools])) return p;
  return check_shapes(fields);
}

void validate_chat_request(const rapidjson::Value& body, const ChatRequestRules& rules) {
  if (auto p = check_chat_request(body, rules)) throw InvalidArgument(p->message);
}

void check_header_value(std::string_view what, std::string_view value) {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      throw InvalidArgument(std::string(what) + " must not contain CR, LF or other control characters");
    }
  }
}

StreamAccumulator::Choice& StreamAccumulator::choice(size_t index) {
  if (index >= choices_.size()) choices_.resize(index + 1);
  return choices_[index];
}

void StreamAccumulator::cut(std::string_view finish_reason) {
  if (choices_.empty()) choice(0);
  for (Choice& ch : choices_) {
    ch.finish_reason = std::string(finish_reason);
    ch.native_finish_reason = std::string(finish_reason);
  }
}

namespace {

// The bytes of the strings in `v` (what copying it keeps, near enough).
size_t string_bytes(const rapidjson::Value& v) {
  if (v.IsString()) return v.GetStringLength();
  size_t n = 0;
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) n += string_bytes(e);
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) n += m.name.GetStringLength() + string_bytes(m.value);
  }
  return n;
}

// `obj[name]` to write to, or null when `obj` is no object or has none.
rapidjson::Value* member_to_edit(rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  const auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

}  // namespace

StreamAccumulator::ToolCursor StreamAccumulator::cursor_of(const Choice& ch) {
  if (ch.tool_calls.empty()) return {};
  return {ch.tool_calls.size(), ch.last_tool, ch.tool_calls[ch.last_tool].id};
}

size_t StreamAccumulator::tool_call_slot(const ToolCursor& at, const rapidjson::Value& tc) {
  constexpr size_t kLast = 1023;  // tool calls kept per choice: what one delta may make grow
  // An index naming a call so far or the next one is the upstream's; any other (negative, past
  // a gap, past the bound, not an integer) is one the calls cannot be kept dense under (the
  // openai SDK's stream helpers read a call's index as its place in their list): such a delta is
  // filed as one without an index, and relayed with the place it was filed under.
  if (const auto* index = member(tc, "index"); index != nullptr && index->IsUint64() &&
                                               index->GetUint64() <= std::min(at.count, kLast)) {
    return static_cast<size_t>(index->GetUint64());
  }
  if (at.count == 0) return 0;
  const auto* id = member(tc, "id");
  const bool new_id = id != nullptr && id->IsString() && id->GetStringLength() > 0 && !at.last_id.empty() &&
                      at.last_id != std::string_view(id->GetString(), id->GetStringLength());
  return new_id ? std::min<size_t>(at.count, kLast) : at.last;
}

bool StreamAccumulator::number_tool_calls(rapidjson::Document& chunk) const {
  rapidjson::Value* choices = member_to_edit(chunk, "choices");
  if (choices == nullptr || !choices->IsArray()) return false;
  bool numbered = false;
  for (auto& c : choices->GetArray()) {
    rapidjson::Value* delta = member_to_edit(c, "delta");
    rapidjson::Value* calls = delta != nullptr ? member_to_edit(*delta, "tool_calls") : nullptr;
    if (calls == nullptr || !calls->IsArray()) continue;
    // as add() reads the choice and moves through its tool calls, delta by delta
    const size_t idx = static_cast<size_t>(std::clamp<int64_t>(int_or(c, "index"), 0, 255));
    const Choice* ch = idx < choices_.size() ? &choices_[idx] : nullptr;
    ToolCursor at = ch != nullptr ? cursor_of(*ch) : ToolCursor{};
    for (auto& tc : calls->GetArray()) {
      if (!tc.IsObject()) continue;
      const size_t slot = tool_call_slot(at, tc);
      const auto index = tc.FindMember("index");
      if (index == tc.MemberEnd()) {
        tc.AddMember("index", static_cast<uint64_t>(slot), chunk.GetAllocator());
        numbered = true;
      } else if (!index->value.IsUint64() || index->value.GetUint64() != slot) {
        index->value.SetUint64(slot);
        numbered = true;
      }
      at = moved(at, slot, tc, ch);
    }
  }
  return numbered;
}

StreamAccumulator::ToolCursor StreamAccumulator::moved(ToolCursor at, size_t slot, const rapidjson::Value& tc,
                                                       const Choice* ch) {
  const auto* id = member(tc, "id");
  if (id != nullptr && id->IsString() && id->GetStringLength() > 0) {
    at.last_id = std::string_view(id->GetString(), id->GetStringLength());
  } else if (slot != at.last) {  // the id that call had before this chunk, if any
    at.last_id = ch != nullptr && slot < ch->tool_calls.size() ? std::string_view(ch->tool_calls[slot].id)
                                                               : std::string_view();
  }
  at.last = slot;
  at.count = std::max(at.count, slot + 1);
  return at;
}

bool StreamAccumulator::add(const rapidjson::Value& chunk) {
  if (!chunk.IsObject()) return true;
  if (id_.empty()) id_ = str_or(chunk, "id");
  if (auto m = str_or(chunk, "model"); !m.empty()) model_ = m;
  if (auto p = str_or(chunk, "provider"); !p.empty()) provider_ = p;
  if (auto f = str_or(chunk, "system_fingerprint"); !f.empty()) system_fingerprint_ = f;
  if (created_ == 0) created_ = int_or(chunk, "created");
  if (const auto* choices = member(chunk, "choices"); choices && choices->IsArray()) {
    for (const auto& c : choices->GetArray()) {
      const int64_t idx = int_or(c, "index");
      Choice& ch = choice(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(idx, 255))));
      if (auto fr = str_or(c, "finish_reason"); !fr.empty()) {
        progress_ += ch.finish_reason != fr;
        ch.finish_reason = fr;
      }
      if (auto nfr = str_or(c, "native_finish_reason"); !nfr.empty()) ch.native_finish_reason = nfr;
      const auto* delta = member(c, "delta");
      if (delta == nullptr || !delta->IsObject()) continue;
      if (auto role = str_or(*delta, "role"); !role.empty()) ch.role = role;
      if (const auto* v = member(*delta, "content"); v && v->IsString()) {
        ch.content.append(v->GetString(), v->GetStringLength());
        progress_ += v->GetStringLength();
        ch.has_content = true;
      }
      if (const auto* v = member(*delta, "reasoning"); v && v->IsString()) {
        ch.reasoning.append(v->GetString(), v->GetStringLength());
        progress_ += v->GetStringLength();
        ch.has_reasoning = true;
      }
      if (const auto* v = member(*delta, "refusal"); v && v->IsString()) {
        ch.refusal.append(v->GetString(), v->GetStringLength());
        progress_ += v->GetStringLength();
        ch.has_refusal = true;
      }
      if (const auto* v = member(*delta, "reasoning_details"); v && v->IsArray()) {
        for (const auto& d : v->GetArray()) {
          // Encrypted reasoning is no text the meter counts: what is kept of it is capped.
          details_bytes_ += string_bytes(d);
          if (details_bytes_ > kMaxReasoningDetailBytes) continue;
          rapidjson::Value copy(d, ch.reasoning_details.GetAllocator());
          ch.reasoning_details.PushBack(copy, ch.reasoning_details.GetAllocator());
          ++progress_;
        }
      }
      if (const auto* tcs = member(*delta, "tool_calls"); tcs && tcs->IsArray()) {
        for (const auto& tc : tcs->GetArray()) {
          const size_t i = tool_call_slot(cursor_of(ch), tc);
          if (i >= ch.tool_calls.size()) ch.tool_calls.resize(i + 1);
          ch.last_tool = i;
          ToolCall& call = ch.tool_calls[i];
          if (auto id = str_or(tc, "id"); !id.empty() && id != call.id) {
            call.id = id;
            ++progress_;
          }
          if (auto type = str_or(tc, "type"); !type.empty()) call.type = type;
          if (const auto* fn = member(tc, "function"); fn && fn->IsObject()) {
            if (const auto* name = member(*fn, "name"); name && name->IsString()) {
              call.name.append(name->GetString());
              progress_ += name->GetStringLength();
            }
            if (const auto* args = member(*fn, "arguments"); args && args->IsString()) {
              call.arguments.append(args->GetString(), args->GetStringLength());
              progress_ += args->GetStringLength();
            }
          }
        }
      }
    }
  }
  if (const auto* usage = member(chunk, "usage"); usage && usage->IsObject()) {
    usage_.CopyFrom(*usage, usage_.GetAllocator());
    has_usage_ = true;
  }
  if (const auto* error = member(chunk, "error"); error && !error->IsNull()) {
    error_ = error_from_stream_event(chunk);
    return false;
  }
  return true;
}

std::string StreamAccumulator::text(size_t index) const {
  return index < choices_.size() ? choices_[index].content : std::string();
}

std::string StreamAccumulator::usage_json() const { return has_usage_ ? to_json(usage_) : "null"; }

std::string StreamAccumulator::completion_json() const {
  using rapidjson::StringRef;
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  auto str = [&a](const std::string& s) { return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a); };
  doc.AddMember("id", str(id_), a);
  doc.AddMember("object", "chat.completion", a);
  doc.AddMember("created", created_, a);
  doc.AddMember("model", str(model_), a);
  if (!provider_.empty()) doc.AddMember("provider", str(provider_), a);
  if (!system_fingerprint_.empty()) doc.AddMember("system_fingerprint", str(system_fingerprint_), a);
  rapidjson::Value choices(rapidjson::kArrayType);
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& ch = choices_[i];
    rapidjson::Value c(rapidjson::kObjectType);
    c.AddMember("index", static_cast<int64_t>(i), a);
    rapidjson::Value msg(rapidjson::kObjectType);
    msg.AddMember("role", str(ch.role.empty() ? "assistant" : ch.role), a);
    msg.AddMember("content", ch.has_content || ch.tool_calls.empty() ? str(ch.content) : rapidjson::Value(), a);
    msg.AddMember("refusal", ch.has_refusal ? str(ch.refusal) : rapidjson::Value(), a);
    if (ch.has_reasoning) msg.AddMember("reasoning", str(ch.reasoning), a);
    if (!ch.reasoning_details.Empty()) msg.AddMember("reasoning_details", rapidjson::Value(ch.reasoning_details, a), a);
    if (!ch.tool_calls.empty()) {
      rapidjson::Value tcs(rapidjson::kArrayType);
      for (const ToolCall& tc : ch.tool_calls) {
        rapidjson::Value t(rapidjson::kObjectType);
        t.AddMember("id", str(tc.id), a);
        t.AddMember("type", str(tc.type.empty() ? "function" : tc.type), a);
        rapidjson::Value fn(rapidjson::kObjectType);
        fn.AddMember("name", str(tc.name), a);
        fn.AddMember("arguments", str(tc.arguments), a);
        t.AddMember("function", fn, a);
        tcs.PushBack(t, a);
      }
      msg.AddMember("tool_calls", tcs, a);
    }
    c.AddMember("message", msg, a);
    c.AddMember("finish_reason", ch.finish_reason.empty() ? rapidjson::Value() : str(ch.finish_reason), a);
    c.AddMember("native_finish_reason", ch.native_finish_reason.empty() ? rapidjson::Value() : str(ch.native_finish_reason), a);
    c.AddMember("logprobs", rapidjson::Value(), a);
    choices.PushBack(c, a);
  }
  doc.AddMember("choices", choices, a);
  if (has_usage_) {
    doc.AddMember("usage", rapidjson::Value(usage_, a), a);
  } else {
    doc.AddMember("usage", rapidjson::Value(), a);
  }
  return to_json(doc);
}

std::string mask_key(std::string_view key) {
  if (key.size() < 16) return "***";
  const size_t prefix = key.rfind("sk-or-v1-", 0) == 0 ? 9 : 3;
  return std::string(key.substr(0, prefix)) + "..." + std::string(key.substr(key.size() - 4));
}

}  // namespace orroute
