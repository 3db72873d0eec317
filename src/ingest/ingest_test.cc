#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <future>
#include <random>
#include <unordered_map>

#include "base/fault_injection_env.h"
#include "ingest/body_decoder.h"
#include "ingest/dedupe_index.h"
#include "ingest/key_table.h"
#include "ingest/source_table.h"
#include "ingest/tracking_api.h"
#include "log/local/local_log.h"
#include "tests/support/memory_event_log.h"

namespace sy::ingest {
namespace {

namespace json = boost::json;
namespace bhttp = http::bhttp;

std::string Gzip(std::string_view in) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Basic(std::string_view user_colon_pass) {
  namespace b = boost::beast::detail::base64;
  std::string out(b::encoded_size(user_colon_pass.size()), '\0');
  out.resize(b::encode(out.data(), user_colon_pass.data(), user_colon_pass.size()));
  return "Basic " + out;
}

TEST(BodyDecoder, IdentityAndGzip) {
  EXPECT_EQ(*DecodeBody("", std::string("{}"), 10), "{}");
  EXPECT_EQ(*DecodeBody("gzip", Gzip("{\"a\":1}"), 100), "{\"a\":1}");
  EXPECT_EQ(*DecodeBody("GZIP ", Gzip("x") + Gzip("y"), 100), "xy");  // concatenated members
}

TEST(BodyDecoder, GzipBombIsCutOffEarly) {
  std::string bomb = Gzip(std::string(50 << 20, 'a'));  // 50 MB of 'a' is ~50 KB gzipped
  ASSERT_LT(bomb.size(), 100u << 10);
  auto r = DecodeBody("gzip", std::move(bomb), 500 * 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(BodyDecoder, Errors) {
  EXPECT_EQ(DecodeBody("", std::string(11, 'x'), 10).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeBody("gzip", std::string("not gzip"), 100).status().code(),
            StatusCode::kInvalidArgument);
  std::string truncated = Gzip(std::string(1000, 'q'));
  truncated.resize(truncated.size() / 2);
  EXPECT_EQ(DecodeBody("gzip", std::move(truncated), 5000).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBody("br", std::string("x"), 100).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(Auth, BasicHeader) {
  EXPECT_EQ(WriteKeyFromBasicAuth(Basic("wk_web_demo:")), "wk_web_demo");
  EXPECT_EQ(WriteKeyFromBasicAuth(Basic("wk:ignored")), "wk");
  EXPECT_EQ(WriteKeyFromBasicAuth("basic " + Basic("wk:").substr(6)), "wk");
  EXPECT_FALSE(WriteKeyFromBasicAuth("Bearer abc"));
  EXPECT_FALSE(WriteKeyFromBasicAuth("Basic !!!!"));
  EXPECT_FALSE(WriteKeyFromBasicAuth(Basic(":")));
  EXPECT_FALSE(WriteKeyFromBasicAuth(""));
}

TEST(Auth, SourceTableHoldsOnlyDigests) {
  SourceTable t({{"web", config::Sha256Hex("wk_web")}, {"backend", config::Sha256Hex("wk_be")}});
  EXPECT_EQ(t.Lookup("wk_web"), "web");
  EXPECT_EQ(t.Lookup("wk_be"), "backend");
  EXPECT_FALSE(t.Lookup("wk_other"));
  EXPECT_FALSE(t.Lookup(""));
  // Second lookups come from the verified cache and agree; a near miss is still refused.
  EXPECT_EQ(t.Lookup("wk_web"), "web");
  EXPECT_EQ(t.Lookup("wk_be"), "backend");
  EXPECT_FALSE(t.Lookup("wk_web "));
  EXPECT_FALSE(t.Lookup("wk_we"));
}

// Live source changes (admin API, SIGHUP): Replace swaps keys at once, a disabled source's key
// is refused, a rotated-out key works until its grace period ends (fake clock) and no cached
// verification outlives a Replace.
TEST(Auth, SourceTableReplaceDisableAndRotationGrace) {
  FakeClock clock(1'000'000);
  config::SourceConfig web{"web", config::Sha256Hex("wk_old")};
  SourceTable t({web}, &clock);
  ASSERT_EQ(t.Lookup("wk_old"), "web");  // now cached
  web.write_key_sha256 = config::Sha256Hex("wk_new");
  web.previous_write_key_sha256 = config::Sha256Hex("wk_old");
  web.previous_write_key_expires_ms = 1'000'000 + 60'000;
  t.Replace({web, {"app", config::Sha256Hex("wk_app")}});
  EXPECT_EQ(t.Lookup("wk_new"), "web");
  EXPECT_EQ(t.Lookup("wk_old"), "web");
  EXPECT_EQ(t.Lookup("wk_app"), "app");
  clock.Advance(std::chrono::milliseconds(59'999));
  EXPECT_EQ(t.Lookup("wk_old"), "web");  // cached, still in grace
  clock.Advance(std::chrono::milliseconds(1));
  EXPECT_FALSE(t.Lookup("wk_old"));  // the cache honours the end of the grace period
  EXPECT_EQ(t.Lookup("wk_new"), "web");
  web.enabled = false;
  t.Replace({web, {"app", config::Sha256Hex("wk_app")}});
  EXPECT_FALSE(t.Lookup("wk_new"));
  t.Replace({{"other", config::Sha256Hex("wk_other")}});
  EXPECT_FALSE(t.Lookup("wk_app"));
  EXPECT_EQ(t.Lookup("wk_other"), "other");
}

// A Replace that leaves a source's limit as it was keeps its bucket (no free burst on reload);
// a changed limit starts a new one.
TEST(Auth, SourceTableReplaceKeepsUnchangedRateLimitBuckets) {
  config::SourceConfig web{"web", config::Sha256Hex("wk_web")};
  web.rate_limit_events_per_second = 1;
  web.rate_limit_burst = 2;
  SourceTable t({web});
  EXPECT_EQ(t.AdmitEvents("web", 2, 0), 0);
  EXPECT_GT(t.AdmitEvents("web", 1, 0), 0);
  t.Replace({web});
  EXPECT_GT(t.AdmitEvents("web", 1, 0), 0);
  web.rate_limit_burst = 3;
  t.Replace({web});
  EXPECT_EQ(t.AdmitEvents("web", 3, 0), 0);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sy_ingest_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(KeyTable, MatchesAModelUnderRandomOperations) {
  // Keys drawn from a small pool so finds, re-inserts and erasures of present keys are common,
  // and low bits collide so probe runs and backward shifts are exercised.
  std::mt19937_64 rng(42);
  KeyTable<int> table;
  std::unordered_map<Hash128, int, Hash128Hasher> model;
  std::vector<Hash128> pool;
  for (int i = 0; i < 3000; ++i)
    pool.push_back({rng() & 0xFFF, rng()});
  pool.push_back({0, 0});
  for (int step = 0; step < 200000; ++step) {
    const Hash128& k = pool[rng() % pool.size()];
    switch (rng() % 3) {
      case 0: {
        int v = static_cast<int>(rng() % 1000);
        auto [p, inserted] = table.TryEmplace(k, v);
        auto [it, model_inserted] = model.try_emplace(k, v);
        ASSERT_EQ(inserted, model_inserted);
        ASSERT_EQ(*p, it->second);
        break;
      }
      case 1:
        ASSERT_EQ(table.Erase(k), model.erase(k) == 1);
        break;
      default: {
        int* p = table.Find(k);
        auto it = model.find(k);
        ASSERT_EQ(p != nullptr, it != model.end());
        if (p) {
          ASSERT_EQ(*p, it->second);
        }
      }
    }
    ASSERT_EQ(table.size(), model.size());
  }
  for (const auto& [k, v] : model)
    ASSERT_EQ(*table.Find(k), v);
}

TEST(Dedupe, ClaimCommitRelease) {
  TempDir dir;
  FakeClock clock;
  testing::MemoryEventLog log;
  auto idx = *DedupeIndex::Open({dir.str(), 60'000, &clock}, &log);
  Hash128 a = DedupeIndex::Key("web", "m1");
  EXPECT_EQ(idx->Claim(a, 1), DedupeIndex::ClaimResult::kNew);
  EXPECT_EQ(idx->Claim(a, 1), DedupeIndex::ClaimResult::kDuplicate);  // same request
  EXPECT_EQ(idx->Claim(a, 2), DedupeIndex::ClaimResult::kInFlight);   // another request
  idx->Release({a}, 1);
  EXPECT_EQ(idx->Claim(a, 2), DedupeIndex::ClaimResult::kNew);
  idx->Commit({a}, clock.Now(), Offset(1));
  EXPECT_EQ(idx->Claim(a, 3), DedupeIndex::ClaimResult::kDuplicate);
  EXPECT_EQ(idx->Claim(DedupeIndex::Key("backend", "m1"), 3), DedupeIndex::ClaimResult::kNew);
  clock.Advance(std::chrono::milliseconds(60'001));
  EXPECT_EQ(idx->Claim(a, 4), DedupeIndex::ClaimResult::kNew);  // window passed
}

TEST(Dedupe, WindowSurvivesRestartThroughJournalAndLogTail) {
  TempDir dir;
  FakeClock clock;
  testing::MemoryEventLog log;
  Hash128 a = DedupeIndex::Key("web", "journaled");
  Hash128 b = DedupeIndex::Key("web", "only-in-log");
  {
    auto idx = *DedupeIndex::Open({dir.str(), 60'000, &clock}, &log);
    ASSERT_EQ(idx->Claim(a, 1), DedupeIndex::ClaimResult::kNew);
    log.Append({{"web", "journaled", clock.Now(), "{}"}}, [](const log::AppendResult&) {});
    idx->Commit({a}, clock.Now(), Offset(1));
    ASSERT_TRUE(idx->Flush().ok());
    // Stored after the last flush: must be recovered from the log's tail.
    ASSERT_EQ(idx->Claim(b, 2), DedupeIndex::ClaimResult::kNew);
    log.Append({{"web", "only-in-log", clock.Now(), "{}"}}, [](const log::AppendResult&) {});
    idx->Commit({b}, clock.Now(), Offset(2));
  }  // "crash": no final flush
  auto idx = *DedupeIndex::Open({dir.str(), 60'000, &clock}, &log);
  EXPECT_EQ(idx->Claim(a, 9), DedupeIndex::ClaimResult::kDuplicate);
  EXPECT_EQ(idx->Claim(b, 9), DedupeIndex::ClaimResult::kDuplicate);
  EXPECT_EQ(idx->Claim(DedupeIndex::Key("web", "new"), 9), DedupeIndex::ClaimResult::kNew);
}

TEST(Dedupe, TornJournalTailIsIgnored) {
  TempDir dir;
  FakeClock clock;
  testing::MemoryEventLog log;
  {
    auto idx = *DedupeIndex::Open({dir.str(), 60'000, &clock}, &log);
    idx->Claim(DedupeIndex::Key("web", "x"), 1);
    idx->Commit({DedupeIndex::Key("web", "x")}, clock.Now(), Offset(1));
    ASSERT_TRUE(idx->Flush().ok());
  }
  {
    FILE* f = std::fopen((dir.str() + "/dedupe.journal").c_str(), "ab");
    std::fputs("SYDJgarbage", f);
    std::fclose(f);
  }
  auto idx = DedupeIndex::Open({dir.str(), 60'000, &clock}, &log);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ((*idx)->Claim(DedupeIndex::Key("web", "x"), 2), DedupeIndex::ClaimResult::kDuplicate);
}

// Drives TrackingApi directly, with an in-memory log.
class TrackingApiTest : public ::testing::Test {
 protected:
  TrackingApiTest()
      : sources_({{"web", config::Sha256Hex("wk_web")}, {"backend", config::Sha256Hex("wk_be")}}) {
    dedupe_ = *DedupeIndex::Open({dir_.str(), 24LL * 3600 * 1000, &clock_}, &log_);
    api_ = std::make_unique<TrackingApi>(options_, &sources_, &log_, dedupe_.get(), &clock_,
                                         &metrics_);
  }

  http::Response Post(std::string target, std::string body, std::string auth = "",
                      std::string encoding = "", std::string peer = "10.1.2.3",
                      std::string xff = "") {
    http::Request req{bhttp::verb::post, target, 11};
    if (!auth.empty()) req.set(bhttp::field::authorization, auth);
    if (!encoding.empty()) req.set(bhttp::field::content_encoding, encoding);
    if (!xff.empty()) req.set("X-Forwarded-For", xff);
    req.set(bhttp::field::origin, "https://shop.example");
    req.body() = std::move(body);
    std::optional<http::Response> out;
    api_->Handle(std::move(req), {peer},
                 http::Responder([&](http::Response r) { out = std::move(r); }));
    EXPECT_TRUE(out.has_value());
    return out ? *out : http::Response{};
  }

  json::object Body(const http::Response& r) { return json::parse(r.body()).as_object(); }
  size_t Stored() { return log_.Entries().size(); }
  json::object StoredEvent(size_t i) {
    return json::parse(log_.Entries().at(i).payload).as_object();
  }

  TempDir dir_;
  FakeClock clock_;
  testing::MemoryEventLog log_;
  MetricsRegistry metrics_;
  config::IngestConfig options_;
  SourceTable sources_;
  std::unique_ptr<DedupeIndex> dedupe_;
  std::unique_ptr<TrackingApi> api_;
};

TEST_F(TrackingApiTest, TrackWithBasicAuthIsStoredEnriched) {
  auto r = Post("/v1/track", R"({"userId":"u1","event":"Signed Up","properties":{"plan":"pro"}})",
                Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"success":true})");
  EXPECT_EQ(r[bhttp::field::access_control_allow_origin], "https://shop.example");
  EXPECT_EQ(r[bhttp::field::access_control_expose_headers], "Retry-After, X-RateLimit-Reset");
  ASSERT_EQ(Stored(), 1u);
  auto e = StoredEvent(0);
  EXPECT_EQ(e.at("type").as_string(), "track");
  EXPECT_EQ(e.at("event").as_string(), "Signed Up");
  EXPECT_EQ(e.at("context").at("ip").as_string(), "10.1.2.3");
  EXPECT_TRUE(e.contains("messageId"));
  EXPECT_TRUE(e.contains("receivedAt"));
  EXPECT_EQ(log_.Entries()[0].source, "web");
}

TEST_F(TrackingApiTest, TheLiveFeedSeesStoredEventsOfItsSourceUpToItsRate) {
  observe::LiveFeed feed;
  api_->set_live_feed(&feed);
  auto web = feed.Subscribe(observe::TopicKind::kSource, "web", /*max_per_second=*/3);
  auto backend = feed.Subscribe(observe::TopicKind::kSource, "backend", 100);
  std::string batch = R"({"batch":[)";
  for (int i = 0; i < 5; ++i) {
    batch += std::string(i ? "," : "") + R"({"type":"track","userId":"u","event":"E)" +
             std::to_string(i) + R"(","messageId":"m)" + std::to_string(i) + R"("})";
  }
  batch += "]}";
  ASSERT_EQ(Post("/v1/batch", batch, Basic("wk_web:")).result_int(), 200);
  ASSERT_EQ(Stored(), 5u);
  std::vector<observe::LiveRecord> got;
  EXPECT_EQ(web->Take(&got, 100, 0), 3u);  // its rate's burst; the rest counted
  EXPECT_EQ(web->sampled_out(), 2u);
  EXPECT_EQ(got[0].stage, observe::Stage::kReceived);
  EXPECT_EQ(got[0].message_id, "m0");
  EXPECT_EQ(got[0].event, "E0");
  EXPECT_EQ(got[2].event, "E2");
  EXPECT_NE(got[0].payload.find("\"receivedAt\""), std::string::npos);  // as stored
  std::vector<observe::LiveRecord> none;
  EXPECT_EQ(backend->Take(&none, 100, 0), 0u);
  // A duplicate is not stored again, so not shown again.
  clock_.Advance(std::chrono::seconds(10));
  ASSERT_EQ(Post("/v1/batch", batch, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(web->Take(&got, 100, 0), 0u);
}

TEST_F(TrackingApiTest, AllShortPathsMapToTheirTypes) {
  const std::pair<const char*, const char*> cases[] = {
      {"/v1/t", "track"},           {"/v1/i", "identify"}, {"/v1/p", "page"},
      {"/v1/s", "screen"},          {"/v1/g", "group"},    {"/v1/a", "alias"},
      {"/v1/identify", "identify"}, {"/v1/page", "page"},  {"/v1/screen", "screen"},
      {"/v1/group", "group"},       {"/v1/alias", "alias"}};
  for (auto [path, type] : cases) {
    auto r = Post(
        path, R"({"userId":"u","event":"e","groupId":"g","previousId":"p","writeKey":"wk_be"})");
    ASSERT_EQ(r.result_int(), 200) << path << r.body();
    auto e = StoredEvent(Stored() - 1);
    EXPECT_EQ(e.at("type").as_string(), type) << path;
    EXPECT_FALSE(e.contains("writeKey"));
    EXPECT_EQ(log_.Entries().back().source, "backend");
  }
}

TEST_F(TrackingApiTest, AuthFailures) {
  auto r = Post("/v1/track", R"({"userId":"u","event":"e"})");
  EXPECT_EQ(r.result_int(), 401);
  EXPECT_EQ(Body(r).at("error").as_string(), "missing_write_key");
  r = Post("/v1/track", R"({"userId":"u","event":"e","writeKey":"nope"})");
  EXPECT_EQ(r.result_int(), 401);
  EXPECT_EQ(Body(r).at("error").as_string(), "unknown_write_key");
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(TrackingApiTest, BadBodies) {
  EXPECT_EQ(Post("/v1/track", "{not json", Basic("wk_web:")).result_int(), 400);
  EXPECT_EQ(Post("/v1/track", "[1,2]", Basic("wk_web:")).result_int(), 400);
  std::string deep(100, '[');
  auto r =
      Post("/v1/track",
           R"({"userId":"u","event":"e","properties":{"x":)" + deep + std::string(100, ']') + "}}",
           Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Body(r).at("error").as_string(), "too_deep");
  EXPECT_EQ(Post("/v1/track", std::string("{\"userId\":\"\xff\"}"), Basic("wk_web:")).result_int(),
            400);
  EXPECT_EQ(Post("/v1/track", "{}", Basic("wk_web:"), "br").result_int(), 415);
  EXPECT_EQ(Post("/v1/track", "{}", Basic("wk_web:"), "gzip").result_int(), 400);
  EXPECT_EQ(Post("/v1/track", R"({"event":"e"})", Basic("wk_web:")).result_int(), 400);
  EXPECT_EQ(Post("/v1/nope", "{}", Basic("wk_web:")).result_int(), 404);
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(TrackingApiTest, GzipBodyAndDecompressedLimit) {
  auto r = Post("/v1/track", Gzip(R"({"userId":"u","event":"e"})"), Basic("wk_web:"), "gzip");
  EXPECT_EQ(r.result_int(), 200);
  std::string big = R"({"batch":[],"pad":")" + std::string(600 * 1024, 'x') + "\"}";
  r = Post("/v1/batch", Gzip(big), Basic("wk_web:"), "gzip");
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(Stored(), 1u);
}

TEST_F(TrackingApiTest, BatchPartialRejectionNamesEveryBadEvent) {
  auto r = Post("/v1/batch", R"({"batch":[
      {"type":"track","userId":"u","event":"ok1"},
      {"type":"track","userId":"u"},
      {"userId":"u"},
      7,
      {"type":"identify","anonymousId":"a","traits":{"email":"x@y"}}]})",
                Basic("wk_web:"));
  ASSERT_EQ(r.result_int(), 200);
  auto b = Body(r);
  EXPECT_EQ(b.at("success").as_bool(), false);
  EXPECT_EQ(b.at("stored").as_int64(), 2);
  auto& rej = b.at("rejected").as_array();
  ASSERT_EQ(rej.size(), 3u);
  EXPECT_EQ(rej[0].at("index").as_int64(), 1);
  EXPECT_EQ(rej[0].at("code").as_string(), "missing_event");
  EXPECT_EQ(rej[1].at("index").as_int64(), 2);
  EXPECT_EQ(rej[1].at("code").as_string(), "missing_type");
  EXPECT_EQ(rej[2].at("index").as_int64(), 3);
  EXPECT_EQ(rej[2].at("code").as_string(), "not_an_object");
  EXPECT_EQ(Stored(), 2u);
  std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find(R"(switchyard_ingest_events_rejected_total{reason="missing_event"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(switchyard_ingest_events_rejected_total{reason="not_an_object"} 1)"),
            std::string::npos);
}

TEST_F(TrackingApiTest, AllInvalidIs400AndOverLimitBatchIs413) {
  auto r = Post("/v1/batch", R"({"batch":[{"type":"track","userId":"u"}]})", Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Body(r).at("rejected").as_array().size(), 1u);
  std::string batch = R"({"batch":[)";
  for (int i = 0; i < 2501; ++i)
    batch += std::string(i ? "," : "") + R"({"type":"track","userId":"u","event":"e"})";
  batch += "]}";
  r = Post("/v1/batch", batch, Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(Body(r).at("error").as_string(), "too_many_events");
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(TrackingApiTest, BatchMergesTopLevelContextAndIntegrations) {
  auto r = Post("/v1/batch",
                R"({"context":{"library":{"name":"analytics-node"}},"integrations":{"All":false},
      "batch":[{"type":"page","userId":"u","context":{"page":{"path":"/"}}}]})",
                Basic("wk_web:"));
  ASSERT_EQ(r.result_int(), 200);
  auto e = StoredEvent(0);
  EXPECT_EQ(e.at("context").at("library").at("name").as_string(), "analytics-node");
  EXPECT_EQ(e.at("context").at("page").at("path").as_string(), "/");
  EXPECT_EQ(e.at("integrations").at("All").as_bool(), false);
}

// One number model on every path: numbers are stored as the client wrote them (integers beyond
// 64 bits included), and a number outside the range of a double is refused by name, never
// stored as `Infinity`. The paths: a plain event; duplicate keys; a batch with top-level context
// and integrations (what the Go and Java libraries send).
TEST_F(TrackingApiTest, NumbersAreStoredAsSentOnEveryPath) {
  const std::string props =
      R"("properties":{"a":9.99,"b":123456789012345678901234567890,"c":1E5,"d":-0.0,"e":-1.5e-7})";
  const std::string bodies[] = {
      R"({"userId":"u","event":"e",)" + props + "}",
      R"({"userId":"x","event":"e","userId":"u",)" + props + "}",
  };
  for (const auto& body : bodies) {
    auto r = Post("/v1/track", body, Basic("wk_web:"));
    ASSERT_EQ(r.result_int(), 200) << r.body();
    EXPECT_NE(log_.Entries().back().payload.find(props), std::string::npos)
        << log_.Entries().back().payload;
  }
  auto r =
      Post("/v1/batch",
           R"({"context":{"library":{"name":"analytics-go","version":"3.3.0"}},)"
           R"("integrations":{"All":true},"batch":[{"type":"track","userId":"u","event":"e",)" +
               props + "}]}",
           Basic("wk_web:"));
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_NE(log_.Entries().back().payload.find(props), std::string::npos)
      << log_.Entries().back().payload;
  EXPECT_EQ(StoredEvent(Stored() - 1).at("context").at("library").at("name").as_string(),
            "analytics-go");
}

TEST_F(TrackingApiTest, NumbersOutsideTheDoubleRangeAreRefusedByName) {
  for (std::string n : {std::string("1e400"), std::string("-1e400"), "1" + std::string(400, '0')}) {
    // A single event (the fast path).
    auto r = Post("/v1/track", R"({"userId":"u","event":"e","properties":{"n":)" + n + "}}",
                  Basic("wk_web:"));
    ASSERT_EQ(r.result_int(), 400) << n << r.body();
    EXPECT_EQ(Body(r).at("rejected").at(0).at("code").as_string(), "number_out_of_range");
    // One event of a batch with defaults to merge (the path that built a DOM): only it is refused.
    r = Post(
        "/v1/batch",
        R"({"context":{"library":{"name":"analytics-java"}},"batch":[)"
        R"({"type":"track","userId":"u","event":"ok","properties":{"n":1}},)"
        R"({"type":"track","userId":"u","event":"bad","messageId":"m-bad","properties":{"n":)" +
            n + "}}]}",
        Basic("wk_web:"));
    ASSERT_EQ(r.result_int(), 200) << n << r.body();
    auto rejected = Body(r).at("rejected").as_array();
    ASSERT_EQ(rejected.size(), 1u);
    EXPECT_EQ(rejected[0].at("index").as_int64(), 1);
    EXPECT_EQ(rejected[0].at("code").as_string(), "number_out_of_range");
    EXPECT_EQ(rejected[0].at("messageId").as_string(), "m-bad");
    // In the batch's own context it would spoil every event: the request is refused.
    r = Post(
        "/v1/batch",
        R"({"context":{"n":)" + n + R"(},"batch":[{"type":"track","userId":"u","event":"e"}]})",
        Basic("wk_web:"));
    ASSERT_EQ(r.result_int(), 400) << n << r.body();
    EXPECT_EQ(Body(r).at("code").as_string(), "number_out_of_range");
  }
  // Everything stored is JSON (no Infinity), and only the good events were stored.
  ASSERT_EQ(Stored(), 3u);
  for (size_t i = 0; i < Stored(); ++i) {
    EXPECT_EQ(StoredEvent(i).at("event").as_string(), "ok");
    EXPECT_EQ(log_.Entries()[i].payload.find("Infinity"), std::string::npos);
  }
}

// Duplicate-key detection is linear and runs after the size check: a body with 64k keys costs
// milliseconds of CPU (it cost seconds when every pair of keys was compared first).
TEST_F(TrackingApiTest, ManyKeysCostLittleCpu) {
  options_.max_request_bytes = 1 << 20;
  api_ =
      std::make_unique<TrackingApi>(options_, &sources_, &log_, dedupe_.get(), &clock_, &metrics_);
  auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  };
  auto keys = [](int from, int count) {
    std::string out;
    for (int i = from; i < from + count; ++i)
      out += "\"" + std::to_string(i) + "\":0,";
    return out;
  };
  // One event of 64k keys (~590 KB): over the event size limit.
  std::string one = "{" + keys(0, 65536) + R"("userId":"u","event":"e"})";
  double start = cpu_ms();
  auto r = Post("/v1/track", one, Basic("wk_web:"));
  double spent = cpu_ms() - start;
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Body(r).at("rejected").at(0).at("code").as_string(), "event_too_large");
  EXPECT_LT(spent, 200.0) << "ms of CPU for one body of 64k keys";
  // A batch of events each just under the limit with 2,800 keys, every one stored.
  std::string batch = R"({"batch":[)";
  for (int e = 0; e < 20; ++e) {
    if (e) batch += ",";
    batch += R"({"type":"track","userId":"u","event":"e","properties":{"p":1},)" +
             keys(e * 2800, 2800) + R"("messageId":"many-)" + std::to_string(e) + "\"}";
  }
  batch += "]}";
  start = cpu_ms();
  r = Post("/v1/batch", batch, Basic("wk_web:"));
  spent = cpu_ms() - start;
  EXPECT_EQ(r.result_int(), 200) << r.body().substr(0, 300);
  EXPECT_EQ(Stored(), 20u);
  EXPECT_LT(spent, 200.0) << "ms of CPU for a batch of 20 events of 2,800 keys";
}

// sources[].rate_limit: a token bucket of events per source. Over it: 429 with Retry-After,
// nothing stored, counted by source; other sources are not affected; refill admits again.
TEST_F(TrackingApiTest, RateLimitPerSourceAnswers429) {
  config::SourceConfig web{"web", config::Sha256Hex("wk_web")};
  web.rate_limit_events_per_second = 2;
  web.rate_limit_burst = 4;
  SourceTable limited({web, {"backend", config::Sha256Hex("wk_be")}});
  api_ =
      std::make_unique<TrackingApi>(options_, &limited, &log_, dedupe_.get(), &clock_, &metrics_);
  auto batch = [](int n, const std::string& tag) {
    std::string b = R"({"batch":[)";
    for (int i = 0; i < n; ++i)
      b += std::string(i ? "," : "") + R"({"type":"track","userId":"u","event":"e","messageId":")" +
           tag + std::to_string(i) + "\"}";
    return b + "]}";
  };
  EXPECT_EQ(Post("/v1/batch", batch(3, "a"), Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Post("/v1/track", R"({"userId":"u","event":"e"})", Basic("wk_web:")).result_int(), 200);
  ASSERT_EQ(Stored(), 4u);
  // The bucket is empty: a batch of 3 needs 1.5 s of refill.
  auto r = Post("/v1/batch", batch(3, "b"), Basic("wk_web:"));
  ASSERT_EQ(r.result_int(), 429) << r.body();
  EXPECT_EQ(Body(r).at("code").as_string(), "rate_limited");
  EXPECT_EQ(r[bhttp::field::retry_after], "2");
  EXPECT_EQ(r["X-RateLimit-Reset"], "2");
  EXPECT_EQ(Stored(), 4u);
  // Another source has its own (here no) limit.
  EXPECT_EQ(Post("/v1/batch", batch(3, "c"), Basic("wk_be:")).result_int(), 200);
  EXPECT_EQ(Stored(), 7u);
  clock_.Advance(std::chrono::milliseconds(1000));  // 2 events of refill: not yet 3
  EXPECT_EQ(Post("/v1/batch", batch(3, "b"), Basic("wk_web:")).result_int(), 429);
  clock_.Advance(std::chrono::milliseconds(500));
  EXPECT_EQ(Post("/v1/batch", batch(3, "b"), Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Stored(), 10u);
  // A batch larger than the burst passes once the bucket is full, then leaves it in debt.
  clock_.Advance(std::chrono::milliseconds(2000));
  EXPECT_EQ(Post("/v1/batch", batch(10, "d"), Basic("wk_web:")).result_int(), 200);
  r = Post("/v1/track", R"({"userId":"u","event":"e"})", Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 429);
  EXPECT_EQ(r[bhttp::field::retry_after], "4");  // 6 events of debt + 1, at 2/s
  std::string scrape = metrics_.RenderPrometheus();
  EXPECT_NE(scrape.find(
                R"(switchyard_ingest_events_refused_total{source="web",reason="rate_limited"} 7)"),
            std::string::npos)
      << scrape;
}

TEST_F(TrackingApiTest, DuplicatesAreAcknowledgedNotStored) {
  std::string ev = R"({"userId":"u","event":"e","messageId":"dup-1"})";
  EXPECT_EQ(Post("/v1/track", ev, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Post("/v1/track", ev, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Stored(), 1u);
  EXPECT_EQ(Post("/v1/track", ev, Basic("wk_be:")).result_int(), 200);  // another source
  EXPECT_EQ(Stored(), 2u);
  // Twice in one batch: stored once.
  EXPECT_EQ(
      Post(
          "/v1/batch",
          R"({"batch":[{"type":"track","userId":"u","event":"e","messageId":"b"},{"type":"track","userId":"u","event":"e","messageId":"b"}]})",
          Basic("wk_web:"))
          .result_int(),
      200);
  EXPECT_EQ(Stored(), 3u);
}

// For a log that partitions by user (kafka), each record names its user: anonymousId, else
// userId, else nothing (the log keys it by messageId). Off by default: nothing copied.
TEST_F(TrackingApiTest, RecordsNameTheirUserOnlyForALogThatAsks) {
  const std::string batch =
      R"({"batch":[{"type":"track","event":"a","userId":"u1","anonymousId":"anon-1"},)"
      R"({"type":"track","event":"b","userId":"u2"},)"
      R"({"type":"track","event":"c","anonymousId":"anon-3"},)"
      R"({"type":"identify","userId":"u4","anonymousId":""}]})";
  EXPECT_EQ(Post("/v1/batch", batch, Basic("wk_web:")).result_int(), 200);
  api_->set_record_users(true);
  EXPECT_EQ(Post("/v1/batch", batch, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(log_.Users(),
            (std::vector<std::string>{"", "", "", "", "anon-1", "u2", "anon-3", "u4"}));
}

TEST_F(TrackingApiTest, FailedAppendIs503AndTheRetryIsStored) {
  log_.fail_with = ResourceExhausted("disk full");
  std::string ev = R"({"userId":"u","event":"e","messageId":"m-503"})";
  auto r = Post("/v1/track", ev, Basic("wk_web:"));
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  EXPECT_EQ(Stored(), 0u);
  log_.fail_with = Status::Ok();
  EXPECT_EQ(Post("/v1/track", ev, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Stored(), 1u);
}

// Issue 18: the dedupe index at its memory bound while its disk fails (it cannot spill): a new
// messageId is answered 503 dedupe_unavailable with Retry-After and nothing of the request is
// stored; once the disk is back the retry is stored.
TEST_F(TrackingApiTest, DedupeAtItsBoundWithAFailingDiskIs503AndTheRetryIsStored) {
  FaultInjectionEnv env;
  DedupeIndex::Options o;
  o.dir = dir_.str() + "/bounded";
  o.clock = &clock_;
  o.max_memory_bytes = 160 << 10;  // 32 table slots per shard
  o.env = &env;
  o.spill_in_background = false;
  dedupe_ = *DedupeIndex::Open(o, &log_);
  api_ =
      std::make_unique<TrackingApi>(options_, &sources_, &log_, dedupe_.get(), &clock_, &metrics_);
  env.SetDiskFull(true);
  int status = 200;
  std::string last;
  for (int i = 0; i < 5'000 && status == 200; ++i) {
    last = R"({"userId":"u","event":"e","messageId":"full-)" + std::to_string(i) + R"("})";
    auto r = Post("/v1/track", last, Basic("wk_web:"));
    status = r.result_int();
    if (status == 503) {
      EXPECT_EQ(Body(r).at("code").as_string(), "dedupe_unavailable");
      EXPECT_EQ(r[bhttp::field::retry_after], "1");
    }
    if (i % 50 == 0) {
      EXPECT_FALSE(dedupe_->Flush().ok());
    }
  }
  ASSERT_EQ(status, 503);
  const size_t stored = Stored();
  EXPECT_LE(dedupe_->memory_bytes(), 160 << 10);
  env.SetDiskFull(false);
  ASSERT_TRUE(dedupe_->Flush().ok());
  EXPECT_EQ(Post("/v1/track", last, Basic("wk_web:")).result_int(), 200);
  EXPECT_EQ(Stored(), stored + 1);
}

// The log's errors name its files (log/local/env.cc: "pwrite <path>: <strerror>"); the server's
// log line keeps that, the client's 503 body does not.
TEST_F(TrackingApiTest, ServerPathsStayOutOf503Bodies) {
  const std::string segment = "/srv/switchyard/data/log/00000000000000000042.seg";
  for (Status failure : {IoError("pwrite " + segment + ": No space left on device"),
                         ResourceExhausted("fallocate " + segment + ": No space left on device"),
                         IoError("fdatasync " + segment + ": Input/output error")}) {
    log_.fail_with = failure;
    auto r = Post("/v1/track", R"({"userId":"u","event":"e"})", Basic("wk_web:"));
    EXPECT_EQ(r.result_int(), 503);
    EXPECT_EQ(Body(r).at("code").as_string(), "log_unavailable");
    EXPECT_EQ(r.body().find("/srv/"), std::string::npos) << r.body();
    EXPECT_EQ(r.body().find(".seg"), std::string::npos) << r.body();
  }
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(TrackingApiTest, AnswerWaitsForDurabilityAndInFlightDuplicateIsRetried) {
  log_.hold_appends = true;
  std::optional<http::Response> first;
  http::Request req{bhttp::verb::post, "/v1/track", 11};
  req.body() = R"({"userId":"u","event":"e","messageId":"slow","writeKey":"wk_web"})";
  api_->Handle(std::move(req), {"10.0.0.1"},
               http::Responder([&](http::Response r) { first = std::move(r); }));
  EXPECT_FALSE(first.has_value());  // not durable yet: no answer
  auto second =
      Post("/v1/track", R"({"userId":"u","event":"e","messageId":"slow"})", Basic("wk_web:"));
  EXPECT_EQ(second.result_int(), 503);
  log_.ReleaseHeld();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->result_int(), 200);
  log_.hold_appends = false;
  EXPECT_EQ(Post("/v1/track", R"({"userId":"u","event":"e","messageId":"slow"})", Basic("wk_web:"))
                .result_int(),
            200);
  EXPECT_EQ(Stored(), 1u);
}

TEST_F(TrackingApiTest, ForwardedForOnlyFromTrustedProxies) {
  options_.trusted_proxies = {"10.0.0.9"};
  api_ =
      std::make_unique<TrackingApi>(options_, &sources_, &log_, dedupe_.get(), &clock_, &metrics_);
  Post("/v1/track", R"({"userId":"u","event":"e"})", Basic("wk_web:"), "", "10.0.0.9",
       "198.51.100.7, 10.0.0.9");
  Post("/v1/track", R"({"userId":"u","event":"e"})", Basic("wk_web:"), "", "10.0.0.8",
       "198.51.100.7");
  ASSERT_EQ(Stored(), 2u);
  EXPECT_EQ(StoredEvent(0).at("context").at("ip").as_string(), "198.51.100.7");
  EXPECT_EQ(StoredEvent(1).at("context").at("ip").as_string(), "10.0.0.8");
}

TEST_F(TrackingApiTest, PreflightAllowsAnalyticsNextHeaders) {
  http::Request req{bhttp::verb::options, "/v1/b", 11};
  req.set(bhttp::field::origin, "https://shop.example");
  req.set(bhttp::field::access_control_request_headers, "authorization, content-type");
  auto r = api_->Preflight(req);
  EXPECT_EQ(r.result_int(), 204);
  EXPECT_EQ(r[bhttp::field::access_control_allow_origin], "https://shop.example");
  EXPECT_EQ(r[bhttp::field::access_control_allow_headers], "authorization, content-type");
}

// The Tracking API over the real local log, with faults injected below the log: what a full
// disk or a failed fsync looks like to a client.
class TrackingApiOverFaultyDiskTest : public ::testing::Test {
 protected:
  static json::object Body(const http::Response& r) { return json::parse(r.body()).as_object(); }

  void SetUp() override {
    log::LocalLogOptions o;
    o.dir = dir_.str() + "/log";
    o.env = &env_;
    log_ = std::move(*log::OpenLocalLog(o));
    dedupe_ =
        std::move(*DedupeIndex::Open({dir_.str() + "/dedupe", 3'600'000, &clock_}, log_.get()));
    api_ = std::make_unique<TrackingApi>(options_, &sources_, log_.get(), dedupe_.get(), &clock_,
                                         &metrics_);
  }

  http::Response Track(const std::string& message_id) {
    http::Request req{bhttp::verb::post, "/v1/track", 11};
    req.body() = R"({"writeKey":"wk","userId":"u","event":"e","messageId":")" + message_id + "\"}";
    std::promise<http::Response> p;
    auto f = p.get_future();
    api_->Handle(std::move(req), {"127.0.0.1"},
                 http::Responder([&p](http::Response r) { p.set_value(std::move(r)); }));
    return f.get();  // the answer comes from the log's completion thread
  }

  std::vector<std::string> StoredIds() {
    std::vector<std::string> ids;
    auto reader = std::move(*log_->OpenReader());
    auto entries = reader->Read(1000, 1 << 20);  // keep the Result alive while iterating
    for (const auto& e : *entries)
      ids.push_back(e.message_id);
    return ids;
  }

  TempDir dir_;
  FaultInjectionEnv env_;
  FakeClock clock_;
  MetricsRegistry metrics_;
  config::IngestConfig options_;
  SourceTable sources_{{{"web", config::Sha256Hex("wk")}}};
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<DedupeIndex> dedupe_;
  std::unique_ptr<TrackingApi> api_;
};

TEST_F(TrackingApiOverFaultyDiskTest, DiskFullIs503ThenTheRetryIsStored) {
  EXPECT_EQ(Track("before").result_int(), 200);
  env_.SetDiskFull(true);
  auto r = Track("during");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  EXPECT_EQ(Body(r).at("code").as_string(), "log_unavailable");
  env_.SetDiskFull(false);
  EXPECT_EQ(Track("during").result_int(), 200);  // the client's retry is not taken for a duplicate
  EXPECT_EQ(StoredIds(), (std::vector<std::string>{"before", "during"}));
}

TEST_F(TrackingApiOverFaultyDiskTest, ShortWriteIs503AndNothingHalfWrittenIsRead) {
  env_.FailWritesShort(1);
  EXPECT_EQ(Track("torn").result_int(), 503);
  EXPECT_EQ(Track("torn").result_int(), 200);
  EXPECT_EQ(StoredIds(), (std::vector<std::string>{"torn"}));
}

TEST_F(TrackingApiOverFaultyDiskTest, FailedFsyncIsNeverAcknowledged) {
  EXPECT_EQ(Track("a").result_int(), 200);
  EXPECT_TRUE(log_->Health().ok());
  env_.FailSyncs(1);
  EXPECT_EQ(Track("b").result_int(), 503);
  // After a failed fsync the log refuses appends until reopened (see docs/formats/log.md).
  EXPECT_EQ(Track("c").result_int(), 503);
  EXPECT_FALSE(log_->Health().ok());  // what /readyz reports
  EXPECT_EQ(StoredIds().front(), "a");
}

}  // namespace
}  // namespace sy::ingest
