#include "orroute/route/metrics.h"

#include <algorithm>
#include <cmath>

#include "orroute/error.h"

namespace orroute {

namespace {
const double kLogRatio = std::log(1.1);

double seconds(Duration d) { return static_cast<double>(d.count()) / 1e9; }

Percentiles percentiles(const LogHistogram& h) {
  return {h.quantile(0.50), h.quantile(0.95), h.quantile(0.99)};
}
}  // namespace

void LogHistogram::add(double value) {
  if (!(value >= 0) || !std::isfinite(value)) return;
  int idx = 0;
  if (value > min_) idx = static_cast<int>(std::log(value / min_) / kLogRatio) + 1;
  idx = std::clamp(idx, 0, kBuckets - 1);
  ++buckets_[static_cast<size_t>(idx)];
  ++count_;
  sum_ += value;
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
    if (seen >= rank) {
      if (i == 0) return min_;
      // Bucket i holds (min*1.1^(i-1), min*1.1^i]; report its geometric middle.
      return min_ * std::exp((static_cast<double>(i) - 0.5) * kLogRatio);
    }
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
  auto it = models_.find(std::string(model));
  if (it == models_.end()) {
    it = models_.emplace(std::string(model), PerModel{}).first;
    it->second.totals.model = std::string(model);
    it->second.slices.resize(static_cast<size_t>(config_.slices));
  }
  return it->second;
}

Metrics::Slice& Metrics::slice(PerModel& m, Instant now) {
  const int64_t e = epoch(now);
  Slice& s = m.slices[static_cast<size_t>(e % config_.slices)];
  if (s.epoch != e) {
    s.epoch = e;
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
  s.latency.add(seconds(latency));
  if (ttft) s.ttft.add(seconds(*ttft));
  // Generation speed: tokens over the time after the first token when streamed.
  const Duration gen = ttft && latency > *ttft ? latency - *ttft : latency;
  if (output_tokens > 0 && gen.count() > 0) s.tps.add(static_cast<double>(output_tokens) / seconds(gen));
}

void Metrics::record_failure(std::string_view model, Instant now, ErrorClass error,
                             Duration /*latency*/) {
  std::lock_guard lock(mu_);
  PerModel& m = get(model);
  ++m.totals.calls;
  ++m.totals.failures;
  ++m.totals.errors_by_class[to_string(error)];
  ++slice(m, now).calls;
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
  auto it = models_.find(std::string(model));
  if (it == models_.end()) {
    ModelStats empty;
    empty.model = std::string(model);
    return empty;
  }
  return view(it->second, now);
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
