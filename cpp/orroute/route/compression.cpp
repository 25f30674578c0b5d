#include "orroute/route/compression.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <utility>

#include "orroute/catalog/catalog.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/tokenizer/token_count.h"
#include "orroute/json_writer.h"

namespace orroute {
namespace {

std::string role_of(const rapidjson::Value& m) {
  const auto it = m.FindMember("role");
  return it != m.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : "";
}

bool is_system(std::string_view role) { return role == "system" || role == "developer"; }
bool is_tool_result(std::string_view role) { return role == "tool" || role == "function"; }

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}

// The prompt price of `tokens` on `model`, if the catalog knows a fixed one.
std::optional<Money> prompt_cost(const ModelCatalog* catalog, std::string_view model, int64_t tokens) {
  if (catalog == nullptr) return std::nullopt;
  const ModelInfo* info = catalog->find(model);
  if (info == nullptr || info->pricing.dynamic) return std::nullopt;
  return info->pricing.for_call(tokens, std::nullopt).prompt * tokens;
}

struct Over {
  bool over = false;
  std::string why;
};

Over check(const CompressionRule& rule, int64_t tokens, const std::optional<Money>& cost) {
  if (rule.max_prompt_tokens > 0 && tokens > rule.max_prompt_tokens) {
    return {true, std::to_string(tokens) + " prompt tokens > " + std::to_string(rule.max_prompt_tokens)};
  }
  if (rule.max_prompt_cost) {
    if (!cost) return {true, "the prompt's price is unknown and a cost limit is set"};
    if (*cost > *rule.max_prompt_cost) {
      return {true, "prompt costs $" + cost->to_string() + " > $" + rule.max_prompt_cost->to_string()};
    }
  }
  return {};
}

}  // namespace

CompressionPlan plan_compression(std::string_view model, std::string_view messages_json,
                                 const CompressionRule& rule, const ModelCatalog* catalog,
                                 std::string_view tools_json) {
  if (rule.max_prompt_tokens < 0 || rule.summary_tokens < 0) {
    throw InvalidArgument("compression: max_prompt_tokens and summary_tokens must be >= 0");
  }
  if (rule.keep_last < 1) throw InvalidArgument("compression: keep_last must be >= 1");
  if (rule.max_prompt_cost && *rule.max_prompt_cost < Money::zero()) {
    throw InvalidArgument("compression: max_prompt_cost must be >= 0");
  }
  rapidjson::Document doc;
  if (parse_json_text(messages_json, doc) != JsonParse::kOk || !doc.IsArray()) {
    throw ParseError("messages must be a JSON array");
  }
  const auto& msgs = doc.GetArray();
  const int32_t n = static_cast<int32_t>(msgs.Size());
  CompressionPlan plan;
  plan.prompt_tokens = count_chat_tokens_json(model, messages_json, tools_json).tokens;
  plan.prompt_cost = prompt_cost(catalog, model, plan.prompt_tokens);
  plan.kept_tokens = plan.prompt_tokens;
  for (int32_t i = 0; i < n; ++i) plan.keep.push_back(i);
  const Over over = check(rule, plan.prompt_tokens, plan.prompt_cost);
  if (!over.over) {
    plan.reason = "within the limits";
    return plan;
  }
  // Tokens per message: the message alone, less an empty prompt (priming and tools).
  const int64_t base = count_chat_tokens_json(model, "[]", tools_json).tokens;
  const int64_t empty = count_chat_tokens_json(model, "[]").tokens;
  std::vector<int64_t> tokens(static_cast<size_t>(n));
  std::vector<std::string> roles(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    if (!msgs[static_cast<rapidjson::SizeType>(i)].IsObject()) {
      throw ParseError("each message must be a JSON object");
    }
    const auto& m = msgs[static_cast<rapidjson::SizeType>(i)];
    roles[static_cast<size_t>(i)] = role_of(m);
    std::string one = "[";
    one += to_json(m);
    one += ']';
    tokens[static_cast<size_t>(i)] = std::max<int64_t>(0, count_chat_tokens_json(model, one).tokens - empty);
  }
  // Units: start indices of runs that a tool result never begins.
  std::vector<int32_t> starts;
  for (int32_t i = 0; i < n; ++i) {
    if (is_system(roles[static_cast<size_t>(i)])) continue;
    if (starts.empty() || !is_tool_result(roles[static_cast<size_t>(i)])) starts.push_back(i);
  }
  // Shortest tail of whole units holding at least keep_last (non-system) messages.
  size_t first_unit = starts.size();
  int32_t tail_messages = 0;
  int32_t unit_end = n;
  while (first_unit > 0) {
    --first_unit;
    for (int32_t i = starts[first_unit]; i < unit_end; ++i) {
      tail_messages += is_system(roles[static_cast<size_t>(i)]) ? 0 : 1;
    }
    unit_end = starts[first_unit];
    if (tail_messages >= rule.keep_last) break;
  }
  // Kept tokens for a tail starting at index i: base + system messages + non-system ones from i.
  int64_t system_tokens = 0;
  std::vector<int64_t> suffix(static_cast<size_t>(n) + 1, 0);
  for (int32_t i = n - 1; i >= 0; --i) {
    const auto k = static_cast<size_t>(i);
    const bool sys = is_system(roles[k]);
    system_tokens += sys ? tokens[k] : 0;
    suffix[k] = suffix[k + 1] + (sys ? 0 : tokens[k]);
  }
  auto kept_tokens = [&](int32_t tail_from) {
    return base + system_tokens + suffix[static_cast<size_t>(tail_from)];
  };
  // Still over with the summary's room reserved: older units leave the tail, the last one stays.
  while (!starts.empty() && first_unit + 1 < starts.size()) {
    const int64_t t = kept_tokens(starts[first_unit]) + rule.summary_tokens;
    if (!check(rule, t, prompt_cost(catalog, model, t)).over) break;
    ++first_unit;
  }
  const int32_t tail_from = starts.empty() ? n : starts[first_unit];
  plan.keep.clear();
  bool leading = true;
  for (int32_t i = 0; i < n; ++i) {
    const bool sys = is_system(roles[static_cast<size_t>(i)]);
    if (!sys) leading = false;
    if (sys || i >= tail_from) {
      plan.keep.push_back(i);
      if (leading) plan.summary_at = static_cast<int32_t>(plan.keep.size());
    } else {
      plan.fold.push_back(i);
    }
  }
  plan.kept_tokens = kept_tokens(tail_from);
  if (plan.fold.empty()) {
    plan.keep.clear();
    for (int32_t i = 0; i < n; ++i) plan.keep.push_back(i);
    plan.summary_at = 0;
    plan.kept_tokens = plan.prompt_tokens;
    plan.reason = over.why + "; nothing older than the last turns to fold";
    return plan;
  }
  plan.compress = true;
  plan.reason = over.why + "; folding " + std::to_string(plan.fold.size()) + " older message(s), keeping " +
                std::to_string(plan.keep.size());
  return plan;
}

}  // namespace orroute
