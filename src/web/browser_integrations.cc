#include "web/browser_integrations.h"

#include <algorithm>

namespace sy::web {
namespace {

using Kind = BrowserSetting::Kind;

BrowserSetting Id(std::string key, std::string description) {
  return {std::move(key), Kind::kString, true, true, true, "", std::move(description)};
}
BrowserSetting Optional(std::string key, Kind kind, std::string description) {
  return {std::move(key), kind, false, true, true, "", std::move(description)};
}
BrowserSetting TagUrl(const std::string& url) {
  return {"tag_url",
          Kind::kUrl,
          false,
          true,
          true,
          url,
          "where the tag is loaded from ({key} takes a setting's value)"};
}
// A key of a cloud type's server table, read by the browser too (browser_safe) or never sent
// to it (a secret, listed so the rule is written down and tested).
BrowserSetting ServerKey(std::string key, bool browser_safe, std::string description) {
  return {std::move(key), Kind::kString, false, browser_safe, false, "", std::move(description)};
}

constexpr std::string_view kGtag = "https://www.googletagmanager.com/gtag/js?id=";

std::vector<BrowserIntegration> Build() {
  std::vector<BrowserIntegration> all;
  all.push_back({"ga4-gtag",
                 "ga4",
                 "Google Analytics 4 Web",
                 true,
                 std::string(kGtag) + "{measurement_id}",
                 "analytics",
                 {Id("measurement_id", "the web stream's measurement ID (G-…)"),
                  TagUrl(std::string(kGtag) + "{measurement_id}")}});
  all.push_back({"google-ads",
                 "google-ads",
                 "Google AdWords New",
                 true,
                 std::string(kGtag) + "{conversion_id}",
                 "advertising",
                 {Id("conversion_id", "the Google Ads tag ID (AW-…)"),
                  Optional("conversions", Kind::kStringMap,
                           "track event name → conversion label (sent as AW-…/label)"),
                  TagUrl(std::string(kGtag) + "{conversion_id}")}});
  BrowserIntegration meta{"meta-pixel",
                          "meta-pixel",
                          "Facebook Pixel",
                          true,
                          "https://connect.facebook.net/en_US/fbevents.js",
                          "advertising",
                          {Id("pixel_id", "the Meta pixel (dataset) ID"),
                           TagUrl("https://connect.facebook.net/en_US/fbevents.js")}};
  all.push_back(meta);
  // The Conversions API destination with the pixel beside it: Meta deduplicates the pixel's
  // eventID against the server's event_id (both the messageId).
  meta.type = "meta-conversions";
  meta.device_only = false;
  meta.settings = {ServerKey("pixel_id", true, "the pixel ID (the server's setting)"),
                   ServerKey("access_token", false, "the Conversions API token: never sent"),
                   TagUrl(meta.tag_url)};
  all.push_back(meta);
  const std::string tiktok_url =
      "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid={pixel_code}&lib=ttq";
  BrowserIntegration tiktok{"tiktok-pixel",
                            "tiktok-pixel",
                            "TikTok Pixel",
                            true,
                            tiktok_url,
                            "advertising",
                            {Id("pixel_code", "the TikTok pixel code"), TagUrl(tiktok_url)}};
  all.push_back(tiktok);
  tiktok.type = "tiktok";  // the Events API destination; TikTok deduplicates by event_id
  tiktok.device_only = false;
  tiktok.settings = {ServerKey("pixel_code", true, "the pixel code (the server's setting)"),
                     ServerKey("access_token", false, "the Events API token: never sent"),
                     TagUrl(tiktok_url)};
  all.push_back(tiktok);
  all.push_back({"linkedin-insight",
                 "linkedin-insight",
                 "LinkedIn Insight Tag",
                 true,
                 "https://snap.licdn.com/li.lms-analytics/insight.min.js",
                 "advertising",
                 {Id("partner_id", "the Insight Tag partner ID"),
                  Optional("conversions", Kind::kStringMap,
                           "track event name → conversion ID (lintrk('track'))"),
                  TagUrl("https://snap.licdn.com/li.lms-analytics/insight.min.js")}});
  all.push_back({"hotjar",
                 "hotjar",
                 "Hotjar",
                 true,
                 "https://static.hotjar.com/c/hotjar-{site_id}.js?sv=6",
                 "analytics",
                 {Id("site_id", "the Hotjar site ID"),
                  TagUrl("https://static.hotjar.com/c/hotjar-{site_id}.js?sv=6")}});
  all.push_back({"intercom-messenger",
                 "intercom",
                 "Intercom",
                 true,
                 "https://widget.intercom.io/widget/{app_id}",
                 "functional",
                 {Id("app_id", "the Intercom workspace (app) ID"),
                  TagUrl("https://widget.intercom.io/widget/{app_id}")}});
  all.push_back({"hubspot-tracking",
                 "hubspot",
                 "HubSpot",
                 true,
                 "https://js.hs-scripts.com/{portal_id}.js",
                 "analytics",
                 {Id("portal_id", "the HubSpot account (Hub) ID"),
                  TagUrl("https://js.hs-scripts.com/{portal_id}.js")}});
  all.push_back({"mixpanel-browser",
                 "mixpanel",
                 "Mixpanel",
                 true,
                 "https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js",
                 "analytics",
                 {Id("token", "the project token (public by design)"),
                  Optional("api_host", Kind::kUrl, "where mixpanel-js sends (EU: api-eu)"),
                  Optional("group_key", Kind::kString, "group key for group() (default company)"),
                  TagUrl("https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js")}});
  all.push_back({"amplitude-browser",
                 "amplitude",
                 "Amplitude",
                 true,
                 "https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz",
                 "analytics",
                 {Id("api_key", "the project API key (public by design)"),
                  Optional("group_type", Kind::kString, "group type for group() (default company)"),
                  TagUrl("https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz")}});
  return all;
}

std::string Known(bool device_only_too) {
  std::string out;
  for (const auto& b : BrowserIntegrations())
    if (device_only_too || !b.device_only) out += (out.empty() ? "" : ", ") + b.type;
  return out;
}

bool IsUrl(std::string_view v) {
  return (v.starts_with("https://") && v.size() > 8) || (v.starts_with("http://") && v.size() > 7);
}

}  // namespace

const std::vector<BrowserIntegration>& BrowserIntegrations() {
  static const std::vector<BrowserIntegration> kAll = Build();
  return kAll;
}

const BrowserIntegration* FindBrowserIntegration(std::string_view type) {
  for (const auto& b : BrowserIntegrations())
    if (b.type == type) return &b;
  return nullptr;
}

bool IsDeviceOnlyType(std::string_view type) {
  const BrowserIntegration* b = FindBrowserIntegration(type);
  return b && b->device_only;
}

std::string CheckDeviceMode(const config::DestinationConfig& d, const std::string& file,
                            const std::string& path) {
  const BrowserIntegration* b = FindBrowserIntegration(d.type);
  auto at = [&](int line, const std::string& key, const std::string& problem) {
    return file + ":" + std::to_string(line ? line : d.line) + ": " + path + "." + key + ": " +
           problem + "\n";
  };
  if (!b) {
    if (d.mode == config::DeliveryMode::kCloud) return "";
    return at(0, "mode",
              "type '" + d.type + "' has no browser tag (types with one: " + Known(true) + ")");
  }
  if (b->device_only && d.mode != config::DeliveryMode::kDevice)
    return at(0, "mode", "type '" + d.type + "' exists only in the browser: set mode: device");
  if (!b->device_only && d.mode == config::DeliveryMode::kDevice)
    return at(0, "mode",
              "type '" + d.type + "' runs in the browser only beside the server: " +
                  "set mode: both, or use '" + b->id + "'");
  std::string errors;
  if (!b->device_only) {
    // The server's table checks the rest; only the browser-only keys are checked here.
    for (const auto& s : d.settings) {
      for (const auto& row : b->settings) {
        if (row.key != s.key || !row.browser_only) continue;
        if (s.kind != config::RawSetting::Kind::kScalar || !IsUrl(s.scalar))
          errors += at(s.line, "settings." + s.key, "expected an http:// or https:// URL");
      }
    }
    return errors;
  }
  for (const auto& s : d.settings) {
    auto row = std::find_if(b->settings.begin(), b->settings.end(),
                            [&](const BrowserSetting& r) { return r.key == s.key; });
    if (row == b->settings.end()) {
      std::string keys;
      for (const auto& r : b->settings)
        keys += (keys.empty() ? "" : ", ") + r.key;
      errors += at(s.line, "settings." + s.key, "unknown key (known: " + keys + ")");
      continue;
    }
    using RK = config::RawSetting::Kind;
    switch (row->kind) {
      case Kind::kString:
        if (s.kind != RK::kScalar || s.scalar.empty())
          errors += at(s.line, "settings." + s.key, "expected a non-empty string");
        break;
      case Kind::kUrl:
        if (s.kind != RK::kScalar || !IsUrl(s.scalar))
          errors += at(s.line, "settings." + s.key, "expected an http:// or https:// URL");
        break;
      case Kind::kBool:
        if (s.kind != RK::kScalar || (s.scalar != "true" && s.scalar != "false"))
          errors += at(s.line, "settings." + s.key, "expected true or false");
        break;
      case Kind::kStringMap:
        if (s.kind != RK::kMap) errors += at(s.line, "settings." + s.key, "expected a mapping");
        break;
    }
  }
  for (const auto& r : b->settings) {
    if (!r.required) continue;
    bool given = std::any_of(d.settings.begin(), d.settings.end(),
                             [&](const config::RawSetting& s) { return s.key == r.key; });
    if (!given) errors += at(0, "settings." + r.key, "required key is missing");
  }
  return errors;
}

std::vector<config::RawSetting> CloudSettings(const config::DestinationConfig& d) {
  const BrowserIntegration* b = FindBrowserIntegration(d.type);
  if (!b || d.mode == config::DeliveryMode::kCloud) return d.settings;
  std::vector<config::RawSetting> out;
  for (const auto& s : d.settings) {
    bool browser_only = std::any_of(b->settings.begin(), b->settings.end(), [&](const auto& r) {
      return r.key == s.key && r.browser_only;
    });
    if (!browser_only) out.push_back(s);
  }
  return out;
}

}  // namespace sy::web
