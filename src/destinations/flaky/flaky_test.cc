// The flaky and blackhole test destinations: settings validation and the per-attempt pattern.
#include "destinations/flaky/flaky.h"

#include <gtest/gtest.h>

#include "delivery/testing.h"
#include "destinations/blackhole/blackhole.h"

namespace sy::destinations {
namespace {

using delivery::testing::List;

Result<std::unique_ptr<delivery::Destination>> Make(const delivery::DestinationType& t,
                                                    std::vector<config::RawSetting> raw) {
  return delivery::testing::Create(t, raw);
}

TEST(Flaky, FollowsThePatternPerEventAndRepeatsTheLastStep) {
  auto d = Make(FlakyType(), {List("pattern", {"retry", "reject", "ok"})});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::vector<delivery::RoutedEvent> events = {{Offset(0), "web", "m0", TimestampMs(0), "{}"},
                                               {Offset(1), "web", "m1", TimestampMs(0), "{}"}};
  using K = delivery::Outcome::Kind;
  std::vector<K> seen;
  for (int round = 0; round < 4; ++round) {
    auto out = (*d)->DeliverInProcess(std::span(events).subspan(0, 1));
    ASSERT_TRUE(out.has_value());
    seen.push_back((*out)[0].kind);
  }
  EXPECT_EQ(seen, (std::vector<K>{K::kRetry, K::kRejected, K::kDelivered, K::kDelivered}));
  // Another event has its own count.
  EXPECT_EQ((*(*d)->DeliverInProcess(std::span(events).subspan(1, 1)))[0].kind, K::kRetry);
}

TEST(Flaky, RejectsAnUnknownStep) {
  auto bad = Make(FlakyType(), {List("pattern", {"ok", "explode"}, 3)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "f.yaml:3: settings.pattern: 'explode' is not one of: ok, retry, reject"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(Make(FlakyType(), {List("colour", {"x"})}).ok());
}

TEST(Blackhole, AcceptsEverythingAndHasNoSettings) {
  auto d = Make(BlackholeType(), {});
  ASSERT_TRUE(d.ok());
  std::vector<delivery::RoutedEvent> events(3);
  auto out = (*d)->DeliverInProcess(events);
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->size(), 3u);
  for (const auto& o : *out)
    EXPECT_EQ(o.kind, delivery::Outcome::Kind::kDelivered);
  EXPECT_FALSE(Make(BlackholeType(), {List("x", {})}).ok());
}

}  // namespace
}  // namespace sy::destinations
