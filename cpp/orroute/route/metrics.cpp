#include "orroute/route/metrics.h"

#include <algorithm>
#include <cmath>

#include "orroute/error.h"
#include "orroute/route/capped_names.h"

namespace orroute {

namespace {
const double kLogRatio = std::log(1.1);

double seconds(Duration d) { return static_cast<double>(d.count()) / 1e9; }

Percentiles percentiles(const LogHistogram& h) {
  return {h.quantile(0.50), h.quantile(0.95), h.quantile(0.99)};
}
}  // namespace

int LogHistogram::bucket(double value) const {
  if (!(value >= 0) || !std::isfinite(value)) return -1;
  int idx = 0;
  if (value > min_) idx = static_cast<int>(std::log(value / min_) / kLogRatio) + 1;
  return std::clamp(idx, 0, kBuckets - 1);
}

double LogHistogram::bucket_value(int bucket) const {
  if (bucket == 0) return min_;
  // Bucket i holds (min*1.1^(i-1), min*1.1^i]; report its geometric middle.
  return min_ * std::exp((static_cast<double>(bucket) - 0.5) * kLogRatio);
}

void LogHistogram::add(double value) { add(value, bucket(value)); }

int LogHistogram::add(double value, int idx) {
  if (idx < 0) return idx;
  ++buckets_[static_cast<size_t>(idx)];
  ++count_;
  sum_ += value;
  return idx;
}

void RunningMedian::add(int bucket) {
  ++counts_[static_cast<size_t>(bucket)];
  ++total_;
  if (bucket < median_) ++below_;
  settle();
}

void RunningMedian::subtract(const LogHistogram& h) {
  if (h.count() == 0) return;
  for (int i = 0; i < LogHistogram::kBuckets; ++i) counts_[static_cast<size_t>(i)] -= h.count_in(i);
  total_ -= h.count();
  median_ = 0;  // a slice leaves the window once per slice width: rescan from the bottom
  below_ = 0;
  settle();
}

void RunningMedian::settle() {
  if (total_ <= 0) {
    median_ = 0;
    below_ = 0;
    return;
  }
  const int64_t rank = std::max<int64_t>(1, (total_ + 1) / 2);  // ceil(0.5 x total), nearest rank
  while (below_ + counts_[static_cast<size_t>(median_)] < rank) {
    below_ += counts_[static_cast<size_t>(median_)];
    ++median_;
  }
  while (below_ >= rank) {
    --median_;
    below_ -= counts_[static_cast<size_t>(median_)];
  }
}

void LogHistogram::merge(const LogHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
}

void LogHistogram::clear() {
  buckets_.fill(0);
  count_ = 0;
  sum_ = 0;
}

std::optional<double> LogHistogram::quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the sample (1-based, nearest-rank definition).
  const auto rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<size_t>(i)];
    if (seen >= rank) return bucket_value(i);
  }
  return min_ * std::exp(static_cast<double>(kBuckets) * kLogRatio);
}

double ModelStats::success_rate() const {
  if (window_calls > 0) return static_cast<double>(window_successes) / static_cast<double>(window_calls);
  if (calls > 0) return static_cast<double>(successes) / static_cast<double>(calls);
  return 1.0;
}

Money ModelStats::cost_per_success() const {
  if (successes == 0) return Money::zero();
  return Money::from_units(cost_of_successes.units() / successes);
}

Metrics::Metrics(MetricsConfig config) : config_(config) {
  if (config_.window.count() <= 0) throw InvalidArgument("metrics window must be > 0");
  if (config_.slices < 1 || config_.slices > 120) throw InvalidArgument("metrics slices must be in [1, 120]");
}

int64_t Metrics::epoch(Instant now) const {
  const int64_t width = std::max<int64_t>(1, config_.window.count() / config_.slices);
  return now.time_since_epoch().count() / width;
}

Metrics::PerModel& Metrics::get(std::string_view model) {
  return capped_entry(models_, model, kMaxModels, [this](const std::string& name) {
    PerModel m;
    m.totals.model = name;
    m.slices.resize(static_cast<size_t>(config_.slices));
    return m;
  });
}

void Metrics::uncount(PerModel& m, Slice& s) const {
  if (!s.counted) return;
  s.counted = false;
  m.window_calls -= s.calls;
  m.window_successes -= s.successes;
  m.latency.subtract(s.latency);
  m.tps.subtract(s.tps);
}

void Metrics::expire(PerModel& m, int64_t current) const {
  for (Slice& s : m.slices) {
    if (s.counted && s.epoch <= current - config_.slices) uncount(m, s);
  }
}

Metrics::Slice& Metrics::slice(PerModel& m, Instant now) {
  const int64_t e = epoch(now);
  expire(m, e);
  Slice& s = m.slices[static_cast<size_t>(((e % config_.slices) + config_.slices) % config_.slices)];
  if (s.epoch != e) {
    uncount(m, s);
    s.epoch = e;
    s.counted = true;
    s.calls = s.successes = 0;
    s.latency.clear();
    s.ttft.clear();
    s.tps.clear();
  }
  return s;
}

void Metrics::record_success(std::string_view model, Instant now, Duration latency,
                             std::optional<Duration> ttft, int64_t input_tokens,
                             int64_t output_tokens, Money cost) {
  std::lock_guard lock(mu_);
  PerModel& m = get(model);
  ++m.totals.calls;
  ++m.totals.successes;
  m.totals.input_tokens += input_tokens;
  m.totals.output_tokens += output_tokens;
  m.totals.cost_of_successes += cost;
  Slice& s = slice(m, now);
  ++s.calls;
  ++s.successes;
  if (s.counted) {
    ++m.window_calls;
    ++m.window_successes;
  }
  // Each sample's bucket found once (a log each), for the slice and the running median.
  const int lb = s.latency.add(seconds(latency), s.latency.bucket(seconds(latency)));
  if (s.counted && lb >= 0) m.latency.add(lb);
  if (ttft) s.ttft.add(seconds(*ttft));
  // Generation speed: tokens over the time after the first token when streamed.
  const Duration gen = ttft && latency > *ttft ? latency - *ttft : latency;
  if (output_tokens > 0 && gen.count() > 0) {
    const double tps = static_cast<double>(output_tokens) / seconds(gen);
    const int tb = s.tps.add(tps, s.tps.bucket(tps));
    if (s.counted && tb >= 0) m.tps.add(tb);
  }
}

void Metrics::record_failure(std::string_view model, Instant now, ErrorClass error,
                             Duration /*latency*/) {
  std::lock_guard lock(mu_);
  PerModel& m = get(model);
  ++m.totals.calls;
  ++m.totals.failures;
  ++m.totals.errors_by_class[to_string(error)];
  Slice& s = slice(m, now);
  ++s.calls;
  if (s.counted) ++m.window_calls;
}

void Metrics::record_retry(std::string_view model) {
  std::lock_guard lock(mu_);
  ++get(model).totals.retries;
}

void Metrics::record_usage_check(std::string_view model, bool corrected, bool cut) {
  if (!corrected && !cut) return;
  std::lock_guard lock(mu_);
  ModelStats& t = get(model).totals;
  t.usage_corrections += corrected ? 1 : 0;
  t.cut_at_reservation += cut ? 1 : 0;
}

void Metrics::record_fallback(std::string_view model) {
  std::lock_guard lock(mu_);
  ++get(model).totals.fallbacks;
}

ModelStats Metrics::view(const PerModel& m, Instant now) const {
  ModelStats out = m.totals;
  const int64_t current = epoch(now);
  LogHistogram lat{1e-6}, ttft{1e-6}, tps{1e-3};
  for (const Slice& s : m.slices) {
    if (s.epoch <= current - config_.slices || s.epoch > current) continue;
    out.window_calls += s.calls;
    out.window_successes += s.successes;
    lat.merge(s.latency);
    ttft.merge(s.ttft);
    tps.merge(s.tps);
  }
  out.latency = percentiles(lat);
  out.ttft = percentiles(ttft);
  out.tokens_per_second = percentiles(tps);
  return out;
}

ModelStats Metrics::model(std::string_view model, Instant now) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end()) {
    ModelStats empty;
    empty.model = std::string(model);
    return empty;
  }
  return view(it->second, now);
}

SelectionFigures Metrics::selection_figures(std::string_view model, Instant now) const {
  std::lock_guard lock(mu_);
  SelectionFigures out;
  auto it = models_.find(model);
  if (it == models_.end()) return out;
  PerModel& m = it->second;
  const int64_t current = epoch(now);
  for (const Slice& s : m.slices) {
    if (s.counted && s.epoch > current) {
      // The clock went back past recorded slices: the running figures do not describe this
      // `now`; take the full view (rare, never on a monotonic clock).
      const ModelStats v = view(m, now);
      out.success_rate = v.success_rate();
      out.latency_p50 = v.latency.p50;
      out.tokens_per_second_p50 = v.tokens_per_second.p50;
      return out;
    }
  }
  expire(m, current);
  if (m.window_calls > 0) {
    out.success_rate = static_cast<double>(m.window_successes) / static_cast<double>(m.window_calls);
  } else if (m.totals.calls > 0) {
    out.success_rate =
        static_cast<double>(m.totals.successes) / static_cast<double>(m.totals.calls);
  }
  const LogHistogram& shape_lat = m.slices.front().latency;  // bucket_value() depends on min only
  const LogHistogram& shape_tps = m.slices.front().tps;
  if (m.latency.count() > 0) out.latency_p50 = shape_lat.bucket_value(m.latency.bucket());
  if (m.tps.count() > 0) out.tokens_per_second_p50 = shape_tps.bucket_value(m.tps.bucket());
  return out;
}

std::vector<ModelStats> Metrics::all(Instant now) const {
  std::lock_guard lock(mu_);
  std::vector<ModelStats> out;
  out.reserve(models_.size());
  for (const auto& [name, m] : models_) out.push_back(view(m, now));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.model < b.model; });
  return out;
}

void Metrics::reset() {
  std::lock_guard lock(mu_);
  models_.clear();
}

}  // namespace orroute
