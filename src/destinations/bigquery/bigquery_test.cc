// Golden tests of the bigquery encoder (one insertAll per Segment call, rows laid out as
// Segment's warehouses do), the service-account token step (an RS256 JWT checked with the public
// key, the exchange, the cache, the refresh after a 401), per-row insertErrors and every error
// class. A FakeClock dates the JWT, so the token request is golden too (RS256 is deterministic).
#include "destinations/bigquery/bigquery.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using delivery::testing::Event;
using delivery::testing::Scalar;
using K = delivery::Outcome::Kind;

std::string ServiceAccount() {
  return delivery::testing::ReadFile(std::string(SY_TESTDATA) + "/service_account.json");
}

std::unique_ptr<delivery::Destination> Make(const Clock* clock, std::string table = "") {
  std::vector<config::RawSetting> raw = {
      Scalar("project_id", "sy-test"), Scalar("dataset_id", "analytics"),
      Scalar("service_account_json", ServiceAccount()), Scalar("endpoint", "http://127.0.0.1:9/")};
  if (!table.empty()) raw.push_back(Scalar("table", table));
  return delivery::testing::MustCreate(BigqueryType(clock), raw);
}

delivery::HttpResponse Answer(int status, std::string body) {
  delivery::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

const char* kToken =
    R"({"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"})";

// Runs the token step of the first request Encode makes, leaving the token cached.
void PrimeToken(delivery::Destination& d) {
  auto b = d.Encode(std::vector<delivery::RoutedEvent>{
      Event(0, R"({"type":"track","event":"E","userId":"u"})", "m0")});
  ASSERT_EQ(b.requests.size(), 1u);
  ASSERT_EQ(b.requests[0].step, "token");
  auto insert = d.FollowUp(b.requests[0], Answer(200, kToken));
  ASSERT_TRUE(insert.has_value());
  EXPECT_EQ(insert->step, "insert");
}

TEST(Bigquery, OneGoldenPerCall) {
  const std::string ctx =
      R"("context":{"ip":"1.2.3.4","page":{"url":"https://x.example/p"},"library":{"name":"analytics.js"}},)"
      R"("timestamp":"2024-01-02T03:04:05.678Z","sentAt":"2024-01-02T03:04:06Z")";
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1",)"
                R"("properties":{"orderId":"o1","revenue":9.5,"shipping":{"method":"DHL"},)"
                R"("products":[{"sku":"p1"}],"gone":null},)" +
                    ctx + "}"},
      {"page", R"({"type":"page","name":"Pricing","anonymousId":"a2","properties":{"title":"P"},)" +
                   ctx + "}"},
      {"screen", R"({"type":"screen","name":"Home","userId":"u1","properties":{"tab":1}})"},
      {"identify", R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com",)"
                   R"("firstName":"Ada","address":{"city":"Paris"}}})"},
      {"group", R"({"type":"group","userId":"u1","groupId":"acme","traits":{"name":"Acme"}})"},
      {"alias", R"({"type":"alias","userId":"u1","previousId":"a1"})"},
  };
  FakeClock clock;
  auto d = Make(&clock);
  PrimeToken(*d);
  for (const auto& [name, payload] : calls) {
    std::vector<delivery::RoutedEvent> events = {Event(0, payload, "msg-1")};
    auto b = d->Encode(events);
    ASSERT_EQ(b.requests.size(), 1u) << name;
    EXPECT_EQ(b.requests[0].step, "insert") << name;
    delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                    std::string(SY_TESTDATA) + "/" + name + ".golden");
  }
}

std::string Base64UrlDecode(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4)
    s += '=';
  std::string out(s.size(), '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n) - (s.size() - s.find_last_not_of('=') - 1));
  return out;
}

TEST(Bigquery, TheTokenStepIsAnRs256JwtTheServiceAccountsPublicKeyVerifies) {
  FakeClock clock(1'700'000'000'000);
  auto d = Make(&clock);
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{
      Event(0, R"({"type":"track","event":"E","userId":"u"})", "m0")});
  ASSERT_EQ(b.requests.size(), 1u);
  const auto& t = b.requests[0];
  EXPECT_EQ(t.url, "http://127.0.0.1:9/token");  // the key file's token_uri
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/token.golden");
  const std::string prefix =
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
  ASSERT_TRUE(t.body.starts_with(prefix));
  const std::string jwt = t.body.substr(prefix.size());
  const size_t dot1 = jwt.find('.'), dot2 = jwt.rfind('.');
  json::object header = json::parse(Base64UrlDecode(jwt.substr(0, dot1))).as_object();
  json::object claims =
      json::parse(Base64UrlDecode(jwt.substr(dot1 + 1, dot2 - dot1 - 1))).as_object();
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["kid"], "test-key-1");
  EXPECT_EQ(claims["iss"], "switchyard@sy-test.iam.gserviceaccount.com");
  EXPECT_EQ(claims["aud"], "http://127.0.0.1:9/token");
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/bigquery.insertdata");
  EXPECT_EQ(claims["iat"].to_number<int64_t>(), 1'700'000'000);
  EXPECT_EQ(claims["exp"].to_number<int64_t>(), 1'700'003'600);
  // The signature, checked with the public key.
  const std::string pem = delivery::testing::ReadFile(std::string(SY_TESTDATA) + "/public_key.pem");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pub = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(pub, nullptr);
  const std::string signed_part = jwt.substr(0, dot2);
  const std::string sig = Base64UrlDecode(jwt.substr(dot2 + 1));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()),
                             signed_part.size()),
            1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pub);
  // The call waits in the token request and goes out with the token once it is there.
  auto insert = d->FollowUp(t, Answer(200, kToken));
  ASSERT_TRUE(insert.has_value());
  EXPECT_EQ(
      insert->url,
      "http://127.0.0.1:9/bigquery/v2/projects/sy-test/datasets/analytics/tables/e/insertAll");
  EXPECT_NE(insert->body.find(R"("insertId":"m0")"), std::string::npos);
  bool bearer = false;
  for (const auto& [k, v] : insert->headers)
    bearer = bearer || (k == "Authorization" && v == "Bearer ya29.test-token");
  EXPECT_TRUE(bearer);
}

TEST(Bigquery, TokenIsCachedUntilAMinuteBeforeItExpiresAndRefreshedAfterA401) {
  FakeClock clock;
  auto d = Make(&clock);
  PrimeToken(*d);
  std::vector<delivery::RoutedEvent> one = {
      Event(0, R"({"type":"track","event":"E","userId":"u"})", "m1")};
  EXPECT_EQ(d->Encode(one).requests[0].step, "insert");
  clock.Advance(std::chrono::seconds(3599 - 61));
  EXPECT_EQ(d->Encode(one).requests[0].step, "insert");
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(d->Encode(one).requests[0].step, "token");  // within a minute of expiry
  PrimeToken(*d);
  // A 401 to the call: one fresh token, the call again; a 401 to that is refused credentials.
  auto call = d->Encode(one).requests[0];
  auto again = d->FollowUp(
      call,
      Answer(
          401,
          R"({"error":{"code":401,"message":"Request had invalid authentication credentials."}})"));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->step, "token-again");
  auto insert_again = d->FollowUp(*again, Answer(200, kToken));
  ASSERT_TRUE(insert_again.has_value());
  EXPECT_EQ(insert_again->step, "insert-again");
  insert_again->events = call.events;  // as the framework carries them on
  EXPECT_EQ(insert_again->body, call.carry.substr(call.carry.find('\n') + 1));
  const auto refused = Answer(
      401, R"({"error":{"code":401,"message":"Request had invalid authentication credentials."}})");
  EXPECT_FALSE(d->FollowUp(*insert_again, refused).has_value());
  auto o = d->Classify(*insert_again, refused);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_TRUE(o[0].auth_failure);
  EXPECT_EQ(o[0].reason, "bigquery: Request had invalid authentication credentials.");
}

TEST(Bigquery, InsertErrorsMapBackToTheirRows) {
  FakeClock clock;
  auto d = Make(&clock);
  PrimeToken(*d);
  std::vector<delivery::RoutedEvent> events;
  for (int i = 0; i < 3; ++i)
    events.push_back(
        Event(i, R"({"type":"track","event":"E","userId":"u"})", "m" + std::to_string(i)));
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  auto o = d->Classify(b.requests[0], Answer(200, R"({"kind":"bigquery#tableDataInsertAllResponse",
      "insertErrors":[{"index":0,"errors":[{"reason":"invalid","location":"bogus","debugInfo":"",
      "message":"no such field: bogus."}]},{"index":1,"errors":[{"reason":"stopped","location":"",
      "debugInfo":"","message":""}]}]})"));
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0].kind, K::kRejected);
  EXPECT_EQ(o[0].reason, "bigquery: invalid: no such field: bogus.");
  EXPECT_EQ(o[1].kind, K::kRetry);
  EXPECT_EQ(o[2].kind, K::kDelivered);
}

TEST(Bigquery, ErrorsClassify) {
  FakeClock clock;
  auto d = Make(&clock);
  PrimeToken(*d);
  auto call = d->Encode(std::vector<delivery::RoutedEvent>{
                            Event(0, R"({"type":"track","event":"E","userId":"u"})", "m")})
                  .requests[0];
  auto google = [](int code, const std::string& reason, const std::string& message) {
    return Answer(code, R"({"error":{"code":)" + std::to_string(code) + R"(,"message":")" +
                            message + R"(","errors":[{"message":")" + message +
                            R"(","domain":"global","reason":")" + reason + R"("}]}})");
  };
  auto one = [&](const delivery::HttpRequest& r, const delivery::HttpResponse& res) {
    return d->Classify(r, res).at(0);
  };
  auto nf = one(call, google(404, "notFound", "Not found: Table sy-test:analytics.e"));
  EXPECT_EQ(nf.kind, K::kRejected);
  EXPECT_EQ(nf.reason, "bigquery: Not found: Table sy-test:analytics.e");
  EXPECT_EQ(one(call, google(400, "invalid", "Invalid rows")).kind, K::kRejected);
  auto limited = one(call, google(403, "rateLimitExceeded", "Exceeded rate limits"));
  EXPECT_EQ(limited.kind, K::kRetry);
  EXPECT_FALSE(limited.auth_failure);
  EXPECT_TRUE(one(call, google(403, "accessDenied", "Access Denied")).auth_failure);
  EXPECT_EQ(one(call, google(503, "backendError", "Backend Error")).kind, K::kRetry);
  auto r429 = Answer(429, "");
  r429.headers.emplace_back("Retry-After", "7");
  EXPECT_EQ(one(call, r429).retry_after_ms, 7000);
  // The token step: a refused grant is refused credentials, a 5xx a retry.
  clock.Advance(std::chrono::hours(2));
  auto token = d->Encode(std::vector<delivery::RoutedEvent>{
                             Event(0, R"({"type":"track","event":"E","userId":"u"})", "m")})
                   .requests[0];
  ASSERT_EQ(token.step, "token");
  const auto grant =
      Answer(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
  EXPECT_FALSE(d->FollowUp(token, grant).has_value());
  auto refused = one(token, grant);
  EXPECT_TRUE(refused.auth_failure);
  EXPECT_EQ(refused.reason, "bigquery: token: invalid_grant: Invalid JWT Signature.");
  EXPECT_EQ(one(token, Answer(503, "")).kind, K::kRetry);
  EXPECT_FALSE(one(token, Answer(503, "")).auth_failure);
}

TEST(Bigquery, ATablePerEventTypeOrOneTable) {
  FakeClock clock;
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"track","event":"Order Completed","userId":"u"})", "m0"),
      Event(1, R"({"type":"identify","userId":"u","traits":{"plan":"pro"}})", "m1"),
      Event(2, R"({"type":"track","event":"Order Completed","userId":"v"})", "m2"),
      Event(3, R"({"type":"track","userId":"v"})", "m3"),
  };
  auto per_type = Make(&clock);
  PrimeToken(*per_type);
  auto b = per_type->Encode(events);
  ASSERT_EQ(b.requests.size(), 2u);
  EXPECT_TRUE(b.requests[0].url.ends_with("/tables/order_completed/insertAll"));
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{0, 2}));
  EXPECT_TRUE(b.requests[1].url.ends_with("/tables/identifies/insertAll"));
  ASSERT_EQ(b.unmappable.size(), 1u);  // a track without event
  EXPECT_EQ(b.unmappable[0].first, 3u);
  auto one = Make(&clock, "events");
  PrimeToken(*one);
  auto c = one->Encode(events);
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_TRUE(c.requests[0].url.ends_with("/tables/events/insertAll"));
  EXPECT_EQ(c.requests[0].events, (std::vector<size_t>{0, 1, 2}));
  EXPECT_NE(c.requests[0].body.find(R"("type":"identify")"), std::string::npos);
  EXPECT_EQ(one->limits().max_events_per_request, 500u);
}

TEST(Bigquery, ColumnNamesAsSegmentsWarehouses) {
  EXPECT_EQ(BigqueryColumnName("orderId"), "order_id");
  EXPECT_EQ(BigqueryColumnName("Page URL"), "page_url");
  EXPECT_EQ(BigqueryColumnName("$price"), "price");
  EXPECT_EQ(BigqueryColumnName("3d"), "_3d");
  EXPECT_EQ(BigqueryColumnName("—"), "_");
  EXPECT_EQ(BigqueryColumnName(std::string(400, 'a')).size(), 300u);
}

TEST(Bigquery, SettingsAreCheckedNamingTheKey) {
  auto err = [](std::vector<config::RawSetting> raw) {
    auto made = delivery::testing::Create(BigqueryType(), std::move(raw));
    return made.ok() ? std::string() : made.status().message();
  };
  auto base = [] {
    return std::vector<config::RawSetting>{Scalar("project_id", "sy-test"),
                                           Scalar("dataset_id", "analytics")};
  };
  auto no_json = base();
  no_json.push_back(Scalar("service_account_json", "{not json"));
  EXPECT_NE(err(no_json).find("service_account_json: not a JSON object"), std::string::npos);
  auto bad_key = base();
  bad_key.push_back(Scalar("service_account_json",
                           R"({"type":"service_account","client_email":"a@b","private_key":"x"})"));
  EXPECT_NE(err(bad_key).find("service_account_json: private_key is not a PEM private key"),
            std::string::npos);
  auto bad_dataset = base();
  bad_dataset[1] = Scalar("dataset_id", "a-b");
  bad_dataset.push_back(Scalar("service_account_json", ServiceAccount()));
  EXPECT_NE(err(bad_dataset).find("dataset_id: letters, digits and underscores only"),
            std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
