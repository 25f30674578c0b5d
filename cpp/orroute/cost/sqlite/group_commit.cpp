// Group commit: queued money operations run as one transaction, one savepoint each.
#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

void SqliteLedger::Impl::fail_job(Job& job) {
  std::lock_guard lk(lmu);
  for (auto it = job.on_fail.rbegin(); it != job.on_fail.rend(); ++it) (*it)();
  job.on_fail.clear();
  job.on_commit.clear();
  job.counters.clear();
}

void SqliteLedger::Impl::commit_job(Job& job) {
  std::lock_guard lk(lmu);
  for (const auto& [id, start, c] : job.counters) wcache[{id, start}] = c;
  for (auto& f : job.on_commit) f();
  job.on_commit.clear();
  job.on_fail.clear();
}

std::vector<SqliteLedger::Impl::Job*> SqliteLedger::Impl::run_batch() {
  std::lock_guard lock(mu);
  std::vector<Job*> batch;
  bool taken = false;
  auto take = [&] {  // the jobs queued so far, this thread's own included
    std::lock_guard q(queue_mu);
    batch.swap(queue);
    taken = true;
  };
  bool committed = false;
  try {
    Txn txn(*this);
    // Taken once the write lock is held: the jobs queued while this thread waited for another
    // process's transaction ride in this one (batches grow with contention).
    take();
    if (batch.size() == 1) {  // no savepoint needed: a failure rolls back the transaction
      current = batch[0];
      try {
        batch[0]->run();
      } catch (...) {
        current = nullptr;
        batch[0]->error = std::current_exception();
        fail_job(*batch[0]);
        pending_new.clear();
        return batch;  // ~Txn rolls back
      }
      current = nullptr;
    } else {
      for (Job* job : batch) {
        q("SAVEPOINT job").run();
        current = job;
        try {
          job->run();
        } catch (...) {
          current = nullptr;
          job->error = std::current_exception();
          fail_job(*job);
          q("ROLLBACK TO job").run();
        }
        current = nullptr;
        q("RELEASE job").run();
      }
    }
    txn.commit();
    committed = true;
  } catch (...) {
    // BEGIN or COMMIT failed: nothing in the batch happened.
    current = nullptr;
    if (!taken) {  // BEGIN failed: only the leader's own job (the queue's front) waited that long
      std::lock_guard q(queue_mu);
      batch.push_back(queue.front());
      queue.erase(queue.begin());
    }
    for (Job* job : batch) {
      if (!job->error) {
        job->error = std::current_exception();
        fail_job(*job);
      }
    }
  }
  if (committed) {
    for (Job* job : batch) {
      if (!job->error) commit_job(*job);
    }
  }
  pending_new.clear();
  return batch;
}

}  // namespace orroute
