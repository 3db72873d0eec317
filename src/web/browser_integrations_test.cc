#include "web/browser_integrations.h"

#include <gtest/gtest.h>

#include <set>

namespace sy::web {
namespace {

using M = config::DeliveryMode;

config::RawSetting Scalar(std::string key, std::string value, int line = 7) {
  config::RawSetting s;
  s.key = std::move(key);
  s.scalar = std::move(value);
  s.line = line;
  return s;
}

config::DestinationConfig Dest(std::string type, M mode, std::vector<config::RawSetting> s) {
  config::DestinationConfig d;
  d.name = "d";
  d.type = std::move(type);
  d.mode = mode;
  d.line = 3;
  d.settings = std::move(s);
  return d;
}

std::string Check(const config::DestinationConfig& d) {
  return CheckDeviceMode(d, "f.yaml", "destinations[0]");
}

TEST(BrowserIntegrations, TheTenToolsOfTheIssueAreThere) {
  std::set<std::string> device_only;
  for (const auto& b : BrowserIntegrations()) {
    if (b.device_only) device_only.insert(b.type);
    EXPECT_FALSE(b.display_name.empty()) << b.type;
    EXPECT_TRUE(b.tag_url.starts_with("https://")) << b.type;
    EXPECT_FALSE(b.consent_hint.empty()) << b.type;
    // Every integration can move its tag (a self-hosted copy, a test server).
    bool has_tag_url = false;
    for (const auto& s : b.settings)
      has_tag_url = has_tag_url || (s.key == "tag_url" && s.browser_only);
    EXPECT_TRUE(has_tag_url) << b.type;
  }
  EXPECT_EQ(device_only,
            (std::set<std::string>{"ga4-gtag", "google-ads", "meta-pixel", "tiktok-pixel",
                                   "linkedin-insight", "hotjar", "intercom-messenger",
                                   "hubspot-tracking", "mixpanel-browser", "amplitude-browser"}));
  EXPECT_TRUE(IsDeviceOnlyType("hotjar"));
  EXPECT_FALSE(IsDeviceOnlyType("meta-conversions"));
  EXPECT_FALSE(IsDeviceOnlyType("webhook"));
}

TEST(BrowserIntegrations, ModeMustSuitTheType) {
  EXPECT_EQ(Check(Dest("webhook", M::kCloud, {})), "");
  EXPECT_EQ(Check(Dest("webhook", M::kDevice, {})),
            "f.yaml:3: destinations[0].mode: type 'webhook' has no browser tag (types with one: "
            "ga4-gtag, google-ads, meta-pixel, meta-conversions, tiktok-pixel, tiktok, "
            "linkedin-insight, hotjar, intercom-messenger, hubspot-tracking, mixpanel-browser, "
            "amplitude-browser)\n");
  EXPECT_NE(Check(Dest("webhook", M::kBoth, {})), "");
  EXPECT_EQ(Check(Dest("hotjar", M::kCloud, {Scalar("site_id", "1")})),
            "f.yaml:3: destinations[0].mode: type 'hotjar' exists only in the browser: set "
            "mode: device\n");
  EXPECT_NE(Check(Dest("hotjar", M::kBoth, {Scalar("site_id", "1")})), "");
  EXPECT_EQ(Check(Dest("hotjar", M::kDevice, {Scalar("site_id", "1")})), "");
  EXPECT_NE(Check(Dest("meta-conversions", M::kDevice, {})).find("set mode: both, or use"),
            std::string::npos);
  EXPECT_EQ(Check(Dest("meta-conversions", M::kBoth, {Scalar("pixel_id", "1")})), "");
  EXPECT_EQ(Check(Dest("meta-conversions", M::kCloud, {Scalar("pixel_id", "1")})), "");
}

TEST(BrowserIntegrations, DeviceOnlySettingsAreCheckedAgainstTheirTable) {
  EXPECT_EQ(Check(Dest("hotjar", M::kDevice, {})),
            "f.yaml:3: destinations[0].settings.site_id: required key is missing\n");
  EXPECT_EQ(Check(Dest("hotjar", M::kDevice, {Scalar("site_id", "1"), Scalar("siteid", "2", 9)})),
            "f.yaml:9: destinations[0].settings.siteid: unknown key (known: site_id, tag_url)\n");
  EXPECT_EQ(Check(Dest("hotjar", M::kDevice,
                       {Scalar("site_id", "1"), Scalar("tag_url", "javascript:alert(1)", 8)})),
            "f.yaml:8: destinations[0].settings.tag_url: expected an http:// or https:// URL\n");
  EXPECT_EQ(Check(Dest("hotjar", M::kDevice, {Scalar("site_id", "")})),
            "f.yaml:7: destinations[0].settings.site_id: expected a non-empty string\n");
  config::RawSetting map;
  map.key = "conversions";
  map.kind = config::RawSetting::Kind::kMap;
  map.map = {{"Order Completed", "123"}};
  EXPECT_EQ(Check(Dest("linkedin-insight", M::kDevice, {Scalar("partner_id", "5"), map})), "");
  EXPECT_NE(Check(Dest("linkedin-insight", M::kDevice,
                       {Scalar("partner_id", "5"), Scalar("conversions", "x")})),
            "");
  // A cloud type's browser-only key is checked here too; the rest is the server table's.
  EXPECT_NE(Check(Dest("tiktok", M::kBoth, {Scalar("tag_url", "ftp://x")})), "");
}

TEST(BrowserIntegrations, TheServerTypeNeverSeesBrowserOnlyKeys) {
  auto d = Dest("meta-conversions", M::kBoth,
                {Scalar("pixel_id", "1"), Scalar("access_token", "t"),
                 Scalar("tag_url", "https://tags.example/fbevents.js")});
  auto cloud = CloudSettings(d);
  ASSERT_EQ(cloud.size(), 2u);
  EXPECT_EQ(cloud[0].key, "pixel_id");
  EXPECT_EQ(cloud[1].key, "access_token");
  // In cloud mode nothing is removed: the server table refuses tag_url there.
  d.mode = M::kCloud;
  EXPECT_EQ(CloudSettings(d).size(), 3u);
  EXPECT_TRUE(RunsInCloud(d));
  d.mode = M::kDevice;
  EXPECT_FALSE(RunsInCloud(d));
}

}  // namespace
}  // namespace sy::web
