// Group commit: queued money operations run as one transaction, one savepoint each.
#include <algorithm>

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

bool SqliteLedger::Impl::run_job(Job& job) {
  current = &job;
  try {
    job.run();
    current = nullptr;
    return true;
  } catch (...) {
    current = nullptr;
    job.error = std::current_exception();
    fail_job(job);
    return false;
  }
}

SqliteLedger::Impl::Job* SqliteLedger::Impl::run_together(const std::vector<Job*>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (run_job(*batch[i])) continue;
    // The jobs before it run again in the next transaction: their local effects are undone
    // (latest first), as if they had not run yet.
    for (size_t k = i; k-- > 0;) fail_job(*batch[k]);
    pending_new.clear();
    return batch[i];
  }
  return nullptr;
}

void SqliteLedger::Impl::run_apart(const std::vector<Job*>& batch) {
  for (Job* job : batch) {
    if (job->error) continue;  // failed in run_together: not run again
    q("SAVEPOINT job").run();
    txn_reads_before_job = txn_reads;  // what the file holds (or will, at commit) before it
    if (!run_job(*job)) {
      q("ROLLBACK TO job").run();
      txn_reads = txn_reads_before_job;
    }
    q("RELEASE job").run();
  }
}

std::vector<SqliteLedger::Impl::Job*> SqliteLedger::Impl::run_batch() {
  Locked lock(*this);
  std::vector<Job*> batch;
  bool taken = false;
  auto take = [&] {  // the jobs queued so far, this thread's own included
    std::lock_guard q(queue_mu);
    batch.swap(queue);
    taken = true;
  };
  bool committed = false;
  try {
    const Job* failed = nullptr;
    {
      Txn txn(*this);
      // Taken once the write lock is held: the jobs queued while this thread waited for another
      // process's transaction ride in this one (batches grow with contention).
      take();
      failed = run_together(batch);
      if (!failed) {
        txn.commit();
        committed = true;
      }
    }  // a failed job: ~Txn rolled the whole batch back
    if (failed && batch.size() > 1) {
      Txn txn(*this);
      run_apart(batch);
      txn.commit();
      committed = true;
    }
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

void SqliteLedger::Impl::wait_jobs(std::unique_lock<std::mutex>& lk,
                                   const std::vector<Job*>& mine) {
  if (!leader_active) {
    leader_active = true;
    mine.front()->lead = true;
  }
  auto all_done = [&] {
    return std::all_of(mine.begin(), mine.end(), [](const Job* j) { return j->done; });
  };
  while (!all_done()) {
    if (std::any_of(mine.begin(), mine.end(), [](const Job* j) { return j->lead && !j->done; })) {
      lk.unlock();
      const std::vector<Job*> batch = run_batch();
      lk.lock();
      for (Job* j : batch) j->done = true;
      if (queue.empty()) {
        leader_active = false;
      } else {
        queue.front()->lead = true;
      }
      queue_cv.notify_all();
    } else {
      queue_cv.wait(lk);
    }
  }
}

std::vector<std::exception_ptr> SqliteLedger::Impl::transact_all(
    std::vector<std::function<void()>> bodies) {
  std::vector<Job> jobs(bodies.size());
  std::vector<Job*> mine;
  for (size_t i = 0; i < bodies.size(); ++i) {
    jobs[i].run = std::move(bodies[i]);
    mine.push_back(&jobs[i]);
  }
  std::vector<std::exception_ptr> errors;
  if (mine.empty()) return errors;
  std::unique_lock lk(queue_mu);
  queue.insert(queue.end(), mine.begin(), mine.end());
  wait_jobs(lk, mine);
  lk.unlock();
  for (const Job& j : jobs) errors.push_back(j.error);
  return errors;
}

}  // namespace orroute
