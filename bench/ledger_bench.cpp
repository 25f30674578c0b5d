// The C++ engine's path through the ledger, without Python: reserve+settle against two budgets,
// from THREADS threads in each of PROCS processes sharing one ledger (a fresh SQLite file in DIR,
// or a redis:// URL). Prints one line per run: settled calls/s over all processes, median and p99
// µs of one reserve+settle, and whether the budgets came out exact (spent = calls x cost and
// nothing left reserved: 1, else 0). bench/ledger.py runs it when it has been built (target
// orroute_ledger_bench, with ORROUTE_BUILD_TESTS).
//
//   orroute_ledger_bench DIR|redis://... THREADS CALLS LEASES(0|1|2) [PROCS [BATCH]]
//
// LEASES 2: leases with write-behind settles (settle_delay_us 10 ms, settle_batch 64).
// BATCH > 1: each thread reserves BATCH calls, then settles them with one settle_batch (as the
// engine's settle worker does with the calls that finished while it wrote); a call's latency is
// then its batch's time over BATCH.
// CALLS is the total over every process and thread. The processes open their own ledger after
// fork() and start together (a pipe closed by the parent); the time runs from that start to the
// last process's exit (its leases given back included).
// ORROUTE_BENCH_EVICT_KB=N: before each reserve+settle (outside its timed part) the thread writes
// N KiB of a buffer of its own, so the ledger's code and data are evicted from the caches as a
// call's Python and libcurl evict them between two settles of a manager at concurrency 1.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "orroute/cost/open_ledger.h"
#include "orroute/cost/sqlite_ledger.h"
#ifdef ORROUTE_HAVE_REDIS
#include "orroute/cost/redis_ledger.h"
#endif

using namespace orroute;

namespace {

const Money kCost = Money::parse("0.000123456789");

std::shared_ptr<Ledger> open(const std::string& location, int leases) {
  if (is_redis_location(location)) return open_ledger(location);
  SqliteLedgerOptions options;
  options.leases = leases != 0;
  if (leases == 2) options.settle_delay_us = 10'000;
  return std::make_shared<SqliteLedger>(location, options);
}

// One process's share: `threads` threads of `per` reserve+settle each; latencies (µs) to `out`.
void work(Ledger& ledger, int threads, int per, int batch, const std::string& out) {
  std::vector<std::vector<float>> latency(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ReserveRequest req;
      req.scope.project = "bench";
      req.amount = Money::parse("0.001");
      CallRecord row;
      row.model_used = "m/a";
      row.cost = kCost;
      auto& lat = latency[static_cast<size_t>(t)];
      lat.reserve(static_cast<size_t>(per));
      std::vector<SettleItem> items;
      const char* evict_env = std::getenv("ORROUTE_BENCH_EVICT_KB");
      std::vector<unsigned char> evict(evict_env ? static_cast<size_t>(std::atol(evict_env)) * 1024 : 0);
      for (int i = 0; i < per; i += batch) {
        const int n = std::min(batch, per - i);
        for (size_t b = 0; b < evict.size(); b += 64) evict[b] = static_cast<unsigned char>(evict[b] + i);
        const auto s = std::chrono::steady_clock::now();
        items.clear();
        for (int k = 0; k < n; ++k) {
          const ReserveOutcome r = ledger.reserve(req);
          if (r.status != ReserveStatus::kReserved) std::abort();  // the budgets are far away
          items.push_back({r.reservation_id, row});
        }
        if (n == 1) {
          ledger.settle(items[0].reservation_id, row);
        } else {
          for (const BatchSettle& b : ledger.settle_batch(items)) {
            if (!b.outcome) std::abort();
          }
        }
        const float us = std::chrono::duration<float, std::micro>(std::chrono::steady_clock::now() - s).count();
        lat.insert(lat.end(), static_cast<size_t>(n), us / static_cast<float>(n));
      }
    });
  }
  for (auto& th : pool) th.join();
  std::ofstream f(out, std::ios::binary);
  for (const auto& v : latency) f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 7) {
    std::fprintf(stderr, "usage: %s DIR|redis://... THREADS CALLS LEASES [PROCS [BATCH]]\n", argv[0]);
    return 2;
  }
  const std::string where = argv[1];
  const bool redis = is_redis_location(where);
  const std::string dir = redis ? std::filesystem::temp_directory_path().string() : where;
  const std::string location = redis ? where : dir + "/cpp-bench.sqlite3";
  const int threads = std::max(1, std::atoi(argv[2]));
  const int procs = argc >= 6 ? std::max(1, std::atoi(argv[5])) : 1;
  const int batch = argc == 7 ? std::max(1, std::atoi(argv[6])) : 1;
  const int per = std::max(1, std::atoi(argv[3]) / (threads * procs));
  const int leases = std::atoi(argv[4]);
  auto clean = [&] {
    if (!redis) {
      for (const char* suffix : {"", "-wal", "-shm", "-orroute"}) std::filesystem::remove(location + suffix);
    }
  };
  clean();
  {
    auto ledger = open(location, leases);
#ifdef ORROUTE_HAVE_REDIS
    if (auto* r = dynamic_cast<RedisLedger*>(ledger.get())) r->wipe();
#endif
    BudgetSpec daily;
    daily.scope = parse_scope("project:bench");
    daily.window = Window::kDaily;
    daily.limit = Money::dollars(1'000'000'000);
    ledger->set_budget(daily);
    BudgetSpec total;
    total.limit = Money::dollars(1'000'000'000);
    ledger->set_budget(total);
  }
  const std::string lat_prefix = dir + "/cpp-bench-lat-" + std::to_string(::getpid()) + "-";
  auto lat_file = [&](int p) { return lat_prefix + std::to_string(p); };
  int go[2];
  if (::pipe(go) != 0) return 1;
  std::vector<pid_t> children;
  for (int p = 0; p < procs; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      int code = 0;
      try {
        auto ledger = open(location, leases);
        char c;
        while (::read(go[0], &c, 1) > 0) {
        }
        work(*ledger, threads, per, batch, lat_file(p));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "process %d: %s\n", p, e.what());
        code = 1;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  // Give every child the time to open its ledger before the start.
  std::this_thread::sleep_for(std::chrono::milliseconds(200 + 50 * procs));
  const auto t0 = std::chrono::steady_clock::now();
  ::close(go[1]);
  bool failed = false;
  for (const pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed) return 1;
  std::vector<float> all;
  for (int p = 0; p < procs; ++p) {
    std::ifstream f(lat_file(p), std::ios::binary);
    float v;
    while (f.read(reinterpret_cast<char*>(&v), sizeof v)) all.push_back(v);
    std::filesystem::remove(lat_file(p));
  }
  if (all.empty()) return 1;
  std::sort(all.begin(), all.end());
  const int64_t calls = static_cast<int64_t>(per) * threads * procs;
  bool exact = static_cast<int64_t>(all.size()) == calls;
  {
    auto ledger = open(location, leases);
    SpendScope scope;
    scope.project = "bench";
    for (const BudgetState& s : ledger->budget_states(scope, 0, false)) {
      exact &= s.spent == kCost * calls && s.reserved.is_zero();
    }
    exact &= ledger->live_reservations().first == 0;
#ifdef ORROUTE_HAVE_REDIS
    if (auto* r = dynamic_cast<RedisLedger*>(ledger.get())) r->wipe();
#endif
  }
  double sum = 0;
  for (const float v : all) sum += v;
  std::printf("%.0f %.1f %.1f %d mean %.1f max %.0f\n", static_cast<double>(calls) / secs,
              all[all.size() / 2], all[all.size() * 99 / 100], exact ? 1 : 0,
              sum / static_cast<double>(all.size()), all.back());
  clean();
  return 0;
}
