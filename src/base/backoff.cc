#include "base/backoff.h"

#include <algorithm>

namespace sy {

int64_t Backoff::CeilingMs(int attempts_so_far) const {
  int shift = std::clamp(attempts_so_far - 1, 0, 40);
  int64_t ceiling = policy_.base_ms;
  for (int i = 0; i < shift && ceiling < policy_.cap_ms; ++i)
    ceiling *= 2;
  return std::min(ceiling, policy_.cap_ms);
}

int64_t Backoff::NextDelayMs(int attempts_so_far, std::optional<int64_t> retry_after_ms) {
  std::uniform_int_distribution<int64_t> jitter(0, CeilingMs(attempts_so_far));
  int64_t delay = jitter(rng_);
  if (retry_after_ms) delay = std::max(delay, *retry_after_ms);
  return delay;
}

RetrySchedule::RetrySchedule(const RetryPolicy& policy, Clock* clock, uint64_t seed)
    : policy_(policy),
      clock_(clock ? clock : SystemClock::Get()),
      started_ns_(clock_->MonotonicNanos()),
      backoff_(policy.backoff, seed) {}

std::optional<int64_t> RetrySchedule::AfterFailure(bool transient,
                                                   std::optional<int64_t> retry_after_ms) {
  if (!transient && !policy_.retry_permanent_failures) return std::nullopt;
  if (policy_.max_attempts > 0 && attempts_ >= policy_.max_attempts) return std::nullopt;
  if (retry_after_ms) retry_after_ms = std::min(*retry_after_ms, policy_.max_retry_after_ms);
  int64_t delay = backoff_.NextDelayMs(attempts_, retry_after_ms);
  if (policy_.deadline_ms > 0) {
    int64_t elapsed_ms = (clock_->MonotonicNanos() - started_ns_) / 1'000'000;
    if (elapsed_ms + delay > policy_.deadline_ms) return std::nullopt;
  }
  ++attempts_;
  return delay;
}

}  // namespace sy
