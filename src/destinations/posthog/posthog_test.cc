// Golden tests of the posthog encoder (one file per Segment call, shapes per PostHog's batch
// capture docs), its uuid derivation, batching within limits and its classification.
#include "destinations/posthog/posthog.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using delivery::testing::Event;
using delivery::testing::Scalar;
using K = delivery::Outcome::Kind;

std::unique_ptr<delivery::Destination> Make() {
  return delivery::testing::MustCreate(
      PosthogType(), {Scalar("api_key", "phc_key"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

constexpr const char* kContext =
    R"("context":{"ip":"1.2.3.4","page":{"url":"https://x.example/pricing"}},)"
    R"("timestamp":"2024-01-02T03:04:05.678Z")";

TEST(Posthog, OneGoldenPerCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1",)"
                R"("properties":{"revenue":9.5},)" +
                    std::string(kContext) + "}"},
      {"page",
       R"({"type":"page","name":"Pricing","anonymousId":"a2",)" + std::string(kContext) + "}"},
      {"screen", R"({"type":"screen","name":"Home","userId":"u1","properties":{"tab":1}})"},
      {"identify", R"({"type":"identify","userId":"u1","anonymousId":"a1",)"
                   R"("traits":{"email":"a@example.com","plan":"pro"}})"},
      {"group", R"({"type":"group","userId":"u1","groupId":"acme","traits":{"name":"Acme"}})"},
      {"alias", R"({"type":"alias","userId":"u1","previousId":"a1"})"},
  };
  auto d = Make();
  for (const auto& [name, payload] : calls) {
    std::vector<delivery::RoutedEvent> events = {
        Event(0, payload, "0b4c5e7a-0d3e-4d7b-9c55-1a2b3c4d5e6f")};
    auto b = d->Encode(events);
    ASSERT_EQ(b.requests.size(), 1u) << name;
    EXPECT_TRUE(b.unmappable.empty()) << name;
    delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                    std::string(SY_TESTDATA) + "/" + name + ".golden");
  }
}

TEST(Posthog, UuidIsTheMessageIdOrAStableHashOfIt) {
  EXPECT_EQ(PosthogUuid("0B4C5E7A-0D3E-4D7B-9C55-1A2B3C4D5E6F"),
            "0b4c5e7a-0d3e-4d7b-9c55-1a2b3c4d5e6f");
  const std::string u = PosthogUuid("ajs-not-a-uuid");
  EXPECT_EQ(u, PosthogUuid("ajs-not-a-uuid"));
  EXPECT_NE(u, PosthogUuid("ajs-not-a-uuid2"));
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '8');                                          // version 8
  EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);  // RFC 9562 variant
}

TEST(Posthog, EventsWithoutAnIdAreUnmappableAndTheRestGoInOneRequest) {
  std::vector<delivery::RoutedEvent> events;
  for (int i = 0; i < 5; ++i)
    events.push_back(Event(i, R"({"type":"track","event":"E","userId":"u"})"));
  events.push_back(Event(5, R"({"type":"track","event":"E"})"));
  events.push_back(Event(6, R"({"type":"alias","userId":"u"})"));
  auto b = Make()->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{0, 1, 2, 3, 4}));
  auto body = json::parse(b.requests[0].body).as_object();
  EXPECT_EQ(body.at("api_key"), "phc_key");
  EXPECT_EQ(body.at("batch").as_array().size(), 5u);
  ASSERT_EQ(b.unmappable.size(), 2u);
  EXPECT_EQ(b.unmappable[0].second, "posthog needs a userId or anonymousId");
  EXPECT_GE(Make()->limits().max_events_per_request, 1u);
  EXPECT_LE(Make()->limits().max_bytes_per_request, 20u << 20);  // PostHog's 20 MB cap
}

TEST(Posthog, ClassifiesEveryDocumentedAnswer) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0, 1};
  delivery::HttpResponse res;
  res.status = 200;
  res.body = R"({"status":1})";
  EXPECT_EQ(d->Classify(req, res)[1].kind, K::kDelivered);
  res.status = 400;
  res.body = R"({"type":"validation_error","code":"invalid_payload",)"
             R"("detail":"Malformed request data","attr":null})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, K::kRejected);
  EXPECT_EQ(out[0].reason, "posthog: invalid_payload: Malformed request data");
  res.status = 401;
  res.body = R"({"type":"authentication_error","code":"invalid_api_key",)"
             R"("detail":"Project API key invalid. You can find your project API key in PostHog )"
             R"(project settings.","attr":null})";
  out = d->Classify(req, res);
  EXPECT_EQ(out[0].kind, K::kRetry);
  EXPECT_TRUE(out[0].auth_failure);
  res.status = 429;
  res.body = "";
  res.headers = {{"Retry-After", "7"}};
  out = d->Classify(req, res);
  EXPECT_EQ(out[0].kind, K::kRetry);
  EXPECT_EQ(out[0].retry_after_ms, 7000);
  EXPECT_FALSE(out[0].auth_failure);
  res.status = 503;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
