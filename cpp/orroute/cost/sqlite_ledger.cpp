#include "orroute/cost/sqlite_ledger.h"

#include <unistd.h>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

// In a forked child the first use opens the file again (PerProcess): the parent's connection,
// its leases and reservations, its flusher thread are the parent's. An in-memory ledger has no
// file to open again: the child's starts as a copy of the parent's (its budgets, what was spent
// and reserved), so that a budget holds in the child too (an empty one held none).
SqliteLedger::SqliteLedger(const std::string& path, SqliteLedgerOptions options)
    : impl_([this, path, options] {
        const Impl* parent = made_ ? impl_.held() : nullptr;  // else: impl_ is being made
        made_ = true;
        return Impl::open_here(path, options, path == ":memory:" ? parent : nullptr);
      }) {}

std::shared_ptr<SqliteLedger::Impl> SqliteLedger::Impl::open_here(const std::string& path,
                                                                  SqliteLedgerOptions options,
                                                                  const Impl* copy_of) {
  sqlite::ForkGate gate;  // SQLite's global mutexes, and the registry's, are taken below
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->options = options;
  impl->pid = ::getpid();
  impl->pid_start = process_start(impl->pid);
  impl->host = host_name();
  impl->slot_owner = slot_owner_tag(impl->pid, boot_id() + " " + impl->host);
  impl->open(copy_of);
  impl->register_open();
  // The parent's leases held its copy's budgets for its own calls: none of it is this copy's
  // (held for their ttl, they refused calls the budget allowed).
  if (copy_of) impl->transact([&] { return impl->drop_leases_of(copy_of->pid); });
  return impl;
}

void SqliteLedger::Impl::copy_from(const Impl& parent) {
  // The parent's connection is a copy in this child's memory, left as it was when no thread was
  // inside it (the fork gate), and not used again once read.
  sqlite3_backup* backup = sqlite3_backup_init(db, "main", parent.db, "main");
  if (backup == nullptr) fail(db, "copy of the parent's in-memory ledger");
  const int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    throw Error(std::string("ledger: copy of the parent's in-memory ledger: ") +
                sqlite3_errstr(rc));
  }
}

SqliteLedger::~SqliteLedger() {
  Impl* impl = impl_.made_here();  // null: the parent's, never used in this forked child
  if (impl != nullptr && impl->leases_on) {
    impl->stop_flusher();
    try {
      release_leases();  // writes the queued settles first
    } catch (...) {  // best effort: the rows are reclaimed when this process is gone
    }
  }
}

void SqliteLedger::release_leases() {
  Impl* impl = impl_.made_here();  // null: a forked child's that never used it holds none
  if (impl == nullptr || !impl->leases_on) return;
  impl->flush_queued();
  impl->transact([&] {
    impl->return_all_leases();
    return true;
  });
}

bool SqliteLedger::leases_enabled() const { return impl_->leases_on; }

// The parent's Impl in a child not yet reopened: its path, a copy in this process's memory, is the
// same, and reading it opens nothing.
const std::string& SqliteLedger::path() const { return impl_.held()->path; }

int64_t SqliteLedger::schema_version() {
  Impl::Locked lock(*impl_);
  return impl_->version();
}

}  // namespace orroute
