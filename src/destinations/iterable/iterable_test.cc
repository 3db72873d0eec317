// Golden tests of the iterable encoder (trackBulk and users/bulkUpdate, shapes per Iterable's
// API docs), skipped calls, and classification including bulk partial failures.
#include "destinations/iterable/iterable.h"

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
      IterableType(), {Scalar("api_key", "itbl-key"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

TEST(Iterable, OneGoldenPerMappedCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Signed Up","userId":"u1",)"
                R"("context":{"traits":{"email":"a@example.com"}},)"
                R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"plan":"pro"}})"},
      {"identify", R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com",)"
                   R"("firstName":"Ada","address":{"city":"Paris"}}})"},
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

TEST(Iterable, SkipsWhatIterableHasNoConceptFor) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"page","userId":"u1"})"),
      Event(1, R"({"type":"screen","userId":"u1"})"),
      Event(2, R"({"type":"group","userId":"u1","groupId":"g"})"),
      Event(3, R"({"type":"alias","userId":"u1","previousId":"a"})"),
      Event(4, R"({"type":"track","anonymousId":"a1","event":"E"})"),
      Event(5, R"({"type":"track","anonymousId":"a1","event":"E",)"
               R"("properties":{"email":"x@example.com"}})"),
  };
  auto b = Make()->Encode(events);
  EXPECT_EQ(b.skipped.size(), 5u);
  EXPECT_TRUE(b.unmappable.empty());
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{5}));
  EXPECT_EQ(json::parse(b.requests[0].body).at("events").at(0).at("email"), "x@example.com");
}

TEST(Iterable, BulkPartialFailuresRejectExactlyTheNamedEvents) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"track","event":"A","userId":"u,1"})"),
      Event(1, R"({"type":"track","event":"A","properties":{"email":"bad@@example"}})"),
      Event(2, R"({"type":"track","event":"Secret|Event","userId":"u2"})"),
      Event(3, R"({"type":"track","event":"A","userId":"u3"})"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  delivery::HttpResponse res;
  res.status = 200;
  res.body = R"({"successCount":1,"failCount":3,"invalidEmails":["bad@@example"],)"
             R"("invalidUserIds":[],"disallowedEventNames":["Secret|Event"],)"
             R"("filteredOutFields":[],"createdFields":[],"failedUpdates":{)"
             R"("invalidEmails":["bad@@example"],"invalidUserIds":[],"notFoundEmails":[],)"
             R"("notFoundUserIds":[],"forgottenEmails":[],"forgottenUserIds":["u,1"],)"
             R"("conflictEmails":[],"conflictUserIds":[]}})";
  auto out = d->Classify(b.requests[0], res);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].reason, "iterable rejected: forgottenUserIds u,1");
  EXPECT_EQ(out[1].reason, "iterable rejected: invalidEmails bad@@example");
  EXPECT_EQ(out[2].reason, "iterable rejected: disallowedEventNames Secret|Event");
  EXPECT_EQ(out[3].kind, K::kDelivered);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(out[i].kind, K::kRejected);
}

TEST(Iterable, ClassifiesEveryDocumentedAnswer) {
  auto d = Make();
  delivery::HttpRequest req;
  req.url = "http://127.0.0.1:9/api/events/trackBulk";
  req.events = {0, 1};
  delivery::HttpResponse res;
  res.status = 400;
  res.body = R"({"msg":"Invalid JSON body","code":"BadJsonBody","params":null})";
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRejected);
  EXPECT_EQ(d->Classify(req, res)[0].reason, "iterable: BadJsonBody: Invalid JSON body");
  res.status = 401;
  res.body = R"({"msg":"Invalid API key","code":"BadApiKey","params":null})";
  EXPECT_TRUE(d->Classify(req, res)[1].auth_failure);
  res.status = 429;
  res.body = R"({"msg":"Rate limit exceeded","code":"RateLimitExceeded","params":null})";
  res.headers = {{"Retry-After", "2"}};
  auto o = d->Classify(req, res)[0];
  EXPECT_EQ(o.kind, K::kRetry);
  EXPECT_EQ(o.retry_after_ms, 2000);
  res.status = 500;
  EXPECT_EQ(d->Classify(req, res)[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
