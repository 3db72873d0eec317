// Golden tests of the mailchimp encoder against the Marketing API's member upsert (PUT by the MD5
// of the lowercased email) and member events, the data centre taken from the key, and its
// classification of problem+json errors.
#include "destinations/mailchimp/mailchimp.h"

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
      MailchimpType(), {Scalar("api_key", "0123abcd-us6"), Scalar("list_id", "a1b2c3"),
                        Scalar("endpoint", "http://127.0.0.1:9/")});
}

constexpr char kJaneMd5[] = "9e26471d35a78862c17e467d87cddedf";  // md5("jane@example.com")

TEST(Mailchimp, IdentifyTrackGoldenAndSkips) {
  std::vector<delivery::RoutedEvent> events = {
      Event(0,
            R"({"type":"identify","userId":"u1","traits":{"email":" Jane@Example.com",)"
            R"("firstName":"Jane","lastName":"Doe","plan":"pro"}})",
            "mid-0"),
      Event(
          1,
          R"({"type":"track","event":"Order Completed","userId":"u1",)"
          R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"order_id":"o-1","revenue":25.5,)"
          R"("paid":true,"items":[1]},"context":{"traits":{"email":"jane@example.com"}}})",
          "mid-1"),
      Event(2, R"({"type":"page","name":"Home","userId":"u1"})", "mid-2"),
      Event(3, R"({"type":"track","event":"Signed Up","userId":"u9"})", "mid-3"),
      Event(
          4,
          R"({"type":"track","event":"Added an item to the shopping cart","properties":{"email":"j@x.example"}})",
          "mid-4"),
  };
  auto d = Make();
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  const auto& put = b.requests[0];
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.url, std::string("http://127.0.0.1:9/3.0/lists/a1b2c3/members/") + kJaneMd5);
  EXPECT_EQ(put.headers[1], (std::pair<std::string, std::string>{
                                "Authorization", "Basic c3dpdGNoeWFyZDowMTIzYWJjZC11czY="}));
  EXPECT_EQ(json::parse(put.body), json::parse(R"({"email_address":"jane@example.com",
    "status_if_new":"pending","merge_fields":{"FNAME":"Jane","LNAME":"Doe"}})"));
  const auto& ev = b.requests[1];
  EXPECT_EQ(ev.method, "POST");
  EXPECT_EQ(ev.url,
            std::string("http://127.0.0.1:9/3.0/lists/a1b2c3/members/") + kJaneMd5 + "/events");
  EXPECT_EQ(json::parse(ev.body), json::parse(R"({"name":"Order_Completed",
    "properties":{"order_id":"o-1","revenue":"25.5","paid":"true"},
    "occurred_at":"2024-01-02T03:04:05.678Z","is_syncing":false})"));
  ASSERT_EQ(b.skipped.size(), 1u);
  EXPECT_EQ(b.skipped[0].first, 2u);  // page
  ASSERT_EQ(b.unmappable.size(), 2u);
  EXPECT_EQ(b.unmappable[0].first, 3u);  // no email
  EXPECT_EQ(b.unmappable[1].first, 4u);  // name longer than 30
  const char* golden[] = {"identify", "track", "page_skipped", "track_without_email",
                          "track_name_too_long"};
  for (size_t i = 0; i < events.size(); ++i)
    delivery::testing::ExpectGolden(
        delivery::testing::RenderRequests(d->Encode(std::span(&events[i], 1))),
        std::string(SY_TESTDATA) + "/" + golden[i] + ".golden");
}

TEST(Mailchimp, TheKeyNamesTheDataCentre) {
  auto d = delivery::testing::MustCreate(
      MailchimpType(), {Scalar("api_key", "0123abcd-us6"), Scalar("list_id", "L1")});
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"identify","traits":{"email":"jane@example.com"}})")};
  EXPECT_EQ(d->Encode(events).requests.at(0).url,
            std::string("https://us6.api.mailchimp.com/3.0/lists/L1/members/") + kJaneMd5);
  auto bad = delivery::testing::Create(MailchimpType(),
                                       {Scalar("api_key", "0123abcd"), Scalar("list_id", "L1")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("api_key: must end with its data centre"),
            std::string::npos);
  bad = delivery::testing::Create(MailchimpType(),
                                  {Scalar("api_key", "k-us6"), Scalar("list_id", "../x")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("list_id"), std::string::npos);
}

TEST(Mailchimp, OneMemberPerRequest) {
  EXPECT_EQ(Make()->limits().max_events_per_request, 1u);
}

delivery::HttpResponse Problem(int status, std::string title, std::string detail) {
  delivery::HttpResponse res;
  res.status = status;
  res.body = R"({"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":")" +
             title + R"(","status":)" + std::to_string(status) + R"(,"detail":")" + detail +
             R"(","instance":"995c5cb0-3280-4a6e-808b-3b096d0bb219"})";
  return res;
}

TEST(Mailchimp, ClassifiesProblemDocuments) {
  auto d = Make();
  delivery::HttpRequest req;
  req.events = {0};
  delivery::HttpResponse ok;
  ok.status = 204;
  EXPECT_EQ(d->Classify(req, ok)[0].kind, K::kDelivered);
  auto bad = d->Classify(
      req, Problem(400, "Member In Compliance State", "The contact is in a compliance state."))[0];
  EXPECT_EQ(bad.kind, K::kRejected);
  EXPECT_EQ(bad.reason,
            "mailchimp: Member In Compliance State: The contact is in a compliance state.");
  EXPECT_EQ(d->Classify(req, Problem(404, "Resource Not Found", "x"))[0].kind, K::kRejected);
  auto auth = d->Classify(req, Problem(401, "API Key Invalid", "Your API key may be invalid."))[0];
  EXPECT_TRUE(auth.auth_failure);
  EXPECT_EQ(auth.reason, "mailchimp: API Key Invalid: Your API key may be invalid.");
  EXPECT_TRUE(d->Classify(req, Problem(403, "Forbidden", "API key disabled"))[0].auth_failure);
  auto limited = Problem(429, "Too Many Requests", "You have exceeded the limit");
  limited.headers = {{"Retry-After", "1"}};
  auto t = d->Classify(req, limited)[0];
  EXPECT_EQ(t.kind, K::kRetry);
  EXPECT_EQ(t.retry_after_ms, 1000);
  EXPECT_EQ(d->Classify(req, Problem(500, "Internal Server Error", ""))[0].kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
