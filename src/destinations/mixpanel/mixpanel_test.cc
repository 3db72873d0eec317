// Golden tests of the mixpanel encoder against the payloads in Mixpanel's public API docs
// (/import event shape, /engage $set), and its per-event resolution of strict-mode partial
// failures (failed_records).
#include "destinations/mixpanel/mixpanel.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using K = delivery::Outcome::Kind;

using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make(bool with_token) {
  std::vector<config::RawSetting> raw = {Scalar("api_secret", "sekrit"),
                                         Scalar("endpoint", "http://127.0.0.1:9/")};
  if (with_token) raw.push_back(Scalar("project_token", "tok123"));
  return delivery::testing::MustCreate(MixpanelType(), raw);
}

delivery::RoutedEvent Ev(uint64_t offset, std::string payload) {
  return {Offset(offset), "web", "mid-" + std::to_string(offset), TimestampMs(1'700'000'000'000),
          std::move(payload)};
}

TEST(Mixpanel, TrackPageAndIdentifyGolden) {
  std::vector<delivery::RoutedEvent> events = {
      Ev(0,
         R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1",)"
         R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"revenue":9.5},)"
         R"("context":{"ip":"1.2.3.4","page":{"url":"https://x.example/p","referrer":"https://r.example"},)"
         R"("os":{"name":"iOS"}}})"),
      Ev(1, R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com"}})"),
      Ev(2,
         R"({"type":"page","name":"Pricing","anonymousId":"a2","timestamp":"2024-01-02T03:04:05Z"})"),
      Ev(3, R"({"type":"alias","userId":"u1","previousId":"a1"})"),
  };
  auto b = Make(true)->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  const auto& imp = b.requests[0];
  EXPECT_EQ(imp.url, "http://127.0.0.1:9/import?strict=1");
  EXPECT_EQ(imp.headers.back(), (std::pair<std::string, std::string>{
                                    "Authorization", "Basic c2Vrcml0Og=="}));  // "sekrit:"
  EXPECT_EQ(imp.events, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(json::parse(imp.body), json::parse(R"([
    {"event":"Order Completed","properties":{"revenue":9.5,"time":1704164645678,
      "distinct_id":"u1","$insert_id":"mid-0","$device_id":"a1","$user_id":"u1","ip":"1.2.3.4",
      "$current_url":"https://x.example/p","$referrer":"https://r.example","$os":"iOS",
      "mp_lib":"switchyard"}},
    {"event":"Viewed Pricing Page","properties":{"time":1704164645000,"distinct_id":"a2",
      "$insert_id":"mid-2","$device_id":"a2","mp_lib":"switchyard"}}])"));
  const auto& eng = b.requests[1];
  EXPECT_EQ(eng.url, "http://127.0.0.1:9/engage#profile-set");
  EXPECT_EQ(eng.events, (std::vector<size_t>{1}));
  EXPECT_EQ(json::parse(eng.body), json::parse(R"([{"$token":"tok123","$distinct_id":"u1",
    "$set":{"email":"a@example.com"}}])"));
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 3u);
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/import_and_engage.golden");
}

TEST(Mixpanel, IdentifyWithoutProjectTokenIsUnmappable) {
  std::vector<delivery::RoutedEvent> events = {Ev(0, R"({"type":"identify","userId":"u1"})")};
  auto b = Make(false)->Encode(events);
  EXPECT_TRUE(b.requests.empty());
  ASSERT_EQ(b.unmappable.size(), 1u);
}

TEST(Mixpanel, StrictModePartialFailureRejectsOnlyTheNamedRecords) {
  auto d = Make(false);
  delivery::HttpRequest req;
  req.events = {4, 7, 9};
  delivery::HttpResponse res;
  res.status = 400;
  res.body =
      R"({"code":400,"error":"some data points in the request failed validation",)"
      R"("failed_records":[{"index":1,"$insert_id":"mid-7","field":"properties.time",)"
      R"("message":"'properties.time' is invalid"}],"num_records_imported":2,"status":"Bad Request"})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, K::kDelivered);
  EXPECT_EQ(out[1].kind, K::kRejected);
  EXPECT_EQ(out[1].reason, "mixpanel rejected properties.time: 'properties.time' is invalid");
  EXPECT_EQ(out[2].kind, K::kDelivered);
  res.body = R"({"error":"bad auth"})";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRejected);
  res.status = 429;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
