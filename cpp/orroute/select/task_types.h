// Task types of the plan (coding, reasoning, planning, ...) and price tiers, each with a documented
// rule. Static tables; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/catalog/model_info.h"
#include "orroute/catalog/money.h"
#include "orroute/select/quality_priors.h"

namespace orroute {

// Price tier from the blended price (3 prompt tokens : 1 completion token) per million tokens:
// flagship >= $6/M, premium >= $1.5/M, standard >= $0.25/M, economy below (free models included).
enum class Tier : int { kFlagship = 0, kPremium, kStandard, kEconomy };
std::string_view tier_name(Tier t);
// Throws InvalidArgument listing the tier names if unknown.
Tier tier_from_name(std::string_view name);
// Blended USD per million tokens (3:1 prompt:completion), base prices. Zero for dynamic prices.
Money blended_price_per_mtok(const Pricing& p);
Tier tier_of(const Pricing& p);

// What a task type asks of a model, and how it weighs the quality categories.
struct TaskType {
  std::string name;
  std::string rule;                  // human-readable rule, shown in errors and docs
  uint32_t required_capabilities;    // Capability bits the model must all have
  int64_t min_context;               // tokens
  int64_t expected_output_tokens;    // default output estimate for cost
  bool allow_batch;                  // ":batch" variants qualify (asynchronous, bulk only)
  std::optional<Money> max_blended_per_mtok;  // price ceiling that is part of the type
  std::array<double, kNumQualityCategories> weights;  // sum to 1
};

// Every task type, in a fixed order (general first).
const std::vector<TaskType>& task_types();
// The task type by name; nullptr if unknown.
const TaskType* find_task_type(std::string_view name);
// Throws InvalidArgument "unknown task type 'x'; known task types: ..." if unknown.
const TaskType& task_type(std::string_view name);
// True if `model` meets the task type's rule (capabilities, context, batch, price ceiling).
bool qualifies(const ModelInfo& model, const TaskType& type);

}  // namespace orroute
