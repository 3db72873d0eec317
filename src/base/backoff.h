// Retry timing shared by every retry loop of the process (destination streams, the archiver's
// uploads, the S3 store's reads):
// - Backoff: exponential backoff with full jitter (the delay before attempt n+1 is uniform in
//   [0, min(cap, base·2^(n-1))]), never shorter than the receiver's Retry-After.
// - RetryPolicy + RetrySchedule: one operation's attempts under a policy — how many attempts,
//   until which deadline, with which backoff, and how long a Retry-After may hold it back. Time
//   comes from the Clock seam (base/clock.h), so tests run a whole schedule on a FakeClock.
// Which failures are worth retrying is the caller's knowledge (HTTP's convention is
// http::IsTransientFailure); the schedule is told per failure.
//
// Thread-compatible: each object owns its random engine; one per stream or operation.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

#include "base/clock.h"

namespace sy {

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

struct RetryPolicy {
  // Attempts in all, the first included; 0: no limit (the caller stops the schedule itself,
  // e.g. when shutting down).
  int max_attempts = 4;
  // No retry starts later than this after the first attempt began (a retry whose delay would
  // end past it is not made); 0: no deadline.
  int64_t deadline_ms = 0;
  BackoffPolicy backoff{500, 30'000};
  // A Retry-After longer than this is cut to it, so a hostile or broken receiver cannot park
  // the operation for the day http::ParseRetryAfterMs allows.
  int64_t max_retry_after_ms = 300'000;
  // Retry failures the caller calls permanent too (the archive: a 403 after a wrong secret is
  // fixed by the operator while the archiver keeps trying, and the log keeps the events).
  bool retry_permanent_failures = false;

  static RetryPolicy SingleAttempt() { return {.max_attempts = 1}; }
};

class RetrySchedule {
 public:
  // Starts the operation's clock now: call just before the first attempt.
  RetrySchedule(const RetryPolicy& policy, Clock* clock, uint64_t seed = std::random_device{}());

  // After a failed attempt: the delay (ms) before the next one, or nullopt when the policy gives
  // up (a permanent failure it does not retry, attempts used up, or the deadline reached).
  std::optional<int64_t> AfterFailure(bool transient, std::optional<int64_t> retry_after_ms);

  int attempts() const { return attempts_; }  // attempts made so far (failures reported + 1)

 private:
  RetryPolicy policy_;
  Clock* clock_;
  int64_t started_ns_;
  int attempts_ = 1;
  Backoff backoff_;
};

}  // namespace sy
