// Golden test of the kinesis encoder (a signed PutRecords of every Segment call; a FakeClock
// fixes X-Amz-Date so the signature is golden too), partition keys, per-record failures and every
// error class.
#include "destinations/kinesis/kinesis.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using delivery::testing::Event;
using delivery::testing::Scalar;
using K = delivery::Outcome::Kind;

std::unique_ptr<delivery::Destination> Make(const Clock* clock, std::string token = "") {
  std::vector<config::RawSetting> raw = {
      Scalar("stream_name", "events"), Scalar("region", "eu-west-1"),
      Scalar("access_key_id", "AKIDEXAMPLE"),
      Scalar("secret_access_key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
      Scalar("endpoint", "http://127.0.0.1:9/")};
  if (!token.empty()) raw.push_back(Scalar("session_token", token));
  return delivery::testing::MustCreate(KinesisType(clock), raw);
}

delivery::HttpResponse Answer(int status, std::string body) {
  delivery::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(Kinesis, EveryCallIsOneSignedRecordKeyedByTheUser) {
  FakeClock clock(1'440'938'160'000);  // 2015-08-30T12:36:00Z
  auto d = Make(&clock);
  std::vector<delivery::RoutedEvent> events = {
      Event(0, R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1"})",
            "m0"),
      Event(1, R"({"type":"identify","userId":"u1","traits":{"plan":"pro"}})", "m1"),
      Event(2, R"({"type":"page","name":"Home"})", "m2"),
      Event(3, R"({"type":"group","userId":"u1","groupId":"acme"})", "m3"),
      Event(4, R"({"type":"screen","anonymousId":"a2","name":"Home"})", "m4"),
      Event(5, R"({"type":"alias","userId":"u1","previousId":"a1"})", "m5"),
  };
  auto b = d->Encode(events);
  ASSERT_EQ(b.requests.size(), 1u);
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(b),
                                  std::string(SY_TESTDATA) + "/put_records.golden");
  const auto& r = b.requests[0];
  EXPECT_EQ(r.url, "http://127.0.0.1:9/");
  auto body = json::parse(r.body).as_object();
  EXPECT_EQ(body["StreamName"], "events");
  auto records = body["Records"].as_array();
  ASSERT_EQ(records.size(), 6u);
  std::vector<std::string> keys;
  for (const auto& rec : records)
    keys.emplace_back(rec.as_object().at("PartitionKey").as_string());
  EXPECT_EQ(keys, (std::vector<std::string>{"a1", "u1", "m2", "u1", "a2", "u1"}));
  bool signed_header = false;
  for (const auto& [k, v] : r.headers) {
    if (k == "Authorization") {
      signed_header = v.starts_with(
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/kinesis/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=");
    }
  }
  EXPECT_TRUE(signed_header);
  EXPECT_EQ(d->limits().max_events_per_request, 500u);
}

TEST(Kinesis, SessionTokenIsSentAndSigned) {
  FakeClock clock;
  auto d = Make(&clock, "FQoGZXIvYXdzE");
  auto r = d->Encode(std::vector<delivery::RoutedEvent>{Event(0, R"({"userId":"u"})", "m")})
               .requests.at(0);
  std::string token, auth;
  for (const auto& [k, v] : r.headers) {
    if (k == "X-Amz-Security-Token") token = v;
    if (k == "Authorization") auth = v;
  }
  EXPECT_EQ(token, "FQoGZXIvYXdzE");
  EXPECT_NE(auth.find("x-amz-date;x-amz-security-token;x-amz-target"), std::string::npos);
}

TEST(Kinesis, PartitionKeyIsAtMost256Characters) {
  FakeClock clock;
  auto d = Make(&clock);
  std::string long_id;
  for (int i = 0; i < 300; ++i)
    long_id += "é";  // two bytes each: never cut in two
  auto r = d->Encode(std::vector<delivery::RoutedEvent>{
                         Event(0, R"({"userId":")" + long_id + R"("})", "m")})
               .requests.at(0);
  std::string key(json::parse(r.body)
                      .as_object()["Records"]
                      .as_array()[0]
                      .as_object()["PartitionKey"]
                      .as_string());
  EXPECT_EQ(key.size(), 512u);
}

TEST(Kinesis, FailedRecordsAreRetriedTheOthersDelivered) {
  FakeClock clock;
  auto d = Make(&clock);
  std::vector<delivery::RoutedEvent> events;
  for (int i = 0; i < 3; ++i)
    events.push_back(Event(i, R"({"userId":"u"})", "m" + std::to_string(i)));
  auto r = d->Encode(events).requests.at(0);
  auto o = d->Classify(r, Answer(200, R"({"FailedRecordCount":2,"Records":[
      {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream events under account 111122223333."},
      {"SequenceNumber":"49543463076548007577105092703039560359975228518395019266","ShardId":"shardId-000000000000"},
      {"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure."}]})"));
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0].kind, K::kRetry);
  EXPECT_EQ(o[0].reason.rfind("kinesis: ProvisionedThroughputExceededException: Rate exceeded", 0),
            0u);
  EXPECT_EQ(o[1].kind, K::kDelivered);
  EXPECT_EQ(o[2].kind, K::kRetry);
  EXPECT_EQ(o[2].reason, "kinesis: InternalFailure: Internal service failure.");
  // An answer that does not pair with the records: nothing is known, all retried.
  for (const auto& x : d->Classify(r, Answer(200, R"({"FailedRecordCount":0,"Records":[]})")))
    EXPECT_EQ(x.kind, K::kRetry);
}

TEST(Kinesis, ErrorsClassify) {
  FakeClock clock;
  auto d = Make(&clock);
  auto r = d->Encode(std::vector<delivery::RoutedEvent>{Event(0, R"({"userId":"u"})", "m")})
               .requests.at(0);
  auto one = [&](int status, const std::string& type, const std::string& message) {
    return d
        ->Classify(r,
                   Answer(status, R"({"__type":")" + type + R"(","message":")" + message + R"("})"))
        .at(0);
  };
  auto missing = one(400, "ResourceNotFoundException", "Stream events under account 1 not found.");
  EXPECT_EQ(missing.kind, K::kRejected);
  EXPECT_EQ(missing.reason,
            "kinesis: ResourceNotFoundException: Stream events under account 1 not found.");
  EXPECT_EQ(one(400, "ValidationException", "1 validation error").kind, K::kRejected);
  EXPECT_EQ(one(400, "ProvisionedThroughputExceededException", "Rate exceeded").kind, K::kRetry);
  EXPECT_EQ(one(400, "LimitExceededException", "x").kind, K::kRetry);
  EXPECT_EQ(one(400, "KMSThrottlingException", "x").kind, K::kRetry);
  EXPECT_TRUE(
      one(400, "UnrecognizedClientException", "The security token is invalid").auth_failure);
  EXPECT_TRUE(one(400, "com.amazon.coral.service#ExpiredTokenException", "expired").auth_failure);
  EXPECT_TRUE(one(403, "AccessDeniedException", "not authorized").auth_failure);
  EXPECT_TRUE(one(400, "InvalidSignatureException", "signature mismatch").auth_failure);
  EXPECT_EQ(one(500, "InternalFailure", "x").kind, K::kRetry);
  EXPECT_EQ(one(503, "ServiceUnavailable", "x").kind, K::kRetry);
}

TEST(Kinesis, SettingsAreCheckedNamingTheKey) {
  auto err = [](std::vector<config::RawSetting> raw) {
    auto made = delivery::testing::Create(KinesisType(), std::move(raw));
    return made.ok() ? std::string() : made.status().message();
  };
  std::vector<config::RawSetting> base = {
      Scalar("stream_name", "events"), Scalar("region", "eu-west-1"),
      Scalar("access_key_id", "AKID"), Scalar("secret_access_key", "s")};
  EXPECT_EQ(err(base), "");
  auto bad = base;
  bad[0] = Scalar("stream_name", "no spaces");
  EXPECT_NE(err(bad).find("stream_name: 1 to 128"), std::string::npos);
  bad = base;
  bad[1] = Scalar("region", "EU West");
  EXPECT_NE(err(bad).find("region: not an AWS region name"), std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
