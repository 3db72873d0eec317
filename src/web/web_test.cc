#include "web/web_endpoints.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/json.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "web/analytics_js.h"

namespace sy::web {
namespace {

namespace json = boost::json;
namespace bhttp = http::bhttp;

std::string Gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

class WebEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(options_); }

  void Make(const config::WebConfig& options) {
    auto w = WebEndpoints::Create(
        options,
        [this](std::string_view key) -> std::optional<std::string> {
          ++lookups_;
          if (key == "wk_web") return "web";
          return std::nullopt;
        },
        [](const http::Request& req, http::Response* res) {
          if (!req[bhttp::field::origin].empty()) {
            res->set(bhttp::field::access_control_allow_origin, req[bhttp::field::origin]);
            res->set(bhttp::field::vary, "Origin");
          }
        });
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    web_ = std::move(*w);
  }

  http::Response Get(const std::string& target,
                     std::vector<std::pair<bhttp::field, std::string>> headers = {}) {
    http::Request req{bhttp::verb::get, target, 11};
    for (auto& [f, v] : headers)
      req.set(f, v);
    return web_->Handle(req);
  }

  static config::WebConfig DefaultOptions() {
    config::WebConfig o;
    o.cache_max_age_ms = 60'000;
    o.public_api_host = "127.0.0.1:8080/v1";
    return o;
  }

  config::WebConfig options_ = DefaultOptions();
  std::atomic<int> lookups_{0};
  std::unique_ptr<WebEndpoints> web_;
};

constexpr const char* kSettings = "/v1/projects/wk_web/settings";
constexpr const char* kScript = "/analytics.js/v1/wk_web/analytics.min.js";

TEST(WebPaths, ServesOnlyTheTwoBrowserPaths) {
  EXPECT_TRUE(WebEndpoints::Serves("/v1/projects/wk/settings"));
  EXPECT_TRUE(WebEndpoints::Serves("/analytics.js/v1/wk/analytics.min.js"));
  EXPECT_FALSE(WebEndpoints::Serves("/v1/track"));
  EXPECT_FALSE(WebEndpoints::Serves("/v1/b"));
  EXPECT_FALSE(WebEndpoints::Serves("/v1/projects/wk"));
  EXPECT_FALSE(WebEndpoints::Serves("/analytics.js/v1/wk/analytics.js"));
}

TEST_F(WebEndpointsTest, SettingsDocumentPointsAnalyticsNextBackHere) {
  auto res = Get(kSettings);
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
  json::value doc = json::parse(res.body());
  const auto& seg = doc.at("integrations").at("Segment.io").as_object();
  EXPECT_EQ(seg.at("apiKey").as_string(), "wk_web");
  EXPECT_EQ(seg.at("apiHost").as_string(), "127.0.0.1:8080/v1");
  EXPECT_EQ(seg.at("protocol").as_string(), "http");
  EXPECT_EQ(doc.at("integrations").as_object().size(), 1u);  // no device-mode destinations
  EXPECT_TRUE(doc.at("plan").at("track").at("__default").at("enabled").as_bool());
  EXPECT_TRUE(doc.at("plan").at("identify").at("__default").at("enabled").as_bool());
  EXPECT_EQ(doc.at("metrics").at("sampleRate").to_number<double>(), 0);
}

TEST_F(WebEndpointsTest, ScriptInlinesTheSettings) {
  auto script = Get(kScript);
  ASSERT_EQ(script.result_int(), 200);
  EXPECT_EQ(script[bhttp::field::content_type], "application/javascript; charset=utf-8");
  std::string settings = Get(kSettings).body();
  EXPECT_EQ(script.body().find(kSettingsPlaceholder), std::string::npos);
  EXPECT_NE(script.body().find(settings), std::string::npos);
  EXPECT_EQ(script.body().size(),
            AnalyticsJsBundle().size() - kSettingsPlaceholder.size() + settings.size());
}

TEST_F(WebEndpointsTest, EmbeddedLibraryIsAtMostTenKilobytesGzipped) {
  auto res = Get(kScript, {{bhttp::field::accept_encoding, "gzip"}});
  ASSERT_EQ(res[bhttp::field::content_encoding], "gzip");
  EXPECT_LE(res.body().size(), 10u * 1024) << "the browser library grew past 10 KB gzipped";
  EXPECT_GT(res.body().size(), 1000u);
}

TEST_F(WebEndpointsTest, CachingHeaders) {
  for (const char* path : {kSettings, kScript}) {
    auto res = Get(path);
    EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=60") << path;
    std::string etag(res[bhttp::field::etag]);
    ASSERT_GE(etag.size(), 3u);
    EXPECT_EQ(etag.front(), '"');
    EXPECT_EQ(etag.back(), '"');
    EXPECT_FALSE(etag.starts_with("W/")) << "must be a strong ETag";
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
  }
  options_.cache_max_age_ms = 5000;
  Make(options_);
  EXPECT_EQ(Get(kSettings)[bhttp::field::cache_control], "public, max-age=5");
}

TEST_F(WebEndpointsTest, GzipWhenAcceptedWithItsOwnTag) {
  auto plain = Get(kScript);
  auto gz = Get(kScript, {{bhttp::field::accept_encoding, "br, gzip, deflate"}});
  ASSERT_EQ(gz.result_int(), 200);
  EXPECT_EQ(gz[bhttp::field::content_encoding], "gzip");
  EXPECT_EQ(plain[bhttp::field::content_encoding], "");
  EXPECT_EQ(Gunzip(gz.body()), plain.body());
  EXPECT_LT(gz.body().size(), plain.body().size());
  EXPECT_NE(gz[bhttp::field::etag], plain[bhttp::field::etag]);
  EXPECT_EQ(Get(kScript, {{bhttp::field::accept_encoding,
                           "gzip;q=0, identity"}})[bhttp::field::content_encoding],
            "");
  EXPECT_EQ(Get(kScript, {{bhttp::field::accept_encoding, "*"}})[bhttp::field::content_encoding],
            "gzip");
  EXPECT_EQ(
      Get(kScript, {{bhttp::field::accept_encoding, "GZIP;q=0.5"}})[bhttp::field::content_encoding],
      "gzip");
}

TEST_F(WebEndpointsTest, NotModifiedOnMatchingIfNoneMatch) {
  for (const char* path : {kSettings, kScript}) {
    auto first = Get(path);
    std::string etag(first[bhttp::field::etag]);
    auto again = Get(path, {{bhttp::field::if_none_match, etag}});
    EXPECT_EQ(again.result_int(), 304) << path;
    EXPECT_TRUE(again.body().empty());
    EXPECT_EQ(again[bhttp::field::etag], etag);
    EXPECT_EQ(again[bhttp::field::cache_control], "public, max-age=60");
    EXPECT_EQ(Get(path, {{bhttp::field::if_none_match, "\"other\", W/" + etag}}).result_int(), 304);
    EXPECT_EQ(Get(path, {{bhttp::field::if_none_match, "\"other\""}}).result_int(), 200);
    // A cache holding the identity bytes that now accepts gzip: still 304, with the tag it has.
    auto mixed =
        Get(path, {{bhttp::field::if_none_match, etag}, {bhttp::field::accept_encoding, "gzip"}});
    EXPECT_EQ(mixed.result_int(), 304);
    EXPECT_EQ(mixed[bhttp::field::etag], etag);
  }
}

TEST_F(WebEndpointsTest, UnknownWriteKeyIs404) {
  auto res = Get("/v1/projects/wk_nope/settings");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("unknown_write_key"), std::string::npos);
  EXPECT_EQ(Get("/analytics.js/v1/wk_nope/analytics.min.js").result_int(), 404);
  EXPECT_EQ(Get("/analytics.js/v1//analytics.min.js").result_int(), 404);
  EXPECT_EQ(Get("/v1/projects/a/b/settings").result_int(), 404);
  EXPECT_EQ(Get("/v1/projects/wk%5Fweb/settings").result_int(), 200);  // percent-decoded
}

TEST_F(WebEndpointsTest, DocumentsAreBuiltOncePerSource) {
  Get(kSettings);
  Get(kScript);
  Get("/v1/projects/wk_nope/settings");
  Get("/v1/projects/wk_nope/settings");
  int before = lookups_.load();
  for (int i = 0; i < 10; ++i)
    Get(i % 2 ? kSettings : kScript);
  EXPECT_EQ(lookups_.load(), before) << "a known key must be served from memory";
  EXPECT_EQ(before, 3) << "unknown keys are looked up every time and never cached";
}

TEST_F(WebEndpointsTest, ConcurrentFirstRequestsAgree) {
  std::vector<std::string> tags(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tags.size(); ++i)
    threads.emplace_back([&, i] { tags[i] = std::string(Get(kScript)[bhttp::field::etag]); });
  for (auto& t : threads)
    t.join();
  for (const auto& t : tags)
    EXPECT_EQ(t, tags[0]);
}

TEST_F(WebEndpointsTest, SettingsChangeChangesTheTags) {
  std::string before(Get(kSettings)[bhttp::field::etag]);
  std::string script_before(Get(kScript)[bhttp::field::etag]);
  options_.public_api_host = "events.example.com/v1";
  options_.public_api_protocol = "https";
  Make(options_);
  EXPECT_NE(Get(kSettings)[bhttp::field::etag], before);
  EXPECT_NE(Get(kScript)[bhttp::field::etag], script_before);
  EXPECT_EQ(Get(kSettings, {{bhttp::field::if_none_match, before}}).result_int(), 200);
}

TEST_F(WebEndpointsTest, CorsOnEveryAnswer) {
  const std::pair<bhttp::field, std::string> origin{bhttp::field::origin, "http://shop.test"};
  for (const char* path : {kSettings, kScript, "/v1/projects/wk_nope/settings"}) {
    auto res = Get(path, {origin});
    EXPECT_EQ(res[bhttp::field::access_control_allow_origin], "http://shop.test") << path;
  }
  EXPECT_EQ(Get(kScript, {origin})[bhttp::field::vary], "Origin, Accept-Encoding");
}

TEST_F(WebEndpointsTest, OnlyGet) {
  http::Request req{bhttp::verb::post, kSettings, 11};
  EXPECT_EQ(web_->Handle(req).result_int(), 405);
}

TEST(WebCreate, RejectsALibraryWithoutOnePlaceholder) {
  auto none = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  auto cors = [](const http::Request&, http::Response*) {};
  auto code = AnalyticsJsIntegrations();
  EXPECT_FALSE(WebEndpoints::Create({}, none, cors, "var x=1;", code).ok());
  std::string twice = std::string(kSettingsPlaceholder) + std::string(kSettingsPlaceholder);
  EXPECT_FALSE(WebEndpoints::Create({}, none, cors, twice, code).ok());
  EXPECT_TRUE(
      WebEndpoints::Create({}, none, cors, "var s=" + std::string(kSettingsPlaceholder), code)
          .ok());
  // Every integration of the table needs its code.
  EXPECT_FALSE(
      WebEndpoints::Create({}, none, cors, "var s=" + std::string(kSettingsPlaceholder), "").ok());
}

// ---- device mode ----

config::RawSetting Scalar(std::string key, std::string value) {
  config::RawSetting s;
  s.key = std::move(key);
  s.scalar = std::move(value);
  return s;
}

config::DestinationConfig Dest(std::string name, std::string type, config::DeliveryMode mode,
                               std::vector<config::RawSetting> settings,
                               std::vector<std::string> sources = {}) {
  config::DestinationConfig d;
  d.name = std::move(name);
  d.type = std::move(type);
  d.mode = mode;
  d.settings = std::move(settings);
  d.sources = std::move(sources);
  return d;
}

constexpr std::string_view kSecret = "EAAB-very-secret-access-token";

std::vector<config::DestinationConfig> DeviceDestinations() {
  using M = config::DeliveryMode;
  std::vector<config::DestinationConfig> out;
  out.push_back(Dest("ga", "ga4-gtag", M::kDevice, {Scalar("measurement_id", "G-TEST1")}, {"web"}));
  out.back().consent_categories = {"analytics", "personalization"};
  out.push_back(Dest("fb", "meta-conversions", M::kBoth,
                     {Scalar("pixel_id", "1234"), Scalar("access_token", std::string(kSecret)),
                      Scalar("tag_url", "http://tags.test/fbevents.js")}));
  out.push_back(Dest("fb2", "meta-pixel", M::kDevice, {Scalar("pixel_id", "999")}));
  auto off = Dest("hj", "hotjar", M::kDevice, {Scalar("site_id", "42")});
  off.enabled = false;
  out.push_back(off);
  out.push_back(Dest("ic", "intercom-messenger", M::kDevice, {Scalar("app_id", "abc")},
                     {"other"}));  // not for web
  out.push_back(Dest("hook", "webhook", M::kCloud, {Scalar("url", "http://h.test/")}));
  return out;
}

// The code of one integration in the embedded text.
std::string IntegrationCode(std::string_view id) {
  std::string_view all = AnalyticsJsIntegrations();
  std::string marker = std::string(kIntegrationMarker) + std::string(id) + "\n";
  size_t at = all.find(marker);
  EXPECT_NE(at, std::string_view::npos) << id;
  if (at == std::string_view::npos) return "";
  at += marker.size();
  size_t end = all.find(std::string("\n") + std::string(kIntegrationMarker), at);
  return std::string(
      all.substr(at, end == std::string_view::npos ? all.size() - at : end + 1 - at));
}

TEST_F(WebEndpointsTest, SettingsListEnabledDeviceModeDestinationsOfTheSourceOnly) {
  web_->SetDestinations(DeviceDestinations());
  json::value doc = json::parse(Get(kSettings).body());
  const auto& integ = doc.at("integrations").as_object();
  ASSERT_EQ(integ.size(), 4u) << doc;  // Segment.io, ga, fb, fb2: not hj (off), ic, hook
  const auto& ga = integ.at("ga").as_object();
  EXPECT_EQ(ga.at("integration").as_string(), "ga4");
  EXPECT_EQ(ga.at("type").as_string(), "ga4-gtag");
  EXPECT_EQ(ga.at("displayName").as_string(), "Google Analytics 4 Web");
  EXPECT_EQ(ga.at("tagUrl").as_string(),
            "https://www.googletagmanager.com/gtag/js?id={measurement_id}");
  EXPECT_EQ(ga.at("settings").at("measurement_id").as_string(), "G-TEST1");
  EXPECT_EQ(ga.at("consentCategories"), (json::array{"analytics", "personalization"}));
  const auto& fb = integ.at("fb").as_object();
  EXPECT_EQ(fb.at("integration").as_string(), "meta-pixel");
  EXPECT_EQ(fb.at("tagUrl").as_string(), "http://tags.test/fbevents.js");  // overridden
  EXPECT_EQ(fb.at("settings").as_object().size(), 1u) << fb;
  EXPECT_EQ(fb.at("settings").at("pixel_id").as_string(), "1234");
  EXPECT_EQ(fb.at("consentCategories"), json::array{});  // none: consent does not restrict it
  // analytics-next installs only entries saying they are browser components.
  for (const auto& [name, v] : integ) {
    if (name == "Segment.io") continue;
    EXPECT_FALSE(v.as_object().contains("versionSettings")) << name;
    EXPECT_NE(v.at("type").as_string(), "browser") << name;
  }
}

TEST_F(WebEndpointsTest, ASecretNeverReachesTheBrowser) {
  web_->SetDestinations(DeviceDestinations());
  for (const char* path : {kSettings, kScript})
    EXPECT_EQ(Get(path).body().find(kSecret), std::string::npos) << path;
  // Every row that is not browser-safe is left out, whatever the type.
  for (const auto& b : BrowserIntegrations()) {
    std::vector<config::RawSetting> all;
    for (const auto& row : b.settings)
      all.push_back(Scalar(row.key, "value-of-" + row.key));
    auto d = Dest("x", b.type,
                  b.device_only ? config::DeliveryMode::kDevice : config::DeliveryMode::kBoth, all);
    std::string doc = WebEndpoints::SettingsJson("wk", options_, "web", {d});
    for (const auto& row : b.settings) {
      bool present = doc.find("value-of-" + row.key) != std::string::npos;
      EXPECT_EQ(present, row.browser_safe) << b.type << "." << row.key;
    }
  }
}

TEST_F(WebEndpointsTest, ScriptCarriesOnlyTheIntegrationsTheSourceUses) {
  web_->SetDestinations(DeviceDestinations());
  std::string script = Get(kScript).body();
  std::string settings = Get(kSettings).body();
  // ga4 then meta-pixel (table order), each once although two destinations use the pixel.
  std::string expected = IntegrationCode("ga4") + IntegrationCode("meta-pixel");
  ASSERT_GT(script.size(), expected.size());
  EXPECT_EQ(script.substr(0, expected.size()), expected);
  std::string library(AnalyticsJsBundle());
  library.replace(library.find(kSettingsPlaceholder), kSettingsPlaceholder.size(), settings);
  EXPECT_EQ(script.substr(expected.size()), library);
  for (const char* other : {"hotjar", "intercom", "mixpanel", "amplitude"})
    EXPECT_EQ(script.find(IntegrationCode(other)), std::string::npos) << other;
}

TEST_F(WebEndpointsTest, ASourceWithoutDeviceModeGetsTheLibraryAlone) {
  std::string before = Get(kScript).body();
  std::string before_settings = Get(kSettings).body();
  auto dests = DeviceDestinations();
  for (auto& d : dests)
    if (d.mode != config::DeliveryMode::kCloud) d.sources = {"other"};
  web_->SetDestinations(dests);
  std::string after = Get(kScript).body();
  EXPECT_EQ(after, before);  // byte for byte
  EXPECT_EQ(Get(kSettings).body(), before_settings);
  std::string library(AnalyticsJsBundle());
  library.replace(library.find(kSettingsPlaceholder), kSettingsPlaceholder.size(), before_settings);
  EXPECT_EQ(after, library);
}

TEST_F(WebEndpointsTest, NewDestinationsGiveNewTags) {
  std::string before(Get(kScript)[bhttp::field::etag]);
  web_->SetDestinations(DeviceDestinations());
  std::string after(Get(kScript)[bhttp::field::etag]);
  EXPECT_NE(after, before);
  EXPECT_EQ(Get(kScript, {{bhttp::field::if_none_match, after}}).result_int(), 304);
}

size_t GzippedSize(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  return n;
}

TEST(WebIntegrations, EachIntegrationIsAtMostTwoKilobytesGzipped) {
  std::set<std::string> ids;
  for (const auto& b : BrowserIntegrations())
    ids.insert(b.id);
  EXPECT_EQ(ids.size(), 10u);
  for (const auto& id : ids) {
    std::string code = IntegrationCode(id);
    EXPECT_GT(code.size(), 100u) << id;
    EXPECT_LE(GzippedSize(code), 2048u) << id << " grew past 2 KB gzipped";
    // Each registers itself under its id for the library.
    EXPECT_NE(code.find("__syIntegrations"), std::string::npos) << id;
  }
}

}  // namespace
}  // namespace sy::web
