#include "orroute/verify/json_check.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/no_destructor.h"
#include "orroute/json_writer.h"

namespace orroute {

namespace {

using rapidjson::Value;

// Deeper documents are refused rather than walked: the validator and the equality test recurse.
constexpr int kMaxDepth = 64;
// uniqueItems compares items pairwise; beyond this many items the check fails instead of taking
// quadratic time on a hostile array.
constexpr size_t kMaxUniqueItems = 500;
// Nesting is not limited at parse time (a deep reply is still valid JSON); the walkers below stop
// at kMaxDepth instead. The parse itself is the shared iterative one.
constexpr unsigned kParseFlags = rapidjson::kParseNanAndInfFlag;

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool parse(rapidjson::Document& doc, std::string_view text) {
  return parse_json_text<kParseFlags>(text, doc, kMaxJsonBytes, std::numeric_limits<int>::max()) == JsonParse::kOk;
}

const char* type_name(const Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "boolean";
  if (v.IsObject()) return "object";
  if (v.IsArray()) return "array";
  if (v.IsString()) return "string";
  return "number";
}

bool is_integer(const Value& v) {
  if (v.IsInt64() || v.IsUint64()) return true;
  if (!v.IsDouble()) return false;
  const double d = v.GetDouble();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const Value& v, std::string_view t) {
  if (t == "integer") return is_integer(v);
  if (t == "number") return v.IsNumber();
  return t == type_name(v);
}

// JSON equality as JSON Schema defines it (1 == 1.0), bounded in depth.
bool json_equal(const Value& a, const Value& b, int depth) {
  if (depth > kMaxDepth) return false;
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    return a.GetDouble() == b.GetDouble();
  }
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) {
    return a.GetStringLength() == b.GetStringLength() &&
           std::equal(a.GetString(), a.GetString() + a.GetStringLength(), b.GetString());
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!json_equal(a[i], b[i], depth + 1)) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
      const auto other = b.FindMember(it->name);
      if (other == b.MemberEnd() || !json_equal(it->value, other->value, depth + 1)) return false;
    }
    return true;
  }
  return a == b;  // null, booleans
}

size_t code_points(const Value& s) {
  size_t n = 0;
  for (rapidjson::SizeType i = 0; i < s.GetStringLength(); ++i) {
    n += (static_cast<unsigned char>(s.GetString()[i]) & 0xC0) != 0x80;
  }
  return n;
}

double number_of(const Value& schema, const char* key, bool* found) {
  const auto it = schema.FindMember(key);
  *found = it != schema.MemberEnd() && it->value.IsNumber();
  return *found ? it->value.GetDouble() : 0.0;
}

const std::set<std::string_view>& supported_keywords() {
  static const NoDestructor<std::set<std::string_view>> k(std::set<std::string_view>{
      "type", "enum", "const", "properties", "required", "additionalProperties", "items",
      "prefixItems", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "minimum",
      "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf", "oneOf", "allOf",
      "not",
      // annotations: nothing to enforce
      "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
      "readOnly", "writeOnly"});
  return *k;
}

void collect_unsupported(const Value& schema, std::set<std::string>& out, int depth) {
  if (depth > kMaxDepth || !schema.IsObject()) return;
  for (auto it = schema.MemberBegin(); it != schema.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (!supported_keywords().count(key)) out.emplace(key);
    if (key == "properties" && it->value.IsObject()) {
      for (auto p = it->value.MemberBegin(); p != it->value.MemberEnd(); ++p) {
        collect_unsupported(p->value, out, depth + 1);
      }
    } else if ((key == "anyOf" || key == "oneOf" || key == "allOf" || key == "prefixItems") &&
               it->value.IsArray()) {
      for (const auto& s : it->value.GetArray()) collect_unsupported(s, out, depth + 1);
    } else if (key == "items" || key == "additionalProperties" || key == "not") {
      collect_unsupported(it->value, out, depth + 1);
    }
  }
}

// Appends ".name" / "[i]" to a JSON path for messages.
std::string child(const std::string& path, std::string_view name) {
  return path + "." + std::string(name);
}
std::string child(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Returns an empty string when `v` satisfies `schema`, else the first violation.
std::string validate(const Value& v, const Value& schema, const std::string& path, int depth) {
  if (depth > kMaxDepth) return path + ": nested deeper than " + std::to_string(kMaxDepth);
  if (schema.IsBool()) return schema.GetBool() ? "" : path + ": not allowed (schema false)";
  if (!schema.IsObject()) return "";
  if (const auto t = schema.FindMember("type"); t != schema.MemberEnd()) {
    bool ok = false;
    if (t->value.IsString()) {
      ok = has_type(v, {t->value.GetString(), t->value.GetStringLength()});
    } else if (t->value.IsArray()) {
      for (const auto& x : t->value.GetArray()) {
        ok = ok || (x.IsString() && has_type(v, {x.GetString(), x.GetStringLength()}));
      }
    } else {
      ok = true;
    }
    if (!ok) return path + ": expected type " + clip_for_reason(
        t->value.IsString() ? std::string_view(t->value.GetString()) : "(list)") +
        ", got " + type_name(v);
  }
  if (const auto e = schema.FindMember("enum"); e != schema.MemberEnd() && e->value.IsArray()) {
    bool ok = false;
    for (const auto& x : e->value.GetArray()) ok = ok || json_equal(v, x, depth);
    if (!ok) return path + ": not one of the enum values";
  }
  if (const auto c = schema.FindMember("const"); c != schema.MemberEnd()) {
    if (!json_equal(v, c->value, depth)) return path + ": not the const value";
  }
  for (const std::string_view key : {"allOf", "anyOf", "oneOf"}) {
    const auto it = schema.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
    if (it == schema.MemberEnd() || !it->value.IsArray()) continue;
    rapidjson::SizeType matched = 0;
    std::string first_error;
    for (const auto& s : it->value.GetArray()) {
      std::string err = validate(v, s, path, depth + 1);
      if (err.empty()) {
        ++matched;
      } else if (first_error.empty()) {
        first_error = std::move(err);
      }
    }
    if (key == "allOf" && matched != it->value.Size()) return first_error;
    if (key == "anyOf" && matched == 0) return path + ": matches none of anyOf";
    if (key == "oneOf" && matched != 1) {
      return path + ": matches " + std::to_string(matched) + " of oneOf (needs exactly 1)";
    }
  }
  if (const auto n = schema.FindMember("not"); n != schema.MemberEnd()) {
    if (validate(v, n->value, path, depth + 1).empty()) return path + ": matches a 'not' schema";
  }
  if (v.IsNumber()) {
    const double x = v.GetDouble();
    bool f = false;
    if (const double lo = number_of(schema, "minimum", &f); f && x < lo) return path + ": below minimum";
    if (const double hi = number_of(schema, "maximum", &f); f && x > hi) return path + ": above maximum";
    if (const double lo = number_of(schema, "exclusiveMinimum", &f); f && x <= lo) {
      return path + ": not above exclusiveMinimum";
    }
    if (const double hi = number_of(schema, "exclusiveMaximum", &f); f && x >= hi) {
      return path + ": not below exclusiveMaximum";
    }
    if (const double m = number_of(schema, "multipleOf", &f); f && m > 0) {
      const double q = x / m;
      if (!std::isfinite(q) || std::abs(q - std::round(q)) > 1e-9 * std::max(1.0, std::abs(q))) {
        return path + ": not a multiple of multipleOf";
      }
    }
  }
  if (v.IsString()) {
    bool f = false;
    const double len = static_cast<double>(code_points(v));
    if (const double lo = number_of(schema, "minLength", &f); f && len < lo) return path + ": shorter than minLength";
    if (const double hi = number_of(schema, "maxLength", &f); f && len > hi) return path + ": longer than maxLength";
  }
  if (v.IsArray()) {
    bool f = false;
    const double size = v.Size();
    if (const double lo = number_of(schema, "minItems", &f); f && size < lo) return path + ": fewer than minItems";
    if (const double hi = number_of(schema, "maxItems", &f); f && size > hi) return path + ": more than maxItems";
    size_t first = 0;
    if (const auto p = schema.FindMember("prefixItems");
        p != schema.MemberEnd() && p->value.IsArray()) {
      for (; first < std::min<size_t>(p->value.Size(), v.Size()); ++first) {
        const auto i = static_cast<rapidjson::SizeType>(first);
        if (auto err = validate(v[i], p->value[i], child(path, first), depth + 1); !err.empty()) {
          return err;
        }
      }
    }
    if (const auto it = schema.FindMember("items"); it != schema.MemberEnd()) {
      for (size_t i = first; i < v.Size(); ++i) {
        const auto& item = v[static_cast<rapidjson::SizeType>(i)];
        if (auto err = validate(item, it->value, child(path, i), depth + 1); !err.empty()) {
          return err;
        }
      }
    }
    if (const auto u = schema.FindMember("uniqueItems");
        u != schema.MemberEnd() && u->value.IsBool() && u->value.GetBool()) {
      if (v.Size() > kMaxUniqueItems) return path + ": too many items to check uniqueItems";
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        for (rapidjson::SizeType j = i + 1; j < v.Size(); ++j) {
          if (json_equal(v[i], v[j], depth + 1)) return path + ": items are not unique";
        }
      }
    }
  }
  if (v.IsObject()) {
    if (const auto r = schema.FindMember("required"); r != schema.MemberEnd() && r->value.IsArray()) {
      for (const auto& name : r->value.GetArray()) {
        if (name.IsString() && !v.HasMember(name)) {
          return path + ": missing required property '" +
                 clip_for_reason({name.GetString(), name.GetStringLength()}) + "'";
        }
      }
    }
    const auto props = schema.FindMember("properties");
    const bool have_props = props != schema.MemberEnd() && props->value.IsObject();
    const auto extra = schema.FindMember("additionalProperties");
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      const std::string_view name(m->name.GetString(), m->name.GetStringLength());
      const Value* sub = nullptr;
      if (have_props) {
        if (const auto p = props->value.FindMember(m->name); p != props->value.MemberEnd()) {
          sub = &p->value;
        }
      }
      const bool additional = !sub && extra != schema.MemberEnd();
      if (additional) sub = &extra->value;
      if (!sub) continue;
      if (auto err = validate(m->value, *sub, child(path, clip_for_reason(name, 40)), depth + 1);
          !err.empty()) {
        if (additional && sub->IsBool()) {
          return path + ": unexpected property '" + clip_for_reason(name, 40) + "'";
        }
        return err;
      }
    }
  }
  return "";
}

}  // namespace

std::string clip_for_reason(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

std::optional<std::string_view> extract_json(std::string_view reply) {
  const std::string_view t = trim(reply);
  if (t.empty()) return std::nullopt;
  if (t.front() == '{' || t.front() == '[') return t;
  for (size_t at = t.find("```"); at != std::string_view::npos; at = t.find("```", at + 3)) {
    const size_t line_end = t.find('\n', at);
    if (line_end == std::string_view::npos) break;
    const size_t close = t.find("```", line_end);
    if (close == std::string_view::npos) break;
    const std::string_view body = trim(t.substr(line_end + 1, close - line_end - 1));
    if (!body.empty() && (body.front() == '{' || body.front() == '[')) return body;
    at = close;  // the closing fence is not an opening one
  }
  const size_t open = t.find('{');
  const size_t close = t.rfind('}');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    return t.substr(open, close - open + 1);
  }
  return std::nullopt;
}

Verdict check_json_reply(std::string_view reply) {
  const auto json = extract_json(reply);
  if (!json) return Verdict::fail("no JSON in the reply");
  rapidjson::Document doc;
  if (!parse(doc, *json)) {
    return Verdict::fail(std::string("JSON does not parse: ") +
                         rapidjson::GetParseError_En(doc.GetParseError()) + " at byte " +
                         std::to_string(doc.GetErrorOffset()));
  }
  return Verdict::pass("JSON parses");
}

struct JsonSchema::Impl {
  rapidjson::Document schema;
  std::vector<std::string> unsupported;
};

JsonSchema::JsonSchema(std::string_view schema_json) : impl_(std::make_unique<Impl>()) {
  if (!parse(impl_->schema, schema_json)) {
    throw InvalidArgument(std::string("JSON schema does not parse: ") +
                          rapidjson::GetParseError_En(impl_->schema.GetParseError()));
  }
  if (!impl_->schema.IsObject() && !impl_->schema.IsBool()) {
    throw InvalidArgument("a JSON schema must be an object or a boolean");
  }
  std::set<std::string> unsupported;
  collect_unsupported(impl_->schema, unsupported, 0);
  impl_->unsupported.assign(unsupported.begin(), unsupported.end());
}

JsonSchema::~JsonSchema() = default;
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;

const std::vector<std::string>& JsonSchema::unsupported_keywords() const noexcept {
  return impl_->unsupported;
}

Verdict JsonSchema::validate_text(std::string_view json) const {
  rapidjson::Document doc;
  if (!parse(doc, json)) {
    return Verdict::fail(std::string("JSON does not parse: ") +
                         rapidjson::GetParseError_En(doc.GetParseError()));
  }
  std::string err = validate(doc, impl_->schema, "$", 0);
  if (!err.empty()) return Verdict::fail(std::move(err));
  return Verdict::pass("matches the schema");
}

Verdict JsonSchema::check_reply(std::string_view reply) const {
  const auto json = extract_json(reply);
  if (!json) return Verdict::fail("no JSON in the reply");
  return validate_text(*json);
}

struct ToolCallValidator::Impl {
  std::unordered_map<std::string, JsonSchema> tools;
};

ToolCallValidator::ToolCallValidator(std::string_view tools_json)
    : impl_(std::make_unique<Impl>()) {
  rapidjson::Document doc;
  if (!parse(doc, tools_json) || !doc.IsArray()) {
    throw InvalidArgument("tools must be a JSON array of {\"type\":\"function\",\"function\":{...}}");
  }
  for (const auto& tool : doc.GetArray()) {
    const Value* fn = tool.IsObject() && tool.HasMember("function") ? &tool["function"] : nullptr;
    if (!fn || !fn->IsObject() || !fn->HasMember("name") || !(*fn)["name"].IsString()) {
      throw InvalidArgument("every tool needs function.name");
    }
    std::string schema = "{}";
    if (const auto p = fn->FindMember("parameters"); p != fn->MemberEnd()) {
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      p->value.Accept(w);
      schema.assign(buf.GetString(), buf.GetSize());
    }
    impl_->tools.insert_or_assign((*fn)["name"].GetString(), JsonSchema(schema));
  }
}

ToolCallValidator::~ToolCallValidator() = default;
ToolCallValidator::ToolCallValidator(ToolCallValidator&&) noexcept = default;
ToolCallValidator& ToolCallValidator::operator=(ToolCallValidator&&) noexcept = default;

std::vector<std::string> ToolCallValidator::tool_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : impl_->tools) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Verdict ToolCallValidator::check(std::string_view tool_calls_json) const {
  rapidjson::Document doc;
  if (!parse(doc, tool_calls_json) || !doc.IsArray()) {
    return Verdict::fail("tool_calls is not a JSON array");
  }
  if (doc.Empty()) return Verdict::abstain("no tool calls");
  size_t i = 0;
  for (const auto& call : doc.GetArray()) {
    const std::string where = "tool call " + std::to_string(i++);
    const Value* fn = call.IsObject() && call.HasMember("function") ? &call["function"] : nullptr;
    if (!fn || !fn->IsObject() || !fn->HasMember("name") || !(*fn)["name"].IsString()) {
      return Verdict::fail(where + ": no function name");
    }
    const std::string name((*fn)["name"].GetString(), (*fn)["name"].GetStringLength());
    const auto tool = impl_->tools.find(name);
    if (tool == impl_->tools.end()) {
      return Verdict::fail(where + ": unknown tool '" + clip_for_reason(name, 40) + "'");
    }
    const auto args = fn->FindMember("arguments");
    std::string_view text = "{}";
    if (args != fn->MemberEnd()) {
      if (!args->value.IsString()) return Verdict::fail(where + ": arguments is not a string");
      text = {args->value.GetString(), args->value.GetStringLength()};
    }
    rapidjson::Document parsed;
    if (!parse(parsed, text) || !parsed.IsObject()) {
      return Verdict::fail(where + " (" + clip_for_reason(name, 40) +
                           "): arguments are not a JSON object");
    }
    Verdict v = tool->second.validate_text(text);
    if (v.outcome == VerdictOutcome::kFail) {
      return Verdict::fail(where + " (" + clip_for_reason(name, 40) + "): " + v.reason);
    }
  }
  return Verdict::pass("every tool call validates");
}

}  // namespace orroute
