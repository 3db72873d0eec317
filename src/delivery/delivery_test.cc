// Unit tests of the delivery framework: settings tables, routing, classification, the
// dead-letter store and DestinationStream over a real local log with a scripted in-process
// destination and fake time (and over HTTP to local socket servers). The HTTP client's own
// tests are in http/client_test.cc, backoff's in base/backoff_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "delivery/destination_stream.h"
#include "delivery/event_fields.h"
#include "delivery/redrive.h"
#include "delivery/routing.h"
#include "delivery/settings.h"
#include "http/client.h"
#include "log/local/log_test_util.h"

namespace sy::delivery {
namespace {

using log::testing::TempDir;

config::RawSetting Scalar(std::string key, std::string v, int line = 7) {
  config::RawSetting r;
  r.key = std::move(key);
  r.scalar = std::move(v);
  r.line = line;
  return r;
}

struct TestSettings {
  std::string url;
  int64_t timeout_ms = 0;
  bool batch = true;
  std::map<std::string, std::string> headers;
  std::string mode;
  int64_t count = -1;
  std::vector<std::string> steps;
};

SettingsTable<TestSettings> Table() {
  using S = TestSettings;
  return SettingsTable<S>()
      .Url("url", &S::url, "target")
      .Required()
      .Duration("timeout", &S::timeout_ms, "timeout")
      .Default("5s")
      .Range(1, 60'000)
      .Bool("batch", &S::batch, "batch")
      .Default("false")
      .Map("headers", &S::headers, "headers")
      .Enum("mode", &S::mode, {"fast", "safe"}, "mode")
      .Default("safe")
      .Int("count", &S::count, "count")
      .Min(1)
      .List("steps", &S::steps, "steps")
      .Items({"ok", "retry"});
}

const SettingsOrigin kOrigin{"f.yaml", "destinations[0].settings", 4};

TEST(Settings, BindsTypedFieldsAndFillsDefaultsFromTheTable) {
  config::RawSetting h;
  h.key = "headers";
  h.kind = config::RawSetting::Kind::kMap;
  h.map = {{"X-Team", "growth"}};
  auto s = ParseSettings(Table(), {Scalar("url", "http://example.com/x"), h}, kOrigin);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->url, "http://example.com/x");
  EXPECT_EQ(s->timeout_ms, 5000);
  EXPECT_FALSE(s->batch);  // the table's default, not the struct's initialiser
  EXPECT_EQ(s->headers.at("X-Team"), "growth");
  EXPECT_EQ(s->mode, "safe");
  EXPECT_EQ(s->count, -1);  // no default in the table: the field keeps its initialiser
  EXPECT_TRUE(s->steps.empty());
  EXPECT_TRUE(CheckSettingsTable(Table().specs()).ok());
}

TEST(Settings, EveryErrorNamesItsKeyAndLine) {
  config::RawSetting steps;
  steps.key = "steps";
  steps.line = 14;
  steps.kind = config::RawSetting::Kind::kList;
  steps.list = {"ok", "explode"};
  auto s = ParseSettings(
      Table(),
      {Scalar("colour", "red", 9), Scalar("batch", "maybe", 10), Scalar("timeout", "2m", 11),
       Scalar("mode", "slow", 12), Scalar("count", "0", 13), steps},
      kOrigin);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.status().message();
  for (const char* want : {
           "f.yaml:9: destinations[0].settings.colour: unknown key (known keys: url, timeout",
           "f.yaml:10: destinations[0].settings.batch: expected true or false",
           "f.yaml:11: destinations[0].settings.timeout: out of range [1ms, 60000ms]",
           "f.yaml:12: destinations[0].settings.mode: expected one of: fast, safe",
           "f.yaml:13: destinations[0].settings.count: must be at least 1",
           "f.yaml:14: destinations[0].settings.steps: 'explode' is not one of: ok, retry",
           "f.yaml:4: destinations[0].settings.url: required key is missing",
       }) {
    EXPECT_NE(m.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << m;
  }
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 7) << m;
  EXPECT_FALSE(ParseSettings(Table(), {Scalar("url", "ftp://x.example")}, kOrigin).ok());
  EXPECT_NE(SettingsHelp(Table().specs()).find("url (url, required): target"), std::string::npos);
}

TEST(Settings, AMalformedValueCountsAsGivenAndIsNotReportedTwice) {
  config::RawSetting url;
  url.key = "url";
  url.kind = config::RawSetting::Kind::kMalformed;  // config already reported it
  auto s = ParseSettings(Table(), {url}, kOrigin);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->url, "");
}

TEST(Settings, CheckSettingsTableCatchesBadDeclarations) {
  using S = TestSettings;
  auto check = [](const SettingsTable<S>& t) { return CheckSettingsTable(t.specs()).ok(); };
  EXPECT_FALSE(check(SettingsTable<S>().Int("count", &S::count, "c").Default("x")));
  EXPECT_FALSE(check(SettingsTable<S>().Int("count", &S::count, "c").Default("0").Min(1)));
  EXPECT_FALSE(
      check(SettingsTable<S>().Url("url", &S::url, "u").Required().Default("http://x.example")));
  EXPECT_FALSE(check(SettingsTable<S>().Url("url", &S::url, "u").Url("url", &S::url, "v")));
  EXPECT_FALSE(check(SettingsTable<S>().Url("url", &S::url, "")));
  EXPECT_FALSE(check(SettingsTable<S>().Enum("mode", &S::mode, {}, "m")));
  EXPECT_TRUE(check(SettingsTable<S>().Enum("mode", &S::mode, {"a"}, "m").Default("a")));
}

log::LogEntry Entry(uint64_t offset, std::string payload, std::string source = "web") {
  return log::LogEntry{Offset(offset), TimestampMs(1000), std::move(source),
                       "m" + std::to_string(offset), std::move(payload)};
}

config::DestinationConfig DestConfig() {
  config::DestinationConfig c;
  c.name = "hooks";
  c.type = "test";
  return c;
}

TEST(Routing, SourcesListSelects) {
  auto c = DestConfig();
  c.sources = {"web"};
  EventRouter r(c, "Test Display");
  RoutedEvent out;
  EXPECT_EQ(r.Route(Entry(1, R"({"type":"track"})", "web"), &out), RouteDecision::kSend);
  EXPECT_EQ(r.Route(Entry(2, R"({"type":"track"})", "backend"), &out), RouteDecision::kOtherSource);
  c.sources = {};
  EventRouter all(c, "Test Display");
  EXPECT_EQ(all.Route(Entry(2, R"({"type":"track"})", "backend"), &out), RouteDecision::kSend);
}

TEST(Routing, IntegrationsObjectMatchesDisplayNameOrConfiguredName) {
  EventRouter r(DestConfig(), "Test Display");
  RoutedEvent out;
  auto route = [&](const std::string& integrations) {
    return r.Route(Entry(1, R"({"type":"track","integrations":)" + integrations + "}"), &out);
  };
  EXPECT_EQ(route(R"({})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({"All":false})"), RouteDecision::kIntegrationsOff);
  EXPECT_EQ(route(R"({"All":false,"Test Display":true})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({"All":false,"hooks":{"opt":1}})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({"All":true,"hooks":false})"), RouteDecision::kIntegrationsOff);
  EXPECT_EQ(route(R"({"Test Display":false})"), RouteDecision::kIntegrationsOff);
  EXPECT_EQ(route(R"({"Mixpanel":false})"), RouteDecision::kSend);
}

TEST(Routing, ConsentCategoriesMustAllBeGranted) {
  auto c = DestConfig();
  c.consent_categories = {"advertising", "analytics"};
  c.consent_deny_by_default_sources = {"shop"};
  EventRouter r(c, "Test Display");
  RoutedEvent out;
  auto route = [&](const std::string& context, const std::string& source = "web") {
    return r.Route(Entry(1, R"({"type":"track","context":)" + context + "}", source), &out);
  };
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"advertising":true,"analytics":true}}})"),
            RouteDecision::kSend);
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"advertising":true,"analytics":false}}})"),
            RouteDecision::kConsentDenied);
  // A category the preferences do not mention is not granted; nor is a truthy non-boolean.
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"advertising":true}}})"),
            RouteDecision::kConsentDenied);
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"advertising":1,"analytics":"yes"}}})"),
            RouteDecision::kConsentDenied);
  // Keys compare decoded, and the last of duplicates counts (as a parse would read it).
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"adv\u0065rtising":true,)"
                  R"("analytics":false,"analytics":true}}})"),
            RouteDecision::kSend);
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":{"advertising":true,)"
                  R"("analytics":true,"analytics":false}}})"),
            RouteDecision::kConsentDenied);
  // Without preferences: the source's default (grant for "web", deny for "shop").
  EXPECT_EQ(route(R"({})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({"consent":{}})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({"consent":{"categoryPreferences":null}})"), RouteDecision::kSend);
  EXPECT_EQ(route(R"({})", "shop"), RouteDecision::kConsentDenied);
  EXPECT_EQ(
      route(R"({"consent":{"categoryPreferences":{"advertising":true,"analytics":true}}})", "shop"),
      RouteDecision::kSend);
  // Replay's preset integrations do not bypass consent.
  EventRouter replay(c, "Test Display", /*integrations_preset=*/true);
  EXPECT_EQ(replay.Route(Entry(1, R"({"type":"track","context":{"consent":{"categoryPreferences":)"
                                  R"({"advertising":false}}}})"),
                         &out),
            RouteDecision::kConsentDenied);
  // A destination without categories ignores consent entirely.
  EventRouter open(DestConfig(), "Test Display");
  EXPECT_EQ(
      open.Route(Entry(1, R"({"context":{"consent":{"categoryPreferences":{}}}})", "shop"), &out),
      RouteDecision::kSend);
  EXPECT_EQ(RouteDecisionName(RouteDecision::kConsentDenied), "consent");
}

// Without filters the router decides from the raw text (no DOM); a filter forces the parse.
// Both must agree on every shape of integrations object, including duplicates and escapes.
TEST(Routing, RawIntegrationsDecisionMatchesTheParsedOne) {
  EventRouter raw(DestConfig(), "Test Display");
  auto filtered_config = DestConfig();
  filtered_config.drop_events = {"never sent"};
  EventRouter parsed(filtered_config, "Test Display");
  const std::vector<std::string> cases = {
      R"({"type":"track","integrations":{}})",
      R"({"type":"track","integrations":{"All":false}})",
      R"({"type":"track","integrations":{"All":null}})",
      R"({"type":"track","integrations":{"All":false,"hooks":true}})",
      R"({"type":"track","integrations":{"All":false,"hooks":{"opt":[1,{"x":false}]}}})",
      R"({"type":"track","integrations":{"All":true,"hooks":false,"Test Display":true}})",
      R"({"type":"track","integrations":{"All":true,"hooks":null}})",
      R"({"type":"track","integrations":{"All":false,"Test Display":1}})",
      R"({"type":"track","integrations" : { "All" : false , "hooks" : true } })",
      R"({"type":"track","integrations":{"All":false},"integrations":{"All":true}})",
      R"({"type":"track","integrations":{"hooks":true,"hooks":false}})",
      R"({"type":"track","integrations":{"All":false,"ho\"oks":true}})",
      R"({"type":"track","integrations":{"All":false,"h\u006fooks":true}})",
      R"({"type":"track","integrations":"not an object"})",
      R"({"type":"track","integrations":[false]})",
      R"({"type":"track","properties":{"integrations":{"All":false}}})",
      R"({"type":"track","integrations":{"All":false},"event":"a \"quoted\" name"})",
  };
  for (const auto& c : cases) {
    RoutedEvent a, b;
    EXPECT_EQ(raw.Route(Entry(1, c), &a), parsed.Route(Entry(1, c), &b)) << c;
  }
  RoutedEvent out;
  EXPECT_EQ(raw.Route(Entry(1, cases[1]), &out), RouteDecision::kIntegrationsOff);
  EXPECT_EQ(raw.Route(Entry(1, cases[3]), &out), RouteDecision::kSend);
  EXPECT_EQ(raw.Route(Entry(1, cases[9]), &out), RouteDecision::kSend);  // the last one counts
  EXPECT_EQ(raw.Route(Entry(1, cases[10]), &out), RouteDecision::kIntegrationsOff);
}

// A log written for this destination alone (replay): the integrations rule is not evaluated,
// the sources rule and the filters still are.
TEST(Routing, PresetIntegrationsSkipOnlyThatRule) {
  auto c = DestConfig();
  c.sources = {"web"};
  EventRouter preset(c, "Test Display", /*integrations_preset=*/true);
  RoutedEvent out;
  const std::string off = R"({"type":"track","integrations":{"All":false}})";
  EXPECT_EQ(preset.Route(Entry(1, off, "web"), &out), RouteDecision::kSend);
  EXPECT_EQ(out.payload, off);
  EXPECT_EQ(preset.Route(Entry(2, off, "backend"), &out), RouteDecision::kOtherSource);
  c.drop_events = {"Debug Ping"};
  EventRouter filtered(c, "Test Display", /*integrations_preset=*/true);
  EXPECT_EQ(
      filtered.Route(Entry(3, R"({"type":"track","event":"Debug Ping","integrations":{}})"), &out),
      RouteDecision::kDroppedEvent);
}

TEST(Routing, FiltersDropEventsAndProperties) {
  auto c = DestConfig();
  c.drop_events = {"Debug Ping"};
  c.drop_properties = {"password", "ssn"};
  EventRouter r(c, "X");
  RoutedEvent out;
  EXPECT_EQ(r.Route(Entry(1, R"({"type":"track","event":"Debug Ping"})"), &out),
            RouteDecision::kDroppedEvent);
  const std::string keep = R"({"type":"track","event":"Signed Up","properties":{"plan":"pro"}})";
  ASSERT_EQ(r.Route(Entry(2, keep), &out), RouteDecision::kSend);
  EXPECT_EQ(out.payload, keep);  // untouched bytes when nothing is dropped
  ASSERT_EQ(r.Route(Entry(3, R"({"type":"identify","traits":{"ssn":"1","name":"a"},)"
                             R"("properties":{"password":"p","plan":"pro"}})"),
                    &out),
            RouteDecision::kSend);
  EXPECT_EQ(out.payload.find("password"), std::string::npos);
  EXPECT_EQ(out.payload.find("ssn"), std::string::npos);
  EXPECT_NE(out.payload.find(R"("plan":"pro")"), std::string::npos);
  EXPECT_NE(out.payload.find(R"("name":"a")"), std::string::npos);
  EXPECT_EQ(out.offset, Offset(3));
  // Dropping a property leaves every other byte as stored: the client's numbers included (a
  // parse and re-serialization wrote 9.99 as 9.99E0 and a 23-digit integer as a double).
  ASSERT_EQ(r.Route(Entry(4, R"({"type":"track","properties":{"price":9.99,"password":"p",)"
                             R"("big":12345678901234567890123,"neg":-0.0},"context":{"n":1e5}})"),
                    &out),
            RouteDecision::kSend);
  EXPECT_EQ(out.payload, R"({"type":"track","properties":{"price":9.99,)"
                         R"("big":12345678901234567890123,"neg":-0.0},"context":{"n":1e5}})");
  EXPECT_EQ(UserKeyOf(R"({"userId":"u1","anonymousId":"a1"})"), "u1");
  EXPECT_EQ(UserKeyOf(R"({"anonymousId":"a1"})"), "a1");
}

TEST(Classify, ConventionOfTheField) {
  auto kind = [](int status, std::string retry_after = "") {
    HttpResponse r;
    r.status = status;
    if (!retry_after.empty()) r.headers.emplace_back("retry-after", retry_after);
    return ClassifyByStatus(r);
  };
  EXPECT_EQ(kind(200).kind, Outcome::Kind::kDelivered);
  EXPECT_EQ(kind(204).kind, Outcome::Kind::kDelivered);
  EXPECT_EQ(kind(400).kind, Outcome::Kind::kRejected);
  EXPECT_EQ(kind(404).kind, Outcome::Kind::kRejected);
  EXPECT_EQ(kind(408).kind, Outcome::Kind::kRetry);
  EXPECT_EQ(kind(503).kind, Outcome::Kind::kRetry);
  Outcome limited = kind(429, "12");
  EXPECT_EQ(limited.kind, Outcome::Kind::kRetry);
  EXPECT_EQ(limited.retry_after_ms, 12000);
  // A date without any reference time (no Date header, no arrival time) cannot be used.
  EXPECT_FALSE(kind(429, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_ms.has_value());
  HttpResponse transport;
  transport.error = "Connection refused";
  EXPECT_EQ(ClassifyByStatus(transport).kind, Outcome::Kind::kRetry);
  transport.refused_by_guard = true;
  EXPECT_EQ(ClassifyByStatus(transport).kind, Outcome::Kind::kRejected);
}

TEST(Classify, RetryAfterAsAnHttpDateInAllThreeForms) {
  // 2015-10-21T07:28:00Z = 1445412480 s.
  const int64_t at = 1'445'412'480'000;
  EXPECT_EQ(ParseRetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT", at - 5'000), 5'000);  // IMF
  EXPECT_EQ(ParseRetryAfterMs("Wednesday, 21-Oct-15 07:28:00 GMT", at - 90'000), 90'000);
  EXPECT_EQ(ParseRetryAfterMs("Wed Oct 21 07:28:00 2015", at - 1'000), 1'000);    // asctime
  EXPECT_EQ(ParseRetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT", at + 60'000), 0);  // past
  EXPECT_EQ(ParseRetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT", at - 10LL * 86'400'000),
            86'400'000);  // capped at a day
  EXPECT_EQ(ParseRetryAfterMs(" 7 ", at), 7'000);
  EXPECT_FALSE(ParseRetryAfterMs("soon", at).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("-3", at).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("12abc", at).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("", at).has_value());

  // The response's own Date header is the reference when present (the server's clock)...
  HttpResponse r;
  r.status = 503;
  r.headers = {{"Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT"},
               {"Date", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  r.received_unix_ms = at + 3'600'000;  // our clock an hour ahead: ignored
  EXPECT_EQ(ClassifyByStatus(r).retry_after_ms, 30'000);
  // ...else the arrival time.
  r.headers = {{"Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT"}};
  r.received_unix_ms = at + 10'000;
  EXPECT_EQ(ClassifyByStatus(r).retry_after_ms, 20'000);
}

DeadLetter Letter(uint64_t offset, std::string destination = "hooks") {
  DeadLetter d;
  d.destination = std::move(destination);
  d.offset = Offset(offset);
  d.source = "web";
  d.message_id = "m" + std::to_string(offset);
  d.reason = "http 400";
  d.attempts = 1;
  d.last_status = 400;
  d.last_response = R"({"error":"bad"})";
  d.event = R"({"type":"track","event":"E)" + std::to_string(offset) + R"("})";
  return d;
}

TEST(DeadLetterStore, AppendsListsAndSurvivesATornTail) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  ASSERT_TRUE(store.Append(Letter(2)).ok());
  ASSERT_TRUE(store.Append(Letter(9, "other")).ok());
  {
    std::ofstream f(dir.path() + "/hooks.dlq", std::ios::app | std::ios::binary);
    f << "SYDL\x10";  // a crash in the middle of a header
  }
  uint64_t skipped = 0;
  auto letters = store.List("hooks", &skipped);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 2u);
  EXPECT_EQ(skipped, 5u);
  EXPECT_EQ((*letters)[1].offset, Offset(2));
  EXPECT_EQ((*letters)[1].event, R"({"type":"track","event":"E2"})");
  EXPECT_EQ((*letters)[1].last_response, R"({"error":"bad"})");
  EXPECT_EQ(store.Destinations(), (std::vector<std::string>{"hooks", "other"}));
  std::string json = DeadLetterToJson((*letters)[0]);
  EXPECT_NE(json.find(R"("event":{"type":"track","event":"E1"})"), std::string::npos) << json;
}

TEST(DeadLetterStore, ChecksumCatchesACorruptRecord) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  ASSERT_TRUE(store.Append(Letter(2)).ok());
  std::string path = dir.path() + "/hooks.dlq";
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(20);
  f.put('#');
  f.close();
  auto letters = store.List("hooks");
  ASSERT_TRUE(letters.ok());
  // The first record is corrupt and skipped; the reader resynchronises on the second.
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].offset, Offset(2));
}

// A destination whose answers are scripted per offset: a queue of outcomes per event; an empty
// queue means delivered. Records every attempt. In-process.
class ScriptedDestination final : public Destination {
 public:
  struct Shared {
    std::mutex mu;
    std::map<uint64_t, std::deque<Outcome>> script;
    std::vector<uint64_t> attempts;     // offsets in attempt order
    std::vector<std::string> payloads;  // what was sent, in attempt order
    std::vector<size_t> batch_sizes;
    std::optional<config::BatchConfig> batch_override;
    std::string attached_name;  // what Attach received
  };
  ScriptedDestination(std::shared_ptr<Shared> s, size_t max_events)
      : s_(std::move(s)), max_events_(max_events) {}
  DestinationLimits limits() const override { return {max_events_, 1 << 20}; }
  EncodedBatch Encode(std::span<const RoutedEvent>) const override { return {}; }
  std::optional<config::BatchConfig> BatchOverride() const override { return s_->batch_override; }
  void Attach(const std::string& name, MetricsRegistry*) override {
    std::lock_guard lock(s_->mu);
    s_->attached_name = name;
  }
  std::optional<std::vector<Outcome>> DeliverInProcess(
      std::span<const RoutedEvent> batch) override {
    std::lock_guard lock(s_->mu);
    s_->batch_sizes.push_back(batch.size());
    std::vector<Outcome> out;
    for (const auto& ev : batch) {
      s_->attempts.push_back(ev.offset.value());
      s_->payloads.push_back(ev.payload);
      auto& q = s_->script[ev.offset.value()];
      if (q.empty()) {
        out.push_back(Outcome::Delivered());
      } else {
        out.push_back(q.front());
        q.pop_front();
      }
    }
    return out;
  }

 private:
  std::shared_ptr<Shared> s_;
  size_t max_events_;
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::LocalLogOptions o;
    o.dir = dir_.path() + "/log";
    auto l = log::OpenLocalLog(o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    log_ = std::move(*l);
    store_ = std::make_unique<DeadLetterStore>(dir_.path() + "/dlq");
  }

  void Append(int n, const std::string& user = "u1", const std::string& source = "web") {
    std::vector<log::LogRecord> records;
    for (int i = 0; i < n; ++i) {
      records.push_back({source, "m" + std::to_string(next_id_), TimestampMs(clock_.Now().value()),
                         R"({"type":"track","event":"E","userId":")" + user + R"(","n":)" +
                             std::to_string(next_id_) + "}"});
      next_id_++;
    }
    ASSERT_TRUE(log::testing::AppendSync(*log_, std::move(records)).status.ok());
  }

  std::unique_ptr<DestinationStream> StartStream(config::DestinationConfig c,
                                                 size_t max_events = 10, size_t window = 1000) {
    StreamOptions o;
    o.config = std::move(c);
    o.display_name = "Scripted";
    o.destination = std::make_unique<ScriptedDestination>(shared_, max_events);
    o.log = log_.get();
    o.dead_letters = store_.get();
    o.clock = &clock_;
    o.metrics = &metrics_;
    o.backoff = {1000, 60'000};
    o.backoff_seed = 7;
    o.window_events = window;
    o.max_idle_wait_ms = 1;
    o.live = live_;
    o.stats = stats_;
    if (make_transform_) o.transform = make_transform_();
    auto s = DestinationStream::Start(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }

  // Advances fake time in steps until `done` holds (or fails after 20 s of real time).
  template <typename F>
  void AdvanceUntil(F done, std::chrono::milliseconds step = std::chrono::milliseconds(500)) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "condition never held";
      clock_.Advance(step);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  TempDir dir_;
  FakeClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<DeadLetterStore> store_;
  std::shared_ptr<ScriptedDestination::Shared> shared_ =
      std::make_shared<ScriptedDestination::Shared>();
  int next_id_ = 0;
  observe::LiveFeed* live_ = nullptr;                                // set by a test that watches
  std::shared_ptr<observe::DeliveryStats> stats_;                    // likewise
  std::function<std::unique_ptr<EventTransform>()> make_transform_;  // likewise
};

config::DestinationConfig StreamConfig() {
  config::DestinationConfig c;
  c.name = "hooks";
  c.type = "scripted";
  c.batch.max_wait_ms = 0;
  c.retry_window_ms = 60'000;
  return c;
}

TEST_F(StreamTest, DeliversEverythingAndCommitsTheCursor) {
  Append(25);
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(25); });
  EXPECT_EQ(s->delivered(), 25u);
  s->Stop();
  for (size_t n : shared_->batch_sizes)
    EXPECT_LE(n, 10u);  // the destination's limit
  auto metrics = metrics_.RenderPrometheus();
  EXPECT_NE(metrics.find(R"(switchyard_delivery_delivered_total{destination="hooks"} 25)"),
            std::string::npos)
      << metrics;
  // A restarted stream resumes at the committed point: nothing is sent twice.
  shared_->attempts.clear();
  Append(1);
  auto again = StartStream(StreamConfig());
  AdvanceUntil([&] { return again->committed() == Offset(26); });
  EXPECT_EQ(shared_->attempts, (std::vector<uint64_t>{25}));
}

TEST_F(StreamTest, TheDestinationsBatchOverrideReplacesTheBatchSectionAndItIsAttached) {
  // As a warehouse does (its sync_interval and row cap): every stream applies it, the server's
  // and replay's alike.
  config::BatchConfig b;
  b.max_events = 3;
  b.max_wait_ms = 0;
  shared_->batch_override = b;
  Append(7);
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(7); });
  std::lock_guard lock(shared_->mu);
  EXPECT_EQ(shared_->batch_sizes, (std::vector<size_t>{3, 3, 1}));  // not the limit's 10
  EXPECT_EQ(shared_->attached_name, "hooks");
}

TEST_F(StreamTest, BatchWaitsUpToMaxWaitForMoreEvents) {
  auto c = StreamConfig();
  c.batch.max_wait_ms = 10'000;
  Append(3);
  auto s = StartStream(c);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s->delivered(), 0u);  // fake time has not moved: the batch is still filling
  clock_.Advance(std::chrono::milliseconds(10'000));
  AdvanceUntil([&] { return s->delivered() == 3; }, std::chrono::milliseconds(0));
  EXPECT_EQ(shared_->batch_sizes, (std::vector<size_t>{3}));
}

TEST_F(StreamTest, RetriesThenDeliversAndCursorWaitsForTheFinalOutcome) {
  shared_->script[0] = {Outcome::Retry("503"), Outcome::Retry("503")};
  Append(3);
  auto s = StartStream(StreamConfig());
  // Events 1 and 2 are delivered at once, but event 0 holds the cursor at 0.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->delivered() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s->delivered(), 2u);
  EXPECT_EQ(s->committed(), Offset(0));
  AdvanceUntil([&] { return s->committed() == Offset(3); });
  EXPECT_EQ(s->retried(), 2u);
  EXPECT_EQ(s->dead_lettered(), 0u);
  std::lock_guard lock(shared_->mu);
  EXPECT_EQ(std::count(shared_->attempts.begin(), shared_->attempts.end(), 0u), 3);
}

TEST_F(StreamTest, RetryAfterIsHonoured) {
  shared_->script[0] = {Outcome::Retry("429", 30'000)};
  Append(1);
  auto s = StartStream(StreamConfig());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->retried() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s->retried(), 1u);
  clock_.Advance(std::chrono::milliseconds(29'000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s->delivered(), 0u);  // not before Retry-After
  clock_.Advance(std::chrono::milliseconds(1'000));
  AdvanceUntil([&] { return s->delivered() == 1; }, std::chrono::milliseconds(0));
}

TEST_F(StreamTest, AWallClockStepNeitherRushesNorStallsARetry) {
  // Retries are scheduled on the monotonic clock: a wall clock stepped forward (an NTP
  // correction, a resumed VM) must not send before the receiver's Retry-After, and one stepped
  // back must not hold the retry for the size of the step.
  shared_->script[0] = {Outcome::Retry("429", 30'000), Outcome::Retry("429", 30'000)};
  Append(1);
  auto s = StartStream(StreamConfig());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->retried() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s->retried(), 1u);
  clock_.StepWallClock(std::chrono::hours(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s->retried(), 1u);  // not resent: 30 s have not passed
  clock_.Advance(std::chrono::milliseconds(30'000));
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->retried() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s->retried(), 2u);
  clock_.StepWallClock(-std::chrono::hours(2));
  clock_.Advance(std::chrono::milliseconds(30'000));
  AdvanceUntil([&] { return s->delivered() == 1; }, std::chrono::milliseconds(0));
}

TEST_F(StreamTest, RetriesStopAtTheWindowThenDeadLetter) {
  std::deque<Outcome> forever(1000, Outcome::Retry("http 503"));
  shared_->script[0] = forever;
  Append(2);
  auto c = StreamConfig();
  c.retry_window_ms = 60'000;
  int64_t start = clock_.Now().value();
  auto s = StartStream(c);
  AdvanceUntil([&] { return s->committed() == Offset(2); }, std::chrono::milliseconds(250));
  EXPECT_EQ(s->dead_lettered(), 1u);
  EXPECT_EQ(s->delivered(), 1u);
  EXPECT_GE(clock_.Now().value() - start, 60'000);
  auto letters = store_->List("hooks");
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].offset, Offset(0));
  EXPECT_NE((*letters)[0].reason.find("retry window exceeded"), std::string::npos);
  EXPECT_NE((*letters)[0].reason.find("http 503"), std::string::npos);
  // Exponential backoff: far fewer attempts than one per 250 ms step over 60 s.
  EXPECT_GE((*letters)[0].attempts, 4);
  EXPECT_LE((*letters)[0].attempts, 40);
}

// A transform scripted by the event's "n": n%5 0 keep, 1 drop, 2 three copies, 3 error,
// 4 RetryError on the first try, then keep.
class ScriptedTransform final : public EventTransform {
 public:
  explicit ScriptedTransform(std::shared_ptr<std::atomic<int>> calls) : calls_(std::move(calls)) {}
  std::vector<TransformResult> Transform(std::span<const RoutedEvent> events) override {
    std::vector<TransformResult> out;
    for (const auto& e : events) {
      (*calls_)++;
      const size_t at = e.payload.find("\"n\":");
      const int n = std::stoi(e.payload.substr(at + 4));
      TransformResult r;
      switch (n % 5) {
        case 0:
          break;
        case 1:
          r.kind = TransformResult::Kind::kEvents;
          break;
        case 2:
          r.kind = TransformResult::Kind::kEvents;
          for (int i = 0; i < 3; ++i)
            r.payloads.push_back(R"({"type":"track","event":"copy","userId":"u","n":)" +
                                 std::to_string(n) + "}");
          break;
        case 3:
          r.kind = TransformResult::Kind::kDeadLetter;
          r.reason = "function f: thrown: TypeError: x is undefined\nf@f.js:2:3";
          break;
        case 4:
          if (retried_.insert(n).second) {
            r.kind = TransformResult::Kind::kRetry;
            r.reason = "function f: RetryError: busy";
          }
          break;
      }
      out.push_back(std::move(r));
    }
    return out;
  }
  void ThreadDone() override { done_ = true; }
  static inline std::atomic<bool> done_{false};

 private:
  std::shared_ptr<std::atomic<int>> calls_;
  std::set<int> retried_;
};

TEST_F(StreamTest, FunctionsKeepDropFanOutDeadLetterAndRetry) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  make_transform_ = [calls] { return std::make_unique<ScriptedTransform>(calls); };
  // One copy of offset 2 is retried once: the cursor must not pass 2 before it is delivered.
  shared_->script[2] = {Outcome::Retry("503")};
  Append(5);
  auto s = StartStream(StreamConfig());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // 0 kept, 2's three copies (one retried): 3 deliveries before any time passes.
  while (s->delivered() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The commit point reaches 2 (1 was dropped) and stays there while a copy of 2 waits.
  while (s->committed() < Offset(2) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past a commit interval
  EXPECT_EQ(s->committed(), Offset(2));
  AdvanceUntil([&] { return s->committed() == Offset(5); });
  EXPECT_EQ(s->delivered(), 5u);  // 0, three copies of 2, 4 after its retry
  EXPECT_EQ(s->skipped(), 1u);    // 1, dropped by the function
  EXPECT_EQ(s->dead_lettered(), 1u);
  EXPECT_EQ(s->retried(), 2u);  // 4's RetryError and 2's copy answered 503
  EXPECT_EQ(calls->load(), 6);  // 4 ran twice
  auto letters = store_->List("hooks");
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].offset, Offset(3));
  EXPECT_EQ((*letters)[0].reason, "function f: thrown: TypeError: x is undefined\nf@f.js:2:3");
  // The stored event, before functions, marked so: a redrive runs the functions on it again.
  EXPECT_EQ((*letters)[0].event, R"({"type":"track","event":"E","userId":"u1","n":3})");
  EXPECT_TRUE((*letters)[0].before_functions);
  s->Stop();
  EXPECT_TRUE(ScriptedTransform::done_.load());  // on the stream's thread, at its end
  std::lock_guard lock(shared_->mu);
  EXPECT_EQ(std::count(shared_->attempts.begin(), shared_->attempts.end(), 2u), 4);
}

TEST_F(StreamTest, RejectedGoesToDeadLettersAtOnceWithReason) {
  shared_->script[1] = {Outcome::Rejected("http 400")};
  Append(3);
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(3); });
  EXPECT_EQ(s->rejected(), 1u);
  EXPECT_EQ(s->dead_lettered(), 1u);
  EXPECT_EQ(s->retried(), 0u);
  auto letters = store_->List("hooks");
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].reason, "http 400");
  EXPECT_EQ((*letters)[0].message_id, "m1");
}

TEST_F(StreamTest, AFailedDeadLetterAppendKeepsTheCursorAndIsRetried) {
  // The store's directory path is taken by a regular file: appends fail until it is removed.
  std::string blocked = dir_.path() + "/blocked";
  { std::ofstream(blocked) << "x"; }
  store_ = std::make_unique<DeadLetterStore>(blocked);
  shared_->script[0] = {Outcome::Rejected("http 400")};
  Append(2);
  auto s = StartStream(StreamConfig());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->delivered() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(s->dead_lettered(), 0u);
  EXPECT_EQ(s->committed(), Offset(0));  // not final until the dead letter is durable
  std::filesystem::remove(blocked);
  AdvanceUntil([&] { return s->committed() == Offset(2); });
  EXPECT_EQ(s->dead_lettered(), 1u);
  EXPECT_EQ(store_->List("hooks")->size(), 1u);
  std::lock_guard lock(shared_->mu);
  EXPECT_EQ(std::count(shared_->attempts.begin(), shared_->attempts.end(), 0u), 1);  // not resent
}

TEST_F(StreamTest, ManyRejectionsAreDeadLetteredTogether) {
  for (uint64_t o = 0; o < 50; ++o)
    shared_->script[o] = {Outcome::Rejected("http 422")};
  Append(50);
  auto s = StartStream(StreamConfig(), 50);
  AdvanceUntil([&] { return s->committed() == Offset(50); });
  EXPECT_EQ(s->dead_lettered(), 50u);
  auto letters = store_->List("hooks");
  ASSERT_EQ(letters->size(), 50u);
  for (uint64_t o = 0; o < 50; ++o)
    EXPECT_EQ((*letters)[o].offset, Offset(o));
}

TEST_F(StreamTest, PerUserOrderingHoldsBackOnlyThatUser) {
  shared_->script[0] = {Outcome::Retry("503")};
  Append(1, "alice");  // offset 0: fails once
  Append(1, "bob");    // offset 1
  Append(1, "alice");  // offset 2: must wait for offset 0
  auto c = StreamConfig();
  c.ordering = config::Ordering::kPerUser;
  auto s = StartStream(c);
  AdvanceUntil([&] { return s->committed() == Offset(3); });
  std::lock_guard lock(shared_->mu);
  auto pos = [&](uint64_t o) {
    return std::find(shared_->attempts.begin(), shared_->attempts.end(), o) -
           shared_->attempts.begin();
  };
  // alice's second event is first attempted after her first one's retry.
  std::vector<uint64_t> expect = {0, 1, 0, 2};
  EXPECT_EQ(shared_->attempts, expect);
  EXPECT_LT(pos(1), pos(2));
}

TEST_F(StreamTest, WithoutOrderingLaterEventsOfTheUserGoAhead) {
  shared_->script[0] = {Outcome::Retry("503")};
  Append(1, "alice");
  Append(1, "alice");
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(2); });
  std::vector<uint64_t> expect = {0, 1, 0};
  EXPECT_EQ(shared_->attempts, expect);
}

TEST_F(StreamTest, RoutingSkipsOtherSourcesAndStillAdvances) {
  auto c = StreamConfig();
  c.sources = {"web"};
  Append(2, "u", "backend");
  Append(1, "u", "web");
  auto s = StartStream(c);
  AdvanceUntil([&] { return s->committed() == Offset(3); });
  EXPECT_EQ(s->skipped(), 2u);
  EXPECT_EQ(shared_->attempts, (std::vector<uint64_t>{2}));
}

TEST_F(StreamTest, TheLiveFeedAndTheFiguresSeeEveryOutcome) {
  observe::LiveFeed feed;
  live_ = &feed;
  stats_ = std::make_shared<observe::DeliveryStats>();
  auto watch = feed.Subscribe(observe::TopicKind::kDestination, "hooks", 1'000);
  auto other = feed.Subscribe(observe::TopicKind::kDestination, "elsewhere", 1'000);
  shared_->script[0] = {Outcome::Retry("http 503")};
  shared_->script[1] = {Outcome::Rejected("http 400")};
  std::vector<log::LogRecord> r;
  auto add = [&](std::string source, std::string id, std::string event) {
    r.push_back({std::move(source), std::move(id), clock_.Now(),
                 R"({"type":"track","event":")" + event + R"(","userId":"u"})"});
  };
  add("web", "m0", "A");        // retried, then delivered
  add("web", "m1", "A");        // refused: dead-lettered
  add("web", "m2", "Dropped");  // filtered by drop_events
  add("backend", "m3", "A");    // another source's: neither shown nor counted
  ASSERT_TRUE(log::testing::AppendSync(*log_, std::move(r)).status.ok());
  auto c = StreamConfig();
  c.sources = {"web"};
  c.drop_events = {"Dropped"};
  auto s = StartStream(c);
  AdvanceUntil([&] { return s->committed() == Offset(4); });
  s->Stop();

  std::vector<observe::LiveRecord> got;
  watch->Take(&got, 100, 0);
  std::multiset<std::string> seen;
  for (const auto& rec : got) {
    EXPECT_EQ(rec.destination, "hooks");
    EXPECT_EQ(rec.source, "web");
    EXPECT_EQ(rec.type, "track");
    seen.insert(std::string(observe::StageName(rec.stage)) + " " + rec.message_id + " " +
                rec.detail);
  }
  EXPECT_EQ(seen,
            (std::multiset<std::string>{"retrying m0 http 503", "delivered m0 ",
                                        "dead_lettered m1 http 400", "filtered m2 drop_events"}));
  std::vector<observe::LiveRecord> none;
  EXPECT_EQ(other->Take(&none, 100, 0), 0u);

  auto w = stats_->Snapshot(clock_.Now().value(), 60);
  EXPECT_EQ(w.total.delivered, 1u);
  EXPECT_EQ(w.total.retried, 1u);
  EXPECT_EQ(w.total.failed, 1u);
  EXPECT_EQ(w.total.dead_lettered, 1u);
  EXPECT_EQ(w.total.filtered, 1u);
  EXPECT_GE(w.p50_ms, 1);  // delivered after its retry's backoff: fake time moved on
}

TEST_F(StreamTest, InFlightWindowBoundsEventsRead) {
  std::deque<Outcome> forever(100000, Outcome::Retry("503"));
  shared_->script[0] = forever;
  Append(50);
  auto c = StreamConfig();
  c.retry_window_ms = 3'600'000;
  auto s = StartStream(c, 10, /*window=*/20);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->delivered() < 19 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s->delivered(), 19u);  // offset 0 stuck: the window holds 20 events, no more read
  EXPECT_EQ(s->committed(), Offset(0));
  s->Stop();
  // After a restart the stuck event and everything behind it is read again: at least once.
  EXPECT_EQ(s->committed(), Offset(0));
}

TEST_F(StreamTest, RedriveSendsDeadLettersAgain) {
  shared_->script[0] = {Outcome::Rejected("http 400")};
  shared_->script[1] = {Outcome::Rejected("http 400"), Outcome::Rejected("still bad")};
  Append(2);
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(2); });
  s->Stop();
  ASSERT_EQ(store_->List("hooks")->size(), 2u);
  ScriptedDestination dest(shared_, 10);
  auto r = RedriveDeadLetters(store_.get(), "hooks", &dest, nullptr, false, &clock_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delivered, 1u);
  EXPECT_EQ(r->kept, 1u);
  auto left = store_->List("hooks");
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].offset, Offset(1));
  EXPECT_EQ((*left)[0].attempts, 2);
  EXPECT_EQ((*left)[0].reason, "redrive: still bad");
}

// Today's functions, "fixed": {"event":"bad"} still fails, "drop" is dropped, "fan" becomes two
// events, anything else gets "fixed":true.
class FixedTransform final : public EventTransform {
 public:
  std::vector<TransformResult> Transform(std::span<const RoutedEvent> events) override {
    std::vector<TransformResult> out;
    for (const auto& e : events) {
      seen.push_back(e.payload);
      TransformResult r;
      r.kind = TransformResult::Kind::kEvents;
      if (e.payload.find(R"("event":"bad")") != std::string::npos) {
        r.kind = TransformResult::Kind::kDeadLetter;
        r.reason = "function f: thrown: Error: still broken";
      } else if (e.payload.find(R"("event":"fan")") != std::string::npos) {
        r.payloads = {R"({"part":1})", R"({"part":2})"};
      } else if (e.payload.find(R"("event":"drop")") == std::string::npos) {
        r.payloads = {e.payload.substr(0, e.payload.size() - 1) + R"(,"fixed":true})"};
      }
      out.push_back(std::move(r));
    }
    return out;
  }
  std::vector<std::string> seen;
};

TEST_F(StreamTest, RedriveRunsTodaysFunctionsOnLettersAFunctionFailedOn) {
  // A letter the stream made: its function threw (ScriptedTransform: n % 5 == 3).
  auto calls = std::make_shared<std::atomic<int>>(0);
  make_transform_ = [calls] { return std::make_unique<ScriptedTransform>(calls); };
  Append(4);  // 0 kept, 1 dropped, 2 fanned out, 3 dead-lettered by the function
  auto s = StartStream(StreamConfig());
  AdvanceUntil([&] { return s->committed() == Offset(4); });
  s->Stop();
  auto add = [&](uint64_t offset, std::string event, bool before_functions) {
    DeadLetter d;
    d.destination = "hooks";
    d.offset = Offset(offset);
    d.source = "web";
    d.message_id = "m" + std::to_string(offset);
    d.reason = before_functions ? "function f: thrown: Error: x" : "http 400";
    d.attempts = 1;
    d.event = std::move(event);
    d.before_functions = before_functions;
    ASSERT_TRUE(store_->Append(d).ok());
  };
  add(10, R"({"event":"drop"})", true);
  add(11, R"({"event":"bad"})", true);
  add(12, R"({"event":"out"})", false);  // the functions' output, refused by the destination
  add(13, R"({"event":"fan"})", true);
  shared_->script[13] = {Outcome::Delivered(), Outcome::Rejected("http 400")};
  add(14, R"({"event":"fan"})", true);
  shared_->script[14] = {Outcome::Rejected("http 400"), Outcome::Rejected("http 400")};
  ASSERT_EQ(store_->List("hooks")->size(), 6u);
  {
    std::lock_guard lock(shared_->mu);
    shared_->payloads.clear();
  }
  ScriptedDestination dest(shared_, 10);
  FixedTransform fixed;
  auto r =
      RedriveDeadLetters(store_.get(), "hooks", &dest, nullptr, false, &clock_, nullptr, &fixed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delivered, 2u);  // 3 (fixed) and 12 (as it was)
  EXPECT_EQ(r->dropped, 1u);    // 10
  EXPECT_EQ(r->kept, 3u);       // 11, 13's second part, 14
  // The letter the stream made went through today's functions; 12 did not.
  EXPECT_EQ(fixed.seen.size(), 5u);
  EXPECT_EQ(fixed.seen[0], R"({"type":"track","event":"E","userId":"u1","n":3})");
  {
    std::lock_guard lock(shared_->mu);
    ASSERT_GE(shared_->payloads.size(), 2u);
    EXPECT_EQ(shared_->payloads[0],
              R"({"type":"track","event":"E","userId":"u1","n":3,"fixed":true})");
    EXPECT_EQ(shared_->payloads[1], R"({"event":"out"})");
  }
  auto left = store_->List("hooks");
  ASSERT_EQ(left->size(), 3u);
  // Still failing in the function: kept with the new reason, still before functions.
  EXPECT_EQ((*left)[0].offset, Offset(11));
  EXPECT_EQ((*left)[0].reason, "redrive: function f: thrown: Error: still broken");
  EXPECT_TRUE((*left)[0].before_functions);
  EXPECT_EQ((*left)[0].attempts, 2);
  // A fan-out partly delivered: the failed output stays, after functions.
  EXPECT_EQ((*left)[1].offset, Offset(13));
  EXPECT_EQ((*left)[1].event, R"({"part":2})");
  EXPECT_FALSE((*left)[1].before_functions);
  // Nothing of it delivered: the letter stays as stored, to run the functions again next time.
  EXPECT_EQ((*left)[2].offset, Offset(14));
  EXPECT_EQ((*left)[2].event, R"({"event":"fan"})");
  EXPECT_TRUE((*left)[2].before_functions);
  EXPECT_EQ((*left)[2].reason, "redrive: http 400");
  // The flag survives the file: a letter's JSON carries it.
  EXPECT_NE(DeadLetterToJson((*left)[0]).find(R"("beforeFunctions":true)"), std::string::npos);
  EXPECT_EQ(DeadLetterToJson((*left)[1]).find("beforeFunctions"), std::string::npos);
}

// Accepts connections (kernel backlog) but never answers: a hung receiver.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// One POST per event to a fixed URL; default classification.
class PostEach final : public Destination {
 public:
  explicit PostEach(std::string url) : url_(std::move(url)) {}
  DestinationLimits limits() const override { return {1, 1 << 20}; }
  EncodedBatch Encode(std::span<const RoutedEvent> batch) const override {
    EncodedBatch out;
    for (size_t i = 0; i < batch.size(); ++i) {
      HttpRequest r;
      r.url = url_;
      r.body = batch[i].payload;
      r.events = {i};
      out.requests.push_back(std::move(r));
    }
    return out;
  }

 private:
  std::string url_;
};

TEST_F(StreamTest, StopAbandonsARoundAHungReceiverNeverAnswersAndKeepsItUncommitted) {
  SilentServer silent;
  auto client = http::CreateCurlHttpClient({.threads = 1, .timeout_ms = 60'000});
  ASSERT_TRUE(client.ok());
  Append(3);
  StreamOptions o;
  o.config = StreamConfig();
  o.config.allow_private_network = true;
  o.destination =
      std::make_unique<PostEach>("http://127.0.0.1:" + std::to_string(silent.port()) + "/");
  o.log = log_.get();
  o.http = client->get();
  o.dead_letters = store_.get();
  o.clock = &clock_;
  o.metrics = &metrics_;
  o.stop_grace_ms = 100;
  o.max_idle_wait_ms = 1;
  auto s = DestinationStream::Start(std::move(o));
  ASSERT_TRUE(s.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the round is in flight
  auto t0 = std::chrono::steady_clock::now();
  (*s)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ((*s)->committed(), Offset(0));
  EXPECT_EQ((*s)->delivered(), 0u);
  s->reset();
  client->reset();  // completes the abandoned requests; their callbacks must not touch the stream
}

}  // namespace
}  // namespace sy::delivery

namespace sy::delivery {
namespace {

// An HTTP/1.1 server on 127.0.0.1:0, a thread per connection, answering each request from
// `answer(body)` → (status, delay before answering). Records request bodies and the most
// requests it held open at once.
class ScriptServer {
 public:
  using Answer = std::function<std::pair<int, std::chrono::milliseconds>(const std::string&)>;
  explicit ScriptServer(Answer answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::lock_guard lock(mu_);
        conns_.emplace_back([this, c] { Serve(c); });
      }
    });
  }
  ~ScriptServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    std::vector<std::thread> conns;
    {
      std::lock_guard lock(mu_);
      conns.swap(conns_);
      for (int c : open_)
        ::shutdown(c, SHUT_RDWR);
    }
    for (auto& t : conns)
      t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  int max_concurrent() {
    std::lock_guard lock(mu_);
    return max_concurrent_;
  }

 private:
  void Serve(int c) {
    {
      std::lock_guard lock(mu_);
      open_.push_back(c);
    }
    std::string buf;
    char tmp[8192];
    while (true) {
      size_t head_end = buf.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = 0;
        auto p = buf.find("Content-Length: ");
        if (p != std::string::npos && p < head_end) cl = std::stoul(buf.substr(p + 16));
        if (buf.size() >= head_end + 4 + cl) {
          std::string body = buf.substr(head_end + 4, cl);
          buf.erase(0, head_end + 4 + cl);
          {
            std::lock_guard lock(mu_);
            bodies_.push_back(body);
            max_concurrent_ = std::max(max_concurrent_, ++concurrent_);
          }
          auto [status, delay] = answer_(body);
          std::this_thread::sleep_for(delay);
          {
            std::lock_guard lock(mu_);
            --concurrent_;
          }
          std::string res =
              "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
          ::send(c, res.data(), res.size(), MSG_NOSIGNAL);
          continue;
        }
      }
      ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
    }
    std::lock_guard lock(mu_);
    std::erase(open_, c);
    ::close(c);
  }

  Answer answer_;
  int fd_;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<int> open_;
  std::vector<std::string> bodies_;
  int concurrent_ = 0;
  int max_concurrent_ = 0;
};

// POSTs JSON arrays of up to `max_events` events to a URL; default classification.
class PostArrays final : public Destination {
 public:
  PostArrays(std::string url, size_t max_events) : url_(std::move(url)), max_(max_events) {}
  DestinationLimits limits() const override { return {max_, 1 << 20}; }
  EncodedBatch Encode(std::span<const RoutedEvent> batch) const override {
    EncodedBatch out;
    HttpRequest r;
    r.url = url_;
    r.body = "[";
    for (size_t i = 0; i < batch.size(); ++i) {
      r.body += (i ? "," : "") + batch[i].payload;
      r.events.push_back(i);
    }
    r.body += "]";
    out.requests.push_back(std::move(r));
    return out;
  }

 private:
  std::string url_;
  size_t max_;
};

size_t EventsIn(const std::string& body) {
  return static_cast<size_t>(std::count(body.begin(), body.end(), '{'));
}

class HttpStreamTest : public StreamTest {
 protected:
  void SetUp() override {
    StreamTest::SetUp();
    auto c = http::CreateCurlHttpClient({.threads = 2});
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  std::unique_ptr<DestinationStream> StartHttp(config::DestinationConfig c,
                                               std::unique_ptr<Destination> d, size_t rounds = 4) {
    c.allow_private_network = true;
    StreamOptions o;
    o.config = std::move(c);
    o.destination = std::move(d);
    o.log = log_.get();
    o.http = client_.get();
    o.dead_letters = store_.get();
    o.clock = &clock_;
    o.metrics = &metrics_;
    o.backoff = {1000, 60'000};
    o.backoff_seed = 7;
    o.max_idle_wait_ms = 1;
    o.max_rounds_in_flight = rounds;
    auto s = DestinationStream::Start(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  template <typename F>
  bool WaitReal(F done, std::chrono::seconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  std::unique_ptr<http::HttpClient> client_;
};

TEST_F(HttpStreamTest, SeveralRoundsAreInFlightAtOnceAndNeverMoreThanTheLimit) {
  // Every answer takes 300 ms; rounds of one event each. One round at a time would keep one
  // request open; the stream keeps max_rounds_in_flight (3) open.
  ScriptServer server([](const std::string&) {
    return std::pair{200, std::chrono::milliseconds(300)};
  });
  auto c = StreamConfig();
  c.batch.max_events = 1;
  Append(9);
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 1), 3);
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(9); }));
  EXPECT_EQ(s->delivered(), 9u);
  EXPECT_EQ(server.max_concurrent(), 3);
  EXPECT_EQ(server.bodies().size(), 9u);  // each exactly once
}

TEST_F(HttpStreamTest, PerUserOrderingNeverHasTwoEventsOfAUserInFlight) {
  // Rounds could overlap (4 allowed, answers take 100 ms), but every event is user u1's: each
  // waits for the previous one's answer, so they arrive one at a time and in log order.
  ScriptServer server([](const std::string&) {
    return std::pair{200, std::chrono::milliseconds(100)};
  });
  auto c = StreamConfig();
  c.ordering = config::Ordering::kPerUser;
  Append(3, "u1");
  Append(2, "u2");
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 10));
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(5); }));
  auto bodies = server.bodies();
  std::vector<std::string> u1;
  for (const auto& b : bodies) {
    for (int n = 0; n < 3; ++n)
      if (b.find("\"n\":" + std::to_string(n) + "}") != std::string::npos)
        u1.push_back(std::to_string(n));
  }
  EXPECT_EQ(u1, (std::vector<std::string>{"0", "1", "2"}));  // one per request, in order
  EXPECT_EQ(bodies.size(), 3u);  // u2's two events rode along with u1's first two
  EXPECT_LE(server.max_concurrent(), 1);
  s->Stop();
}

// PostArrays, but an event whose payload has "skip" is skipped (EncodedBatch::skipped), as a
// vendor encoder skips a call the vendor has no concept for.
class PostArraysSkipping final : public Destination {
 public:
  explicit PostArraysSkipping(std::string url) : url_(std::move(url)) {}
  DestinationLimits limits() const override { return {10, 1 << 20}; }
  EncodedBatch Encode(std::span<const RoutedEvent> batch) const override {
    EncodedBatch out;
    HttpRequest r;
    r.url = url_;
    r.body = "[";
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].payload.find("skip") != std::string::npos) {
        out.skipped.emplace_back(i, "no concept for it");
        continue;
      }
      r.body += (r.events.empty() ? "" : ",") + batch[i].payload;
      r.events.push_back(i);
    }
    r.body += "]";
    if (!r.events.empty()) out.requests.push_back(std::move(r));
    return out;
  }

 private:
  std::string url_;
};

TEST_F(HttpStreamTest, EventsTheEncoderSkipsAreFinalAndCountedAsFilteredNotDeadLettered) {
  ScriptServer server([](const std::string&) {
    return std::pair{200, std::chrono::milliseconds(0)};
  });
  stats_ = std::make_shared<observe::DeliveryStats>();
  std::vector<log::LogRecord> r;
  for (const char* e : {"A", "skip", "B", "skip"})
    r.push_back({"web", std::string("m") + e, clock_.Now(),
                 std::string(R"({"type":"track","event":")") + e + R"(","userId":"u"})"});
  ASSERT_TRUE(log::testing::AppendSync(*log_, std::move(r)).status.ok());
  auto c = StreamConfig();
  c.batch.max_events = 2;  // a round of only skipped events sends nothing and still advances
  c.allow_private_network = true;
  StreamOptions o;
  o.config = c;
  o.destination = std::make_unique<PostArraysSkipping>(server.url());
  o.log = log_.get();
  o.http = client_.get();
  o.dead_letters = store_.get();
  o.clock = &clock_;
  o.metrics = &metrics_;
  o.max_idle_wait_ms = 1;
  o.stats = stats_;
  auto s = DestinationStream::Start(std::move(o));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(WaitReal([&] { return (*s)->committed() == Offset(4); }));
  EXPECT_EQ((*s)->delivered(), 2u);
  EXPECT_EQ((*s)->skipped(), 2u);
  EXPECT_EQ((*s)->dead_lettered(), 0u);
  EXPECT_EQ((*s)->rejected(), 0u);
  for (const auto& b : server.bodies())
    EXPECT_EQ(b.find("skip"), std::string::npos) << b;
  EXPECT_EQ(stats_->Snapshot(clock_.Now().value(), 60).total.filtered, 2u);
  (*s)->Stop();
}

// A two-step destination: asks "token" first, then sends the events with what the first answer
// allowed; a refusal of the second step (409) gets one more step ("again"), a loop is cut off.
class TwoStep final : public Destination {
 public:
  explicit TwoStep(std::string url) : url_(std::move(url)) {}
  DestinationLimits limits() const override { return {8, 1 << 20}; }
  EncodedBatch Encode(std::span<const RoutedEvent> batch) const override {
    EncodedBatch out;
    HttpRequest r;
    r.url = url_;
    r.body = "token";
    r.step = "token";
    for (size_t i = 0; i < batch.size(); ++i) {
      r.carry += (i ? "," : "") + batch[i].payload;
      r.events.push_back(i);
    }
    out.requests.push_back(std::move(r));
    return out;
  }
  std::optional<HttpRequest> FollowUp(const HttpRequest& sent, const HttpResponse& res) override {
    follow_ups++;
    if (sent.step == "loop" || (sent.step == "token" && res.status == 200)) {
      HttpRequest next;
      next.url = url_;
      next.step = sent.carry.find("loop") != std::string::npos ? "loop" : "call";
      next.body = "[" + sent.carry + "]";
      next.carry = sent.carry;
      next.events = {};  // the framework carries the events on
      return next;
    }
    return std::nullopt;
  }
  int follow_ups = 0;

 private:
  std::string url_;
};

TEST_F(HttpStreamTest, FollowUpSendsTheNextStepForTheSameEventsAndStopsALoop) {
  ScriptServer server([](const std::string& body) {
    return std::pair{body == "token" || EventsIn(body) > 0 ? 200 : 400,
                     std::chrono::milliseconds(0)};
  });
  auto c = StreamConfig();
  c.batch.max_events = 4;
  Append(4);
  auto d = std::make_unique<TwoStep>(server.url());
  TwoStep* two = d.get();
  auto s = StartHttp(c, std::move(d));
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(4); }));
  EXPECT_EQ(s->delivered(), 4u);
  EXPECT_EQ(s->retried(), 0u);
  auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], "token");
  EXPECT_EQ(EventsIn(bodies[1]), 4u);  // the same four events, in the second step
  EXPECT_EQ(two->follow_ups, 2);       // asked after each response
  s->Stop();
}

TEST_F(HttpStreamTest, FollowUpsEndAfterTheCapAndTheLastResponseIsClassified) {
  ScriptServer server([](const std::string&) {
    return std::pair{200, std::chrono::milliseconds(0)};
  });
  auto c = StreamConfig();
  Append(1, "loop");  // its payload names the user "loop": every step asks for another
  auto d = std::make_unique<TwoStep>(server.url());
  TwoStep* two = d.get();
  auto s = StartHttp(c, std::move(d));
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(1); }));
  EXPECT_EQ(s->delivered(), 1u);
  EXPECT_EQ(two->follow_ups, Destination::kMaxFollowUps);
  EXPECT_EQ(server.bodies().size(), 1u + Destination::kMaxFollowUps);
  s->Stop();
}

TEST_F(HttpStreamTest, A413SplitsTheRequestInHalvesUntilItFits) {
  // The receiver takes at most 2 events per request; a request of 8 is split 8 → 4+4 → 2+2+2+2.
  ScriptServer server([](const std::string& body) {
    return std::pair{EventsIn(body) > 2 ? 413 : 200, std::chrono::milliseconds(0)};
  });
  auto c = StreamConfig();
  c.batch.max_events = 8;
  Append(8);
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 8));
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(8); }));
  EXPECT_EQ(s->delivered(), 8u);
  EXPECT_EQ(s->retried(), 0u);  // a split is not a retry
  EXPECT_EQ(s->dead_lettered(), 0u);
  std::vector<size_t> sizes;
  for (const auto& b : server.bodies())
    sizes.push_back(EventsIn(b));
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 2, 2, 4, 4, 8}));
  s->Stop();
}

TEST_F(HttpStreamTest, ASingleEventAnswered413IsDeadLettered) {
  ScriptServer server([](const std::string& body) {
    bool big = body.find("\"n\":1}") != std::string::npos;  // the second event is "too large"
    return std::pair{big ? 413 : 200, std::chrono::milliseconds(0)};
  });
  auto c = StreamConfig();
  c.batch.max_events = 4;
  Append(4);
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 4));
  ASSERT_TRUE(WaitReal([&] { return s->committed() == Offset(4); }));
  EXPECT_EQ(s->delivered(), 3u);
  EXPECT_EQ(s->dead_lettered(), 1u);
  s->Stop();
  auto letters = store_->List("hooks");
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].offset, Offset(1));
  EXPECT_EQ((*letters)[0].reason, "http 413");
  EXPECT_EQ((*letters)[0].attempts, 1);
}

TEST_F(HttpStreamTest, TheDestinationsTimeoutCutsASlowResponseAndItIsRetried) {
  std::atomic<int> calls{0};
  ScriptServer server([&](const std::string&) {
    // The first answer comes after 2 s, far past the 150 ms timeout; later ones at once.
    return std::pair{200, std::chrono::milliseconds(calls++ == 0 ? 2000 : 0)};
  });
  auto c = StreamConfig();
  c.timeout_ms = 150;
  Append(1);
  auto t0 = std::chrono::steady_clock::now();
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 1));
  ASSERT_TRUE(WaitReal([&] { return s->retried() == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  EXPECT_EQ(s->delivered(), 0u);
  // The retry is due within the first backoff step (≤ 1 s of fake time).
  AdvanceUntil([&] { return s->delivered() == 1; }, std::chrono::milliseconds(100));
  EXPECT_TRUE(WaitReal([&] { return s->committed() == Offset(1); }));  // within the interval
  EXPECT_EQ(calls.load(), 2);
  s->Stop();
}

TEST_F(HttpStreamTest, AFailingDestinationIsProbedOneRequestAtATimeNotFlooded) {
  // 200 events, 10 per request, a receiver answering 503 to everything for 60 s of fake time.
  // Each event retrying on its own jittered schedule would make well over a hundred requests
  // (about six attempts each); probing after the streak's backoff makes a few dozen at most,
  // never two at once. Then the receiver recovers and everything is delivered exactly once.
  std::atomic<bool> healthy{false};
  ScriptServer server([&](const std::string&) {
    return std::pair{healthy.load() ? 200 : 503, std::chrono::milliseconds(0)};
  });
  auto c = StreamConfig();
  c.batch.max_events = 10;
  c.retry_window_ms = 3'600'000;
  Append(200);
  auto s = StartHttp(c, std::make_unique<PostArrays>(server.url(), 10), 8);
  ASSERT_TRUE(WaitReal([&] { return s->retried() > 0; }));
  for (int step = 0; step < 120; ++step) {  // 60 s of fake time, every answer in between
    clock_.Advance(std::chrono::milliseconds(500));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const size_t failed_requests = server.bodies().size();
  EXPECT_LE(failed_requests, 40u);  // the first rounds (up to 8) went out before any answer
  EXPECT_EQ(s->delivered(), 0u);
  healthy = true;
  AdvanceUntil([&] { return s->committed() == Offset(200); }, std::chrono::milliseconds(500));
  EXPECT_EQ(s->delivered(), 200u);
  EXPECT_EQ(s->dead_lettered(), 0u);
  size_t delivered_events = 0;
  auto bodies = server.bodies();
  for (size_t i = failed_requests; i < bodies.size(); ++i)
    delivered_events += EventsIn(bodies[i]);
  // Each once after the recovery (plus at most one probe of 10 that was on its way, answered
  // 503, while the receiver was switched).
  EXPECT_GE(delivered_events, 200u);
  EXPECT_LE(delivered_events, 210u);
  s->Stop();
}

TEST_F(StreamTest, AFailingInProcessDestinationIsHeldByTheSameBackoffAsHttp) {
  // Issue 18: a warehouse load that fails (a full disk) was retried once per event coming due on
  // its own jittered schedule: hundreds of loads a second, each logged. An in-process call whose
  // every event is to be retried now starts the failure hold, as a 503 does.
  std::deque<Outcome> forever(1000, Outcome::Retry("disk full"));
  for (uint64_t i = 0; i < 200; ++i)
    shared_->script[i] = forever;
  auto c = StreamConfig();
  c.retry_window_ms = 3'600'000;
  Append(200);
  auto s = StartStream(c, /*max_events=*/10);
  for (int step = 0; step < 240; ++step) {  // 60 s of fake time in 250 ms steps
    clock_.Advance(std::chrono::milliseconds(250));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  size_t calls;
  {
    std::lock_guard lock(shared_->mu);
    calls = shared_->batch_sizes.size();
  }
  // Backoff from 1 s doubling (capped at 60 s) with full jitter: a dozen or so probe rounds in
  // 60 s, each of 10 calls (its batch of 100 in chunks of 10; the chunks of one round count as
  // one failure). Without the hold: every 250 ms step finds some of the 200 events due, well
  // over 100 rounds.
  EXPECT_LE(calls, 150u);
  EXPECT_GE(calls, 20u);
  EXPECT_EQ(s->delivered(), 0u);
  s->Stop();
}

TEST_F(StreamTest, RefusedCredentialsHoldTheDestinationSlowlyAndShowIt) {
  // Issue 15: a 401/403 is the destination's problem, not the events': the stream holds the
  // whole destination at least auth_hold_min_ms (30 s, doubling), shows it, and recovers when a
  // probe is delivered.
  std::deque<Outcome> refused(3, Outcome::AuthFailure("http 401 (credentials refused)"));
  for (uint64_t i = 0; i < 50; ++i)
    shared_->script[i] = refused;
  auto c = StreamConfig();
  c.retry_window_ms = 3'600'000;
  Append(50);
  auto s = StartStream(c, /*max_events=*/10);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!s->health().credentials_refused && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(s->health().credentials_refused);
  EXPECT_EQ(s->health().reason, "http 401 (credentials refused)");
  EXPECT_NE(metrics_.RenderPrometheus().find(
                R"(switchyard_delivery_credentials_refused{destination="hooks"} 1)"),
            std::string::npos);
  auto calls = [&] {
    std::lock_guard lock(shared_->mu);
    return shared_->batch_sizes.size();
  };
  const size_t first = calls();
  // 29 s of fake time: still inside the first 30 s hold, nothing is sent.
  for (int step = 0; step < 58; ++step) {
    clock_.Advance(std::chrono::milliseconds(500));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(calls(), first);
  // A minute more: one probe round at 30 s (refused again; its 5 calls are the batch's chunks
  // of 10), then the hold doubles to 60 s, so no second probe yet.
  for (int step = 0; step < 120; ++step) {
    clock_.Advance(std::chrono::milliseconds(500));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(calls(), 2 * first);
  EXPECT_EQ(s->dead_lettered(), 0u);
  // The key is fixed: the next probes are delivered and the destination is healthy again.
  {
    std::lock_guard lock(shared_->mu);
    for (auto& [offset, q] : shared_->script)
      q.clear();
  }
  AdvanceUntil([&] { return s->committed() == Offset(50); }, std::chrono::milliseconds(1000));
  EXPECT_FALSE(s->health().credentials_refused);
  EXPECT_FALSE(s->health().failing);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                R"(switchyard_delivery_credentials_refused{destination="hooks"} 0)"),
            std::string::npos);
  s->Stop();
}

TEST(Classify, UnauthorizedAndForbiddenAreRefusedCredentialsNotRejectedEvents) {
  HttpResponse r;
  r.status = 401;
  Outcome o = ClassifyByStatus(r);
  EXPECT_EQ(o.kind, Outcome::Kind::kRetry);
  EXPECT_TRUE(o.auth_failure);
  r.status = 403;
  EXPECT_TRUE(ClassifyByStatus(r).auth_failure);
  r.status = 400;
  EXPECT_EQ(ClassifyByStatus(r).kind, Outcome::Kind::kRejected);
  r.status = 503;
  EXPECT_FALSE(ClassifyByStatus(r).auth_failure);
}

TEST_F(StreamTest, DrainOnceDeliversUpToTheEndAndCommits) {
  Append(25);
  StreamOptions o;
  o.config = StreamConfig();
  o.config.batch.max_wait_ms = 3'600'000;  // a drain does not wait for batches to fill
  o.display_name = "Scripted";
  o.destination = std::make_unique<ScriptedDestination>(shared_, 10);
  o.log = log_.get();
  o.dead_letters = store_.get();
  o.clock = &clock_;
  o.metrics = &metrics_;
  shared_->script[7] = {Outcome::Rejected("bad")};
  auto s = DestinationStream::Open(std::move(o));
  ASSERT_TRUE(s.ok());
  auto r = (*s)->DrainOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delivered, 24u);
  EXPECT_EQ(r->dead_lettered, 1u);
  EXPECT_EQ((*s)->committed(), Offset(25));
  // A retry ends the drain with its reason; the cursor stops before that event.
  Append(5);
  shared_->script[27] = {Outcome::Retry("database locked")};
  r = (*s)->DrainOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("database locked"), std::string::npos);
  EXPECT_EQ((*s)->committed(), Offset(27));
  r = (*s)->DrainOnce();  // the next drain delivers it
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*s)->committed(), Offset(30));
}

TEST_F(StreamTest, WakesForNewEventsAtOnceAndDoesNotPollWhileARequestHangs) {
  // Issue 12: with a request in flight the stream looked at the log every 2 ms (500 wake-ups a
  // second per destination, whatever the traffic). Now it sleeps until a response, new data or
  // a timer: a receiver that never answers leaves the stream asleep.
  SilentServer silent;
  auto client = http::CreateCurlHttpClient({.threads = 1, .timeout_ms = 60'000});
  ASSERT_TRUE(client.ok());
  Append(1);
  StreamOptions o;
  o.config = StreamConfig();
  o.config.allow_private_network = true;
  o.destination =
      std::make_unique<PostEach>("http://127.0.0.1:" + std::to_string(silent.port()) + "/");
  o.log = log_.get();
  o.http = client->get();
  o.dead_letters = store_.get();
  o.stop_grace_ms = 100;
  o.max_idle_wait_ms = 200;
  o.metrics = &metrics_;
  auto s = DestinationStream::Start(std::move(o));
  ASSERT_TRUE(s.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the request is in flight
  const uint64_t before = (*s)->wakeups();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const uint64_t idle = (*s)->wakeups() - before;
  EXPECT_LE(idle, 15u);  // ~5 (max_idle_wait_ms); polling every 2 ms made ~500
  // New data wakes it at once (a second request goes out without waiting for a timer).
  const auto t0 = std::chrono::steady_clock::now();
  Append(1);
  while ((*s)->in_flight() < 2 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ((*s)->in_flight(), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  (*s)->Stop();
  s->reset();
  client->reset();
}

}  // namespace
}  // namespace sy::delivery

namespace sy::delivery {
namespace {

TEST(EventFields, ReadsPathsAndSkipsEmptyValues) {
  auto o = boost::json::parse(R"({"context":{"page":{"url":"https://x/"},"ip":7},"event":"E"})")
               .as_object();
  EXPECT_EQ(FieldString(o, {"context", "page", "url"}), "https://x/");
  EXPECT_EQ(FieldString(o, {"event"}), "E");
  EXPECT_EQ(FieldString(o, {"context", "ip"}), "");        // not a string
  EXPECT_EQ(FieldAt(o, {"context", "ip", "x"}), nullptr);  // not an object on the way
  EXPECT_EQ(FieldAt(o, {"missing"}), nullptr);
  ASSERT_NE(FieldAt(o, {"context", "ip"}), nullptr);
  boost::json::object out;
  SetIfNotEmpty(out, "a", "");
  SetIfNotEmpty(out, "b", "v");
  EXPECT_FALSE(out.contains("a"));
  EXPECT_EQ(out.at("b").as_string(), "v");
}

TEST(EventFields, NumbersCountsIdsAndPathSegmentsAsClientsSendThem) {
  auto v = [](std::string_view text) { return boost::json::parse(text); };
  auto price = v(R"("9.99")"), n = v("12.5"), word = v(R"("cheap")"), half = v("2.5");
  EXPECT_EQ(NumberOf(&price), 9.99);
  EXPECT_EQ(NumberOf(&n), 12.5);
  EXPECT_FALSE(NumberOf(&word).has_value());
  EXPECT_FALSE(NumberOf(nullptr).has_value());
  auto two = v("2"), two_text = v(R"("2")"), huge = v("1e300"), neg = v("-3");
  EXPECT_EQ(CountOf(&two), 2);
  EXPECT_EQ(CountOf(&two_text), 2);
  EXPECT_EQ(CountOf(&neg), -3);
  EXPECT_FALSE(CountOf(&half).has_value());
  EXPECT_FALSE(CountOf(&huge).has_value());  // never a float-to-integer overflow
  auto id_text = v(R"("A1")"), id_num = v("1001"), id_obj = v("{}");
  EXPECT_EQ(IdText(&id_text), "A1");
  EXPECT_EQ(IdText(&id_num), "1001");
  EXPECT_EQ(IdText(&id_obj), "");
  EXPECT_TRUE(IsPathSegment("1234567890"));
  EXPECT_TRUE(IsPathSegment("act_1.x-y"));
  EXPECT_FALSE(IsPathSegment(""));
  EXPECT_FALSE(IsPathSegment(".."));
  EXPECT_FALSE(IsPathSegment("a/b"));
  EXPECT_FALSE(IsPathSegment("a?b"));
}

TEST(EventFields, ZerosWithHugeExponentsReachEncodersAsZerosNotNaN) {
  // Ingest stores `0e400` as sent (a zero, within range); Boost.JSON 1.81 reads it as NaN and
  // would serialize `NaN`, which no vendor accepts as JSON. Found by ingest_body_fuzz.
  const std::string payload =
      R"({"type":"track","event":"E","properties":{"a":0e400,"b":[-0.0E999,1.5],"c":{"d":0e-400}}})";
  std::vector<RoutedEvent> batch(1);
  batch[0].payload = payload;
  batch[0].message_id = "m0";
  EncodedBatch out;
  std::string written;
  MapEachEvent(batch, &out, [&](size_t, const boost::json::object& e, std::string_view) {
    written = boost::json::serialize(e);
    return EventMapping::Mapped();
  });
  EXPECT_TRUE(out.unmappable.empty());
  EXPECT_EQ(written.find("NaN"), std::string::npos) << written;
  auto back = boost::json::parse(written).as_object();
  EXPECT_EQ(back.at("properties").at("a").as_double(), 0.0);
  EXPECT_EQ(back.at("properties").at("b").as_array()[0].as_double(), 0.0);
  EXPECT_EQ(back.at("properties").at("b").as_array()[1].as_double(), 1.5);
  boost::json::value v = boost::json::parse("[0e400, 0e400, 1]");
  EXPECT_EQ(RestoreZerosReadAsNaN(v), 2u);
}

}  // namespace
}  // namespace sy::delivery
