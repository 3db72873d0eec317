// Golden tests of the meta_conversions encoder against the Conversions API's documented payload
// (data[], hashed user_data, event_id, event_time), its checks before sending (7-day age, website
// requirements, Purchase value), the identity normalisation it shares with the other conversion
// APIs, and its classification of Graph API errors.
#include "destinations/meta_conversions/meta_conversions.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using K = delivery::Outcome::Kind;
using delivery::testing::Event;
using delivery::testing::Scalar;

constexpr char kJaneSha[] = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d";
constexpr int64_t kArrived = 1'704'164'700'000;  // 2024-01-02T03:05:00Z

std::unique_ptr<delivery::Destination> Make(std::vector<config::RawSetting> extra = {}) {
  std::vector<config::RawSetting> raw = {Scalar("pixel_id", "123456"),
                                         Scalar("access_token", "EAAtoken"),
                                         Scalar("endpoint", "http://127.0.0.1:9/")};
  for (auto& r : extra)
    raw.push_back(std::move(r));
  return delivery::testing::MustCreate(MetaConversionsType(), raw);
}

const char* kWeb =
    R"("context":{"ip":"1.2.3.4","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/c"},)"
    R"("traits":{"email":"  Jane@Example.COM ","phone":"+1 (555) 123-4567"}})";

TEST(UserIdentity, NormalisesAndHashesAsConversionApisRequire) {
  EXPECT_EQ(delivery::TrimAndLowercase("  Jane@Example.COM \n"), "jane@example.com");
  EXPECT_EQ(delivery::PhoneDigits("+1 (555) 123-4567"), "15551234567");
  EXPECT_EQ(delivery::PhoneDigits("0044 20 7946 0958"), "442079460958");
  EXPECT_EQ(delivery::Sha256Identifier("jane@example.com"), kJaneSha);
  EXPECT_EQ(delivery::Sha256Identifier(kJaneSha), kJaneSha);  // already hashed: unchanged
  EXPECT_EQ(delivery::Sha256Identifier(""), "");
  EXPECT_EQ(delivery::Md5Hex("urist.mcvankab@freddiesjokes.com"),
            "62eeb292278cc15f5817cb78f7790b08");  // Mailchimp's documented example
}

TEST(MetaConversions, TrackPurchasePageAndSkipsGolden) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0,
            std::string(
                R"({"type":"track","event":"Order Completed","userId":"u1",)"
                R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1",)"
                R"("revenue":25.5,"currency":"EUR","coupon":"X","products":[)"
                R"({"product_id":"p1","quantity":2,"price":10},{"sku":"s2","price":5.5}]},)") +
                kWeb + "}",
            "mid-0", kArrived),
      Event(1,
            std::string(R"({"type":"page","name":"Pricing","anonymousId":"a2",)"
                        R"("timestamp":"2024-01-02T03:04:05Z",)") +
                kWeb + "}",
            "mid-1", kArrived),
      Event(2,
            std::string(R"({"type":"track","event":"Demo Booked","userId":"u3",)"
                        R"("properties":{"plan":"pro","email":"x@y.example"},)") +
                kWeb + "}",
            "mid-2", kArrived),
      Event(3, R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com"}})", "mid-3",
            kArrived),
      Event(4, R"({"type":"alias","userId":"u1","previousId":"a1"})", "mid-4", kArrived),
  };
  auto b = Make()->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  const auto& r = b.requests[0];
  EXPECT_EQ(r.url, "http://127.0.0.1:9/v24.0/123456/events");
  EXPECT_EQ(r.events, (std::vector<size_t>{0, 1, 2}));
  json::value body = json::parse(r.body);
  EXPECT_EQ(body.at("access_token"), "EAAtoken");
  const json::array& data = body.at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0].at("event_name"), "Purchase");
  EXPECT_EQ(data[0].at("event_time"), 1704164645);
  EXPECT_EQ(data[0].at("event_id"), "mid-0");
  EXPECT_EQ(data[0].at("action_source"), "website");
  EXPECT_EQ(data[0].at("user_data").at("em").at(0), kJaneSha);
  EXPECT_EQ(data[0].at("user_data").at("ph").at(0),
            "d6736136ea896c1bfdc553e0e86e702c70d060d805696ca3e4e9e0961353860a");
  EXPECT_EQ(data[0].at("custom_data").at("value"), 25.5);
  EXPECT_EQ(data[0].at("custom_data").at("currency"), "EUR");
  EXPECT_EQ(data[0].at("custom_data").at("content_ids"), (json::array{"p1", "s2"}));
  EXPECT_EQ(data[1].at("event_name"), "PageView");
  EXPECT_FALSE(data[1].as_object().contains("custom_data"));
  EXPECT_EQ(data[2].at("event_name"), "Demo Booked");
  // The email property went hashed into user_data, never plain into custom_data.
  EXPECT_FALSE(data[2].at("custom_data").as_object().contains("email"));
  EXPECT_EQ(r.body.find("Jane@"), std::string::npos);
  EXPECT_TRUE(b.unmappable.empty());
  ASSERT_EQ(b.skipped.size(), 2u);  // identify and alias: no Conversions API concept
  EXPECT_EQ(b.skipped[0].first, 3u);
  EXPECT_EQ(b.skipped[1].first, 4u);
  // One golden file per mapping: each event encoded alone.
  const char* golden[] = {"track_purchase", "page", "track_custom", "identify_skipped",
                          "alias_skipped"};
  auto d = Make();
  for (size_t i = 0; i < events.size(); ++i)
    delivery::testing::ExpectGolden(
        delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
        std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(MetaConversions, EventsMetaWouldRefuseAreUnmappableBeforeSending) {
  std::vector<delivery::RoutedEvent> events = {
      // 8 days before it arrived (a replay of an old event, or a device clock far behind).
      Event(0,
            std::string(
                R"({"type":"track","event":"X","userId":"u","timestamp":"2023-12-25T03:05:00Z",)") +
                kWeb + "}",
            "m0", kArrived),
      Event(1, R"({"type":"track","event":"X","userId":"u"})", "m1", kArrived),  // no page/agent
      Event(2,
            std::string(R"({"type":"track","event":"Order Completed","userId":"u",)") + kWeb + "}",
            "m2", kArrived),  // Purchase without a value
      Event(3, "not json", "m3", kArrived),
  };
  auto b = Make()->Encode(events);
  EXPECT_TRUE(b.requests.empty());
  ASSERT_EQ(b.unmappable.size(), 4u);
  EXPECT_NE(b.unmappable[0].second.find("7 days"), std::string::npos);
  EXPECT_NE(b.unmappable[1].second.find("userAgent"), std::string::npos);
  EXPECT_NE(b.unmappable[2].second.find("Purchase needs"), std::string::npos);
  // Exactly 7 days old is still accepted; server-side sources need no page or agent.
  auto system = Make({Scalar("action_source", "system_generated")});
  events = {Event(0,
                  R"({"type":"track","event":"X","userId":"u","timestamp":"2023-12-26T03:05:00Z"})",
                  "m0", kArrived)};
  b = system->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(json::parse(b.requests[0].body).at("data").at(0).at("action_source"),
            "system_generated");
}

TEST(MetaConversions, BatchesWithinOneThousandEvents) {
  EXPECT_EQ(Make()->limits().max_events_per_request, 1000u);
}

TEST(MetaConversions, SettingsAreCheckedAtConfigTime) {
  auto bad = delivery::testing::Create(MetaConversionsType(),
                                       {Scalar("pixel_id", "12/ab"), Scalar("access_token", "t")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pixel_id: must be letters"), std::string::npos);
  bad = delivery::testing::Create(
      MetaConversionsType(),
      {Scalar("pixel_id", "1"), Scalar("access_token", "t"), Scalar("api_version", "24")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("api_version"), std::string::npos);
  bad = delivery::testing::Create(MetaConversionsType(), {Scalar("pixel_id", "1")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("access_token"), std::string::npos);
}

delivery::HttpResponse Graph(int status, int code, int subcode = 0, std::string extra = "") {
  delivery::HttpResponse res;
  res.status = status;
  res.body = R"({"error":{"message":"Invalid parameter","type":"OAuthException","code":)" +
             std::to_string(code) +
             (subcode ? ",\"error_subcode\":" + std::to_string(subcode) : "") + extra +
             R"(,"fbtrace_id":"AbC"}})";
  return res;
}

TEST(MetaConversions, ClassifiesEveryGraphApiErrorClass) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {3, 5};
  delivery::HttpResponse ok;
  ok.status = 200;
  ok.body = R"({"events_received":2,"messages":[],"fbtrace_id":"x"})";
  EXPECT_EQ(d->Classify(req, ok)[1].kind, K::kDelivered);

  auto bad =
      d->Classify(req, Graph(400, 100, 2804003, R"(,"error_user_msg":"event_time too old")"));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].kind, K::kRejected);
  EXPECT_EQ(bad[1].reason, "meta: Invalid parameter: event_time too old (code 100/2804003)");

  for (int code : {190, 102, 10, 200, 294}) {
    auto o = d->Classify(req, Graph(400, code))[0];
    EXPECT_EQ(o.kind, K::kRetry) << code;
    EXPECT_TRUE(o.auth_failure) << code;
  }
  auto unauthorised = d->Classify(req, Graph(401, 999))[0];
  EXPECT_TRUE(unauthorised.auth_failure);

  auto throttled = Graph(400, 80004);
  throttled.headers = {{"X-Business-Use-Case-Usage",
                        R"({"123":[{"type":"ads_management","call_count":100,)"
                        R"("estimated_time_to_regain_access":3}]})"}};
  auto t = d->Classify(req, throttled)[0];
  EXPECT_EQ(t.kind, K::kRetry);
  EXPECT_FALSE(t.auth_failure);
  EXPECT_EQ(t.retry_after_ms, 180'000);
  auto limited = Graph(429, 4);
  limited.headers = {{"Retry-After", "7"}};
  EXPECT_EQ(d->Classify(req, limited)[0].retry_after_ms, 7000);

  EXPECT_EQ(d->Classify(req, Graph(500, 2))[0].kind, K::kRetry);
  EXPECT_EQ(d->Classify(req, Graph(400, 1))[0].kind, K::kRetry);
  EXPECT_EQ(d->Classify(req, Graph(400, 100, 0, R"(,"is_transient":true)"))[0].kind, K::kRetry);
  delivery::HttpResponse html;
  html.status = 502;
  html.body = "<html>bad gateway</html>";
  EXPECT_EQ(d->Classify(req, html)[0].kind, K::kRetry);
  delivery::HttpResponse reset;  // no response at all
  EXPECT_EQ(d->Classify(req, reset)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
