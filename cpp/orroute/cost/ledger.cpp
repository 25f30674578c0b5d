#include "orroute/cost/ledger.h"

#include <algorithm>
#include <exception>

#include "orroute/utf8.h"

namespace orroute {

std::string BudgetScope::to_string() const {
  switch (kind) {
    case ScopeKind::kGlobal: return "global";
    case ScopeKind::kProject: return "project:" + value;
    case ScopeKind::kConversation: return "conversation:" + value;
    case ScopeKind::kTag: return "tag:" + key + "=" + value;
  }
  return "global";
}

BudgetScope parse_scope(std::string_view text) {
  BudgetScope s;
  if (text == "global" || text.empty()) return s;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    throw InvalidArgument("bad budget scope '" + std::string(text) + "'");
  }
  const std::string_view kind = text.substr(0, colon), rest = text.substr(colon + 1);
  if (kind == "project") {
    s.kind = ScopeKind::kProject;
    s.value = rest;
  } else if (kind == "conversation") {
    s.kind = ScopeKind::kConversation;
    s.value = rest;
  } else if (kind == "tag") {
    const auto eq = rest.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw InvalidArgument("tag budget scope must be 'key=value', got '" + std::string(rest) + "'");
    }
    s.kind = ScopeKind::kTag;
    s.key = rest.substr(0, eq);
    s.value = rest.substr(eq + 1);
  } else {
    throw InvalidArgument("bad budget scope '" + std::string(text) + "'");
  }
  return s;
}

std::string_view to_string(ScopeKind kind) {
  switch (kind) {
    case ScopeKind::kGlobal: return "global";
    case ScopeKind::kProject: return "project";
    case ScopeKind::kConversation: return "conversation";
    case ScopeKind::kTag: return "tag";
  }
  return "global";
}

ScopeKind parse_scope_kind(std::string_view text) {
  if (text == "project") return ScopeKind::kProject;
  if (text == "conversation") return ScopeKind::kConversation;
  if (text == "tag") return ScopeKind::kTag;
  return ScopeKind::kGlobal;
}

bool scope_matches(const BudgetScope& scope, const SpendScope& spend) {
  switch (scope.kind) {
    case ScopeKind::kGlobal: return true;
    case ScopeKind::kProject: return spend.project == scope.value;
    case ScopeKind::kConversation: return spend.conversation == scope.value;
    case ScopeKind::kTag:
      return std::any_of(spend.tags.begin(), spend.tags.end(), [&](const auto& t) {
        return t.first == scope.key && t.second == scope.value;
      });
  }
  return false;
}

void check_scope(const SpendScope& spend) {
  for (size_t i = 0; i < spend.tags.size(); ++i) {
    const auto& [k, v] = spend.tags[i];
    if (k.empty() || k.find_first_of("=\n") != std::string::npos ||
        v.find('\n') != std::string::npos) {
      throw InvalidArgument("tag keys must be non-empty without '=' or newlines, values without "
                            "newlines: '" + k + "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (spend.tags[j].first == k) throw InvalidArgument("tag '" + k + "' given twice");
    }
  }
}

void check_call(const CallRecord& call) {
  if (call.prompt_tokens < 0 || call.completion_tokens < 0 || call.cached_tokens < 0 ||
      call.cache_write_tokens < 0 || call.reasoning_tokens < 0) {
    throw InvalidArgument("token counts must be >= 0");
  }
  if (call.cost.is_negative() && call.outcome != kRefundOutcome) {
    throw InvalidArgument("a call's cost must be >= 0, got " + call.cost.to_string() +
                          " (money given back is recorded as a refund: outcome \"refund\")");
  }
}

InvalidArgument refund_past_spent(const std::string& budget, Money refund, Money spent) {
  return InvalidArgument("a refund of $" + (-refund).to_string() + " is more than budget " +
                         client_text(budget) + " spent in its window ($" + spent.to_string() + ")");
}

bool is_call(std::string_view outcome) { return outcome != kRefundOutcome && outcome != kAbandonedOutcome; }

void check_not_refund(const CallRecord& call) {
  if (call.outcome == kRefundOutcome) {
    throw InvalidArgument("a call's outcome cannot be \"refund\": money given back is booked by "
                          "record_refund, not as a call made");
  }
}

SettleOutcome record_refund(Ledger& ledger, int64_t call_id, CallRecord refund) {
  if (refund.cost.is_negative() || refund.cost.is_zero()) {
    throw InvalidArgument("a refund's amount must be > 0, got " + refund.cost.to_string());
  }
  refund.cost = -refund.cost;
  refund.outcome = kRefundOutcome;
  return ledger.record_refund_of(call_id, std::move(refund));
}

void refund_of(const CallRecord& call, Money refunded, CallRecord& refund) {
  const std::string which = "call " + std::to_string(call.id);
  if (!is_call(call.outcome)) {
    throw InvalidArgument("a refund names a call that was billed: " + which + " is " +
                          (call.outcome == kRefundOutcome ? "a refund" : "a reclaim's booking"));
  }
  if (!refund.scope.project.empty() || !refund.scope.conversation.empty() || !refund.scope.tags.empty()) {
    throw InvalidArgument("a refund is booked in its call's project, conversation and tags: give none");
  }
  const Money left = call.cost - refunded;
  if (-refund.cost > left) {
    throw InvalidArgument("a refund of $" + (-refund.cost).to_string() + " is more than " + which +
                          " has left to give back ($" + left.to_string() + " of $" +
                          call.cost.to_string() + ")");
  }
  refund.at = call.at;
  refund.scope = call.scope;
  if (refund.model_used.empty()) refund.model_used = call.model_used;
  if (refund.model_requested.empty()) refund.model_requested = call.model_requested;
  if (refund.task_id.empty()) refund.task_id = call.task_id;
  if (refund.generation_id.empty()) refund.generation_id = call.generation_id;
}

SettleOutcome record_call(Ledger& ledger, CallRecord call) {
  check_not_refund(call);
  return ledger.record(std::move(call));
}

std::string encode_tags(const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string out;
  for (const auto& [k, v] : tags) out += k + "=" + v + "\n";
  return out;
}

std::vector<std::pair<std::string, std::string>> decode_tags(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    const auto eq = line.find('=');
    if (eq != std::string_view::npos) out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    pos = nl + 1;
  }
  return out;
}

std::string_view to_string(Policy p) { return p == Policy::kRefuse ? "refuse" : "downgrade"; }

Policy parse_policy(std::string_view text) {
  if (text == "refuse") return Policy::kRefuse;
  if (text == "downgrade") return Policy::kDowngrade;
  throw InvalidArgument("budget policy must be 'refuse' or 'downgrade', got '" +
                        std::string(text) + "'");
}

std::string Budget::name() const {
  return scope.to_string() + "/" + std::string(to_string(window));
}

Money BudgetState::remaining() const {
  const Money r = budget.limit - spent - reserved;
  return r.is_negative() ? Money() : r;
}

namespace {
std::string exceeded_message(const std::string& budget, Money limit, Money spent, Money reserved, Money estimate,
                             const std::string& asked) {
  // the name quoted as every message quotes client text (a conversation's id may be huge)
  return "budget " + client_text(budget) + " would be exceeded: limit $" + limit.to_string() + ", spent $" + spent.to_string() +
         ", reserved $" + reserved.to_string() + ", " + asked + " up to $" + estimate.to_string();
}
}  // namespace

BudgetExceeded BudgetExceeded::together(Money total, Money held, const std::string& asked) const {
  BudgetExceeded out(exceeded_message(budget, limit, spent, reserved - held, total, asked), *this);
  out.reserved = reserved - held;
  out.estimate = total;
  out.remaining = remaining + held;
  return out;
}

BudgetExceeded::BudgetExceeded(const BudgetState& state, Money estimate_, Policy policy_,
                               Money remaining_)
    : Error(exceeded_message(state.budget.name(), state.budget.limit, state.spent, state.reserved, estimate_,
                             "this call")),
      budget(state.budget.name()),
      limit(state.budget.limit),
      spent(state.spent),
      reserved(state.reserved),
      estimate(estimate_),
      remaining(remaining_),
      policy(policy_) {}

std::vector<BatchSettle> Ledger::settle_batch(std::vector<SettleItem> items) {
  std::vector<BatchSettle> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    try {
      out[i].outcome = settle(items[i].reservation_id, std::move(items[i].call));
    } catch (const std::exception& e) {
      out[i].error = e.what();
    } catch (...) {
      out[i].error = "unknown error";
    }
  }
  return out;
}

}  // namespace orroute
