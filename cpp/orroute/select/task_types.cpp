#include "orroute/select/task_types.h"

#include "orroute/catalog/capabilities.h"
#include "orroute/error.h"
#include "orroute/no_destructor.h"

namespace orroute {
namespace {

constexpr uint32_t cap(Capability c) { return static_cast<uint32_t>(c); }
constexpr uint32_t kText = cap(Capability::kText);

// Weights over {overall, coding, math, instruction_following, creative, hard_prompts}.
std::vector<TaskType> build() {
  const Money bulk_ceiling = Money::parse("0.5");  // $/M blended
  return {
      {"general", "text in and out (a chat model)", kText, 0, 500, false, std::nullopt,
       {0.6, 0, 0, 0.4, 0, 0}},
      {"coding", "chat model with tool calling and >= 32k context", kText | cap(Capability::kTools),
       32'000, 2000, false, std::nullopt, {0.1, 0.7, 0, 0, 0, 0.2}},
      {"reasoning", "chat model with reasoning (thinking) support", kText | cap(Capability::kReasoning),
       0, 4000, false, std::nullopt, {0.1, 0, 0.45, 0, 0, 0.45}},
      {"planning", "reasoning chat model with >= 64k context", kText | cap(Capability::kReasoning),
       64'000, 2000, false, std::nullopt, {0.2, 0, 0, 0.3, 0, 0.5}},
      {"verification", "chat model with structured outputs (verdicts parsed as JSON)",
       kText | cap(Capability::kStructuredOutputs), 0, 500, false, std::nullopt,
       {0.1, 0, 0.3, 0.3, 0, 0.3}},
      {"computer_use", "chat model with image input and tool calling",
       kText | cap(Capability::kVision) | cap(Capability::kTools), 0, 1000, false, std::nullopt,
       {0.3, 0.4, 0, 0.3, 0, 0}},
      {"large_context", "chat model with >= 200k context", kText | cap(Capability::kLargeContext),
       0, 1000, false, std::nullopt, {0.6, 0, 0, 0.4, 0, 0}},
      {"bulk_processing", "chat model at <= $0.50/M blended; :batch variants allowed", kText, 0, 300,
       true, bulk_ceiling, {0.4, 0, 0, 0.6, 0, 0}},
      {"creative_writing", "text in and out", kText, 0, 1500, false, std::nullopt,
       {0.2, 0, 0, 0, 0.8, 0}},
      {"math", "text in and out", kText, 0, 2000, false, std::nullopt, {0.1, 0, 0.9, 0, 0, 0}},
      {"summarization", "chat model with >= 32k context", kText, 32'000, 500, false, std::nullopt,
       {0.5, 0, 0, 0.5, 0, 0}},
      {"extraction", "chat model with structured outputs", kText | cap(Capability::kStructuredOutputs),
       0, 500, false, std::nullopt, {0.3, 0, 0, 0.7, 0, 0}},
      {"tool_use", "chat model with tool calling", kText | cap(Capability::kTools), 0, 500, false,
       std::nullopt, {0.3, 0.3, 0, 0.4, 0, 0}},
      {"vision", "chat model with image input", kText | cap(Capability::kVision), 0, 500, false,
       std::nullopt, {0.7, 0, 0, 0.3, 0, 0}},
      {"long_output", "chat model with max_completion_tokens >= 32768",
       kText | cap(Capability::kLongOutput), 0, 8000, false, std::nullopt, {0.4, 0, 0, 0.3, 0.3, 0}},
      {"translation", "text in and out", kText, 0, 1000, false, std::nullopt,
       {0.5, 0, 0, 0.5, 0, 0}},
  };
}

}  // namespace

std::string_view tier_name(Tier t) {
  switch (t) {
    case Tier::kFlagship: return "flagship";
    case Tier::kPremium: return "premium";
    case Tier::kStandard: return "standard";
    case Tier::kEconomy: return "economy";
  }
  return "economy";
}

Tier tier_from_name(std::string_view name) {
  for (Tier t : {Tier::kFlagship, Tier::kPremium, Tier::kStandard, Tier::kEconomy}) {
    if (tier_name(t) == name) return t;
  }
  throw InvalidArgument("unknown tier '" + std::string(name) +
                        "'; known tiers: flagship, premium, standard, economy");
}

Money blended_price_per_mtok(const Pricing& p) {
  if (p.dynamic) return Money();
  // (3 x prompt + completion) / 4 per token, x 1e6 tokens = (3p + c) x 250000: exact.
  return (p.base.prompt * 3 + p.base.completion) * 250'000;
}

Tier tier_of(const Pricing& p) {
  const Money b = blended_price_per_mtok(p);
  if (b >= Money::dollars(6)) return Tier::kFlagship;
  if (b >= Money::parse("1.5")) return Tier::kPremium;
  if (b >= Money::parse("0.25")) return Tier::kStandard;
  return Tier::kEconomy;
}

const std::vector<TaskType>& task_types() {
  static const NoDestructor<std::vector<TaskType>> types(build());
  return *types;
}

const TaskType* find_task_type(std::string_view name) {
  for (const TaskType& t : task_types()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TaskType& task_type(std::string_view name) {
  if (const TaskType* t = find_task_type(name)) return *t;
  std::string known;
  for (const TaskType& t : task_types()) known += (known.empty() ? "" : ", ") + t.name;
  throw InvalidArgument("unknown task type '" + std::string(name) + "'; known task types: " + known);
}

bool qualifies(const ModelInfo& m, const TaskType& t) {
  if ((m.capabilities & t.required_capabilities) != t.required_capabilities) return false;
  if (m.context_length < t.min_context) return false;
  if (!t.allow_batch && m.variant() == "batch") return false;
  if (t.max_blended_per_mtok &&
      (m.pricing.dynamic || blended_price_per_mtok(m.pricing) > *t.max_blended_per_mtok)) {
    return false;
  }
  return true;
}

}  // namespace orroute
