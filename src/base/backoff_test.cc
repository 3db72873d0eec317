// Unit tests of retry timing: the full-jitter bounds, and RetrySchedule's attempts, deadline,
// Retry-After and permanent-failure rules driven by a FakeClock.
#include "base/backoff.h"

#include <gtest/gtest.h>

#include <chrono>

namespace sy {
namespace {

TEST(Backoff, FullJitterStaysWithinExponentialBoundsAndHonoursRetryAfter) {
  Backoff b({1000, 60'000}, 42);
  EXPECT_EQ(b.CeilingMs(1), 1000);
  EXPECT_EQ(b.CeilingMs(2), 2000);
  EXPECT_EQ(b.CeilingMs(5), 16000);
  EXPECT_EQ(b.CeilingMs(30), 60'000);
  int64_t max_seen = 0;
  for (int i = 0; i < 1000; ++i) {
    int64_t d = b.NextDelayMs(3, std::nullopt);
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 4000);
    max_seen = std::max(max_seen, d);
  }
  EXPECT_GT(max_seen, 3000);  // jitter spreads over the whole window
  for (int i = 0; i < 100; ++i)
    ASSERT_GE(b.NextDelayMs(1, 7000), 7000);
}

TEST(RetrySchedule, StopsAfterMaxAttemptsAndNeverRetriesAPermanentFailure) {
  FakeClock clock;
  RetryPolicy policy{.max_attempts = 4, .backoff = {100, 1000}};
  RetrySchedule s(policy, &clock, 7);
  EXPECT_EQ(s.attempts(), 1);
  for (int i = 2; i <= 4; ++i) {
    std::optional<int64_t> d = s.AfterFailure(true, std::nullopt);
    ASSERT_TRUE(d.has_value()) << "attempt " << i;
    EXPECT_LE(*d, 100 << (i - 2));  // full jitter under the exponential ceiling
    EXPECT_EQ(s.attempts(), i);
  }
  EXPECT_FALSE(s.AfterFailure(true, std::nullopt).has_value());  // 4 attempts made

  RetrySchedule permanent(policy, &clock, 7);
  EXPECT_FALSE(permanent.AfterFailure(false, std::nullopt).has_value());
  EXPECT_EQ(permanent.attempts(), 1);
  policy.retry_permanent_failures = true;
  RetrySchedule anyway(policy, &clock, 7);
  EXPECT_TRUE(anyway.AfterFailure(false, std::nullopt).has_value());
}

TEST(RetrySchedule, TheDeadlineCountsFromTheFirstAttemptOnTheClock) {
  FakeClock clock;
  RetryPolicy policy{.max_attempts = 0, .deadline_ms = 10'000, .backoff = {1000, 1000}};
  RetrySchedule s(policy, &clock, 1);
  int retries = 0;
  while (std::optional<int64_t> d = s.AfterFailure(true, std::nullopt)) {
    ASSERT_LE(*d, 1000);
    clock.Advance(std::chrono::milliseconds(*d + 500));  // the delay, then a 500 ms attempt
    ++retries;
    ASSERT_LT(retries, 100);
  }
  // Each retry costs 500..1500 ms of fake time: between 6 and 20 fit in 10 s.
  EXPECT_GE(retries, 6);
  EXPECT_LE(retries, 20);
  // No delay was handed out that ends past the deadline.
  EXPECT_LE(clock.MonotonicNanos() / 1'000'000 - 1'700'000'000'000, 10'000 + 1500);
}

TEST(RetrySchedule, RetryAfterIsHonouredUpToTheCapAndNeverPastTheDeadline) {
  FakeClock clock;
  RetryPolicy policy{.max_attempts = 0, .backoff = {10, 10}, .max_retry_after_ms = 60'000};
  RetrySchedule s(policy, &clock, 3);
  EXPECT_EQ(s.AfterFailure(true, 5'000), 5'000);       // longer than the jitter: waited
  EXPECT_EQ(s.AfterFailure(true, 3'600'000), 60'000);  // an hour: cut to the cap
  policy.deadline_ms = 30'000;
  RetrySchedule bounded(policy, &clock, 3);
  EXPECT_FALSE(bounded.AfterFailure(true, 45'000).has_value());  // would end past the deadline
}

TEST(RetrySchedule, SingleAttemptNeverRetries) {
  FakeClock clock;
  RetrySchedule s(RetryPolicy::SingleAttempt(), &clock);
  EXPECT_FALSE(s.AfterFailure(true, std::nullopt).has_value());
}

}  // namespace
}  // namespace sy
