#include "orroute/cost/feedback_store.h"

#include <sqlite3.h>

#include <cmath>
#include <mutex>

#include "orroute/cost/open_ledger.h"
#include "orroute/cost/sqlite/fork_gate.h"
#include "orroute/error.h"
#include "orroute/per_process.h"
#include "orroute/sqlite_util.h"

namespace orroute {

#ifdef ORROUTE_HAVE_REDIS
// redis_feedback_store.cpp (built only with hiredis).
std::shared_ptr<FeedbackStore> open_redis_feedback_store(const std::string& url);
#endif

namespace {

void check_text(std::string_view field, const std::string& v) {
  if (v.find_first_of("\t\n\r") != std::string::npos) {
    throw InvalidArgument("feedback " + std::string(field) + " must not contain tabs or newlines");
  }
}

// SQLite: its own connection to the ledger file; the table is created here (not by the ledger's
// migrations), so the ledger's schema does not need to know about feedback.
class SqliteFeedbackStore final : public FeedbackStore {
 public:
  explicit SqliteFeedbackStore(const std::string& path) {
    const sqlite::ForkGate gate;  // SQLite's process-wide mutexes are taken (fork_gate.h)
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Error("feedback store: cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 30'000);
    exec("PRAGMA journal_mode=WAL");
    exec(
        "CREATE TABLE IF NOT EXISTS feedback ("
        " id INTEGER PRIMARY KEY,"
        " at_us INTEGER NOT NULL,"
        " model TEXT NOT NULL,"
        " task_type TEXT NOT NULL,"
        " score_micros INTEGER NOT NULL CHECK (score_micros BETWEEN 0 AND 1000000),"
        " source TEXT NOT NULL,"
        " result_id TEXT NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS feedback_model ON feedback (model, task_type)");
  }
  ~SqliteFeedbackStore() override {
    const sqlite::ForkGate gate;  // SQLite's process-wide mutexes are taken (fork_gate.h)
    sqlite3_close(db_);
  }
  SqliteFeedbackStore(const SqliteFeedbackStore&) = delete;
  SqliteFeedbackStore& operator=(const SqliteFeedbackStore&) = delete;

  void add(const FeedbackEntry& raw) override {
    const FeedbackEntry e = checked_feedback(raw);
    const sqlite::GatedLock lock(mu_);
    Stmt s(db_,
           "INSERT INTO feedback (at_us, model, task_type, score_micros, source, result_id) "
           "VALUES (?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(s.s, 1, e.at);
    bind(s, 2, e.model);
    bind(s, 3, e.task_type);
    sqlite3_bind_int64(s.s, 4, std::llround(e.score * 1e6));
    bind(s, 5, e.source);
    bind(s, 6, e.result_id);
    if (sqlite3_step(s.s) != SQLITE_DONE) fail("insert");
  }

  std::vector<FeedbackSummary> summary() override {
    const sqlite::GatedLock lock(mu_);
    Stmt s(db_,
           "SELECT model, task_type, SUM(score_micros), COUNT(*) FROM feedback "
           "GROUP BY model, task_type ORDER BY model, task_type");
    std::vector<FeedbackSummary> out;
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      out.push_back({text(s, 0), text(s, 1),
                     static_cast<double>(sqlite3_column_int64(s.s, 2)) / 1e6,
                     sqlite3_column_int64(s.s, 3)});
    }
    if (rc != SQLITE_DONE) fail("summary");
    return out;
  }

  std::vector<FeedbackEntry> entries(TimeUs from, int64_t limit) override {
    const sqlite::GatedLock lock(mu_);
    // The newest `limit` rows, returned oldest first.
    Stmt s(db_,
           "SELECT * FROM (SELECT id, at_us, model, task_type, score_micros, source, result_id "
           "FROM feedback WHERE at_us >= ? ORDER BY at_us DESC, id DESC LIMIT ?) "
           "ORDER BY at_us, id");
    sqlite3_bind_int64(s.s, 1, from);
    sqlite3_bind_int64(s.s, 2, limit < 0 ? -1 : limit);
    std::vector<FeedbackEntry> out;
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      FeedbackEntry e;
      e.id = sqlite3_column_int64(s.s, 0);
      e.at = sqlite3_column_int64(s.s, 1);
      e.model = text(s, 2);
      e.task_type = text(s, 3);
      e.score = static_cast<double>(sqlite3_column_int64(s.s, 4)) / 1e6;
      e.source = text(s, 5);
      e.result_id = text(s, 6);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) fail("entries");
    return out;
  }

 private:
  struct Stmt : SqliteStmt {
    Stmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, "feedback store") {}
  };

  static void bind(Stmt& s, int i, const std::string& v) { sqlite_bind_text(s, i, v); }
  static std::string text(Stmt& s, int col) { return sqlite_column_text(s, col); }
  void exec(const char* sql) { sqlite_exec(db_, sql, "feedback store"); }
  [[noreturn]] void fail(const char* what) {
    throw Error(std::string("feedback store: ") + what + ": " + sqlite3_errmsg(db_));
  }

  std::mutex mu_;  // one connection, used by one thread at a time
  sqlite3* db_ = nullptr;
};

// A SQLite connection is not carried across fork(): a forked child's first use opens the file
// again (PerProcess, inside the fork gate), as a file ledger does, and leaves the parent's alone.
class ForkSafeSqliteFeedbackStore final : public FeedbackStore {
 public:
  explicit ForkSafeSqliteFeedbackStore(const std::string& path)
      : conn_([path] { return std::make_shared<SqliteFeedbackStore>(path); }) {}
  void add(const FeedbackEntry& entry) override { conn_->add(entry); }
  std::vector<FeedbackSummary> summary() override { return conn_->summary(); }
  std::vector<FeedbackEntry> entries(TimeUs from, int64_t limit) override { return conn_->entries(from, limit); }

 private:
  PerProcess<SqliteFeedbackStore, sqlite::ForkGate> conn_;
};

}  // namespace

FeedbackEntry checked_feedback(FeedbackEntry e) {
  if (e.model.empty()) throw InvalidArgument("feedback needs a model");
  if (!(e.score >= 0.0 && e.score <= 1.0)) {  // also false for NaN
    throw InvalidArgument("feedback score must be in [0, 1]");
  }
  check_text("model", e.model);
  check_text("task type", e.task_type);
  check_text("source", e.source);
  check_text("result id", e.result_id);
  if (e.task_type.empty()) e.task_type = "general";
  if (e.at == 0) e.at = now_us();
  return e;
}

std::shared_ptr<FeedbackStore> open_feedback_store(const std::string& location) {
  if (is_redis_location(location)) {
#ifdef ORROUTE_HAVE_REDIS
    return open_redis_feedback_store(location);
#else
    throw InvalidArgument("this orroute was built without Redis (hiredis was not found at build "
                          "time): feedback cannot be kept in " + location.substr(0, 8) + "...");
#endif
  }
  return std::make_shared<ForkSafeSqliteFeedbackStore>(location);
}

}  // namespace orroute
