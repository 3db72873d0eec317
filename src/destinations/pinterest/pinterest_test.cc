// Golden tests of the pinterest encoder against the API for Conversions payload (data[], hashed
// user_data arrays, string values, event_id), its user_data requirement, and its per-event
// classification of the 200 answer's `events[]`.
#include "destinations/pinterest/pinterest.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using K = delivery::Outcome::Kind;
using delivery::testing::Event;
using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make() {
  return delivery::testing::MustCreate(
      PinterestType(), {Scalar("ad_account_id", "549755885175"), Scalar("access_token", "pina_T"),
                        Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Pinterest, TrackPageGoldenAndSkips) {
  std::vector<delivery::RoutedEvent> events = {
      Event(
          0,
          R"({"type":"track","event":"Order Completed","userId":"u1",)"
          R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1","revenue":25.5,)"
          R"("currency":"EUR","products":[{"product_id":"p1","quantity":2,"price":10}]},)"
          R"("context":{"ip":"1.2.3.4","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/c"},)"
          R"("traits":{"email":" Jane@Example.COM"}}})",
          "mid-0"),
      Event(
          1,
          R"({"type":"page","anonymousId":"a2","timestamp":"2024-01-02T03:04:05Z",)"
          R"("context":{"ip":"1.2.3.4","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/"}}})",
          "mid-1"),
      Event(
          2,
          R"({"type":"track","event":"Demo Booked","userId":"u3","properties":{"email":"d@x.example"}})",
          "mid-2"),
      Event(3, R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com"}})", "mid-3"),
      // No email and no ip+agent: Pinterest would refuse it.
      Event(4, R"({"type":"track","event":"Product Added","userId":"u4"})", "mid-4"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  const auto& r = b.requests[0];
  EXPECT_EQ(r.url, "http://127.0.0.1:9/v5/ad_accounts/549755885175/events");
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>{"Authorization", "Bearer pina_T"}));
  EXPECT_EQ(r.events, (std::vector<size_t>{0, 1, 2}));
  json::value body = json::parse(r.body);
  const auto& first = body.at("data").at(0);
  EXPECT_EQ(first.at("event_name"), "checkout");
  EXPECT_EQ(first.at("action_source"), "web");
  EXPECT_EQ(first.at("event_time"), 1704164645);
  EXPECT_EQ(first.at("custom_data").at("value"), "25.5");
  EXPECT_EQ(first.at("custom_data").at("contents").at(0).at("item_price"), "10");
  EXPECT_EQ(first.at("user_data").at("em").at(0),
            "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d");
  EXPECT_EQ(body.at("data").at(1).at("event_name"), "page_visit");
  EXPECT_EQ(body.at("data").at(2).at("event_name"), "custom");
  ASSERT_EQ(b.skipped.size(), 1u);
  EXPECT_EQ(b.skipped[0].first, 3u);  // identify
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 4u);
  EXPECT_NE(b.unmappable[0].second.find("needs an email"), std::string::npos);
  const char* golden[] = {"track_checkout", "page", "track_custom", "identify_skipped",
                          "track_without_user_data"};
  for (size_t i = 0; i < events.size(); ++i)
    delivery::testing::ExpectGolden(
        delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
        std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(Pinterest, BatchesWithinOneThousandEvents) {
  EXPECT_EQ(Make()->limits().max_events_per_request, 1000u);
}

TEST(Pinterest, RejectsOnlyTheEventsItsAnswerNamesFailed) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {2, 4, 6};
  delivery::HttpResponse res;
  res.status = 200;
  res.body =
      R"({"num_events_received":3,"num_events_processed":2,"events":[)"
      R"({"status":"processed","error_message":null,"warning_message":null},)"
      R"({"status":"failed","error_message":"event_time is too old","warning_message":null},)"
      R"({"status":"processed","error_message":null,"warning_message":"no em"}]})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, K::kDelivered);
  EXPECT_EQ(out[1].kind, K::kRejected);
  EXPECT_EQ(out[1].reason, "pinterest: event_time is too old");
  EXPECT_EQ(out[2].kind, K::kDelivered);
}

TEST(Pinterest, ClassifiesEveryErrorClass) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0, 1};
  delivery::HttpResponse res;
  res.status = 400;
  res.body = R"({"code":1,"message":"Invalid parameters."})";
  auto bad = d->Classify(req, res);
  EXPECT_EQ(bad[1].kind, K::kRejected);
  EXPECT_EQ(bad[1].reason, "pinterest: Invalid parameters. (code 1)");
  res.status = 401;
  res.body = R"({"code":2,"message":"Authentication failed."})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 403;
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 429;
  res.body = R"({"code":8,"message":"Rate limit exceeded."})";
  res.headers = {{"Retry-After", "2"}};
  auto limited = d->Classify(req, res)[0];
  EXPECT_EQ(limited.kind, K::kRetry);
  EXPECT_EQ(limited.retry_after_ms, 2000);
  EXPECT_EQ(limited.reason, "pinterest: Rate limit exceeded. (code 8)");
  res.status = 503;
  res.body = "";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

TEST(Pinterest, SettingsAreCheckedAtConfigTime) {
  auto bad = delivery::testing::Create(
      PinterestType(), {Scalar("ad_account_id", ".."), Scalar("access_token", "t")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("ad_account_id: must be letters"), std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
