#include "orroute/cost/sqlite_ledger.h"

#include <unistd.h>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

// In a forked child the first use opens the file again (PerProcess): the parent's connection,
// its leases and reservations, its flusher thread are the parent's.
SqliteLedger::SqliteLedger(const std::string& path, SqliteLedgerOptions options)
    : impl_([path, options] { return Impl::open_here(path, options); }) {}

std::shared_ptr<SqliteLedger::Impl> SqliteLedger::Impl::open_here(const std::string& path,
                                                                  SqliteLedgerOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->options = options;
  impl->pid = ::getpid();
  impl->pid_start = process_start(impl->pid);
  impl->host = host_name();
  impl->open();
  impl->register_open();
  return impl;
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

const std::string& SqliteLedger::path() const { return impl_->path; }

int64_t SqliteLedger::schema_version() {
  std::lock_guard lock(impl_->mu);
  return impl_->version();
}

}  // namespace orroute
