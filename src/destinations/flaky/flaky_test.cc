// The flaky and blackhole test destinations: settings validation and the per-attempt pattern.
#include "destinations/flaky/flaky.h"

#include <gtest/gtest.h>

#include "destinations/blackhole/blackhole.h"

namespace sy::destinations {
namespace {

config::RawSetting List(std::string key, std::vector<std::string> items) {
  config::RawSetting r;
  r.key = std::move(key);
  r.kind = config::RawSetting::Kind::kList;
  r.list = std::move(items);
  return r;
}

Result<std::unique_ptr<delivery::Destination>> Make(const delivery::DestinationType& t,
                                                    std::vector<config::RawSetting> raw) {
  auto s = delivery::ParseSettings(t.settings, raw, "f.yaml", "settings", 1);
  if (!s.ok()) return s.status();
  return t.create(*s);
}

TEST(Flaky, FollowsThePatternPerEventAndRepeatsTheLastStep) {
  auto d = Make(FlakyType(), {List("pattern", {"retry", "reject", "ok"})});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::vector<delivery::StoredEvent> events = {{Offset(0), "web", "m0", TimestampMs(0), "{}"},
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
  EXPECT_FALSE(Make(FlakyType(), {List("pattern", {"ok", "explode"})}).ok());
  EXPECT_FALSE(Make(FlakyType(), {List("colour", {"x"})}).ok());
}

TEST(Blackhole, AcceptsEverythingAndHasNoSettings) {
  auto d = Make(BlackholeType(), {});
  ASSERT_TRUE(d.ok());
  std::vector<delivery::StoredEvent> events(3);
  auto out = (*d)->DeliverInProcess(events);
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->size(), 3u);
  for (const auto& o : *out)
    EXPECT_EQ(o.kind, delivery::Outcome::Kind::kDelivered);
  EXPECT_FALSE(Make(BlackholeType(), {List("x", {})}).ok());
}

}  // namespace
}  // namespace sy::destinations
