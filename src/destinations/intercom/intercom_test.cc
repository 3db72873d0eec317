// Golden tests of the intercom encoder (events, the contact search of identify and its second
// step, companies), the metadata cap, skips, and every error class.
#include "destinations/intercom/intercom.h"

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
      IntercomType(), {Scalar("access_token", "tok"), Scalar("endpoint", "http://127.0.0.1:9/")});
}

delivery::HttpResponse Answer(int status, std::string body) {
  delivery::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(Intercom, OneGoldenPerCall) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Order Completed","userId":"u1",)"
                R"("timestamp":"2024-01-02T03:04:05Z","properties":{"revenue":9.5,"sku":"p1",)"
                R"("items":[1],"gift":true}})"},
      {"identify", R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com",)"
                   R"("firstName":"Ada","lastName":"L","createdAt":"2024-01-01T00:00:00Z",)"
                   R"("plan":"pro","address":{"city":"Paris"}}})"},
      {"group", R"({"type":"group","userId":"u1","groupId":"acme","traits":{"name":"Acme",)"
                R"("plan":"pro","employees":12,"region":"EU"}})"},
  };
  auto d = Make();
  for (const auto& [name, payload] : calls) {
    std::vector<delivery::RoutedEvent> events = {Event(0, payload, "m1")};
    auto b = d->Encode(events);
    ASSERT_EQ(b.requests.size(), 1u) << name;
    std::string got = delivery::testing::RenderRequests(b);
    if (!b.requests[0].carry.empty()) got += "carry: " + b.requests[0].carry + "\n";
    delivery::testing::ExpectGolden(got, std::string(SY_TESTDATA) + "/" + name + ".golden");
  }
}

TEST(Intercom, IdentifyUpdatesTheContactTheSearchFoundElseCreatesIt) {
  auto d = Make();
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{
      Event(0, R"({"type":"identify","userId":"u1","traits":{"plan":"pro"}})", "m1")});
  const auto& search = b.requests.at(0);
  EXPECT_EQ(search.step, "search");
  EXPECT_EQ(search.url, "http://127.0.0.1:9/contacts/search");
  auto update = d->FollowUp(
      search,
      Answer(200, R"({"type":"list","data":[{"type":"contact","id":"65a1b2"}],"total_count":1})"));
  ASSERT_TRUE(update.has_value());
  EXPECT_EQ(update->method, "PUT");
  EXPECT_EQ(update->url, "http://127.0.0.1:9/contacts/65a1b2");
  EXPECT_EQ(update->body, search.carry);
  auto create = d->FollowUp(search, Answer(200, R"({"type":"list","data":[],"total_count":0})"));
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->method, "POST");
  EXPECT_EQ(create->url, "http://127.0.0.1:9/contacts");
  EXPECT_EQ(json::parse(create->body).as_object().at("role"), "user");
  // A hostile id cannot steer the path; a failed search is classified, not followed.
  EXPECT_FALSE(d->FollowUp(search, Answer(200, R"({"data":[{"id":"../admins"}]})")).has_value());
  EXPECT_FALSE(d->FollowUp(search, Answer(429, "")).has_value());
  EXPECT_FALSE(d->FollowUp(*update, Answer(200, "{}")).has_value());
  EXPECT_EQ(d->Classify(search, Answer(200, R"({"data":[{"id":"../admins"}]})"))[0].kind,
            K::kRetry);
}

TEST(Intercom, MetadataKeepsTheFirstTenScalarProperties) {
  std::string props;
  for (int i = 0; i < 14; ++i)
    props += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":" + std::to_string(i);
  auto d = Make();
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{Event(
      0,
      R"({"type":"track","event":"E","userId":"u","properties":{"nested":{"a":1},)" + props + "}}",
      "m")});
  auto metadata = json::parse(b.requests.at(0).body).as_object().at("metadata").as_object();
  EXPECT_EQ(metadata.size(), 10u);
  EXPECT_FALSE(metadata.contains("nested"));
  EXPECT_TRUE(metadata.contains("k0"));
  EXPECT_TRUE(metadata.contains("k9"));
  EXPECT_FALSE(metadata.contains("k10"));
}

TEST(Intercom, SkipsWhatIntercomHasNoConceptFor) {
  auto d = Make();
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{
      Event(0, R"({"type":"page","userId":"u","name":"Home"})", "m0"),
      Event(1, R"({"type":"track","anonymousId":"a","event":"E"})", "m1"),
      Event(2, R"({"type":"alias","userId":"u","previousId":"a"})", "m2"),
      Event(
          3,
          R"({"type":"track","anonymousId":"a","event":"E","context":{"traits":{"email":"a@example.com"}}})",
          "m3"),
      Event(4, R"({"type":"identify","anonymousId":"a","traits":{}})", "m4"),
  });
  EXPECT_EQ(b.skipped.size(), 3u);
  ASSERT_EQ(b.requests.size(), 1u);  // the anonymous track with an email
  EXPECT_EQ(json::parse(b.requests[0].body).as_object().at("email"), "a@example.com");
  ASSERT_EQ(b.unmappable.size(), 1u);  // identify with neither userId nor email
  EXPECT_EQ(b.unmappable[0].first, 4u);
}

TEST(Intercom, ErrorsClassify) {
  auto d = Make();
  auto r = d->Encode(std::vector<delivery::RoutedEvent>{
                         Event(0, R"({"type":"track","event":"E","userId":"u"})", "m")})
               .requests.at(0);
  auto one = [&](const delivery::HttpResponse& res) { return d->Classify(r, res).at(0); };
  EXPECT_EQ(one(Answer(202, "")).kind, K::kDelivered);
  auto unauthorized = one(Answer(
      401,
      R"({"type":"error.list","request_id":"r1","errors":[{"code":"unauthorized","message":"Access Token Invalid"}]})"));
  EXPECT_TRUE(unauthorized.auth_failure);
  EXPECT_EQ(unauthorized.reason, "intercom: unauthorized: Access Token Invalid");
  auto missing = one(Answer(
      404, R"({"type":"error.list","errors":[{"code":"not_found","message":"User Not Found"}]})"));
  EXPECT_EQ(missing.kind, K::kRejected);
  EXPECT_EQ(missing.reason, "intercom: not_found: User Not Found");
  EXPECT_EQ(one(Answer(400, R"({"type":"error.list","errors":[{"code":"parameter_invalid",)"
                            R"("message":"Custom attribute 'x' does not exist"}]})"))
                .kind,
            K::kRejected);
  EXPECT_EQ(one(Answer(409, R"({"errors":[{"code":"conflict","message":"A contact matching )"
                            R"(those details already exists with id=1"}]})"))
                .kind,
            K::kRetry);
  auto limited = Answer(429, "");
  limited.received_unix_ms = 1'700'000'000'000;
  limited.headers.emplace_back("X-RateLimit-Reset", "1700000007");
  EXPECT_EQ(one(limited).retry_after_ms, 7000);
  EXPECT_EQ(one(Answer(503, "")).kind, K::kRetry);
}

}  // namespace
}  // namespace sy::destinations
