// DeliveryStats: per destination, what happened to its events minute by minute — the figures the
// admin API's `GET /api/v1/destinations/{name}/stats?window=1h` and the console's charts show.
//
// Counts per minute (wall clock, UTC):
//   delivered      events the destination accepted;
//   retried        events scheduled for another attempt after a failed one;
//   failed         events the destination refused for good (they go to the dead-letter queue);
//   dead_lettered  events written to the dead-letter queue (refused, or out of retries);
//   filtered       events a routing rule kept from the destination.
// Latency: receivedAt → accepted by the destination, for delivered events, in a fixed
// log-scale histogram per minute (kLatencyBoundsMs); a percentile is the upper bound of the
// bucket it falls in (so "p95 ≤ 50 ms").
//
// Memory: kKeepMinutes minutes per destination in a ring (~70 KB). The backlog (events and
// seconds behind) is the consumer lag the stream already publishes, not kept here.
//
// Thread safety: every method is thread-safe (a destination's stream records, the admin API
// reads).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sy::observe {

class DeliveryStats {
 public:
  static constexpr int kKeepMinutes = 360;  // the longest window the API answers: 6 h
  // Upper bounds (ms) of the latency buckets; a last bucket holds everything slower.
  static constexpr std::array<int64_t, 17> kLatencyBoundsMs = {
      1,     2,     5,     10,     20,     50,     100,     200,      500,
      1'000, 2'000, 5'000, 10'000, 30'000, 60'000, 300'000, 1'800'000};
  static constexpr size_t kBuckets = kLatencyBoundsMs.size() + 1;

  enum class Kind { kDelivered, kRetried, kFailed, kDeadLettered, kFiltered };

  struct Minute {
    int64_t start_ms = 0;  // the minute's first millisecond
    uint64_t delivered = 0, retried = 0, failed = 0, dead_lettered = 0, filtered = 0;
    std::array<uint64_t, kBuckets> latency{};  // delivered events per latency bucket
  };

  struct Window {
    std::vector<Minute> minutes;  // oldest first, one per minute of the window (zeros included)
    Minute total;                 // the sums (start_ms: the window's start)
    // Percentiles of the window's delivery latency: the bucket's upper bound in ms, -1 when
    // nothing was delivered, INT64_MAX when above the last bound.
    int64_t p50_ms = -1, p95_ms = -1;
  };

  void Record(Kind kind, int64_t now_ms, uint64_t n = 1);
  // A delivered event, with its latency (receivedAt → accepted).
  void RecordDelivered(int64_t now_ms, int64_t latency_ms);

  // The last `minutes` minutes up to now_ms's minute (clamped to 1…kKeepMinutes).
  Window Snapshot(int64_t now_ms, int minutes) const;

  // The percentile `q` (0 < q ≤ 1) of a latency histogram, as above.
  static int64_t Percentile(const std::array<uint64_t, kBuckets>& hist, double q);

 private:
  Minute& At(int64_t now_ms);  // under mu_
  mutable std::mutex mu_;
  std::array<Minute, kKeepMinutes> ring_{};
};

// Every destination's DeliveryStats by name; a stream takes its own at start, the API reads.
class DeliveryStatsBook {
 public:
  std::shared_ptr<DeliveryStats> For(std::string_view destination);
  // nullptr when that destination never started.
  std::shared_ptr<DeliveryStats> Find(std::string_view destination) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<DeliveryStats>, std::less<>> by_name_;
};

}  // namespace sy::observe
