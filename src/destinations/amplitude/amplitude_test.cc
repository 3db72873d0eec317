// Golden test of the amplitude encoder against the HTTP V2 API's documented payload, and its
// per-event resolution of a 400 naming invalid and missing fields.
#include "destinations/amplitude/amplitude.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using K = delivery::Outcome::Kind;

using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make() {
  return delivery::testing::MustCreate(
      AmplitudeType(), {Scalar("api_key", "KEY"), Scalar("endpoint", "http://127.0.0.1:9"),
                        Scalar("min_id_length", "1")});
}

TEST(Amplitude, HttpV2PayloadGolden) {
  std::vector<delivery::RoutedEvent> events = {
      {Offset(0), "web", "mid-0", TimestampMs(1),
       R"({"type":"track","event":"Song Played","userId":"u1","anonymousId":"a1",)"
       R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"genre":"jazz"},)"
       R"("context":{"ip":"1.2.3.4","locale":"en-US","os":{"name":"iOS"},"device":{"model":"iPhone9,1"},)"
       R"("app":{"version":"2.1"}}})"},
      {Offset(1), "web", "mid-1", TimestampMs(1'700'000'000'000),
       R"({"type":"identify","userId":"u1","traits":{"plan":"pro"}})"},
      {Offset(2), "web", "mid-2", TimestampMs(1), R"({"type":"group","groupId":"g"})"},
  };
  auto b = Make()->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].url, "http://127.0.0.1:9/2/httpapi");
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(json::parse(b.requests[0].body), json::parse(R"({"api_key":"KEY","events":[
    {"event_type":"Song Played","user_id":"u1","device_id":"a1","time":1704164645678,
     "insert_id":"mid-0","event_properties":{"genre":"jazz"},"ip":"1.2.3.4","os_name":"iOS",
     "device_model":"iPhone9,1","language":"en-US","app_version":"2.1","library":"switchyard"},
    {"event_type":"$identify","user_properties":{"$set":{"plan":"pro"}},"user_id":"u1",
     "time":1700000000000,"insert_id":"mid-1","library":"switchyard"}],
    "options":{"min_id_length":1}})"));
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 2u);
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/httpapi.golden");
}

TEST(Amplitude, SettingsAreChecked) {
  EXPECT_FALSE(delivery::testing::Create(AmplitudeType(), {}).ok());
  auto neg = delivery::testing::Create(AmplitudeType(),
                                       {Scalar("api_key", "K"), Scalar("min_id_length", "-1", 5)});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("f.yaml:5: settings.min_id_length: must be at least 0"),
            std::string::npos)
      << neg.status().message();
}

TEST(Amplitude, InvalidFieldsAreRejectedPerEventAndTheRestRetried) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0, 1, 2};
  delivery::HttpResponse res;
  res.status = 400;
  res.body =
      R"({"code":400,"error":"Request missing required field",)"
      R"("events_with_invalid_fields":{"time":[2]},"events_with_missing_fields":{"event_type":[0]}})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, K::kRejected);
  EXPECT_EQ(out[0].reason, "amplitude: missing event_type");
  EXPECT_EQ(out[1].kind, K::kRetry);
  EXPECT_EQ(out[2].kind, K::kRejected);
  EXPECT_EQ(out[2].reason, "amplitude: invalid time");
  res.body = R"({"code":400,"error":"Invalid API key"})";
  EXPECT_EQ(d->Classify(req, res)[1].kind, K::kRejected);
}

}  // namespace
}  // namespace sy::destinations
