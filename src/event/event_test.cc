#include "event/event.h"
#include "event/raw_json.h"
#include "event/user_ids.h"

#include "base/time_format.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <boost/json.hpp>

#include <chrono>
#include <random>
#include <span>
#include <tuple>

namespace sy::event {
namespace {

namespace json = boost::json;

constexpr int64_t kNow = 1700000000000;  // 2023-11-14T22:13:20.000Z

struct Outcome {
  std::optional<Rejection> rejection;
  std::string stored;  // the text to store
  json::object event;  // the same, parsed
  std::string message_id;
};

Outcome Check(std::string_view body, std::optional<EventType> type = EventType::kTrack,
              EnrichContext ctx = {TimestampMs(kNow), "", "203.0.113.9"}) {
  Outcome o;
  o.rejection = ValidateAndEnrich(body, type, ctx, Limits{}, &o.stored, &o.message_id);
  if (!o.rejection) o.event = json::parse(o.stored).as_object();
  return o;
}

// The model the raw path is checked against: validation and enrichment on a Boost.JSON DOM, as
// ingest did before it kept the client's text (numbers compare by value here).
struct DomDefaults {
  TimestampMs received_at;
  std::string_view received_at_iso;
  std::string_view client_ip;
  const json::object* batch_context = nullptr;
  const json::object* batch_integrations = nullptr;
  const json::value* batch_sent_at = nullptr;
};

// A present, non-empty identifier (string, or number as some libraries send).
bool HasId(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return false;
  if (v->is_string()) return !v->get_string().empty();
  return v->is_number();
}

std::optional<Rejection> CheckObjectField(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (v && !v->is_object() && !v->is_null()) {
    return Rejection{"invalid_field_type", std::string(key) + " must be an object"};
  }
  return std::nullopt;
}

// Parses an ISO-8601 string field. Absent or null → nullopt without error.
std::optional<Rejection> ReadTime(const json::value* v, std::string_view key,
                                  std::optional<TimestampMs>* out) {
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string())
    return Rejection{"invalid_timestamp", std::string(key) + " must be an ISO-8601 string"};
  auto t = ParseIso8601(v->get_string());
  if (!t)
    return Rejection{"invalid_timestamp", std::string(key) + " is not a valid ISO-8601 timestamp"};
  *out = t;
  return std::nullopt;
}

void MergeDefaults(json::object& target, const json::object& defaults) {
  for (const auto& kv : defaults) {
    auto* existing = target.if_contains(kv.key());
    if (!existing) {
      target.emplace(kv.key(), kv.value());
    } else if (existing->is_object() && kv.value().is_object()) {
      MergeDefaults(existing->get_object(), kv.value().get_object());
    }
  }
}

std::optional<Rejection> ReferenceValidateAndEnrich(json::object& ev,
                                                    std::optional<EventType> path_type,
                                                    const DomDefaults& ctx, const Limits& limits,
                                                    std::string* message_id) {
  // Type: the URL decides for single calls; batch items must say.
  EventType type;
  if (path_type) {
    type = *path_type;
  } else {
    auto* t = ev.if_contains("type");
    if (!t || !t->is_string() || t->get_string().empty()) {
      return Rejection{"missing_type", "type is required on every batch item"};
    }
    auto parsed = ParseEventType(t->get_string());
    if (!parsed) {
      return Rejection{"invalid_type",
                       "type must be one of identify, track, page, screen, group, alias"};
    }
    type = *parsed;
  }

  // The request's writeKey authenticates; it is never stored with the event.
  ev.erase("writeKey");

  if (!HasId(ev, "userId") && !HasId(ev, "anonymousId")) {
    return Rejection{"missing_user_id", "userId or anonymousId is required"};
  }
  switch (type) {
    case EventType::kTrack: {
      auto* e = ev.if_contains("event");
      if (!e || !e->is_string() || e->get_string().empty()) {
        return Rejection{"missing_event", "track requires a non-empty string event"};
      }
      break;
    }
    case EventType::kGroup:
      if (!HasId(ev, "groupId")) return Rejection{"missing_group_id", "group requires groupId"};
      break;
    case EventType::kAlias:
      if (!HasId(ev, "previousId"))
        return Rejection{"missing_previous_id", "alias requires previousId"};
      if (!HasId(ev, "userId")) return Rejection{"missing_user_id", "alias requires userId"};
      break;
    default:
      break;
  }
  for (std::string_view key : {"context", "integrations", "properties", "traits"}) {
    if (auto r = CheckObjectField(ev, key)) return r;
  }

  // messageId: kept when given (a string of at most 100 characters), generated otherwise.
  if (auto* m = ev.if_contains("messageId"); m && !m->is_null()) {
    if (!m->is_string()) return Rejection{"invalid_message_id", "messageId must be a string"};
    if (m->get_string().empty()) {
      *m = NewMessageId();
    } else if (m->get_string().size() > limits.max_message_id_chars) {
      return Rejection{"message_id_too_long", "messageId is longer than " +
                                                  std::to_string(limits.max_message_id_chars) +
                                                  " characters"};
    }
  } else {
    ev["messageId"] = NewMessageId();
  }

  // Batch-level defaults. Null values count as absent.
  if (ctx.batch_context) {
    auto* c = ev.if_contains("context");
    if (!c || c->is_null()) {
      ev["context"] = *ctx.batch_context;
    } else {
      MergeDefaults(c->get_object(), *ctx.batch_context);
    }
  }
  if (ctx.batch_integrations) {
    auto* i = ev.if_contains("integrations");
    if (!i || i->is_null()) {
      ev["integrations"] = *ctx.batch_integrations;
    } else {
      MergeDefaults(i->get_object(), *ctx.batch_integrations);
    }
  }

  // The size limit applies to the event as the client sent it (after batch defaults), before
  // the server's own additions, so a client that pre-splits at 32 KB is never refused.
  size_t size = json::serialize(ev).size();
  if (size > limits.max_event_bytes) {
    return Rejection{"event_too_large", "event is " + std::to_string(size) +
                                            " bytes; the limit is " +
                                            std::to_string(limits.max_event_bytes)};
  }

  // Time: originalTimestamp is the client's clock at the event; timestamp is corrected for
  // the client's clock skew as receivedAt − (sentAt − originalTimestamp).
  std::optional<TimestampMs> given_ts, given_orig, sent_at;
  if (auto r = ReadTime(ev.if_contains("timestamp"), "timestamp", &given_ts)) return r;
  if (auto r = ReadTime(ev.if_contains("originalTimestamp"), "originalTimestamp", &given_orig))
    return r;
  const json::value* sent = ev.if_contains("sentAt");
  if (!sent || sent->is_null()) sent = ctx.batch_sent_at;
  if (auto r = ReadTime(sent, "sentAt", &sent_at)) return r;

  std::string iso;
  auto set_time = [&](std::string_view key, TimestampMs t) {
    if (t == ctx.received_at && !ctx.received_at_iso.empty()) {
      ev[key] = ctx.received_at_iso;
      return;
    }
    iso.clear();
    AppendIso8601(t, &iso);
    ev[key] = iso;
  };
  std::optional<TimestampMs> original = given_orig ? given_orig : given_ts;
  set_time("receivedAt", ctx.received_at);
  if (sent_at) set_time("sentAt", *sent_at);
  if (original) {
    set_time("originalTimestamp", *original);
    if (sent_at) {
      set_time("timestamp",
               TimestampMs(ctx.received_at.value() - (sent_at->value() - original->value())));
    } else {
      set_time("timestamp", *original);
    }
  } else {
    set_time("timestamp", ctx.received_at);
  }
  ev["type"] = EventTypeName(type);

  // context.ip from the connection, unless the client set it.
  if (!ctx.client_ip.empty()) {
    auto* c = ev.if_contains("context");
    if (!c || !c->is_object()) {
      ev["context"] = json::object();
      c = ev.if_contains("context");
    }
    auto& co = c->get_object();
    if (!co.contains("ip")) co["ip"] = ctx.client_ip;
  }

  *message_id = std::string(ev.at("messageId").get_string());
  return std::nullopt;
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
  BatchDefaults bctx(R"({"library":{"name":"lib","version":"1"},"locale":"en"})");
  BatchDefaults bint(R"({"All":false,"Mixpanel":true})");
  EnrichContext ctx{TimestampMs(kNow), "", "", &bctx, &bint, R"("2023-11-14T22:13:21.000Z")"};
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
  // No context of its own (absent or null): the batch's, as sent.
  for (const char* text : {R"({"userId":"u","event":"e"})",
                           R"({"userId":"u","event":"e","context":null,"integrations":null})"}) {
    auto plain = Check(text, EventType::kTrack, ctx);
    ASSERT_FALSE(plain.rejection);
    EXPECT_NE(
        plain.stored.find(R"("context":{"library":{"name":"lib","version":"1"},"locale":"en"})"),
        std::string::npos)
        << plain.stored;
    EXPECT_NE(plain.stored.find(R"("integrations":{"All":false,"Mixpanel":true})"),
              std::string::npos)
        << plain.stored;
  }
}

// The stored event's members as ValidateAndEnrich reports them are what splitting the stored
// text gives, on every path (batch defaults, context with and without ip, null context,
// duplicate and dropped keys, escaped keys).
TEST(Enrich, ReportsTheStoredMembers) {
  BatchDefaults bctx(R"({"library":{"name":"lib"},"locale":"en"})");
  BatchDefaults bint(R"({"All":false})");
  const EnrichContext plain{TimestampMs(kNow), "", "203.0.113.9"};
  const EnrichContext batch{
      TimestampMs(kNow), "", "", &bctx, &bint, R"("2023-11-14T22:13:21.000Z")"};
  const char* events[] = {
      R"({"type":"track","userId":"u","event":"e"})",
      R"({"type":"track","userId":"u","event":"e","context":{ "locale" : "fr" } ,"properties":{"a":[1,{"b":2}]}})",
      R"({"type":"track","userId":"u","event":"e","context":null,"writeKey":"k","receivedAt":"x"})",
      R"({"type":"track","userId":"u","event":"e","userId":"v","\u0065vent":"f","messageId":"m","timestamp":"2023-11-14T22:13:20.000Z","sentAt":"2023-11-14T22:13:21.000Z"})",
      R"({"type":"track","userId":"u","event":"e","context":{"ip":"1.2.3.4"},"integrations":{"x":1}})",
  };
  for (const auto* ctx : {&plain, &batch}) {
    for (const char* text : events) {
      std::vector<RawMember> members, reported, split;
      ASSERT_TRUE(SplitObject(text, &members));
      std::string stored, message_id;
      ASSERT_FALSE(ValidateAndEnrich(text, members, std::nullopt, *ctx, Limits{}, &stored,
                                     &message_id, &reported));
      ASSERT_TRUE(SplitObject(stored, &split));
      ASSERT_EQ(reported.size(), split.size()) << stored;
      for (size_t i = 0; i < split.size(); ++i) {
        EXPECT_EQ(reported[i].key, split[i].key) << stored;
        EXPECT_EQ(reported[i].value, split[i].value) << stored;
      }
    }
  }
}

// Numbers are stored as the client wrote them, on every path: plain events, duplicate keys,
// escaped keys, and events with batch defaults merged in (the libraries for Go and Java send a
// batch-level context).
TEST(Enrich, NumbersAreStoredAsSent) {
  const std::string numbers = R"("a":9.99,"b":123456789012345678901234567890,"c":1E5,"d":-0.0,)"
                              R"("e":18446744073709551616,"f":-12.50e-3,"g":1.0)";
  BatchDefaults bctx(R"({"library":{"name":"analytics-go","version":"3.3.0"},"n":2.50})");
  BatchDefaults bint(R"({"All":true})");
  EnrichContext with_defaults{TimestampMs(kNow), "", "203.0.113.9", &bctx, &bint, ""};
  for (const std::string& text : {
           R"({"userId":"u","event":"e","properties":{)" + numbers + "}}",
           R"({"userId":"u","event":"e","userId":"v","properties":{)" + numbers + "}}",
           R"({"user\u0049d":"u","event":"e","properties":{)" + numbers + "}}",
           R"({"userId":"u","event":"e","context":{"n":1e2,"library":{"v":3.10}},"properties":{)" +
               numbers + "}}",
       }) {
    for (bool defaults : {false, true}) {
      auto r = Check(text, EventType::kTrack,
                     defaults ? with_defaults : EnrichContext{TimestampMs(kNow), "", ""});
      ASSERT_FALSE(r.rejection) << text;
      EXPECT_NE(r.stored.find(R"("properties":{)" + numbers + "}"), std::string::npos) << r.stored;
      if (defaults && text.find("\"context\"") != std::string::npos) {
        EXPECT_NE(r.stored.find(
                      R"("n":1e2,"library":{"v":3.10,"name":"analytics-go","version":"3.3.0"})"),
                  std::string::npos)
            << r.stored;
      } else if (defaults) {
        EXPECT_NE(r.stored.find(R"("n":2.50)"), std::string::npos) << r.stored;
      }
    }
  }
}

TEST(Enrich, HardCasesAreDecodedNotRebuilt) {
  // Duplicate keys: the last wins, and only it is stored.
  auto dup = Check(R"({"userId":"u","event":"e","userId":"v"})");
  ASSERT_FALSE(dup.rejection);
  EXPECT_EQ(dup.event.at("userId").as_string(), "v");
  EXPECT_EQ(dup.stored.find(R"("userId":"u")"), std::string::npos) << dup.stored;
  // Escaped keys and strings are read decoded.
  auto key = Check(R"({"user\u0049d":"u","event":"e"})");
  ASSERT_FALSE(key.rejection);
  EXPECT_EQ(key.event.at("userId").as_string(), "u");
  auto id = Check(R"({"userId":"u","event":"e","messageId":"a\u0062\n"})");
  ASSERT_FALSE(id.rejection);
  EXPECT_EQ(id.message_id, "ab\n");
  EXPECT_EQ(id.event.at("messageId").as_string(), "ab\n");
  auto ts = Check(R"({"userId":"u","event":"e","timestamp":"2020-01-01T00:00:00\u005a"})");
  ASSERT_FALSE(ts.rejection);
  EXPECT_EQ(ts.event.at("timestamp").as_string(), "2020-01-01T00:00:00.000Z");
  auto type = Check(R"({"userId":"u","type":"\u0074rack","event":"e"})", std::nullopt);
  ASSERT_FALSE(type.rejection);
  EXPECT_EQ(type.event.at("type").as_string(), "track");
  auto ip = Check(R"({"userId":"u","event":"e","context":{"i\u0070":"1.2.3.4"}})");
  ASSERT_FALSE(ip.rejection);
  EXPECT_EQ(ip.event.at("context").at("ip").as_string(), "1.2.3.4");  // the client's, not ours
  EXPECT_EQ(ip.stored.find("203.0.113.9"), std::string::npos) << ip.stored;
}

TEST(RawJson, SplitsObjectsAndArrays) {
  std::vector<RawMember> m;
  ASSERT_TRUE(
      SplitObject(R"( { "a" : 1 , "b\"c":"x,}\\" ,"d":{"e":[1,{"f":"]"}]},"g":null} )", &m));
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].key, "a");
  EXPECT_EQ(m[0].value, "1");
  EXPECT_EQ(m[1].key, R"(b\"c)");
  EXPECT_EQ(m[1].value, R"("x,}\\")");
  EXPECT_EQ(m[2].value, R"({"e":[1,{"f":"]"}]})");
  EXPECT_EQ(m[3].value, "null");
  ASSERT_TRUE(SplitObject("{}", &m));
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(SplitObject("[1]", &m));
  std::vector<std::string_view> a;
  ASSERT_TRUE(SplitArray(R"([ {"x":1} , 2,"s" ,[3]])", &a));
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0], R"({"x":1})");
  EXPECT_EQ(a[3], "[3]");
  // Escapes on and around 16-byte boundaries, and runs of backslashes.
  for (size_t pos : {0, 1, 14, 15, 16, 17, 31, 32, 40}) {
    for (std::string esc : {"\\\"", "\\\\", "\\\\\\\""}) {
      std::string v = "\"" + std::string(pos, 'a') + esc + std::string(20, 'b') + "\"";
      std::string obj = "{\"k\":" + v + ",\"n\":1}";
      ASSERT_TRUE(SplitObject(obj, &m)) << obj;
      ASSERT_EQ(m.size(), 2u) << obj;
      EXPECT_EQ(m[0].value, v);
      EXPECT_EQ(m[1].value, "1");
      EXPECT_EQ(json::parse(obj).at("k").as_string().size(), pos + 20 + (esc.size() == 2 ? 1 : 2));
    }
  }
  // Nested containers (skipped 16 bytes at a time): brackets and quotes inside strings, escapes
  // on and around block boundaries, strings open across a block boundary.
  for (size_t pad = 0; pad < 40; ++pad) {
    for (std::string inner : std::vector<std::string>{
             R"({"a":"}]","b":[1,{"c":"x\"]}"}],"d":"\\"})", R"([{"k":"[[{{"},"\\\"}",[],{}])",
             R"({"s":")" + std::string(30, 'q') + R"(}","t":{"u":[true]}})"}) {
      std::string v = "{\"pad\":\"" + std::string(pad, 'p') + "\",\"w\":" + inner + "}";
      std::string obj = "{\"x\":" + v + ",\"n\":1}";
      ASSERT_TRUE(SplitObject(obj, &m)) << obj;
      ASSERT_EQ(m.size(), 2u) << obj;
      EXPECT_EQ(m[0].value, v) << obj;
      EXPECT_EQ(m[1].key, "n") << obj;
      EXPECT_NO_THROW(json::parse(obj)) << obj;
    }
  }
  EXPECT_FALSE(SplitObject(R"({"x":{"a":[1,2)", &m));  // an unclosed container
  // A batch body in one pass.
  std::vector<RawMember> top, im;
  std::vector<RawItem> items;
  bool has_batch = false;
  ASSERT_TRUE(SplitBatchBody(
      R"({"writeKey":"w","batch":[{"a":1,"b":{"c":[2]}}, 7 ,{}, {"d":"x"}],"sentAt":"s"})", &top,
      &has_batch, &items, &im));
  EXPECT_TRUE(has_batch);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[2].key, "sentAt");
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].text, R"({"a":1,"b":{"c":[2]}})");
  EXPECT_EQ(items[0].member_count, 2u);
  EXPECT_EQ(im[items[0].first_member + 1].value, R"({"c":[2]})");
  EXPECT_FALSE(items[1].is_object);
  EXPECT_EQ(items[1].text, "7");
  EXPECT_TRUE(items[2].is_object);
  EXPECT_EQ(items[2].member_count, 0u);
  EXPECT_EQ(im[items[3].first_member].key, "d");
  ASSERT_TRUE(SplitBatchBody(R"({"batch":[{"x":1}],"batch":"no"})", &top, &has_batch, &items, &im));
  EXPECT_FALSE(has_batch);  // the last duplicate wins
  ASSERT_TRUE(SplitBatchBody(R"({"userId":"u"})", &top, &has_batch, &items, &im));
  EXPECT_FALSE(has_batch);
  EXPECT_EQ(top.size(), 1u);
  EXPECT_FALSE(SplitBatchBody("[]", &top, &has_batch, &items, &im));

  std::string_view s;
  EXPECT_TRUE(PlainString(R"("abc")", &s));
  EXPECT_EQ(s, "abc");
  EXPECT_FALSE(PlainString(R"("a\nb")", &s));
}

// The raw path must store what the DOM model stores (as JSON values) and reject with the same
// codes, with and without batch defaults, and on duplicate or escaped keys.
TEST(RawPath, AgreesWithTheDomModel) {
  const char* events[] = {
      R"({"userId":"u","event":"e"})",
      R"({"anonymousId":"a","event":"Signed Up","properties":{"plan":"pro","n":[1,2.5,{"x":null}]}})",
      R"({"userId":42,"event":"e","messageId":"m-1","writeKey":"wk","receivedAt":"1999-01-01T00:00:00Z"})",
      R"({"userId":"u","event":"e","timestamp":"2023-11-14T23:13:10.000Z","sentAt":"2023-11-14T23:13:20.000Z"})",
      R"({"userId":"u","event":"e","originalTimestamp":"2023-11-14T23:13:10+01:00","timestamp":"2020-01-01"})",
      R"({"userId":"u","event":"e","context":{"ip":"198.51.100.1","library":{"name":"x"}}})",
      R"({"userId":"u","event":"e","context":{"library":{"name":"x"}}})",
      R"({"userId":"u","event":"e","context":{}})",
      R"({"userId":"u","event":"e","context":null,"originalTimestamp":null,"sentAt":null})",
      R"({ "userId" : "u" , "event" : "e" , "properties" : { "a" : 1 } })",
      R"({"userId":"u","event":"é \u00e9 \"quoted\"","traits":{"name":"Zoë"}})",
      R"({"userId":"u"})",
      R"({"event":"e"})",
      R"({"userId":"","anonymousId":"","event":"e"})",
      R"({"userId":"u","event":""})",
      R"({"userId":"u","event":7})",
      R"({"userId":"u","event":"e","properties":[1]})",
      R"({"userId":"u","event":"e","messageId":5})",
      R"({"userId":"u","event":"e","messageId":""})",
      R"({"userId":"u","event":"e","timestamp":"yesterday"})",
      R"({"userId":"u","event":"e","sentAt":12})",
      R"({"userId":"u","groupId":"g","previousId":"p","event":"e","traits":{"a":true}})",
      R"({"anonymousId":"a","previousId":"p"})",
      R"({"userId":"u","previousId":"p","type":"alias"})",
      R"({"type":"identify","userId":"u","traits":{"email":"x@y"}})",
      R"({"type":"track","userId":"u"})",
      R"({"type":"purchase","userId":"u"})",
      R"({"type":7,"userId":"u"})",
      R"({"type":"","userId":"u"})",
      R"({"userId":"u","event":"e","integrations":{"All":false,"Mixpanel":true}})",
  };
  std::optional<EventType> types[] = {std::nullopt,      EventType::kTrack, EventType::kIdentify,
                                      EventType::kGroup, EventType::kAlias, EventType::kPage};
  json::value batch_sent = "2023-11-14T22:13:21.000Z";
  const char* kBatchContext = R"({"library":{"name":"lib","version":"1"},"locale":"en","ip":null})";
  const char* kBatchIntegrations = R"({"All":false,"Mixpanel":true})";
  BatchDefaults raw_context(kBatchContext), raw_integrations(kBatchIntegrations);
  json::object dom_context = json::parse(kBatchContext).as_object();
  json::object dom_integrations = json::parse(kBatchIntegrations).as_object();
  int compared = 0, stored = 0;
  for (const char* text : events) {
    for (auto type : types) {
      for (int batch = 0; batch < 3; ++batch) {  // none, sentAt, sentAt + context + integrations
        for (std::string_view ip : {std::string_view("203.0.113.9"), std::string_view("")}) {
          EnrichContext ctx{TimestampMs(kNow), "2023-11-14T22:13:20.000Z", ip};
          DomDefaults dctx{TimestampMs(kNow), "2023-11-14T22:13:20.000Z", ip};
          if (batch >= 1) {
            ctx.batch_sent_at = R"("2023-11-14T22:13:21.000Z")";
            dctx.batch_sent_at = &batch_sent;
          }
          if (batch == 2) {
            ctx.batch_context = &raw_context;
            ctx.batch_integrations = &raw_integrations;
            dctx.batch_context = &dom_context;
            dctx.batch_integrations = &dom_integrations;
          }
          std::string raw_out, raw_id;
          auto raw_rej = ValidateAndEnrich(text, type, ctx, Limits{}, &raw_out, &raw_id);
          json::object dom = json::parse(text).as_object();
          std::string dom_id;
          auto dom_rej = ReferenceValidateAndEnrich(dom, type, dctx, Limits{}, &dom_id);
          ++compared;
          if (raw_rej) {
            ASSERT_TRUE(dom_rej.has_value()) << text << " raw: " << raw_rej->code;
            EXPECT_EQ(raw_rej->code, dom_rej->code) << text;
            continue;
          }
          ASSERT_FALSE(dom_rej.has_value()) << text << " DOM: " << dom_rej->code;
          ++stored;
          json::object raw = json::parse(raw_out).as_object();
          EXPECT_EQ(raw.at("messageId").as_string(), raw_id);
          if (!json::parse(text).as_object().contains("messageId") ||
              json::parse(text).as_object().at("messageId") == "") {
            EXPECT_EQ(raw_id.size(), 36u);
            raw.erase("messageId");
            dom.erase("messageId");
          }
          EXPECT_EQ(json::value(raw), json::value(dom))
              << text << "\n raw: " << raw_out << "\n dom: " << json::serialize(dom);
        }
      }
    }
  }
  EXPECT_EQ(compared, static_cast<int>(std::size(events)) * 6 * 3 * 2);
  EXPECT_GT(stored, 100);
}

TEST(RawPath, SizeLimitIsTheEventAsSent) {
  EnrichContext ctx{TimestampMs(kNow), "", "203.0.113.9"};
  std::string out, id;
  std::optional<Rejection> rej;
  std::string body = R"({"userId":"u","event":"e","properties":{"p":""}})";
  body.insert(body.size() - 3, std::string(32 * 1024 - body.size(), 'x'));
  ASSERT_EQ(body.size(), 32u * 1024);
  EXPECT_FALSE(ValidateAndEnrich(body, EventType::kTrack, ctx, Limits{}, &out, &id));
  body.insert(body.size() - 3, "x");
  rej = ValidateAndEnrich(body, EventType::kTrack, ctx, Limits{}, &out, &id);
  ASSERT_TRUE(rej);
  EXPECT_EQ(rej->code, "event_too_large");
  // With batch defaults, the event as merged counts.
  const std::string big_context = R"({"pad":")" + std::string(1000, 'p') + R"("})";
  BatchDefaults big(big_context);
  ctx.batch_context = &big;
  const std::string under = R"({"userId":"u","event":"e","properties":{"p":")" +
                            std::string(32 * 1024 - 600, 'x') + R"("}})";
  rej = ValidateAndEnrich(under, EventType::kTrack, ctx, Limits{}, &out, &id);
  ASSERT_TRUE(rej);
  EXPECT_EQ(rej->code, "event_too_large");
  ctx.batch_context = nullptr;
  EXPECT_FALSE(ValidateAndEnrich(under, EventType::kTrack, ctx, Limits{}, &out, &id));
}

// Duplicate keys are found in linear time: an object with 64k members (far beyond any event's
// size limit, so this is the detector alone) takes milliseconds, where comparing every pair took
// seconds.
TEST(RawJson, ShadowedKeysLastWinsInLinearTime) {
  std::vector<std::string_view> keys = {"a", "b", "a", "c", "b", "a"};
  std::vector<uint8_t> shadowed;
  EXPECT_TRUE(MarkShadowedKeys(keys, &shadowed));
  EXPECT_EQ(shadowed, (std::vector<uint8_t>{1, 1, 1, 0, 0, 0}));
  EXPECT_FALSE(MarkShadowedKeys(std::vector<std::string_view>{"x", "y"}, &shadowed));
  // Many keys (the hashed path): every third repeats an earlier one.
  std::vector<std::string> owned;
  for (int i = 0; i < 65536; ++i)
    owned.push_back("k" + std::to_string(i % 3 == 2 ? i - 1 : i));
  keys.assign(owned.begin(), owned.end());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(MarkShadowedKeys(keys, &shadowed));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  for (size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(shadowed[i], i % 3 == 1 && i + 1 < keys.size() ? 1 : 0) << i;
  EXPECT_LT(elapsed, std::chrono::milliseconds(100));
  // Escaped keys compare decoded.
  std::vector<RawMember> members = {{"a", "1"}, {"\\u0061", "2"}, {"b\\n", "3"}};
  std::string storage;
  DecodedKeys(members, &storage, &keys);
  EXPECT_EQ(keys[1], "a");
  EXPECT_EQ(keys[2], "b\n");
  EXPECT_TRUE(MarkShadowedKeys(keys, &shadowed));
  EXPECT_EQ(shadowed[0], 1);
}

TEST(RawPath, EscapesTheClientIp) {
  EnrichContext ctx{TimestampMs(kNow), "", "a\"b"};
  std::string out, id;
  ASSERT_FALSE(ValidateAndEnrich(R"({"userId":"u","event":"e"})", EventType::kTrack, ctx, Limits{},
                                 &out, &id));
  EXPECT_EQ(json::parse(out).at("context").at("ip").as_string(), "a\"b");
}

}  // namespace
}  // namespace sy::event

namespace sy::event {
namespace {

// The indexed splitter against the byte scanner, on the structural index simdjson builds.
struct Split {
  bool ok = false, has_batch = false;
  std::vector<std::pair<std::string, std::string>> top, members;
  std::vector<std::tuple<std::string, uint32_t, uint32_t, bool>> items;
  bool operator==(const Split&) const = default;
};

// Runs `split(top, has_batch, items, members)` and copies what it found.
template <typename SplitFn>
Split Run(SplitFn split) {
  std::vector<RawMember> top, im;
  std::vector<RawItem> items;
  Split s;
  s.ok = split(&top, &s.has_batch, &items, &im);
  for (auto& m : top)
    s.top.emplace_back(m.key, m.value);
  for (auto& m : im)
    s.members.emplace_back(m.key, m.value);
  for (auto& i : items)
    s.items.emplace_back(i.text, i.first_member, i.member_count, i.is_object);
  return s;
}

Split ByScanner(std::string_view t) {
  return Run([&](auto... out) { return SplitBatchBody(t, out...); });
}

Split ByIndex(simdjson::dom::parser& parser, std::string text) {
  text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  auto doc = parser.parse(text.data(), text.size(), false);
  EXPECT_EQ(doc.error(), simdjson::SUCCESS) << text;
  const auto& impl = *parser.implementation;
  std::span<const uint32_t> idx(impl.structural_indexes.get(), impl.n_structural_indexes);
  return Run([&](auto... out) { return SplitBatchBodyIndexed(text, idx, out...); });
}

// A random JSON value with whitespace, escapes, nesting and odd keys.
std::string RandomJson(std::mt19937& rng, int depth) {
  auto ws = [&] {
    static const char* kWs[] = {"", "", " ", "\n  ", "\t", " \r\n "};
    return std::string(kWs[rng() % 6]);
  };
  auto str = [&] {
    static const char* kStr[] = {R"("")",       R"("a")",      R"("with \"quote\"")",
                                 R"("back\\")", R"("{[,:]}")", R"("\u00e9t\u00e9")",
                                 R"("batch")",  R"("x\\\"y")"};
    return std::string(kStr[rng() % 8]);
  };
  int kind = depth <= 0 ? static_cast<int>(rng() % 4) : static_cast<int>(rng() % 6);
  switch (kind) {
    case 0:
      return str();
    case 1: {
      static const char* kNum[] = {"0", "-1", "3.25", "1e10", "-0.5E-3", "12345678901234"};
      return kNum[rng() % 6];
    }
    case 2: {
      static const char* kLit[] = {"true", "false", "null"};
      return kLit[rng() % 3];
    }
    case 3:
      return str();
    case 4: {
      std::string out = "[" + ws();
      int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) {
        if (i) out += ws() + "," + ws();
        out += RandomJson(rng, depth - 1);
      }
      return out + ws() + "]";
    }
    default: {
      std::string out = "{" + ws();
      int n = static_cast<int>(rng() % 5);
      for (int i = 0; i < n; ++i) {
        if (i) out += ws() + "," + ws();
        out += str() + ws() + ":" + ws() + RandomJson(rng, depth - 1);
      }
      return out + ws() + "}";
    }
  }
}

TEST(RawJson, IndexedSplitMatchesTheScanner) {
  simdjson::dom::parser parser;
  std::vector<std::string> cases = {
      R"({"writeKey":"w","batch":[{"a":1,"b":{"c":[2]}}, 7 ,{}, {"d":"x"}],"sentAt":"s"})",
      R"({"batch":[{"x":1}],"batch":"no"})",
      R"({"userId":"u"})",
      R"( { "batch" : [ ] , "k" : "v\"}" } )",
      R"({"batch":[ "s" , [1,[2]] , null , {"e":"\\"} ]})",
      R"({"":"","a\"b":{"":[]}})",
      R"({"userId":"user-1","event":"Order Completed","properties":{"revenue":42.5,"items":3},"messageId":"m-1"})",
      "{}",
  };
  for (const auto& c : cases)
    EXPECT_EQ(ByIndex(parser, c), ByScanner(c)) << c;
  std::mt19937 rng(20261126);
  for (int n = 0; n < 3000; ++n) {
    // Half are batch bodies, whose items get split member by member.
    std::string body;
    if (n % 2 == 0) {
      body = "{\"batch\":[";
      int items = static_cast<int>(rng() % 5);
      for (int i = 0; i < items; ++i) {
        if (i) body += ",";
        body += RandomJson(rng, 3);
      }
      body += "]," + std::string("\"context\":") + RandomJson(rng, 2) + "}";
    } else {
      body = RandomJson(rng, 4);
      if (body.empty() || body.front() != '{') body = "{\"v\":" + body + "}";
    }
    Split a = ByIndex(parser, body), b = ByScanner(body);
    ASSERT_EQ(a, b) << body;
    ASSERT_TRUE(a.ok) << body;
  }
  // Not an object at the top: refused by both.
  EXPECT_FALSE(ByIndex(parser, "[1]").ok);
  EXPECT_FALSE(ByIndex(parser, "\"s\"").ok);
}

// The ids a privacy request matches an event by (event/user_ids.h).
TEST(EventUserIds, ReadsTheTopLevelIdsAsAParserWould) {
  EventUserIds ids;
  ASSERT_TRUE(ReadEventUserIds(R"({"userId":"u1","anonymousId":"a1"})", &ids));
  EXPECT_EQ(ids.user_id, "u1");
  EXPECT_EQ(ids.anonymous_id, "a1");
  // Escapes decoded, in values and keys; the last of duplicate keys wins.
  ASSERT_TRUE(ReadEventUserIds(R"({"userId":"x","user\u0049d":"\u0075\u00e9"})", &ids));
  EXPECT_EQ(ids.user_id, "u\xc3\xa9");
  // A number is its JSON text; null and absent are empty; nested ids are not the event's.
  ASSERT_TRUE(ReadEventUserIds(R"({"userId":42,"anonymousId":null})", &ids));
  EXPECT_EQ(ids.user_id, "42");
  EXPECT_EQ(ids.anonymous_id, "");
  ASSERT_TRUE(
      ReadEventUserIds(R"({"properties":{"userId":"u1"},"context":{"anonymousId":"a"}})", &ids));
  EXPECT_EQ(ids.user_id, "");
  EXPECT_EQ(ids.anonymous_id, "");
  EXPECT_FALSE(ReadEventUserIds(R"(["userId","u1"])", &ids));
  EXPECT_FALSE(ReadEventUserIds("not json", &ids));
  EXPECT_EQ(ids.user_id, "");
}

}  // namespace
}  // namespace sy::event
