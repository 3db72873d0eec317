#include "event/event.h"
#include "event/raw_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <span>
#include <tuple>

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

// The fast path must store exactly what the DOM path stores (as JSON values) and reject with
// the same codes.
TEST(FastPath, AgreesWithTheDomPath) {
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
  int compared = 0, stored = 0;
  for (const char* text : events) {
    for (auto type : types) {
      for (bool with_batch_sent : {false, true}) {
        for (std::string_view ip : {std::string_view("203.0.113.9"), std::string_view("")}) {
          EnrichContext ctx{TimestampMs(kNow), "2023-11-14T22:13:20.000Z", ip};
          if (with_batch_sent) ctx.batch_sent_at = &batch_sent;
          std::string fast_out, fast_id;
          std::optional<Rejection> fast_rej;
          FastOutcome fo =
              FastValidateAndEnrich(text, type, ctx, Limits{}, &fast_out, &fast_id, &fast_rej);
          ASSERT_NE(fo, FastOutcome::kNeedsDom) << text;
          json::object dom = json::parse(text).as_object();
          std::string dom_id;
          auto dom_rej = ValidateAndEnrich(dom, type, ctx, Limits{}, &dom_id);
          ++compared;
          if (fo == FastOutcome::kRejected) {
            ASSERT_TRUE(dom_rej.has_value()) << text;
            EXPECT_EQ(fast_rej->code, dom_rej->code) << text;
            continue;
          }
          ASSERT_FALSE(dom_rej.has_value()) << text << " DOM: " << dom_rej->code;
          ++stored;
          json::object fast = json::parse(fast_out).as_object();
          EXPECT_EQ(fast.at("messageId").as_string(), fast_id);
          if (!json::parse(text).as_object().contains("messageId") ||
              json::parse(text).as_object().at("messageId") == "") {
            EXPECT_EQ(fast_id.size(), 36u);
            fast.erase("messageId");
            dom.erase("messageId");
          }
          EXPECT_EQ(json::value(fast), json::value(dom))
              << text << "\n fast: " << fast_out << "\n  dom: " << json::serialize(dom);
        }
      }
    }
  }
  EXPECT_EQ(compared, 30 * 6 * 2 * 2);
  EXPECT_GT(stored, 100);
}

TEST(FastPath, HandsHardCasesToTheDom) {
  EnrichContext ctx{TimestampMs(kNow), "", "203.0.113.9"};
  std::string out, id;
  std::optional<Rejection> rej;
  for (const char* text :
       {R"({"userId":"u","event":"e","userId":"v"})", R"({"user\u0049d":"u","event":"e"})",
        R"({"userId":"u","event":"e","messageId":"a\u0062"})",
        R"({"userId":"u","event":"e","timestamp":"2020-01-01T00:00:00\u005a"})",
        R"({"userId":"u","event":"e","context":{"i\u0070":"1.2.3.4"}})"}) {
    EXPECT_EQ(FastValidateAndEnrich(text, EventType::kTrack, ctx, Limits{}, &out, &id, &rej),
              FastOutcome::kNeedsDom)
        << text;
  }
  json::object bctx;
  ctx.batch_context = &bctx;
  EXPECT_EQ(FastValidateAndEnrich(R"({"userId":"u","event":"e"})", EventType::kTrack, ctx, Limits{},
                                  &out, &id, &rej),
            FastOutcome::kNeedsDom);
}

TEST(FastPath, SizeLimitIsTheEventAsSent) {
  EnrichContext ctx{TimestampMs(kNow), "", "203.0.113.9"};
  std::string out, id;
  std::optional<Rejection> rej;
  std::string body = R"({"userId":"u","event":"e","properties":{"p":""}})";
  body.insert(body.size() - 3, std::string(32 * 1024 - body.size(), 'x'));
  ASSERT_EQ(body.size(), 32u * 1024);
  EXPECT_EQ(FastValidateAndEnrich(body, EventType::kTrack, ctx, Limits{}, &out, &id, &rej),
            FastOutcome::kStored);
  body.insert(body.size() - 3, "x");
  EXPECT_EQ(FastValidateAndEnrich(body, EventType::kTrack, ctx, Limits{}, &out, &id, &rej),
            FastOutcome::kRejected);
  EXPECT_EQ(rej->code, "event_too_large");
}

TEST(FastPath, EscapesTheClientIp) {
  EnrichContext ctx{TimestampMs(kNow), "", "a\"b"};
  std::string out, id;
  std::optional<Rejection> rej;
  ASSERT_EQ(FastValidateAndEnrich(R"({"userId":"u","event":"e"})", EventType::kTrack, ctx, Limits{},
                                  &out, &id, &rej),
            FastOutcome::kStored);
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

}  // namespace
}  // namespace sy::event
