// IngestStats: how many events ingest stored, minute by minute (wall clock, UTC), and per source
// when it last stored one — the "events in" of the admin API's `GET /api/v1/overview` and the
// console's overview chart.
//
// Cost on the ingest path: Record runs once per stored batch (after the log's append succeeded)
// and takes no lock: the minute's slot is one 64-bit atomic holding the minute and its count
// together (a load and a relaxed add; a compare-and-swap only when a new minute begins), and
// the source's slot is found by its name's hash in a fixed open-addressed table (relaxed stores
// and adds; a compare-and-swap the first time a source is seen).
//
// Memory: kKeepMinutes minutes (8 bytes each) and kMaxSources source slots (24 bytes each),
// allocated once. Sources past kMaxSources distinct names get no per-source figures (Source
// answers nullopt); the minute counts still include their events. Sources come from the
// configuration, not from clients, so the cap is far above what a deployment has.
//
// Thread safety: every method is thread-safe and lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace sy::observe {

class IngestStats {
 public:
  static constexpr int kKeepMinutes = 360;  // as DeliveryStats: the longest window answered
  static constexpr size_t kMaxSources = 1024;

  struct Minute {
    int64_t start_ms = 0;  // the minute's first millisecond
    uint64_t stored = 0;   // events ingest stored in it
  };
  struct SourceFigures {
    int64_t last_stored_ms = 0;  // when the source's last stored batch was acknowledged
    uint64_t stored = 0;         // events stored since the server started
  };

  IngestStats();

  // `n` events of `source` stored at now_ms.
  void Record(std::string_view source, int64_t now_ms, uint64_t n);

  // The last `minutes` minutes up to now_ms's minute (clamped to 1…kKeepMinutes), oldest first,
  // zeros included.
  std::vector<Minute> Minutes(int64_t now_ms, int minutes) const;

  // nullopt: nothing stored for that source since the server started (or past kMaxSources).
  std::optional<SourceFigures> Source(std::string_view source) const;

 private:
  struct SourceSlot {
    std::atomic<uint64_t> name_hash{0};  // 0: free
    std::atomic<int64_t> last_stored_ms{0};
    std::atomic<uint64_t> stored{0};
  };
  static uint64_t HashOf(std::string_view source);
  // The slot of `hash`, claiming a free one when `claim`; null when absent (or the table full).
  SourceSlot* Find(uint64_t hash, bool claim) const;

  // Minute slots: the minute's index since the epoch in the high 32 bits, its count in the low
  // 32 (4 billion events a minute at most, 70 million a second: never reached).
  static constexpr int kCountBits = 32;
  std::array<std::atomic<uint64_t>, kKeepMinutes> minutes_;
  mutable std::array<SourceSlot, kMaxSources> sources_;
};

}  // namespace sy::observe
