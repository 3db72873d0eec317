// The conformance suite every built-in destination passes (Vector's sink compliance, in small):
// a well-formed type entry and settings table, unknown keys rejected, an encoder that accounts
// for every event of a batch exactly once within its limits, and a classifier that answers one
// outcome per event for the usual responses. A new destination gets these checks by being added
// to the list in builtin_destinations.cc.
#include "server/builtin_destinations.h"

#include <gtest/gtest.h>

#include <set>

#include "base/metrics.h"

namespace sy::server {
namespace {

// Settings a destination accepts: every required key synthesized from its type, and the vendor
// `endpoint` (every HTTP destination has one, so tests can point it at local servers).
std::vector<config::RawSetting> MinimalSettings(const delivery::SettingsTable& table) {
  std::vector<config::RawSetting> raw;
  for (const auto& s : table) {
    if (!s.required && s.name != "endpoint") continue;
    config::RawSetting r;
    r.key = s.name;
    switch (s.type) {
      case delivery::SettingType::kUrl:
        r.scalar = "http://127.0.0.1:9/in";
        break;
      case delivery::SettingType::kInt:
        r.scalar = "1";
        break;
      case delivery::SettingType::kBool:
        r.scalar = "true";
        break;
      case delivery::SettingType::kDurationMs:
        r.scalar = "1s";
        break;
      case delivery::SettingType::kStringMap:
        r.kind = config::RawSetting::Kind::kMap;
        break;
      case delivery::SettingType::kStringList:
        r.kind = config::RawSetting::Kind::kList;
        break;
      default:
        r.scalar = "x-example";
    }
    raw.push_back(std::move(r));
  }
  return raw;
}

std::vector<delivery::StoredEvent> SampleEvents(size_t n) {
  std::vector<delivery::StoredEvent> out;
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
  const delivery::DestinationType& type() const { return BuiltinDestinations()[GetParam()]; }
};

TEST_P(Conformance, TypeEntryAndSettingsTableAreWellFormed) {
  const auto& t = type();
  EXPECT_FALSE(t.type.empty());
  EXPECT_FALSE(t.display_name.empty());
  EXPECT_FALSE(t.description.empty());
  EXPECT_EQ(FindDestinationType(t.type), &t);
  std::set<std::string> names;
  for (const auto& s : t.settings) {
    EXPECT_TRUE(names.insert(s.name).second) << t.type << ": duplicate setting " << s.name;
    EXPECT_FALSE(s.description.empty()) << t.type << "." << s.name;
    EXPECT_FALSE(s.required && !s.default_value.empty()) << t.type << "." << s.name;
  }
  auto raw = MinimalSettings(t.settings);
  config::RawSetting unknown;
  unknown.key = "no_such_setting";
  unknown.scalar = "1";
  unknown.line = 42;
  raw.push_back(unknown);
  auto bad = delivery::ParseSettings(t.settings, raw, "f.yaml", "d.settings", 1);
  ASSERT_FALSE(bad.ok()) << t.type << " accepted an unknown key";
  EXPECT_NE(bad.status().message().find("f.yaml:42: d.settings.no_such_setting: unknown key"),
            std::string::npos);
}

TEST_P(Conformance, EncodesEveryEventExactlyOnceAndClassifiesEach) {
  const auto& t = type();
  auto settings = delivery::ParseSettings(t.settings, MinimalSettings(t.settings), "f", "s", 1);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  auto made = t.create(*settings);
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
        if (status != 200) {
          EXPECT_EQ(o.kind, expected) << t.type << " status " << status;
        }
      }
    }
  }
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(seen[i], 1) << t.type << ": event " << i << " accounted " << seen[i] << " times";
}

INSTANTIATE_TEST_SUITE_P(BuiltinDestinations, Conformance,
                         ::testing::Range<size_t>(0, BuiltinDestinations().size()),
                         [](const ::testing::TestParamInfo<size_t>& param) {
                           std::string n = BuiltinDestinations()[param.param].type;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace sy::server
