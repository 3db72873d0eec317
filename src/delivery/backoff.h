// Retry delays: exponential backoff with full jitter (delay uniform in [0, min(cap, base·2^n)]),
// never shorter than the receiver's Retry-After. Thread-compatible (owns its random engine).
#pragma once

#include <cstdint>
#include <optional>
#include <random>

namespace sy::delivery {

struct BackoffPolicy {
  int64_t base_ms = 1000;    // first retry within 1 s
  int64_t cap_ms = 300'000;  // never wait more than 5 min between attempts (RudderStack: 300 s)
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}())
      : policy_(policy), rng_(seed) {}

  // Delay before attempt number `attempts_so_far` + 1 (attempts_so_far ≥ 1).
  int64_t NextDelayMs(int attempts_so_far, std::optional<int64_t> retry_after_ms);

  // The upper bound of the jitter window for an attempt (for tests and docs).
  int64_t CeilingMs(int attempts_so_far) const;

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
};

}  // namespace sy::delivery
