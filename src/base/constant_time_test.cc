// ConstantTimeEquals: right answers, and a duration that does not depend on where the first
// difference is (the admin token check, issue 18).
#include "base/constant_time.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace sy {
namespace {

TEST(ConstantTimeEquals, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("0123abcd", "0123abcd"));
  EXPECT_FALSE(ConstantTimeEquals("0123abcc", "0123abcd"));
  EXPECT_FALSE(ConstantTimeEquals("1123abcd", "0123abcd"));
  EXPECT_FALSE(ConstantTimeEquals("0123abc", "0123abcd"));    // a prefix
  EXPECT_FALSE(ConstantTimeEquals("0123abcd0", "0123abcd"));  // longer
  EXPECT_FALSE(ConstantTimeEquals("", "0123abcd"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("0123\0bcd", 8), "0123abcd"));
}

// The fastest of many runs (robust against a busy machine) of a comparison whose first
// difference is at byte 0 against one whose first difference is at the last byte. An early-exit
// compare (memcmp, string ==) answers the first in nanoseconds and the second after reading
// 1 MiB; a constant-time one reads everything both times.
TEST(ConstantTimeEquals, DurationDoesNotDependOnWhereTheFirstDifferenceIs) {
  const std::string expected(1 << 20, 'a');
  std::string early = expected, late = expected;
  early.front() = 'b';
  late.back() = 'b';
  auto fastest = [&](const std::string& presented) {
    auto best = std::chrono::nanoseconds::max();
    for (int i = 0; i < 15; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      bool eq = ConstantTimeEquals(presented, expected);
      auto t = std::chrono::steady_clock::now() - t0;
      EXPECT_FALSE(eq);
      best = std::min(best, std::chrono::duration_cast<std::chrono::nanoseconds>(t));
    }
    return best.count();
  };
  const int64_t t_early = fastest(early);
  const int64_t t_late = fastest(late);
  // Equal up to noise; an early exit would make t_early a tiny fraction of t_late.
  EXPECT_GT(t_early * 3, t_late) << "early " << t_early << " ns, late " << t_late << " ns";
}

}  // namespace
}  // namespace sy
