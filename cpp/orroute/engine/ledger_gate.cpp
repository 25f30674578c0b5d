#include "orroute/engine/ledger_gate.h"

#include "orroute/engine/provider_routes.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "orroute/error.h"
#include "orroute/select/expected_cost.h"
#include "orroute/utf8.h"

namespace orroute {

namespace {

int64_t to_us(Duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

}  // namespace

void LedgerGate::tag_provider(SpendScope& scope, const std::string& provider) const {
  if (provider.empty() && routed_as_.empty()) return;  // one endpoint: no tag, as before
  for (const auto& [k, v] : scope.tags) {
    if (k == "provider") return;  // the caller's own tag wins
  }
  scope.tags.emplace_back("provider", provider.empty() ? routed_as_ : provider);
}

BudgetGate::Hold LedgerGate::reserve(const std::string& model, Money worst_case) {
  ReserveRequest req;
  req.scope = scope_;
  req.amount = worst_case;
  req.ttl_us = hold_us_;
  const auto [model_id, provider] = ProviderRoutes::split(model);
  req.model = model_id;  // model budgets apply at every provider
  tag_provider(req.scope, provider);  // the row says where it ran; budgets may scope on it
  req.task_id = task_id_;
  Hold h;
  try {
    const bool asks = guard_->needs_approval(worst_case);
    const auto approved = approved_.find(model);
    const bool approved_before = asks && approved != approved_.end() && worst_case <= approved->second;
    if (asks && !approved_before && std::this_thread::get_id() != caller_) {
      h.ok = false;  // the next candidate may not need approval
      h.error_kind = ErrorKind::kApprovalDenied;
      h.refusal = "the fallback " + client_text(model) + " (estimated at $" + worst_case.to_string() +
                  ") needs approval, which is asked only before the first attempt";
      return h;
    }
    std::optional<ReserveOutcome> drawn;
    if (prepaid_ && !prepaid_tried_) {  // a run's first reservation is its share of the n
      prepaid_tried_ = true;
      drawn = prepaid_->draw(*guard_, req, approved_before);
    }
    const ReserveOutcome o = drawn ? std::move(*drawn) : guard_->reserve(req, approved_before);
    switch (o.status) {
      case ReserveStatus::kReserved:
        if (asks && !approved_before) approved_[model] = worst_case;
        h.id = static_cast<uint64_t>(o.reservation_id);
        // The row keeps the expected cost (not this worst case) for estimate-vs-actual reports.
        estimates_[h.id] =
            expected_cost(catalog_, req.model, task_type_,
                          prices_.prompt_tokens(model, prompt_tokens_), max_tokens_)
                .value_or(worst_case);
        return h;
      case ReserveStatus::kExceeded:
        h.ok = false;
        h.stop = drawn.has_value();  // n completions that do not all fit: none is sent, none falls back
        h.error_kind = ErrorKind::kBudgetExceeded;
        h.refusal = "budget " + (o.blocking ? o.blocking->budget.name() : std::string("?")) + ": worst case " +
                    (drawn ? prepaid_->total(worst_case).to_string() + " USD for " + prepaid_->asked(worst_case)
                           : worst_case.to_string() + " USD") +
                    " on " + client_text(model) + " exceeds the " + (o.remaining ? o.remaining->to_string() : std::string("?")) +
                    " USD remaining";
        return h;
      case ReserveStatus::kCutoff:
        h.ok = false;
        h.stop = true;
        h.error_kind = ErrorKind::kEmergencyCutoff;
        h.refusal = "emergency cutoff: " + o.cutoff_reason;
        return h;
    }
  } catch (const Error& e) {
    h.ok = false;
    h.stop = true;
    h.error_kind = e.kind();
    h.refusal = e.what();
  } catch (const std::exception& e) {  // an approval hook's own failure: refuse, never send
    h.ok = false;
    h.stop = true;
    h.error_kind = ErrorKind::kApprovalDenied;
    h.refusal = std::string("the approval hook failed: ") + e.what();
  }
  return h;
}

std::string LedgerGate::author_of(const std::string& model) const {
  if (const ModelInfo* m = catalog_.find(model)) return std::string(m->provider());
  const auto slash = model.find('/');
  return slash == std::string::npos ? std::string() : model.substr(0, slash);
}

void LedgerGate::settle(uint64_t id, Money actual, const CallInfo& info) {
  CallRecord rec;
  rec.scope = scope_;
  rec.task_id = task_id_;
  rec.task_type = task_type_;
  // A candidate "<model>@<provider>" (several providers): the model is the router's id, the
  // model used the provider's name for it, and a "provider" tag says where it ran.
  const auto [model, provider] = ProviderRoutes::split(info.model);
  rec.model_requested = model;
  rec.model_used = info.result && !info.result->served_model.empty() ? info.result->served_model : model;
  rec.provider = author_of(model);  // the model's author, for reports by provider
  tag_provider(rec.scope, provider);
  if (info.result) {
    rec.prompt_tokens = info.result->input_tokens;
    rec.completion_tokens = info.result->output_tokens;
    rec.cached_tokens = info.result->cached_tokens;
    rec.cache_write_tokens = info.result->cache_write_tokens;
    rec.reasoning_tokens = info.result->reasoning_tokens;
    if (info.result->ttft) rec.ttft_us = to_us(*info.result->ttft);
  }
  auto it = estimates_.find(id);
  if (it != estimates_.end() && info.billed) rec.estimated_cost = it->second;
  rec.cost = actual;
  rec.latency_us = to_us(info.latency);
  rec.attempts = info.attempts;
  rec.outcome = info.outcome;
  rec.error_class = info.error_class;
  if (info.charge) {
    rec.cost_source = info.charge->problem.empty()
                          ? info.charge->source
                          : info.charge->source + ": " + info.charge->problem;
  }
  std::lock_guard lock(mu_);
  pending_.push_back(SettleItem{static_cast<int64_t>(id), std::move(rec)});
}

void LedgerGate::commit(SettleWorker* worker, std::function<void()> then) {
  std::vector<SettleItem> items;
  {
    std::lock_guard lock(mu_);
    items.swap(pending_);
  }
  if (items.empty()) {
    then();
    return;
  }
  if (!worker || !worker->start()) {  // no worker, or no thread for it: written here
    for (SettleItem& it : items) {
      try {
        SettleOutcome out = guard_->ledger().settle(it.reservation_id, std::move(it.call));
        std::lock_guard lock(mu_);
        for (Alert& a : out.alerts) alerts_.push_back(std::move(a));
      } catch (const std::exception&) {
        // The row could not be written (storage failure): the call was billed, so its
        // reservation stays held until its TTL, as on the settle worker.
      }
    }
    then();
    return;
  }
  // The last of this run's settles to be written runs `then` (a run settles once; the count
  // only guards against a gate reused for several).
  auto left = std::make_shared<size_t>(items.size());
  auto shared_then = std::make_shared<std::function<void()>>(std::move(then));
  for (SettleItem& it : items) {
    worker->post(it.reservation_id, std::move(it.call),
                 [self = shared_from_this(), left, shared_then](std::optional<SettleOutcome> out) {
                   bool last = false;
                   {
                     std::lock_guard lock(self->mu_);
                     if (out) {
                       for (Alert& a : out->alerts) self->alerts_.push_back(std::move(a));
                     }
                     last = --*left == 0;
                   }
                   if (last) (*shared_then)();
                 });
  }
}

LedgerGate::~LedgerGate() {
  if (prepaid_ && !prepaid_tried_) prepaid_->give_back(guard_->ledger());  // a run that never asked for its share
}

void LedgerGate::release(uint64_t id) {
  try {
    guard_->ledger().release(static_cast<int64_t>(id));
  } catch (const std::exception&) {
    // Storage failure: the ledger reclaims the reservation by its TTL.
  }
}

std::vector<Alert> LedgerGate::take_alerts() {
  std::lock_guard lock(mu_);
  return std::exchange(alerts_, {});
}

}  // namespace orroute
