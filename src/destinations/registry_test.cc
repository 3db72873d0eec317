// The conformance suite every built-in destination passes (Vector's sink compliance, in small):
// a well-formed type entry and settings table, unknown keys rejected, an encoder that accounts
// for every event of a batch exactly once within its limits, and a classifier that answers one
// outcome per event for the usual responses. A new destination gets these checks by its line in
// src/destinations/CMakeLists.txt; test doubles included.
#include "destinations/registry.h"

#include <gtest/gtest.h>

#include <set>

#include "base/metrics.h"
#include "delivery/testing.h"

namespace sy::destinations {
namespace {

// Settings a destination accepts: every required key synthesized from its type, and the vendor
// `endpoint` (every HTTP destination has one, so tests can point it at local servers).
// Values no type can synthesize: a credential the factory parses (a service account's key;
// test keys only, from the destination's testdata, token URIs at 127.0.0.1:9), and names whose
// alphabet excludes the '-' of "x-example" (BigQuery datasets).
std::optional<std::string> FixtureValue(const std::string& name) {
  if (name == "dataset_id") return "x_example";
  if (name == "service_account_json") {
    return delivery::testing::ReadFile(std::string(SY_DESTINATIONS_DIR) +
                                       "/bigquery/testdata/service_account.json");
  }
  return std::nullopt;
}

std::vector<config::RawSetting> MinimalSettings(const std::vector<delivery::SettingSpec>& table) {
  std::vector<config::RawSetting> raw;
  for (const auto& s : table) {
    if (!s.required && s.name != "endpoint") continue;
    config::RawSetting r;
    r.key = s.name;
    if (auto fixture = FixtureValue(s.name)) {
      r.scalar = *fixture;
      raw.push_back(std::move(r));
      continue;
    }
    switch (s.type) {
      case delivery::SettingType::kUrl:
        r.scalar = "http://127.0.0.1:9/in";
        break;
      case delivery::SettingType::kInt:
        r.scalar = std::to_string(s.min.value_or(1));
        break;
      case delivery::SettingType::kEnum:
        r.scalar = s.allowed.at(0);
        break;
      case delivery::SettingType::kBool:
        r.scalar = "true";
        break;
      case delivery::SettingType::kDurationMs:
        r.scalar = std::to_string(std::max<int64_t>(s.min.value_or(1000), 1000)) + "ms";
        break;
      case delivery::SettingType::kStringMap:
        r.kind = config::RawSetting::Kind::kMap;
        break;
      case delivery::SettingType::kStringList:
        r.kind = config::RawSetting::Kind::kList;
        break;
      case delivery::SettingType::kJson:  // the http type's mappings
        r.kind = config::RawSetting::Kind::kTree;
        r.json = R"({"track":{"body":{"event":"{{ event }}"}}})";
        break;
      default:
        r.scalar = "x-example";
    }
    raw.push_back(std::move(r));
  }
  return raw;
}

std::vector<delivery::RoutedEvent> SampleEvents(size_t n) {
  std::vector<delivery::RoutedEvent> out;
  const char* kinds[] = {
      R"({"type":"track","event":"Order Completed","userId":"user-1","messageId":"m%","properties":{"revenue":9.5}})",
      R"({"type":"identify","userId":"user-1","traits":{"email":"a@example.com"},"messageId":"m%"})",
      R"({"type":"page","name":"Home","anonymousId":"anon-1","messageId":"m%"})",
  };
  for (size_t i = 0; i < n; ++i) {
    std::string p = kinds[i % 3];
    p.replace(p.find('%'), 1, std::to_string(i));
    out.push_back({Offset(i), "web", "m" + std::to_string(i), TimestampMs(1'700'000'000'000), p});
  }
  return out;
}

class Conformance : public ::testing::TestWithParam<size_t> {
 protected:
  const delivery::DestinationType& type() const {
    return AllBuiltinDestinations()[GetParam()].type;
  }
};

TEST_P(Conformance, TypeEntryAndSettingsTableAreWellFormed) {
  const auto& t = type();
  EXPECT_FALSE(t.type.empty());
  EXPECT_FALSE(t.display_name.empty());
  EXPECT_FALSE(t.description.empty());
  // What it supports, for the generated index (docs/destinations/README.md).
  EXPECT_FALSE(t.support.event_types.empty()) << t.type;
  EXPECT_FALSE(t.support.batch.empty()) << t.type;
  EXPECT_FALSE(t.support.idempotency.empty()) << t.type;
  EXPECT_FALSE(t.support.deletion.empty()) << t.type;
  setenv("SWITCHYARD_TEST_DESTINATIONS", "1", 1);
  EXPECT_EQ(FindDestinationType(t.type), &t);
  unsetenv("SWITCHYARD_TEST_DESTINATIONS");
  EXPECT_EQ(FindDestinationType(t.type) == &t, !AllBuiltinDestinations()[GetParam()].test_double);
  Status table = delivery::CheckSettingsTable(t.settings);
  EXPECT_TRUE(table.ok()) << t.type << ":\n" << table.message();
  auto raw = MinimalSettings(t.settings);
  raw.push_back(delivery::testing::Scalar("no_such_setting", "1", 42));
  auto bad = t.create(raw, {"f.yaml", "d.settings", 1});
  ASSERT_FALSE(bad.ok()) << t.type << " accepted an unknown key";
  EXPECT_NE(bad.status().message().find("f.yaml:42: d.settings.no_such_setting: unknown key"),
            std::string::npos);
  // Every required key, when missing, is named.
  for (const auto& s : t.settings) {
    if (!s.required) continue;
    auto without = MinimalSettings(t.settings);
    std::erase_if(without, [&](const config::RawSetting& r) { return r.key == s.name; });
    auto missing = t.create(without, {"f.yaml", "d.settings", 7});
    ASSERT_FALSE(missing.ok()) << t.type << " built without required " << s.name;
    EXPECT_NE(missing.status().message().find("f.yaml:7: d.settings." + s.name +
                                              ": required key is missing"),
              std::string::npos)
        << missing.status().message();
  }
}

TEST_P(Conformance, EncodesEveryEventExactlyOnceAndClassifiesEach) {
  const auto& t = type();
  auto made = delivery::testing::Create(t, MinimalSettings(t.settings));
  ASSERT_TRUE(made.ok()) << t.type << ": " << made.status().ToString();
  auto& d = **made;
  MetricsRegistry metrics;
  d.Attach("conformance", &metrics);  // as DestinationStream::Start does
  const auto limits = d.limits();
  ASSERT_GE(limits.max_events_per_request, 1u);
  auto events = SampleEvents(std::min<size_t>(limits.max_events_per_request, 7));
  if (d.DeliverInProcess(std::span(events).subspan(0, 0)).has_value()) {
    auto out = d.DeliverInProcess(events);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->size(), events.size());
    return;
  }
  delivery::EncodedBatch b = d.Encode(events);
  std::vector<int> seen(events.size(), 0);
  for (const auto& [i, reason] : b.unmappable) {
    ASSERT_LT(i, events.size());
    seen[i]++;
    EXPECT_FALSE(reason.empty());
  }
  for (const auto& [i, reason] : b.skipped) {
    ASSERT_LT(i, events.size());
    seen[i]++;
    EXPECT_FALSE(reason.empty());
  }
  for (const auto& r : b.requests) {
    EXPECT_TRUE(r.url.starts_with("http://127.0.0.1:9/")) << t.type << ": endpoint not honoured";
    EXPECT_FALSE(r.method.empty());
    EXPECT_LE(r.events.size(), limits.max_events_per_request);
    for (size_t i : r.events) {
      ASSERT_LT(i, events.size());
      seen[i]++;
    }
    for (int status : {200, 400, 429, 503, 0}) {
      delivery::HttpResponse res;
      res.status = status;
      res.error = status ? "" : "Connection refused";
      auto outcomes = d.Classify(r, res);
      ASSERT_EQ(outcomes.size(), r.events.size()) << t.type << " status " << status;
      for (const auto& o : outcomes) {
        auto expected = delivery::ClassifyByStatus(res).kind;
        // A step of a two-step request (a token exchange) is classified by the vendor's own
        // rules: a 400 to a token request is refused credentials, not a bad event.
        if (status != 200 && r.step.empty()) {
          EXPECT_EQ(o.kind, expected) << t.type << " status " << status;
        }
      }
    }
  }
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(seen[i], 1) << t.type << ": event " << i << " accounted " << seen[i] << " times";
}

TEST(Registry, ListsEveryTypeOnceAndOffersTestDoublesOnlyWhenSwitchedOn) {
  std::set<std::string> all, doubles;
  for (const auto& b : AllBuiltinDestinations()) {
    EXPECT_TRUE(all.insert(b.type.type).second) << "listed twice: " << b.type.type;
    if (b.test_double) doubles.insert(b.type.type);
  }
  // One name a line, so branches adding destinations merge cleanly.
  // clang-format off
  EXPECT_EQ(all, (std::set<std::string>{
                     "amplitude",
                     "bigquery",
                     "blackhole",
                     "braze",
                     "customerio",
                     "flaky",
                     "google-analytics-4",
                     "heap",
                     "http",
                     "hubspot",
                     "intercom",
                     "iterable",
                     "kafka",
                     "kinesis",
                     "klaviyo",
                     "mailchimp",
                     "meta-conversions",
                     "mixpanel",
                     "pinterest",
                     "postgres",
                     "posthog",
                     "segment",
                     "slack",
                     "sqlite",
                     "tiktok",
                     "webhook",
                 }));
  // clang-format on
  EXPECT_EQ(doubles, (std::set<std::string>{"blackhole", "flaky"}));

  unsetenv("SWITCHYARD_TEST_DESTINATIONS");
  EXPECT_FALSE(TestDestinationsEnabled());
  EXPECT_EQ(OfferedDestinationTypes().size(), all.size() - doubles.size());
  EXPECT_EQ(FindDestinationType("flaky"), nullptr);
  EXPECT_NE(FindDestinationType("webhook"), nullptr);
  EXPECT_NE(FindDestinationType("sqlite"), nullptr);
  auto cfg = config::LoadConfigString(
      "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n"
      "destinations:\n  - {name: f, type: flaky}\n  - {name: b, type: blackhole}\n",
      "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  Status s = ValidateDestinations(*cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("f.yaml:5: destinations[0].type: unknown destination type 'flaky'"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("offered only with SWITCHYARD_TEST_DESTINATIONS=1"),
            std::string::npos);
  EXPECT_NE(s.message().find("destinations[1].type: unknown destination type 'blackhole'"),
            std::string::npos);

  setenv("SWITCHYARD_TEST_DESTINATIONS", "1", 1);
  EXPECT_TRUE(TestDestinationsEnabled());
  EXPECT_EQ(OfferedDestinationTypes().size(), all.size());
  EXPECT_TRUE(ValidateDestinations(*cfg).ok());
  unsetenv("SWITCHYARD_TEST_DESTINATIONS");
}

TEST(Registry, DeviceModeDestinationsAreCheckedAgainstTheBrowserIntegrations) {
  auto cfg = config::LoadConfigString(
      "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n"
      "destinations:\n"
      "  - {name: ga, type: ga4-gtag, mode: device, settings: {measurement_id: G-1}}\n"
      "  - name: fb\n    type: meta-conversions\n    mode: both\n"
      "    settings: {pixel_id: '12', access_token: t, tag_url: 'https://t.example/f.js'}\n",
      "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  Status ok = ValidateDestinations(*cfg);
  EXPECT_TRUE(ok.ok()) << ok.message();
  // The server builds the Conversions API half without tag_url; never the device-only one.
  EXPECT_TRUE(CreateDestination(cfg->destinations[1], "f.yaml").ok());
  auto device = CreateDestination(cfg->destinations[0], "f.yaml");
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.status().message().find("device mode"), std::string::npos);

  auto bad = config::LoadConfigString(
      "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n"
      "destinations:\n"
      "  - {name: ga, type: ga4-gtag, settings: {measurement_id: G-1}}\n"
      "  - {name: fb, type: meta-conversions, settings: {pixel_id: '1', access_token: t, "
      "tag_url: 'https://t.example/f.js'}}\n"
      "  - {name: w, type: webhook, mode: device, settings: {url: 'https://h.example/'}}\n"
      "  - {name: hj, type: hotjar, mode: device, settings: {site: 1}}\n",
      "f.yaml");
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  Status s = ValidateDestinations(*bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("f.yaml:5: destinations[0].mode: type 'ga4-gtag' exists only in "
                             "the browser: set mode: device"),
            std::string::npos)
      << s.message();
  // tag_url in cloud mode is the server table's unknown key.
  EXPECT_NE(s.message().find("destinations[1].settings.tag_url"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("f.yaml:7: destinations[2].mode: type 'webhook' has no browser tag"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("destinations[3].settings.site: unknown key"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("destinations[3].settings.site_id: required key is missing"),
            std::string::npos)
      << s.message();
}

INSTANTIATE_TEST_SUITE_P(BuiltinDestinations, Conformance,
                         ::testing::Range<size_t>(0, AllBuiltinDestinations().size()),
                         [](const ::testing::TestParamInfo<size_t>& param) {
                           std::string n = AllBuiltinDestinations()[param.param].type.type;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace sy::destinations
