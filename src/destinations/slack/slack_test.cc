// The slack encoder: template rendering and the request shape (golden).
#include "destinations/slack/slack.h"

#include <gtest/gtest.h>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {

TEST(Slack, TemplateRendersDottedPathsAndMissingValuesAsEmpty) {
  const char* ev =
      R"({"type":"track","event":"Order Completed","userId":"u1","properties":{"revenue":9.5,"plan":"pro","tags":["a"]}})";
  EXPECT_EQ(RenderSlackTemplate(
                "{{event}} by {{userId}}: {{properties.plan}} ${{ properties.revenue }}", ev),
            "Order Completed by u1: pro $9.5");
  EXPECT_EQ(RenderSlackTemplate("[{{properties.tags}}] {{nope.deeper}}|{{properties.plan.x}}", ev),
            "[[\"a\"]] |");
  EXPECT_EQ(RenderSlackTemplate("unclosed {{event", ev), "unclosed {{event");
}

using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make(std::string tmpl) {
  std::vector<config::RawSetting> raw = {
      Scalar("webhook_url", "https://hooks.slack.example/services/T/B/X")};
  if (!tmpl.empty()) raw.push_back(Scalar("template", tmpl));
  return delivery::testing::MustCreate(SlackType(), raw);
}

TEST(Slack, OneJsonTextMessagePerEventGolden) {
  auto d = Make("");
  std::vector<delivery::RoutedEvent> events = {
      {Offset(0), "web", "m1", TimestampMs(0),
       R"({"type":"track","event":"Signed \"Up\"","userId":"u1"})"},
      {Offset(1), "web", "m2", TimestampMs(0), R"({"type":"identify","userId":"u2"})"}};
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  EXPECT_EQ(b.requests[0].url, "https://hooks.slack.example/services/T/B/X");
  EXPECT_EQ(b.requests[0].headers, (delivery::HeaderList{{"Content-Type", "application/json"}}));
  EXPECT_EQ(b.requests[0].body, R"({"text":"track Signed \"Up\" from u1"})");
  EXPECT_EQ(b.requests[1].body, R"({"text":"identify  from u2"})");
  EXPECT_EQ(b.requests[1].events, std::vector<size_t>{1});
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/messages.golden");
}

TEST(Slack, AnEmptyTemplateIsAConfigError) {
  auto made = delivery::testing::Create(
      SlackType(),
      {Scalar("webhook_url", "https://hooks.slack.example/x"), Scalar("template", "")});
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("template: must not be empty"), std::string::npos);
}

TEST(Slack, AnEmptyMessageIsUnmappable) {
  auto d = Make("{{properties.missing}}");
  std::vector<delivery::RoutedEvent> events = {
      {Offset(0), "web", "m1", TimestampMs(0), R"({"type":"track","event":"E"})"}};
  auto b = d->Encode(events);
  EXPECT_TRUE(b.requests.empty());
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 0u);
}

}  // namespace
}  // namespace sy::destinations
