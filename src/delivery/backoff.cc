#include "delivery/backoff.h"

#include <algorithm>

namespace sy::delivery {

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

}  // namespace sy::delivery
