// Golden tests of the heap encoder (bulk track and bulk add_user_properties, shapes per Heap's
// server-side API docs), property flattening within Heap's limits, skipped calls, and
// classification.
#include "destinations/heap/heap.h"

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
      HeapType(), {Scalar("app_id", "12345"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Heap, OneGoldenPerMappedCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Order Completed","userId":"u1",)"
                R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"revenue":9.5,)"
                R"("coupon":null,"gift":true,"shipping":{"method":"ups","days":2},)"
                R"("tags":["a","b"]}})"},
      {"identify", R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com",)"
                   R"("address":{"city":"Paris"},"vip":false}})"},
  };
  auto d = Make();
  for (const auto& [name, payload] : calls) {
    std::vector<delivery::RoutedEvent> events = {Event(0, payload)};
    auto b = d->Encode(events);
    ASSERT_EQ(b.requests.size(), 1u) << name;
    delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                    std::string(SY_TESTDATA) + "/" + name + ".golden");
  }
}

TEST(Heap, SkipsWhatHeapHasNoConceptForAndRefusesWhatBreaksItsLimits) {
  const std::string long_value(1500, 'x');
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"page","userId":"u1"})"),
      Event(1, R"({"type":"screen","userId":"u1"})"),
      Event(2, R"({"type":"group","userId":"u1","groupId":"g"})"),
      Event(3, R"({"type":"alias","userId":"u1","previousId":"a"})"),
      Event(4, R"({"type":"track","anonymousId":"a1","event":"E"})"),
      Event(5, R"({"type":"track","userId":")" + std::string(256, 'u') + R"(","event":"E"})"),
      Event(6, R"({"type":"track","userId":"u1","event":")" + std::string(1025, 'e') + R"("})"),
      Event(7, R"({"type":"track","userId":"u1","event":"E","properties":{"v":")" + long_value +
                   R"("}})"),
      Event(8, R"({"type":"identify","userId":"u1"})"),
  };
  auto b = Make()->Encode(events);
  ASSERT_EQ(b.skipped.size(), 5u);
  ASSERT_EQ(b.unmappable.size(), 2u);
  EXPECT_EQ(b.unmappable[0].first, 5u);
  EXPECT_EQ(b.unmappable[1].first, 6u);
  ASSERT_EQ(b.requests.size(), 2u);
  EXPECT_EQ(b.requests[0].url, "http://127.0.0.1:9/api/track");
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{7}));
  auto body = json::parse(b.requests[0].body);
  EXPECT_EQ(body.at("events").at(0).at("properties").at("v").as_string().size(), 1024u);
  EXPECT_EQ(b.requests[1].url, "http://127.0.0.1:9/api/add_user_properties");
  EXPECT_EQ(b.requests[1].events, (std::vector<size_t>{8}));
  EXPECT_EQ(Make()->limits().max_events_per_request, 1000u);
}

TEST(Heap, ClassifiesEveryDocumentedAnswer) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0, 1, 2};
  delivery::HttpResponse res;
  res.status = 200;
  EXPECT_EQ(d->Classify(req, res)[2].kind, K::kDelivered);
  res.status = 400;
  res.body = "Invalid property value for key 'v'\n";
  auto out = d->Classify(req, res);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].kind, K::kRejected);
  EXPECT_EQ(out[1].reason, "heap: Invalid property value for key 'v'");
  res.status = 401;
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 429;
  res.headers = {{"Retry-After", "30"}};
  out = d->Classify(req, res);
  EXPECT_EQ(out[0].kind, K::kRetry);
  EXPECT_EQ(out[0].retry_after_ms, 30'000);
  res.status = 502;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
