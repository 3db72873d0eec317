#include "event/event.h"

#include <gtest/gtest.h>

namespace sy::event {
namespace {

namespace json = boost::json;

constexpr int64_t kNow = 1700000000000;  // 2023-11-14T22:13:20.000Z

struct Outcome {
  std::optional<Rejection> rejection;
  json::object event;
  std::string message_id;
};

Outcome Check(std::string_view body, std::optional<EventType> type = EventType::kTrack,
              EnrichContext ctx = {TimestampMs(kNow), "", "203.0.113.9"}) {
  Outcome o;
  o.event = json::parse(body).as_object();
  o.rejection = ValidateAndEnrich(o.event, type, ctx, Limits{}, &o.message_id);
  return o;
}

TEST(Validate, RequiresAUserIdentity) {
  EXPECT_EQ(Check(R"({"event":"x"})").rejection->code, "missing_user_id");
  EXPECT_EQ(Check(R"({"event":"x","userId":""})").rejection->code, "missing_user_id");
  EXPECT_FALSE(Check(R"({"event":"x","userId":42})").rejection);
  EXPECT_FALSE(Check(R"({"event":"x","anonymousId":"a"})").rejection);
}

TEST(Validate, PerTypeRequiredFields) {
  EXPECT_EQ(Check(R"({"userId":"u"})", EventType::kTrack).rejection->code, "missing_event");
  EXPECT_EQ(Check(R"({"userId":"u","event":7})", EventType::kTrack).rejection->code,
            "missing_event");
  EXPECT_EQ(Check(R"({"userId":"u"})", EventType::kGroup).rejection->code, "missing_group_id");
  EXPECT_FALSE(Check(R"({"userId":"u","groupId":"g"})", EventType::kGroup).rejection);
  EXPECT_EQ(Check(R"({"userId":"u"})", EventType::kAlias).rejection->code, "missing_previous_id");
  EXPECT_EQ(Check(R"({"anonymousId":"a","previousId":"p"})", EventType::kAlias).rejection->code,
            "missing_user_id");
  EXPECT_FALSE(Check(R"({"userId":"u","previousId":"p"})", EventType::kAlias).rejection);
  EXPECT_FALSE(Check(R"({"userId":"u"})", EventType::kIdentify).rejection);
  EXPECT_FALSE(Check(R"({"userId":"u"})", EventType::kPage).rejection);
  EXPECT_FALSE(Check(R"({"userId":"u"})", EventType::kScreen).rejection);
}

TEST(Validate, BatchItemsNeedAValidType) {
  EXPECT_EQ(Check(R"({"userId":"u"})", std::nullopt).rejection->code, "missing_type");
  EXPECT_EQ(Check(R"({"userId":"u","type":"purchase"})", std::nullopt).rejection->code,
            "invalid_type");
  auto ok = Check(R"({"userId":"u","type":"identify"})", std::nullopt);
  EXPECT_FALSE(ok.rejection);
  EXPECT_EQ(ok.event.at("type").as_string(), "identify");
}

TEST(Validate, MessageIdRules) {
  std::string id100(100, 'm'), id101(101, 'm');
  EXPECT_FALSE(Check(R"({"userId":"u","event":"e","messageId":")" + id100 + "\"}").rejection);
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","messageId":")" + id101 + "\"}").rejection->code,
            "message_id_too_long");
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","messageId":5})").rejection->code,
            "invalid_message_id");
  auto gen = Check(R"({"userId":"u","event":"e"})");
  ASSERT_FALSE(gen.rejection);
  EXPECT_EQ(gen.message_id.size(), 36u);
  EXPECT_EQ(gen.event.at("messageId").as_string(), gen.message_id);
  EXPECT_NE(gen.message_id, Check(R"({"userId":"u","event":"e"})").message_id);
}

TEST(Validate, ObjectFieldsMustBeObjects) {
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","properties":[1]})").rejection->code,
            "invalid_field_type");
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","context":"x"})").rejection->code,
            "invalid_field_type");
}

TEST(Validate, SizeLimitCountsTheEventAsSent) {
  std::string big(32 * 1024, 'x');
  auto r = Check(R"({"userId":"u","event":"e","properties":{"p":")" + big + "\"}}");
  ASSERT_TRUE(r.rejection);
  EXPECT_EQ(r.rejection->code, "event_too_large");
  // Just under the limit passes, although enrichment then adds bytes.
  std::string body = R"({"userId":"u","event":"e","messageId":"m","properties":{"p":""}})";
  std::string fill(32 * 1024 - body.size(), 'x');
  body.insert(body.size() - 3, fill);
  ASSERT_EQ(body.size(), 32u * 1024);
  EXPECT_FALSE(Check(body).rejection);
}

TEST(Enrich, CorrectsClockSkew) {
  // Client clock 1 hour ahead: sentAt and timestamp both 1 h in the future.
  auto r = Check(
      R"({"userId":"u","event":"e","timestamp":"2023-11-14T23:13:10.000Z","sentAt":"2023-11-14T23:13:20.000Z"})");
  ASSERT_FALSE(r.rejection);
  EXPECT_EQ(r.event.at("receivedAt").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(r.event.at("originalTimestamp").as_string(), "2023-11-14T23:13:10.000Z");
  EXPECT_EQ(r.event.at("timestamp").as_string(), "2023-11-14T22:13:10.000Z");
}

TEST(Enrich, TimestampWithoutSentAtIsKept) {
  auto r = Check(R"({"userId":"u","event":"e","timestamp":"2020-01-01T00:00:00+02:00"})");
  ASSERT_FALSE(r.rejection);
  EXPECT_EQ(r.event.at("timestamp").as_string(), "2019-12-31T22:00:00.000Z");
  EXPECT_EQ(r.event.at("originalTimestamp").as_string(), "2019-12-31T22:00:00.000Z");
}

TEST(Enrich, NoClientTimeMeansReceivedAt) {
  auto r = Check(R"({"userId":"u","event":"e","receivedAt":"1999-01-01T00:00:00Z"})");
  ASSERT_FALSE(r.rejection);
  EXPECT_EQ(r.event.at("timestamp").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(r.event.at("receivedAt").as_string(),
            "2023-11-14T22:13:20.000Z");  // server's clock wins
  EXPECT_FALSE(r.event.contains("originalTimestamp"));
}

TEST(Enrich, RejectsUnparseableTimes) {
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","timestamp":"yesterday"})").rejection->code,
            "invalid_timestamp");
  EXPECT_EQ(Check(R"({"userId":"u","event":"e","sentAt":12})").rejection->code,
            "invalid_timestamp");
}

TEST(Enrich, IpFromPeerUnlessGiven) {
  auto r = Check(R"({"userId":"u","event":"e"})");
  EXPECT_EQ(r.event.at("context").at("ip").as_string(), "203.0.113.9");
  auto kept = Check(R"({"userId":"u","event":"e","context":{"ip":"198.51.100.1"}})");
  EXPECT_EQ(kept.event.at("context").at("ip").as_string(), "198.51.100.1");
}

TEST(Enrich, WriteKeyIsNeverStored) {
  auto r = Check(R"({"userId":"u","event":"e","writeKey":"wk_secret"})");
  ASSERT_FALSE(r.rejection);
  EXPECT_FALSE(r.event.contains("writeKey"));
}

TEST(Enrich, BatchDefaultsMergeUnderItemValues) {
  json::object bctx =
      json::parse(R"({"library":{"name":"lib","version":"1"},"locale":"en"})").as_object();
  json::object bint = json::parse(R"({"All":false,"Mixpanel":true})").as_object();
  json::value sent = "2023-11-14T22:13:21.000Z";
  EnrichContext ctx{TimestampMs(kNow), "", "", &bctx, &bint, &sent};
  auto r = Check(
      R"({"type":"track","userId":"u","event":"e","timestamp":"2023-11-14T22:13:20.000Z","context":{"locale":"fr","library":{"version":"2"}},"integrations":{"Mixpanel":false}})",
      std::nullopt, ctx);
  ASSERT_FALSE(r.rejection);
  EXPECT_EQ(r.event.at("context").at("locale").as_string(), "fr");
  EXPECT_EQ(r.event.at("context").at("library").at("name").as_string(), "lib");
  EXPECT_EQ(r.event.at("context").at("library").at("version").as_string(), "2");
  EXPECT_EQ(r.event.at("integrations").at("All").as_bool(), false);
  EXPECT_EQ(r.event.at("integrations").at("Mixpanel").as_bool(), false);
  EXPECT_EQ(r.event.at("timestamp").as_string(), "2023-11-14T22:13:19.000Z");
}

TEST(CompactJsonSize, MatchesSerialize) {
  for (const char* s : {R"({"a":[1,2.5,-3,true,false,null],"b":{"c":"q\"\\\n\u0001é"}})", "[]",
                        "{}", R"("x")", "12345678901234567890", "-0.000001"}) {
    json::value v = json::parse(s);
    EXPECT_EQ(CompactJsonSize(v), json::serialize(v).size()) << s;
  }
  // Doubles: within a few bytes of Boost.JSON's notation.
  for (const char* s : {"2.5", "-0.000001", "1e300", "18.99"}) {
    json::value v = json::parse(s);
    EXPECT_NEAR(static_cast<double>(CompactJsonSize(v)),
                static_cast<double>(json::serialize(v).size()), 4)
        << s;
  }
}

}  // namespace
}  // namespace sy::event
