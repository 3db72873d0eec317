// Golden tests of the customerio encoder (Track API v1 calls, shapes per Customer.io's Track API
// docs), the ULID event id, the 32 KB cap, skipped calls and classification.
#include "destinations/customerio/customerio.h"

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
  return delivery::testing::MustCreate(CustomerioType(),
                                       {Scalar("site_id", "site"), Scalar("api_key", "key"),
                                        Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Customerio, OneGoldenPerMappedCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"identify", R"({"type":"identify","userId":"u 1/x","traits":{"email":"a@example.com",)"
                   R"("createdAt":"2023-01-01T00:00:00Z","plan":"pro"}})"},
      {"track", R"({"type":"track","event":"Signed Up","userId":"u1",)"
                R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"plan":"pro"}})"},
      {"track_anonymous", R"({"type":"track","event":"Browsed","anonymousId":"a1",)"
                          R"("timestamp":"2024-01-02T03:04:05.678Z"})"},
      {"page", R"({"type":"page","userId":"u1","name":"Pricing",)"
               R"("context":{"page":{"url":"https://x.example/pricing"}},)"
               R"("timestamp":"2024-01-02T03:04:05.678Z"})"},
      {"screen", R"({"type":"screen","userId":"u1","name":"Home",)"
                 R"("timestamp":"2024-01-02T03:04:05.678Z"})"},
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

TEST(Customerio, EventIdIsAStableUlid) {
  const std::string id = CustomerioEventId(1704164645678, "m-1");
  EXPECT_EQ(id.size(), 26u);
  EXPECT_EQ(id, CustomerioEventId(1704164645678, "m-1"));
  EXPECT_NE(id, CustomerioEventId(1704164645678, "m-2"));
  EXPECT_EQ(id.substr(0, 10), "01HK421PSE");  // 1704164645678 ms, as a ULID's time part
  EXPECT_EQ(id.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), std::string::npos);
}

TEST(Customerio, SkipsGroupAliasAndAnonymousIdentifyAndCapsTheRequestAt32KB) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"group","userId":"u1","groupId":"g"})"),
      Event(1, R"({"type":"alias","userId":"u1","previousId":"a"})"),
      Event(2, R"({"type":"identify","anonymousId":"a1","traits":{"x":1}})"),
      Event(3, R"({"type":"track","userId":"u1","event":"E","properties":{"big":")" +
                   std::string(33 * 1024, 'x') + R"("}})"),
      Event(4, R"({"type":"track","userId":"u1","event":"E"})"),
  };
  auto b = Make()->Encode(events);
  EXPECT_EQ(b.skipped.size(), 3u);
  ASSERT_EQ(b.unmappable.size(), 1u);
  EXPECT_EQ(b.unmappable[0].first, 3u);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{4}));
}

TEST(Customerio, ClassifiesEveryDocumentedAnswer) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0};
  delivery::HttpResponse res;
  res.status = 200;
  res.body = "{}";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kDelivered);
  res.status = 400;
  res.body = R"({"meta":{"error":"event name is required"}})";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRejected);
  EXPECT_EQ(d->Classify(req, res)[0].reason, "customer.io: event name is required");
  res.status = 401;
  res.body = R"({"meta":{"error":"Unauthorized request"}})";
  EXPECT_TRUE(d->Classify(req, res)[0].auth_failure);
  res.status = 429;
  res.headers = {{"Retry-After", "1"}};
  EXPECT_EQ(d->Classify(req, res)[0].retry_after_ms, 1000);
  res.status = 503;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
