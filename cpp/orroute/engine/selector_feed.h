// Which models finished a call since the selector last read their figures. The network thread
// only notes a model here when a call ends (a lock and a lookup, no allocation after the model's
// first call); plan() feeds the selector from the notes just before it ranks. A call whose
// candidates are given (explicit fallbacks, a pinned model) then never pays for the feed, and a
// ranking still sees every call that completed before it, as when the network thread fed the
// selector itself before each completion.
#pragma once

#include <exception>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orroute/route/clock.h"

namespace orroute {

// Thread-safe.
class SelectorFeed {
 public:
  // The models are the callers' names (a gateway client may name a new one per request); the
  // selector only ranks catalog models, far fewer than this. Past it, a new model is not noted.
  static constexpr size_t kMaxModels = 4096;

  // `model` finished a call at `at` (of several notes of one model, the latest time is kept).
  void note(const std::string& model, Instant at) {
    std::lock_guard lock(mu_);
    if (models_.size() >= kMaxModels && models_.find(model) == models_.end()) return;
    auto [it, fresh] = models_.try_emplace(model, Entry{at, false});
    Entry& e = it->second;
    if (at > e.at) e.at = at;
    if (!e.queued) {
      e.queued = true;
      queued_.push_back(&*it);  // unordered_map nodes never move: the pointer stays valid
    }
  }

  // Calls `update(model, at)` for each model take() gives. A model whose update throws (the router
  // state cannot be read: a shared store is down) is noted again, so the next apply() gives it
  // again and the selector keeps its previous figures meanwhile; the other models are applied.
  // Returns how many updates failed.
  template <class Update>
  size_t apply(Update&& update) {
    size_t failed = 0;
    for (const auto& [model, at] : take()) {
      try {
        update(model, at);
      } catch (const std::exception&) {
        note(model, at);
        ++failed;
      }
    }
    return failed;
  }

  // The models noted since the last take(), each with its latest time, in the order first noted.
  std::vector<std::pair<std::string, Instant>> take() {
    std::vector<std::pair<std::string, Instant>> out;
    std::lock_guard lock(mu_);
    out.reserve(queued_.size());
    for (auto* node : queued_) {
      node->second.queued = false;
      out.emplace_back(node->first, node->second.at);
    }
    queued_.clear();
    return out;
  }

 private:
  struct Entry {
    Instant at;
    bool queued;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> models_;  // the models ever called, at most kMaxModels
  std::vector<std::pair<const std::string, Entry>*> queued_;
};

}  // namespace orroute
