// Golden tests of the hubspot encoder against the contacts batch upsert and custom event send
// payloads, the merge of one email's identifies into one input, and its classification of
// HubSpot's errors (207 naming failed inputs by email, 401/403, 429 with its own headers).
#include "destinations/hubspot/hubspot.h"

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
      HubspotType(),
      {Scalar("access_token", "pat-na1-x"), Scalar("endpoint", "http://127.0.0.1:9/"),
       delivery::testing::Map("events", {{"Order Completed", "pe123_order_completed"}})});
}

TEST(Hubspot, IdentifyUpsertTrackSendGoldenAndSkips) {
  std::vector<delivery::RoutedEvent> events = {
      Event(
          0,
          R"({"type":"identify","userId":"u1","traits":{"email":"Jane@Example.com",)"
          R"("firstName":"Jane","company":{"name":"Acme"},"address":{"city":"Berlin"},"plan":"pro"}})",
          "mid-0"),
      Event(
          1,
          R"({"type":"track","event":"Order Completed","userId":"u1",)"
          R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1","revenue":25.5,)"
          R"("items":[1]},"context":{"traits":{"email":"jane@example.com"}}})",
          "mid-1"),
      Event(2, R"({"type":"identify","userId":"u2","traits":{"email":"bo@example.com"}})", "mid-2"),
      Event(
          3,
          R"({"type":"identify","userId":"u1","traits":{"email":"jane@example.com","lastName":"Doe"}})",
          "mid-3"),
      Event(4, R"({"type":"track","event":"Not Mapped","userId":"u1"})", "mid-4"),
      Event(5, R"({"type":"identify","userId":"u5","traits":{"name":"No Email"}})", "mid-5"),
      Event(6, R"({"type":"group","userId":"u1","groupId":"g"})", "mid-6"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  const auto& up = b.requests[0];
  EXPECT_EQ(up.url.substr(0, up.url.find('#')),
            "http://127.0.0.1:9/crm/v3/objects/contacts/batch/upsert");
  EXPECT_EQ(up.events, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(json::parse(up.body), json::parse(R"({"inputs":[
    {"idProperty":"email","id":"jane@example.com","properties":{"email":"jane@example.com",
      "firstname":"Jane","company":"Acme","city":"Berlin","lastname":"Doe"}},
    {"idProperty":"email","id":"bo@example.com","properties":{"email":"bo@example.com"}}]})"));
  const auto& send = b.requests[1];
  EXPECT_EQ(send.url, "http://127.0.0.1:9/events/v3/send");
  EXPECT_EQ(send.headers[1],
            (std::pair<std::string, std::string>{"Authorization", "Bearer pat-na1-x"}));
  EXPECT_EQ(json::parse(send.body), json::parse(R"({"eventName":"pe123_order_completed",
    "email":"jane@example.com","occurredAt":"2024-01-02T03:04:05.678Z",
    "properties":{"order_id":"o-1","revenue":"25.5"}})"));
  ASSERT_EQ(b.skipped.size(), 2u);
  EXPECT_EQ(b.skipped[0].first, 4u);  // a track `events` does not map
  EXPECT_EQ(b.skipped[1].first, 6u);  // group
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 5u);  // no email
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/batch.golden");
  const char* golden[] = {"identify",     "track",          nullptr,
                          nullptr,        "track_unmapped", "identify_without_email",
                          "group_skipped"};
  for (size_t i = 0; i < events.size(); ++i)
    if (golden[i])
      delivery::testing::ExpectGolden(
          delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
          std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(Hubspot, BatchesWithinOneHundredInputs) {
  auto d = Make();
  EXPECT_EQ(d->limits().max_events_per_request, 100u);
  std::vector<delivery::RoutedEvent> events;
  for (int i = 0; i < 100; ++i)
    events.push_back(Event(
        i, R"({"type":"identify","traits":{"email":"u)" + std::to_string(i) + R"(@x.example"}})"));
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(json::parse(b.requests[0].body).at("inputs").as_array().size(), 100u);
}

TEST(Hubspot, A207RejectsTheInputsItNamesAndDeliversTheRest) {
  auto d = Make();
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"identify","traits":{"email":"a@x.example"}})"),
      Event(1, R"({"type":"identify","traits":{"email":"bad@x.example","phone":"nope"}})"),
      Event(2, R"({"type":"identify","traits":{"email":"c@x.example"}})"),
      Event(3, R"({"type":"identify","traits":{"email":"BAD@x.example"}})"),
  };
  auto req = d->Encode(events).requests.at(0);
  req.body.clear();  // as the stream hands it over
  delivery::HttpResponse res;
  res.status = 207;
  res.body =
      R"({"status":"COMPLETE","results":[{"id":"1"},{"id":"2"}],"numErrors":1,"errors":[)"
      R"({"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid",)"
      R"("context":{"ids":["bad@x.example"]}}]})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].kind, K::kDelivered);
  EXPECT_EQ(out[1].kind, K::kRejected);
  EXPECT_EQ(out[1].reason, "hubspot: Property values were not valid (VALIDATION_ERROR)");
  EXPECT_EQ(out[2].kind, K::kDelivered);
  EXPECT_EQ(out[3].kind, K::kRejected);  // the same contact
}

TEST(Hubspot, ClassifiesEveryErrorClass) {
  auto d = Make();
  delivery::HttpRequest req;
  req.url = "http://127.0.0.1:9/events/v3/send";
  req.events = {0};
  delivery::HttpResponse res;
  res.status = 204;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kDelivered);
  res.status = 400;
  res.body = R"({"status":"error","message":"Event pe123_x does not exist","correlationId":"c",)"
             R"("category":"VALIDATION_ERROR"})";
  auto bad = d->Classify(req, res)[0];
  EXPECT_EQ(bad.kind, K::kRejected);
  EXPECT_EQ(bad.reason, "hubspot: Event pe123_x does not exist (VALIDATION_ERROR)");
  res.status = 401;
  res.body = R"({"status":"error","message":"Authentication credentials not found.",)"
             R"("category":"INVALID_AUTHENTICATION"})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 403;
  res.body = R"({"status":"error","message":"missing scopes","category":"MISSING_SCOPES"})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 429;
  res.body = R"({"status":"error","message":"You have reached your secondly limit.",)"
             R"("category":"RATE_LIMITS"})";
  res.headers = {{"X-HubSpot-RateLimit-Interval-Milliseconds", "10000"},
                 {"X-HubSpot-RateLimit-Remaining", "0"}};
  auto limited = d->Classify(req, res)[0];
  EXPECT_EQ(limited.kind, K::kRetry);
  EXPECT_EQ(limited.retry_after_ms, 10'000);
  res.headers.push_back({"Retry-After", "2"});
  EXPECT_EQ(d->Classify(req, res)[0].retry_after_ms, 2000);
  res.status = 502;
  res.body = "";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

TEST(Hubspot, SettingsAreCheckedAtConfigTime) {
  auto bad = delivery::testing::Create(
      HubspotType(), {Scalar("access_token", "t"), delivery::testing::Map("events", {{"A", ""}})});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("events.A: must name"), std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
