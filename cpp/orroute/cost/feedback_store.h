// Quality feedback kept next to the usage ledger, so that what users said about a model's answers
// outlives the process that heard it: the selector of a new engine starts from the scores recorded
// before it (Engine::set_feedback_store), and reports read them back (`models performance`).
//
// One score per row: the model, the task type it was judged on, a score in [0, 1], where it came
// from ("user", "test", "benchmark", ...) and optionally the call it judges (result / generation
// id). Scores are measurements, not money: they are stored as integer micro-scores (score x 1e6,
// rounded) so that sums stay exact and equal in both backends.
//
// SQLite: table `feedback` in the ledger file, created by this store (its own connection; WAL, so
// it never blocks the ledger's writers for long). Redis: under the ledger's prefix, `fb:sum`
// (hash "model\ttask_type" -> micro-score sum), `fb:n` (hash, counts) and `fb:log` (list of rows,
// the newest 100000), updated in one MULTI/EXEC.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orroute/cost/window.h"  // TimeUs

namespace orroute {

struct FeedbackEntry {
  int64_t id = 0;              // assigned by the store (SQLite rowid; Redis: 0)
  TimeUs at = 0;               // 0 = now
  std::string model;           // non-empty
  std::string task_type;       // "" is stored as "general"
  double score = 0;            // [0, 1]
  std::string source = "user";
  std::string result_id;       // the judged call's id, when known
};

// Mean score of one (model, task type).
struct FeedbackSummary {
  std::string model;
  std::string task_type;
  double sum = 0;     // of scores (from exact micro-score sums)
  int64_t count = 0;  // > 0
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};

// Durable feedback. Implementations are thread-safe and shared by every process using the same
// ledger location. Every method may throw Error when the backend fails.
class FeedbackStore {
 public:
  virtual ~FeedbackStore() = default;
  // Records one score. Throws InvalidArgument (empty model, score outside [0, 1] or NaN, a
  // newline or tab in a text field).
  virtual void add(const FeedbackEntry& entry) = 0;
  // Sum and count per (model, task type), sorted by model then task type.
  virtual std::vector<FeedbackSummary> summary() = 0;
  // Rows from `from` on (0 = all), oldest first; at most `limit` (the newest ones; -1 = all).
  virtual std::vector<FeedbackEntry> entries(TimeUs from, int64_t limit) = 0;
};

// Validates `entry` (see FeedbackStore::add) and returns it with the defaults filled in (task
// type "general", time now when 0). Shared by the backends.
FeedbackEntry checked_feedback(FeedbackEntry entry);

// The store next to the ledger at `location`: a SQLite file (or ":memory:", private to the
// returned object) or a "redis://" URL (same database and prefix as the ledger). Throws
// InvalidArgument for a redis:// location in a build without Redis, Error if it cannot be opened.
std::shared_ptr<FeedbackStore> open_feedback_store(const std::string& location);

}  // namespace orroute
