#include "observe/ingest_stats.h"

#include <algorithm>
#include <functional>

namespace sy::observe {

namespace {

constexpr int64_t kMinuteMs = 60'000;

int64_t MinuteIndex(int64_t ms) {
  return (ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs) / kMinuteMs;
}

}  // namespace

IngestStats::IngestStats() {
  for (auto& m : minutes_)
    m.store(0, std::memory_order_relaxed);
}

uint64_t IngestStats::HashOf(std::string_view source) {
  const uint64_t h = std::hash<std::string_view>{}(source);
  return h == 0 ? 1 : h;  // 0 marks a free slot
}

IngestStats::SourceSlot* IngestStats::Find(uint64_t hash, bool claim) const {
  for (size_t probe = 0; probe < kMaxSources; ++probe) {
    SourceSlot& slot = sources_[(hash + probe) % kMaxSources];
    uint64_t seen = slot.name_hash.load(std::memory_order_acquire);
    if (seen == hash) return &slot;
    if (seen == 0) {
      if (!claim) return nullptr;  // probing stops at the first free slot
      if (slot.name_hash.compare_exchange_strong(seen, hash, std::memory_order_acq_rel))
        return &slot;
      if (seen == hash) return &slot;  // another thread claimed it for the same source
    }
  }
  return nullptr;
}

void IngestStats::Record(std::string_view source, int64_t now_ms, uint64_t n) {
  if (n == 0) return;
  const uint64_t minute = static_cast<uint64_t>(MinuteIndex(now_ms));
  std::atomic<uint64_t>& slot = minutes_[minute % kKeepMinutes];
  uint64_t v = slot.load(std::memory_order_relaxed);
  while (true) {
    if ((v >> kCountBits) == minute) {
      slot.fetch_add(n, std::memory_order_relaxed);
      break;
    }
    // The slot holds an older minute (or a newer one, when clocks of two threads disagree
    // around a boundary: the older write then starts the slot over; a few events at most).
    if (slot.compare_exchange_weak(v, (minute << kCountBits) | n, std::memory_order_relaxed)) break;
  }
  if (SourceSlot* s = Find(HashOf(source), /*claim=*/true)) {
    s->stored.fetch_add(n, std::memory_order_relaxed);
    // Largest wins: two threads storing at once may finish out of order.
    int64_t last = s->last_stored_ms.load(std::memory_order_relaxed);
    while (last < now_ms &&
           !s->last_stored_ms.compare_exchange_weak(last, now_ms, std::memory_order_relaxed)) {
    }
  }
}

std::vector<IngestStats::Minute> IngestStats::Minutes(int64_t now_ms, int minutes) const {
  minutes = std::clamp(minutes, 1, kKeepMinutes);
  const int64_t last = MinuteIndex(now_ms);
  std::vector<Minute> out;
  out.reserve(static_cast<size_t>(minutes));
  for (int64_t m = last - (minutes - 1); m <= last; ++m) {
    const uint64_t v =
        minutes_[static_cast<uint64_t>(m) % kKeepMinutes].load(std::memory_order_relaxed);
    Minute minute{.start_ms = m * kMinuteMs};
    if ((v >> kCountBits) == static_cast<uint64_t>(m))
      minute.stored = v & ((uint64_t{1} << kCountBits) - 1);
    out.push_back(minute);
  }
  return out;
}

std::optional<IngestStats::SourceFigures> IngestStats::Source(std::string_view source) const {
  const SourceSlot* s = Find(HashOf(source), /*claim=*/false);
  if (!s) return std::nullopt;
  return SourceFigures{s->last_stored_ms.load(std::memory_order_relaxed),
                       s->stored.load(std::memory_order_relaxed)};
}

}  // namespace sy::observe
