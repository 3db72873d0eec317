// Golden tests of the braze encoder (one file per mapped call, shapes per Braze's /users/track
// docs), the 75-per-array split, skipped calls, and classification of every documented answer.
#include "destinations/braze/braze.h"

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
      BrazeType(), {Scalar("api_key", "rest-key"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Braze, OneGoldenPerMappedCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"identify",
       R"({"type":"identify","userId":"u1","timestamp":"2024-01-02T03:04:05.678Z","traits":{)"
       R"("firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","phone":"+441234",)"
       R"("gender":"female","birthday":"1815-12-10T00:00:00Z","avatar":"https://x.example/a.png",)"
       R"("address":{"city":"London","country":"GB"},"plan":"pro"}})"},
      {"identify_anonymous",
       R"({"type":"identify","anonymousId":"a1","traits":{"email":"anon@example.com"}})"},
      {"track", R"({"type":"track","event":"Signed Up","userId":"u1",)"
                R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"plan":"pro"}})"},
      {"order_completed",
       R"({"type":"track","event":"Order Completed","userId":"u1",)"
       R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o1","currency":"EUR",)"
       R"("products":[{"product_id":"p1","price":9.5,"quantity":2,"name":"Pen"},)"
       R"({"sku":"s2","price":3}]}})"},
  };
  auto d = Make();
  for (const auto& [name, payload] : calls) {
    std::vector<delivery::RoutedEvent> events = {Event(0, payload)};
    auto b = d->Encode(events);
    ASSERT_EQ(b.requests.size(), 1u) << name;
    EXPECT_TRUE(b.unmappable.empty()) << name;
    delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                    std::string(SY_TESTDATA) + "/" + name + ".golden");
  }
}

TEST(Braze, PageScreenGroupAndAliasAreSkippedNotErrors) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"page","userId":"u1","name":"Home"})"),
      Event(1, R"({"type":"screen","userId":"u1","name":"Home"})"),
      Event(2, R"({"type":"group","userId":"u1","groupId":"g"})"),
      Event(3, R"({"type":"alias","userId":"u1","previousId":"a"})"),
      Event(4, R"({"type":"track","event":"E"})"),  // no user at all: unmappable
  };
  auto b = Make()->Encode(events);
  EXPECT_TRUE(b.requests.empty());
  ASSERT_EQ(b.skipped.size(), 4u);
  EXPECT_EQ(b.skipped[0].second, "braze /users/track has no page");
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 4u);
}

TEST(Braze, SplitsRequestsAtSeventyFivePerArray) {
  // 75 events: one request. Then orders of 30 products each: 75 purchases fit two orders (60),
  // the third starts a new request. An order of 76 products fits none: unmappable.
  std::vector<delivery::RoutedEvent> tracks;
  for (int i = 0; i < 75; ++i)
    tracks.push_back(Event(i, R"({"type":"track","event":"E","userId":"u"})"));
  auto b = Make()->Encode(tracks);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(json::parse(b.requests[0].body).at("events").as_array().size(), 75u);

  auto order = [](int products) {
    std::string p;
    for (int i = 0; i < products; ++i)
      p +=
          std::string(i ? "," : "") + R"({"product_id":"p)" + std::to_string(i) + R"(","price":1})";
    return R"({"type":"track","event":"Order Completed","userId":"u","properties":{"products":[)" +
           p + "]}}";
  };
  std::vector<delivery::RoutedEvent> orders = {Event(0, order(30)), Event(1, order(30)),
                                               Event(2, order(30)), Event(3, order(76)),
                                               Event(4, R"({"type":"identify","userId":"u"})")};
  b = Make()->Encode(orders);
  ASSERT_EQ(b.requests.size(), 2u);
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(b.requests[1].events, (std::vector<size_t>{2, 4}));
  for (const auto& r : b.requests) {
    auto body = json::parse(r.body).as_object();
    for (const char* a : {"attributes", "events", "purchases"})
      if (body.contains(a)) {
        EXPECT_LE(body.at(a).as_array().size(), 75u);
      }
  }
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 3u);
}

TEST(Braze, NonFatalErrorsRejectExactlyTheNamedObjectsEvents) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"identify","userId":"u1"})"),
      Event(1, R"({"type":"track","event":"A","userId":"u1"})"),
      Event(2, R"({"type":"track","event":"Order Completed","userId":"u1",)"
               R"("properties":{"products":[{"product_id":"p1"},{"product_id":"p2"}]}})"),
      Event(3, R"({"type":"track","event":"B","userId":"u1"})"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  const auto& req = b.requests[0];
  delivery::HttpResponse res;
  res.status = 201;
  res.body = R"({"message":"success","attributes_processed":1,"events_processed":1,)"
             R"("purchases_processed":1,"errors":[{"type":"'name' is required",)"
             R"("input_array":"events","index":1},{"type":"'price' must be a number",)"
             R"("input_array":"purchases","index":1}]})";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].kind, K::kDelivered);
  EXPECT_EQ(out[1].kind, K::kDelivered);
  EXPECT_EQ(out[2].kind, K::kRejected);
  EXPECT_EQ(out[2].reason, "braze rejected purchases[1]: 'price' must be a number");
  EXPECT_EQ(out[3].kind, K::kRejected);
  EXPECT_EQ(out[3].reason, "braze rejected events[1]: 'name' is required");
}

TEST(Braze, ClassifiesFatalErrorsAndHonoursTheRateLimitReset) {
  auto d = Make();
  delivery::HttpRequest req;
  req.url = "http://127.0.0.1:9/users/track#e=0,1";
  req.events = {0, 1};
  delivery::HttpResponse res;
  res.status = 400;
  res.body = R"({"message":"Bad Request: invalid JSON"})";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRejected);
  EXPECT_EQ(d->Classify(req, res)[0].reason, "braze: Bad Request: invalid JSON");
  for (int status : {401, 403}) {
    res.status = status;
    res.body = R"({"message":"Invalid API Key"})";
    auto o = d->Classify(req, res)[1];
    EXPECT_EQ(o.kind, K::kRetry);
    EXPECT_TRUE(o.auth_failure);
  }
  res.status = 429;
  res.body = R"({"message":"rate limit exceeded"})";
  res.received_unix_ms = 1'700'000'000'250;
  res.headers = {{"X-RateLimit-Reset", "1700000012"}};
  auto o = d->Classify(req, res)[0];
  EXPECT_EQ(o.kind, K::kRetry);
  EXPECT_EQ(o.retry_after_ms, 11'750);
  EXPECT_FALSE(o.auth_failure);
  res.headers = {{"Retry-After", "3"}};
  EXPECT_EQ(d->Classify(req, res)[0].retry_after_ms, 3000);
  res.status = 500;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
  res.status = 404;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRejected);
}

}  // namespace
}  // namespace sy::destinations
