// Golden tests of the GA4 Measurement Protocol encoder: page_view, the e-commerce mapping,
// snake_cased names, grouping per client, the 72 h timestamp rule.
#include "destinations/google_analytics_4/google_analytics_4.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

using delivery::testing::Scalar;

std::unique_ptr<delivery::Destination> Make() {
  return delivery::testing::MustCreate(
      GoogleAnalytics4Type(),
      {Scalar("measurement_id", "G-TEST123"), Scalar("api_secret", "s3c/ret"),
       Scalar("endpoint", "http://127.0.0.1:9")});
}

constexpr int64_t kReceived = 1704164645678;  // 2024-01-02T03:04:05.678Z

delivery::RoutedEvent Ev(uint64_t o, std::string payload) {
  return {Offset(o), "web", "m" + std::to_string(o), TimestampMs(kReceived), std::move(payload)};
}

TEST(Ga4, NamesAreSnakeCasedAndSafe) {
  EXPECT_EQ(Ga4Name("Signed Up"), "signed_up");
  EXPECT_EQ(Ga4Name("3D view!"), "x3d_view");
  EXPECT_EQ(Ga4Name("google_thing"), "x_google_thing");
  EXPECT_EQ(Ga4Name("!!!"), "");
  EXPECT_EQ(Ga4Name(std::string(50, 'a')).size(), 40u);
}

TEST(Ga4, MeasurementProtocolPayloadGolden) {
  std::vector<delivery::RoutedEvent> events = {
      Ev(0,
         R"({"type":"page","anonymousId":"c1","userId":"u1","timestamp":"2024-01-02T03:04:05.000Z",)"
         R"("properties":{"title":"Pricing","url":"https://x.example/pricing"},)"
         R"("context":{"page":{"referrer":"https://google.com"}}})"),
      Ev(1,
         R"({"type":"track","event":"Order Completed","anonymousId":"c1","userId":"u1",)"
         R"("timestamp":"2023-12-01T00:00:00Z","properties":{"order_id":"o-9","revenue":25.5,)"
         R"("currency":"EUR","products":[{"product_id":"p1","name":"Mug","price":12.75,"quantity":2}]}})"),
      Ev(2,
         R"({"type":"track","event":"Signed Up","anonymousId":"c2","properties":{"Plan Type":"pro","n":3}})"),
      Ev(3, R"({"type":"identify","userId":"u1"})"),
  };
  auto b = Make()->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  EXPECT_EQ(b.requests[0].url,
            "http://127.0.0.1:9/mp/collect?measurement_id=G-TEST123&api_secret=s3c%2Fret");
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(json::parse(b.requests[0].body), json::parse(R"({"client_id":"c1","user_id":"u1",
    "events":[
      {"name":"page_view","params":{"page_location":"https://x.example/pricing",
        "page_title":"Pricing","page_referrer":"https://google.com","title":"Pricing",
        "url":"https://x.example/pricing"},"timestamp_micros":1704164645000000},
      {"name":"purchase","params":{"transaction_id":"o-9","value":25.5,"currency":"EUR",
        "items":[{"item_id":"p1","item_name":"Mug","price":12.75,"quantity":2}],
        "order_id":"o-9","revenue":25.5}}]})"));
  EXPECT_EQ(json::parse(b.requests[1].body), json::parse(R"({"client_id":"c2","events":[
      {"name":"signed_up","params":{"plan_type":"pro","n":3}}]})"));
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 3u);
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/collect.golden");
}

}  // namespace
}  // namespace sy::destinations
