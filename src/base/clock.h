// Clock: the seam for time, so tests can use fake time. Implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/types.h"

namespace sy {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall clock (UTC), for receivedAt and time-based seeks.
  virtual TimestampMs Now() const = 0;
  // Monotonic nanoseconds, for durations and deadlines.
  virtual int64_t MonotonicNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimestampMs Now() const override;
  int64_t MonotonicNanos() const override;
  static SystemClock* Get();  // process-wide instance; never destroyed
};

// A clock that moves only when told to. For tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  TimestampMs Now() const override { return TimestampMs(now_ms_.load() + wall_step_ms_.load()); }
  int64_t MonotonicNanos() const override { return now_ms_.load() * 1'000'000; }
  void Advance(std::chrono::milliseconds d) { now_ms_ += d.count(); }
  void Set(int64_t ms) { now_ms_ = ms; }
  // Steps the wall clock alone (an NTP correction, a VM resumed): monotonic time does not move.
  void StepWallClock(std::chrono::milliseconds d) { wall_step_ms_ += d.count(); }

 private:
  std::atomic<int64_t> now_ms_;
  std::atomic<int64_t> wall_step_ms_{0};
};

}  // namespace sy
