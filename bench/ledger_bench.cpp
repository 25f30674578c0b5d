// The C++ engine's path through the ledger, without Python: reserve+settle against two budgets on a
// fresh file ledger. Prints one line per run; bench/ledger.py runs it when it has been built
// (target orroute_ledger_bench, with ORROUTE_BUILD_TESTS).
//
//   orroute_ledger_bench DIR THREADS CALLS LEASES(0|1)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "orroute/cost/sqlite_ledger.h"

using namespace orroute;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DIR THREADS CALLS LEASES\n", argv[0]);
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/cpp-bench.sqlite3";
  const int threads = std::max(1, std::atoi(argv[2]));
  const int per = std::max(1, std::atoi(argv[3]) / threads);
  for (const char* suffix : {"", "-wal", "-shm", "-orroute"}) std::filesystem::remove(path + suffix);
  std::vector<std::vector<double>> latency(static_cast<size_t>(threads));
  double secs = 0;
  {
    SqliteLedgerOptions options;
    options.leases = std::atoi(argv[4]) != 0;
    SqliteLedger ledger(path, options);
    BudgetSpec daily;
    daily.scope = parse_scope("project:bench");
    daily.window = Window::kDaily;
    daily.limit = Money::dollars(1'000'000'000);
    ledger.set_budget(daily);
    BudgetSpec total;
    total.limit = Money::dollars(1'000'000'000);
    ledger.set_budget(total);
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ReserveRequest req;
        req.scope.project = "bench";
        req.amount = Money::parse("0.001");
        CallRecord row;
        row.model_used = "m/a";
        row.cost = Money::parse("0.000123456789");
        auto& lat = latency[static_cast<size_t>(t)];
        for (int i = 0; i < per; ++i) {
          const auto s = std::chrono::steady_clock::now();
          const ReserveOutcome r = ledger.reserve(req);
          ledger.settle(r.reservation_id, row);
          lat.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
        }
      });
    }
    for (auto& th : pool) th.join();
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::vector<double> all;
  for (const auto& v : latency) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  std::printf("%.0f %.1f %.1f\n", static_cast<double>(per) * threads / secs, all[all.size() / 2],
              all[all.size() * 99 / 100]);
  for (const char* suffix : {"", "-wal", "-shm", "-orroute"}) std::filesystem::remove(path + suffix);
  return 0;
}
