#include "orroute/cost/sqlite_ledger.h"

#include <unistd.h>

#include "orroute/cost/sqlite/impl.h"

namespace orroute {

using namespace sqlite;

SqliteLedger::SqliteLedger(const std::string& path, SqliteLedgerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->fork_gen_at_open = fork_generation().load();
  impl_->pid = ::getpid();
  impl_->pid_start = process_start(impl_->pid);
  impl_->host = host_name();
  impl_->open();
  impl_->register_open();
}

SqliteLedger::~SqliteLedger() {
  if (impl_->leases_on && static_cast<int64_t>(::getpid()) == impl_->pid) {
    impl_->stop_flusher();
    try {
      release_leases();  // writes the queued settles first
    } catch (...) {  // best effort: the rows are reclaimed when this process is gone
    }
  }
}

void SqliteLedger::release_leases() {
  if (!impl_->leases_on) return;
  impl_->flush_queued();
  impl_->transact([&] {
    impl_->return_all_leases();
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
