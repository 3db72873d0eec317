// Golden tests of the klaviyo encoder against the JSON:API payloads of /api/events and
// /api/profile-import (revision header, Klaviyo-API-Key), and its classification of JSON:API
// `errors[]`.
#include "destinations/klaviyo/klaviyo.h"

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
      KlaviyoType(), {Scalar("api_key", "pk_test"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Klaviyo, TrackIdentifyGoldenAndSkips) {
  std::vector<delivery::RoutedEvent> events = {
      Event(
          0,
          R"({"type":"track","event":"Order Completed","userId":"u1",)"
          R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1","revenue":25.5},)"
          R"("context":{"traits":{"email":"Jane@Example.com","phone":"+1 (555) 123-4567"}}})",
          "mid-0"),
      Event(
          1,
          R"({"type":"identify","userId":"u1","context":{"ip":"1.2.3.4"},"traits":{)"
          R"("email":"jane@example.com","firstName":"Jane","lastName":"Doe","title":"CTO",)"
          R"("company":{"name":"Acme"},"address":{"city":"Berlin","country":"DE","postal_code":"10115"},)"
          R"("plan":"pro","logins":3}})",
          "mid-1"),
      Event(2, R"({"type":"page","name":"Home","userId":"u1"})", "mid-2"),
      Event(3, R"({"type":"track","event":"Viewed","anonymousId":"a1"})", "mid-3"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  const auto& ev = b.requests[0];
  EXPECT_EQ(ev.url, "http://127.0.0.1:9/api/events");
  EXPECT_EQ(ev.events, (std::vector<size_t>{0}));
  EXPECT_EQ(ev.headers[2], (std::pair<std::string, std::string>{"revision", "2025-10-15"}));
  EXPECT_EQ(ev.headers[3],
            (std::pair<std::string, std::string>{"Authorization", "Klaviyo-API-Key pk_test"}));
  json::value body = json::parse(ev.body);
  const auto& a = body.at("data").at("attributes");
  EXPECT_EQ(body.at("data").at("type"), "event");
  EXPECT_EQ(a.at("metric").at("data").at("attributes").at("name"), "Order Completed");
  EXPECT_EQ(a.at("unique_id"), "mid-0");
  EXPECT_EQ(a.at("value"), 25.5);
  EXPECT_EQ(a.at("time"), "2024-01-02T03:04:05.678Z");
  EXPECT_EQ(a.at("profile").at("data").at("attributes").at("phone_number"), "+15551234567");
  const auto& prof = b.requests[1];
  EXPECT_EQ(prof.url, "http://127.0.0.1:9/api/profile-import");
  json::value p = json::parse(prof.body);
  EXPECT_EQ(p.at("data").at("attributes").at("organization"), "Acme");
  EXPECT_EQ(p.at("data").at("attributes").at("properties"),
            (json::object{{"plan", "pro"}, {"logins", 3}}));
  ASSERT_EQ(b.skipped.size(), 1u);
  EXPECT_EQ(b.skipped[0].first, 2u);  // page
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 3u);  // anonymous only: no profile identifier
  const char* golden[] = {"track", "identify", "page_skipped", "track_anonymous"};
  for (size_t i = 0; i < events.size(); ++i)
    delivery::testing::ExpectGolden(
        delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
        std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(Klaviyo, OneResourcePerRequest) {
  EXPECT_EQ(Make()->limits().max_events_per_request, 1u);
}

TEST(Klaviyo, ClassifiesJsonApiErrors) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {7};
  delivery::HttpResponse res;
  res.status = 202;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kDelivered);
  res.status = 400;
  res.body = R"({"errors":[{"id":"e1","status":400,"code":"invalid","title":"Invalid input.",)"
             R"("detail":"Invalid email address","source":{"pointer":"/data/attributes/email"}}]})";
  auto bad = d->Classify(req, res)[0];
  EXPECT_EQ(bad.kind, K::kRejected);
  EXPECT_EQ(bad.reason, "klaviyo: Invalid email address (invalid at /data/attributes/email)");
  res.status = 401;
  res.body = R"({"errors":[{"status":401,"code":"not_authenticated","title":"Authentication )"
             R"(credentials were not provided.","detail":"Missing or invalid private key."}]})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 403;
  res.body = R"({"errors":[{"status":403,"code":"permission_denied","detail":"no scope"}]})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 429;
  res.body = R"({"errors":[{"status":429,"code":"throttled","detail":"Request was throttled."}]})";
  res.headers = {{"Retry-After", "12"}};
  auto t = d->Classify(req, res)[0];
  EXPECT_EQ(t.kind, K::kRetry);
  EXPECT_EQ(t.retry_after_ms, 12'000);
  EXPECT_FALSE(t.auth_failure);
  res.status = 503;
  res.body = "";
  res.headers = {};
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

TEST(Klaviyo, SettingsAreCheckedAtConfigTime) {
  auto bad = delivery::testing::Create(KlaviyoType(),
                                       {Scalar("api_key", "pk"), Scalar("revision", "latest")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("revision: must be a date"), std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
