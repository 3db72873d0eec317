#include "observe/delivery_stats.h"

#include <algorithm>
#include <cmath>

namespace sy::observe {

namespace {

constexpr int64_t kMinuteMs = 60'000;

int64_t MinuteStart(int64_t ms) {
  return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs;
}

size_t BucketOf(int64_t latency_ms) {
  const auto& b = DeliveryStats::kLatencyBoundsMs;
  return static_cast<size_t>(std::lower_bound(b.begin(), b.end(), latency_ms) - b.begin());
}

void AddInto(DeliveryStats::Minute* into, const DeliveryStats::Minute& m) {
  into->delivered += m.delivered;
  into->retried += m.retried;
  into->failed += m.failed;
  into->dead_lettered += m.dead_lettered;
  into->filtered += m.filtered;
  for (size_t i = 0; i < m.latency.size(); ++i)
    into->latency[i] += m.latency[i];
}

}  // namespace

DeliveryStats::Minute& DeliveryStats::At(int64_t now_ms) {
  const int64_t start = MinuteStart(now_ms);
  Minute& m = ring_[static_cast<size_t>((start / kMinuteMs) % kKeepMinutes)];
  if (m.start_ms != start) m = Minute{.start_ms = start};  // a minute ago by a full turn: reuse
  return m;
}

void DeliveryStats::Record(Kind kind, int64_t now_ms, uint64_t n) {
  if (n == 0) return;
  std::lock_guard lock(mu_);
  Minute& m = At(now_ms);
  switch (kind) {
    case Kind::kDelivered:
      m.delivered += n;
      break;
    case Kind::kRetried:
      m.retried += n;
      break;
    case Kind::kFailed:
      m.failed += n;
      break;
    case Kind::kDeadLettered:
      m.dead_lettered += n;
      break;
    case Kind::kFiltered:
      m.filtered += n;
      break;
  }
}

void DeliveryStats::RecordDelivered(int64_t now_ms, int64_t latency_ms) {
  std::lock_guard lock(mu_);
  Minute& m = At(now_ms);
  ++m.delivered;
  ++m.latency[BucketOf(std::max<int64_t>(latency_ms, 0))];
}

DeliveryStats::Window DeliveryStats::Snapshot(int64_t now_ms, int minutes) const {
  minutes = std::clamp(minutes, 1, kKeepMinutes);
  Window w;
  const int64_t last = MinuteStart(now_ms);
  const int64_t first = last - static_cast<int64_t>(minutes - 1) * kMinuteMs;
  w.total.start_ms = first;
  w.minutes.reserve(static_cast<size_t>(minutes));
  std::lock_guard lock(mu_);
  for (int64_t start = first; start <= last; start += kMinuteMs) {
    const Minute& m = ring_[static_cast<size_t>((start / kMinuteMs) % kKeepMinutes)];
    Minute out{.start_ms = start};
    if (m.start_ms == start) AddInto(&out, m);
    AddInto(&w.total, out);
    w.minutes.push_back(out);
  }
  w.p50_ms = Percentile(w.total.latency, 0.50);
  w.p95_ms = Percentile(w.total.latency, 0.95);
  return w;
}

int64_t DeliveryStats::Percentile(const std::array<uint64_t, kBuckets>& hist, double q) {
  uint64_t total = 0;
  for (uint64_t c : hist)
    total += c;
  if (total == 0) return -1;
  // The smallest bucket whose cumulative count reaches q of the total (at least one event).
  const auto need =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total))));
  uint64_t seen = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    seen += hist[i];
    if (seen >= need) return i < kLatencyBoundsMs.size() ? kLatencyBoundsMs[i] : INT64_MAX;
  }
  return INT64_MAX;
}

std::shared_ptr<DeliveryStats> DeliveryStatsBook::For(std::string_view destination) {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(destination);
  if (it != by_name_.end()) return it->second;
  auto stats = std::make_shared<DeliveryStats>();
  by_name_.emplace(std::string(destination), stats);
  return stats;
}

std::shared_ptr<DeliveryStats> DeliveryStatsBook::Find(std::string_view destination) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(destination);
  return it == by_name_.end() ? nullptr : it->second;
}

}  // namespace sy::observe
