// Golden tests of the tiktok encoder against the Events API 2.0 payload (event_source, data[],
// hashed user fields, event_id) and its classification by the body's `code` (TikTok answers
// HTTP 200 for most errors).
#include "destinations/tiktok/tiktok.h"

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
      TiktokType(), {Scalar("pixel_code", "CPIX123"), Scalar("access_token", "tt-token"),
                     Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Tiktok, TrackGoldenAndSkips) {
  std::vector<delivery::RoutedEvent> events = {
      Event(
          0,
          R"({"type":"track","event":"Order Completed","userId":"u1",)"
          R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1","revenue":25.5,)"
          R"("currency":"EUR","products":[{"product_id":"p1","name":"Mug","quantity":2,"price":10}]},)"
          R"("context":{"ip":"1.2.3.4","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/c",)"
          R"("referrer":"https://r.example"},"traits":{"email":" Jane@Example.COM","phone":"+1 555 123 4567"}}})",
          "mid-0"),
      Event(
          1,
          R"({"type":"track","event":"Demo Booked","anonymousId":"a2","properties":{"plan":"pro"}})",
          "mid-1"),
      Event(2, R"({"type":"page","name":"Home","anonymousId":"a2"})", "mid-2"),
      Event(3, R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com"}})", "mid-3"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  const auto& r = b.requests[0];
  EXPECT_EQ(r.url, "http://127.0.0.1:9/open_api/v1.3/event/track/");
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>{"Access-Token", "tt-token"}));
  EXPECT_EQ(r.events, (std::vector<size_t>{0, 1}));
  json::value body = json::parse(r.body);
  EXPECT_EQ(body.at("event_source"), "web");
  EXPECT_EQ(body.at("event_source_id"), "CPIX123");
  const auto& first = body.at("data").at(0);
  EXPECT_EQ(first.at("event"), "CompletePayment");
  EXPECT_EQ(first.at("event_time"), 1704164645);
  EXPECT_EQ(first.at("event_id"), "mid-0");
  EXPECT_EQ(first.at("user").at("email"),
            "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d");
  EXPECT_EQ(first.at("properties").at("contents").at(0).at("content_id"), "p1");
  EXPECT_EQ(body.at("data").at(1).at("event"), "Demo Booked");
  EXPECT_TRUE(b.unmappable.empty());
  ASSERT_EQ(b.skipped.size(), 2u);  // page, identify
  const char* golden[] = {"track_purchase", "track_custom", "page_skipped", "identify_skipped"};
  for (size_t i = 0; i < events.size(); ++i)
    delivery::testing::ExpectGolden(
        delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
        std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(Tiktok, BatchesWithinOneThousandEvents) {
  EXPECT_EQ(Make()->limits().max_events_per_request, 1000u);
}

delivery::HttpResponse Body(int code, std::string message = "error", int status = 200) {
  delivery::HttpResponse res;
  res.status = status;
  res.body = R"({"code":)" + std::to_string(code) + R"(,"message":")" + message +
             R"(","request_id":"r1","data":{}})";
  return res;
}

TEST(Tiktok, ClassifiesByTheBodyCodeNotTheStatus) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0, 1};
  EXPECT_EQ(d->Classify(req, Body(0, "OK"))[0].kind, K::kDelivered);
  auto bad = d->Classify(req, Body(40002, "event_time is invalid"));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[1].kind, K::kRejected);
  EXPECT_EQ(bad[1].reason, "tiktok: event_time is invalid (code 40002)");
  for (int code : {40001, 40102, 40104, 40105}) {
    auto o = d->Classify(req, Body(code))[0];
    EXPECT_EQ(o.kind, K::kRetry) << code;
    EXPECT_TRUE(o.auth_failure) << code;
  }
  auto limited = d->Classify(req, Body(40100, "Too many requests"))[0];
  EXPECT_EQ(limited.kind, K::kRetry);
  EXPECT_FALSE(limited.auth_failure);
  EXPECT_EQ(d->Classify(req, Body(50000, "System error"))[0].kind, K::kRetry);
  delivery::HttpResponse garbled;
  garbled.status = 200;
  garbled.body = "<html>";
  EXPECT_EQ(d->Classify(req, garbled)[0].kind, K::kRetry);  // never delivered without code 0
  auto http429 = Body(40100, "x", 429);
  http429.headers = {{"Retry-After", "3"}};
  EXPECT_EQ(d->Classify(req, http429)[0].retry_after_ms, 3000);
  EXPECT_TRUE(d->Classify(req, Body(40105, "x", 401))[0].auth_failure);
  EXPECT_EQ(d->Classify(req, Body(0, "x", 503))[0].kind, K::kRetry);
  EXPECT_EQ(d->Classify(req, Body(0, "x", 404))[0].kind, K::kRejected);
}

TEST(Tiktok, SettingsAreCheckedAtConfigTime) {
  auto bad = delivery::testing::Create(TiktokType(), {Scalar("pixel_code", "C")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("access_token"), std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
