// Engine::plan: count, analyze, select, estimate (what submit() then runs).
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/catalog_prices.h"
#include "orroute/engine/chat_text.h"
#include "orroute/engine/default_order.h"
#include "orroute/engine/engine.h"
#include "orroute/cost/prompt_bounds.h"
#include "orroute/engine/engine_impl.h"
#include "orroute/error.h"
#include "orroute/json.h"
#include "orroute/json_members.h"
#include "orroute/net/protocol.h"
#include "orroute/no_destructor.h"
#include "orroute/tokenizer/token_count.h"

namespace orroute {

std::vector<std::string> plan_reasons(const EnginePlan& plan) {
  std::vector<std::string> out = complexity_reasons(plan.complexity);
  out.reserve(out.size() + 2 + plan.later_reasons.size());
  out.push_back(complexity_line(plan.complexity));
  if (plan.explicit_order) out.emplace_back("explicit fallback order");
  out.insert(out.end(), plan.later_reasons.begin(), plan.later_reasons.end());
  return out;
}

EnginePlan Engine::plan(const EngineTask& task, PlanUse use) const {
  LocalJson<> body_json;  // no heap for a usual request
  rapidjson::Document& body = body_json.doc();
  // Parsed in place in a copy: the strings (a long request is mostly its messages' text) are
  // decoded where they lie instead of copied into the document. `body` points into `request`.
  LocalText<> request(task.request_json);
  if (const JsonParse st = parse_json_in_place(request.data(), request.size(), body); st != JsonParse::kOk) {
    throw InvalidArgument(st == JsonParse::kInvalid ? std::string("task request is not valid JSON")
                                                    : std::string("task request JSON is ") + json_parse_reason(st));
  }
  if (!body.IsObject()) throw InvalidArgument("task request must be a JSON object");
  ChatRequestRules rules;
  rules.model_chosen = true;  // no model: the router picks one; the rest is validated
  validate_chat_request(body, rules);  // each key once: the members below are the only ones
  static constexpr std::array<std::string_view, 5> kRead = {"model", "messages", "tools", "max_tokens",
                                                            "max_completion_tokens"};
  const auto [model_member, messages_member, tools, max_tokens, max_completion_tokens] = members_named(body, kRead);
  std::string preferred = config_.preferred_model;
  if (model_member != nullptr && model_member->IsString()) {
    preferred = model_member->GetString();  // to its first NUL, as before
  }
  const bool by_strategy = task.strategy && task.fallbacks.empty();
  EnginePlan plan;
  const auto& messages = *messages_member;  // validated: there, an array
  std::string tools_json = tools != nullptr ? json_text(*tools) : std::string();

  // validate_chat_request checked the range; with both set, reserve for the larger.
  for (const rapidjson::Value* f : {max_tokens, max_completion_tokens}) {
    if (f != nullptr && f->IsInt64()) plan.max_tokens = std::max(plan.max_tokens, f->GetInt64());
  }
  if (plan.max_tokens == 0) plan.max_tokens = config_.default_max_tokens;

  const std::string reference =
      preferred.empty() || by_strategy ? std::string("openai/gpt-4o") : preferred;
  if (by_strategy) preferred.clear();  // e.g. "orroute/auto": not a model to call
  // One count per tokenizer: models sharing one (encoding and factor) reuse it, here and in
  // submit() (with selection the first candidate is often counted with the reference's).
  // The messages as counted, read from the body parsed above; submit() hands them to the prices.
  // The text alone (ImageCount::kPricedApart): the pricer adds the most each model may bill for
  // the images (the upstream fetches them; a caller's width/height hints are not what it bills).
  plan.prompt_counts.reserve(2);  // the reference's tokenizer (selection) and the first candidate's
  auto chat = std::make_shared<const std::vector<ChatMessage>>(chat_messages_of(messages));
  const auto count_for = [&](const std::string& model) -> int64_t {
    std::string key = tokenizer_key(model);
    for (const PromptCount& c : plan.prompt_counts) {
      if (c.key == key) return c.tokens;
    }
    const int64_t n = count_chat_tokens(model, *chat, tools_json, ImageCount::kPricedApart).tokens;
    plan.prompt_counts.push_back(PromptCount{std::move(key), model, n});  // (clang 14: no paren-init of aggregates)
    return n;
  };
  static const NoDestructor<std::vector<std::string>> kNone;
  const std::vector<std::string>& explicit_order =
      !task.fallbacks.empty() ? task.fallbacks : by_strategy ? *kNone : config_.fallbacks;
  // The prompt's count (the plan's prompt_tokens, the complexity's size): with an explicit order
  // nothing is chosen from it, so it is the first candidate's own (the model the call goes to,
  // one count); the selector needs a size before any model is chosen: the reference's. The
  // first candidate's count, whatever the order, is what the estimate reserves for.
  std::optional<int64_t> first_prompt;
  if (!explicit_order.empty()) {
    plan.candidates.reserve(explicit_order.size() + 1);
    // A task's own model goes before the engine's chain (a task's own list is its exact order).
    if (task.fallbacks.empty() && !preferred.empty()) plan.candidates.push_back(preferred);
    for (const std::string& id : explicit_order) {
      if (std::find(plan.candidates.begin(), plan.candidates.end(), id) == plan.candidates.end()) {
        plan.candidates.push_back(id);
      }
    }
    plan.explicit_order = true;
    try {
      first_prompt = count_for(plan.candidates.front());
    } catch (const Error&) {
    }
  }
  plan.prompt_tokens = first_prompt ? *first_prompt : count_for(reference);
  // The images, which the count leaves to each model's rule: at the counting model's for the
  // plan's size, at each candidate's own in the selector.
  RequestShape shape = request_shape_of(body);
  const ImageParts images{shape.images, shape.low_detail_images};
  plan.image_tokens = image_context_tokens(first_prompt ? plan.candidates.front() : reference, images);

  const std::string prompt = last_user_text(messages);
  ComplexityInput in;
  in.prompt = prompt;
  in.prior_turns = static_cast<int32_t>(messages.Size()) - 1;
  in.prompt_tokens = plan.prompt_tokens + plan.image_tokens;
  in.tools = tools != nullptr && tools->IsArray() ? static_cast<int32_t>(tools->Size()) : 0;
  in.max_output_tokens = plan.max_tokens;
  in.declared_type = task.task_type;
  plan.complexity = impl_->analyzer.analyze(in);
  plan.task_type = plan.complexity.task_type;

  if (explicit_order.empty()) {
    if (!preferred.empty()) plan.candidates.push_back(preferred);
    std::vector<Candidate> ranked;
    if (impl_->selector) {
      SelectionRequest req;
      req.task_type = plan.task_type;
      req.input_tokens = plan.prompt_tokens;
      req.images = images;
      req.budget = task.max_cost;
      if (by_strategy) req.strategy = task.strategy;
      Constraints c = impl_->selector->default_constraints();
      c.required_capabilities |= task.required_capabilities;
      if (task.min_quality) c.min_quality = task.min_quality;
      c.expected_output_tokens = plan.max_tokens;
      req.constraints = c;
      req.predicted_quality = impl_->predicted(plan.task_type);  // feedback; wins over a predictor
      req.prompt = prompt;  // a learned quality predictor, when installed, reads it
      req.limit = static_cast<size_t>(config_.max_candidates);
      // The difficulty floor (docs/router.md): not when the caller names the model; that choice is
      // the caller's, and its fallbacks are ranked as the caller's strategy alone says.
      if (preferred.empty() && plan.complexity.tier != ComplexityTier::kEconomy) {
        req.quality_floor = quality_floor(plan.complexity.tier);
        req.quality_floor_why = complexity_line(plan.complexity);
      } else if (!preferred.empty() && plan.complexity.tier != ComplexityTier::kEconomy) {
        plan.later_reasons.push_back("no complexity floor: the caller named the model");
      }
      impl_->feed_selector();  // the figures of every call that ended before this one
      for (int pass = 0; pass < 2 && ranked.empty(); ++pass) {
        try {
          ranked = impl_->selector->rank(req);
        } catch (const InvalidArgument&) {
          if (req.task_type == "general") break;
          req.task_type = "general";  // a guessed type the selector does not know
        } catch (const NoModelAvailable& e) {
          plan.later_reasons.push_back(std::string("selector: ") + e.what());
          break;
        }
      }
    }
    for (const Candidate& c : ranked) {
      if (static_cast<int>(plan.candidates.size()) >= config_.max_candidates) break;
      if (std::find(plan.candidates.begin(), plan.candidates.end(), c.model->id) == plan.candidates.end()) {
        plan.candidates.push_back(c.model->id);
      }
    }
    if (!ranked.empty()) {
      plan.later_reasons.insert(plan.later_reasons.end(), ranked.front().reasons.begin(), ranked.front().reasons.end());
    }
    if (plan.candidates.empty()) {
      for (const std::string& id : default_fallback_order()) {
        if (catalog_->find(id)) plan.candidates.push_back(id);
      }
      if (plan.candidates.empty()) throw NoModelAvailable("no candidate model for this task");
      plan.later_reasons.push_back("integration guide default order");
    }
  }
  // The estimate is exactly what the attempt loop reserves for the first candidate: the same
  // pricer, the same request shape (plus the server-side fallbacks it would send), and the prompt
  // counted with that model's own tokenizer.
  std::vector<std::string> server_models = server_fallbacks(plan.candidates, config_.server_side_fallbacks);
  // The request's own `models`, else the server-side fallbacks sent with it (they may answer too).
  const bool fallbacks_added = shape.models.empty();
  if (fallbacks_added && !server_models.empty()) shape.models = server_models;  // (as in submit())
  if (!first_prompt) {
    try {
      first_prompt = count_for(plan.candidates.front());
    } catch (const Error&) {
      first_prompt = plan.prompt_tokens;
    }
  }
  plan.estimate = impl_->pricer->worst_case(plan.candidates.front(), shape, *first_prompt,
                                            plan.max_tokens, nullptr);
  if (impl_->routes && plan.estimate) {
    // Several providers: the first model may run at any of them; the estimate is the dearest.
    const auto elsewhere = impl_->routes->dearest_elsewhere(plan.candidates.front(), shape, *first_prompt, plan.max_tokens,
                                                            impl_->pricer->context_window(plan.candidates.front()));
    if (elsewhere && *elsewhere > *plan.estimate) plan.estimate = elsewhere;
  }
  plan.messages = std::move(chat);
  plan.tools_json = std::move(tools_json);
  // Handed over with the request's own `models` only: submit() adds the server-side fallbacks of
  // the candidates it runs (a caller may change a plan's candidates before submitting it).
  if (fallbacks_added) shape.models.clear();
  plan.shape = std::move(shape);
  if (use != PlanUse::kSend) return plan;
  // Last: it changes `body` (model, stream, usage...), which nothing above reads any more.
  PreparedAttempt& first = plan.first_attempt.emplace();
  first.model = plan.candidates.front();
  first.stream = task.stream;
  first.server_models = std::move(server_models);
  if (guard_) first.reserved_max_tokens = plan.max_tokens;  // as submit() meters it
  first.body = chat_attempt_body(task.request_json, body, first.model, first.stream, first.server_models,
                                 first.reserved_max_tokens);
  return plan;
}

}  // namespace orroute
