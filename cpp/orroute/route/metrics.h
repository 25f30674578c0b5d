// Performance record per model: latency and time-to-first-token percentiles (p50/p95/p99) and
// tokens per second over a sliding window, plus lifetime counters (calls, successes, errors by
// class, retries, fallbacks, tokens, cost of successful calls). Percentiles come from log-spaced
// histograms (each bucket 10% wider than the last, so a reported percentile is within ~5% of the
// true value), one per time slice of the window: memory is fixed per model, recording is O(1).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "orroute/catalog/money.h"
#include "orroute/route/capped_names.h"
#include "orroute/route/clock.h"
#include "orroute/route/retry_policy.h"

namespace orroute {

// Counts of positive values in log-spaced buckets from `min_value` up (ratio 1.1 per bucket).
// Not thread-safe.
class LogHistogram {
 public:
  static constexpr int kBuckets = 240;  // 1.1^240 ~ 8.6e9: covers 9+ decades above min_value
  explicit LogHistogram(double min_value = 1e-6) : min_(min_value) {}
  void add(double value);
  // add(value), its bucket already found (bucket(value), so not computed again); returns it.
  int add(double value, int bucket);
  void merge(const LogHistogram& other);
  void clear();
  int64_t count() const { return count_; }
  // Value at quantile q in [0, 1] (geometric middle of its bucket); nullopt if empty.
  std::optional<double> quantile(double q) const;
  double sum() const { return sum_; }
  // Bucket `value` falls in, or -1 if add() would ignore it (negative, NaN, infinite).
  int bucket(double value) const;
  uint32_t count_in(int bucket) const { return buckets_[static_cast<size_t>(bucket)]; }
  // The value quantile() reports for a sample in `bucket`.
  double bucket_value(int bucket) const;

 private:
  double min_;
  int64_t count_ = 0;
  double sum_ = 0;
  std::array<uint32_t, kBuckets> buckets_{};
};

// The median of a multiset of LogHistogram buckets that grows one sample at a time and shrinks a
// histogram at a time (a time slice leaving the window), kept current so reading it is O(1): the
// bucket holding the median moves by at most one sample's worth per add. Same nearest-rank
// definition as LogHistogram::quantile(0.5) over the same samples. Not thread-safe.
class RunningMedian {
 public:
  void add(int bucket);
  void subtract(const LogHistogram& h);
  int64_t count() const { return total_; }
  // Bucket holding the median; only meaningful when count() > 0.
  int bucket() const { return median_; }

 private:
  void settle();
  std::array<int64_t, LogHistogram::kBuckets> counts_{};
  int64_t total_ = 0;
  int median_ = 0;    // bucket holding the sample of rank ceil(total / 2)
  int64_t below_ = 0;  // samples in buckets below median_
};

// What the selector needs of one model, read after every call (see Metrics::selection_figures).
struct SelectionFigures {
  double success_rate = 1.0;                // as ModelStats::success_rate()
  std::optional<double> latency_p50;        // seconds, successful calls in the window
  std::optional<double> tokens_per_second_p50;
};

struct Percentiles {
  std::optional<double> p50, p95, p99;  // seconds (or tokens/s); nullopt when no samples
};

// One model's figures. Window figures cover the last `window`; totals cover the process lifetime.
struct ModelStats {
  std::string model;
  // lifetime
  int64_t calls = 0;       // attempts that reached the send step
  int64_t successes = 0;
  int64_t failures = 0;
  int64_t retries = 0;     // attempts that were a retry on this model
  int64_t fallbacks = 0;   // times the router gave up on this model and moved to the next
  // Successful calls whose upstream usage was not believed (cost or tokens replaced, see
  // cost/usage_audit.h), and streams cut at their reservation.
  int64_t usage_corrections = 0;
  int64_t cut_at_reservation = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  Money cost_of_successes;  // settled cost of successful calls
  std::map<std::string, int64_t> errors_by_class;
  // sliding window
  int64_t window_calls = 0;
  int64_t window_successes = 0;
  Percentiles latency;       // seconds, successful calls
  Percentiles ttft;          // seconds, successful streamed calls
  Percentiles tokens_per_second;  // output tokens / generation time, successful calls

  // successes / calls over the window (lifetime if the window is empty); 1 when there were none.
  double success_rate() const;
  // cost_of_successes / successes; zero when none.
  Money cost_per_success() const;
};

struct MetricsConfig {
  Duration window = std::chrono::minutes(5);
  int slices = 10;  // window resolution: samples leave the window a slice at a time
};

// Thread-safe (one mutex; each record is a few array increments). The models are named by the
// caller (a gateway client may name a new one per request): the first kMaxModels distinct names
// keep figures of their own (~30 kB each), later ones share those of "(other)" (kOtherName), and
// model() and selection_figures() of a name that shares them read as never seen.
class Metrics {
 public:
  static constexpr size_t kMaxModels = 512;

  // Throws InvalidArgument on a non-positive window or slices outside [1, 120].
  explicit Metrics(MetricsConfig config = {});

  // A successful attempt. `ttft` only for streamed calls; `generation_time` (time from first token
  // to end, or the latency if unknown) gives tokens/s.
  void record_success(std::string_view model, Instant now, Duration latency,
                      std::optional<Duration> ttft, int64_t input_tokens, int64_t output_tokens,
                      Money cost);
  void record_failure(std::string_view model, Instant now, ErrorClass error, Duration latency);
  void record_retry(std::string_view model);
  void record_fallback(std::string_view model);
  // A successful call whose usage was corrected (`corrected`) or whose stream was cut (`cut`).
  void record_usage_check(std::string_view model, bool corrected, bool cut);

  // Figures for one model (zeros if never seen).
  ModelStats model(std::string_view model, Instant now) const;
  // The selector's figures for one model, maintained as calls are recorded: O(slices) to read,
  // not a merge of the window's histograms. Equal to the same fields of model(model, now).
  SelectionFigures selection_figures(std::string_view model, Instant now) const;
  // Figures for every model seen, sorted by id: at most kMaxModels + 1.
  std::vector<ModelStats> all(Instant now) const;
  void reset();

 private:
  struct Slice {
    int64_t epoch = -1;
    bool counted = false;  // its samples are in PerModel's running window figures
    int64_t calls = 0;
    int64_t successes = 0;
    LogHistogram latency{1e-6};
    LogHistogram ttft{1e-6};
    LogHistogram tps{1e-3};
  };
  struct PerModel {
    ModelStats totals;
    std::vector<Slice> slices;
    // Running figures over the counted slices (the selector's view, kept as samples arrive).
    int64_t window_calls = 0, window_successes = 0;
    RunningMedian latency, tps;
  };
  // Takes slices that left the window (by `now`) out of the running figures; caller holds mu_.
  void expire(PerModel& m, int64_t current) const;
  void uncount(PerModel& m, Slice& s) const;
  PerModel& get(std::string_view model);                 // caller holds mu_
  Slice& slice(PerModel& m, Instant now);                // caller holds mu_
  ModelStats view(const PerModel& m, Instant now) const;  // caller holds mu_
  int64_t epoch(Instant now) const;

  MetricsConfig config_;
  mutable std::mutex mu_;
  mutable NameMap<PerModel> models_;  // expire() runs on reads too
};

}  // namespace orroute
