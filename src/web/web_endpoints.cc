#include "web/web_endpoints.h"

#include <zlib.h>

#include <boost/json.hpp>

#include <algorithm>
#include <mutex>
#include <set>

#include "http/content_coding.h"
#include "web/analytics_js.h"

namespace sy::web {
namespace {

namespace json = boost::json;

constexpr std::string_view kSettingsPrefix = "/v1/projects/";
constexpr std::string_view kSettingsSuffix = "/settings";
constexpr std::string_view kScriptPrefix = "/analytics.js/v1/";
constexpr std::string_view kScriptSuffix = "/analytics.min.js";

// The write key between `prefix` and `suffix`, percent-decoded; nullopt when the path is not
// of that shape (or the key is empty or holds a '/').
std::optional<std::string> KeyBetween(std::string_view path, std::string_view prefix,
                                      std::string_view suffix) {
  if (path.size() <= prefix.size() + suffix.size() || !path.starts_with(prefix) ||
      !path.ends_with(suffix))
    return std::nullopt;
  std::string_view raw = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  std::string key;
  key.reserve(raw.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '/') return std::nullopt;
    if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
      key.push_back(static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2])));
      i += 2;
    } else {
      key.push_back(raw[i]);
    }
  }
  if (key.empty() || key.find('/') != std::string::npos) return std::nullopt;
  return key;
}

// gzip (RFC 1952) at the best compression: done once per document, so size beats speed.
Result<std::string> Gzip(std::string_view in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    return Internal("deflateInit2 failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Internal("deflate did not finish");
  return out;
}

// The entity tags of If-None-Match (weak comparison: W/ is ignored), or "*".
bool TagListHas(std::string_view list, std::string_view tag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == tag || item == "*") return true;
  }
  return false;
}

// Splits the embedded integrations text (analytics_js.h) into code by integration id.
Result<std::unordered_map<std::string, std::string>> SplitIntegrations(std::string_view text) {
  std::unordered_map<std::string, std::string> out;
  size_t at = text.find(kIntegrationMarker);
  if (at != 0 && !text.empty())
    return InvalidArgument("integrations text must start with a marker");
  while (at != std::string_view::npos) {
    size_t id_start = at + kIntegrationMarker.size();
    size_t eol = text.find('\n', id_start);
    if (eol == std::string_view::npos) return InvalidArgument("integration marker without code");
    std::string id(text.substr(id_start, eol - id_start));
    size_t next = text.find("\n" + std::string(kIntegrationMarker), eol);
    std::string_view code = text.substr(
        eol + 1, next == std::string_view::npos ? std::string_view::npos : next + 1 - (eol + 1));
    out[id] = std::string(code);
    at = next == std::string_view::npos ? next : next + 1;
  }
  for (const auto& b : BrowserIntegrations())
    if (!out.contains(b.id)) return InvalidArgument("no code for browser integration " + b.id);
  return out;
}

// A setting's value as the browser reads it (typed by the integration's table).
json::value SettingValue(const config::RawSetting& raw, BrowserSetting::Kind kind) {
  if (kind == BrowserSetting::Kind::kBool) return json::value(raw.scalar == "true");
  if (raw.kind == config::RawSetting::Kind::kMap) {
    json::object m;
    for (const auto& [k, v] : raw.map)
      m[k] = v;
    return m;
  }
  return json::value(raw.scalar);
}

// The document entry of one device-mode destination: only browser-safe settings.
json::object DeviceEntry(const config::DestinationConfig& d, const BrowserIntegration& b) {
  json::object settings;
  std::string tag_url = b.tag_url;
  for (const auto& row : b.settings) {
    for (const auto& raw : d.settings) {
      if (raw.key != row.key) continue;
      if (row.key == "tag_url") {
        tag_url = raw.scalar;
      } else if (row.browser_safe) {
        settings[row.key] = SettingValue(raw, row.kind);
      }
    }
  }
  return json::object{
      {"integration", b.id},
      {"type", d.type},
      {"displayName", b.display_name},
      {"tagUrl", tag_url},
      {"consentCategories", json::array(d.consent_categories.begin(), d.consent_categories.end())},
      {"settings", std::move(settings)},
  };
}

}  // namespace

struct WebEndpoints::Representation {
  std::string body;
  std::string etag;  // strong, quoted
};

struct WebEndpoints::Document {
  std::string_view content_type;
  Representation identity;
  std::optional<Representation> gzip;  // absent only if compression failed
};

struct WebEndpoints::Entry {
  Document settings;
  Document script;
};

WebEndpoints::WebEndpoints(const config::WebConfig& options, SourceLookup lookup, CorsHeaders cors,
                           std::string_view bundle,
                           std::unordered_map<std::string, std::string> code)
    : options_(options),
      lookup_(std::move(lookup)),
      cors_(std::move(cors)),
      bundle_(bundle),
      integration_code_(std::move(code)),
      cache_control_("public, max-age=" + std::to_string(options.cache_max_age_ms / 1000)) {}

WebEndpoints::~WebEndpoints() = default;

Result<std::unique_ptr<WebEndpoints>> WebEndpoints::Create(const config::WebConfig& options,
                                                           SourceLookup lookup, CorsHeaders cors,
                                                           std::string_view bundle,
                                                           std::string_view integrations) {
  size_t first = bundle.find(kSettingsPlaceholder);
  if (first == std::string_view::npos ||
      bundle.find(kSettingsPlaceholder, first + 1) != std::string_view::npos) {
    return InvalidArgument("the browser library must hold the settings placeholder exactly once");
  }
  SY_ASSIGN_OR_RETURN(auto code, SplitIntegrations(integrations));
  return std::unique_ptr<WebEndpoints>(
      new WebEndpoints(options, std::move(lookup), std::move(cors), bundle, std::move(code)));
}

Result<std::unique_ptr<WebEndpoints>> WebEndpoints::Create(const config::WebConfig& options,
                                                           SourceLookup lookup, CorsHeaders cors) {
  return Create(options, std::move(lookup), std::move(cors), AnalyticsJsBundle(),
                AnalyticsJsIntegrations());
}

bool WebEndpoints::Serves(std::string_view path) {
  return (path.starts_with(kSettingsPrefix) && path.ends_with(kSettingsSuffix)) ||
         (path.starts_with(kScriptPrefix) && path.ends_with(kScriptSuffix));
}

std::vector<const config::DestinationConfig*> WebEndpoints::DeviceDestinationsOf(
    std::string_view source, const std::vector<config::DestinationConfig>& destinations) {
  std::vector<const config::DestinationConfig*> out;
  for (const auto& d : destinations) {
    if (!d.enabled || d.mode == config::DeliveryMode::kCloud) continue;
    if (!FindBrowserIntegration(d.type)) continue;
    if (!d.sources.empty() &&
        std::find(d.sources.begin(), d.sources.end(), source) == d.sources.end())
      continue;
    out.push_back(&d);
  }
  return out;
}

std::string WebEndpoints::SettingsJson(std::string_view write_key,
                                       const config::WebConfig& options) {
  return SettingsJson(write_key, options, "", {});
}

std::string WebEndpoints::SettingsJson(std::string_view write_key, const config::WebConfig& options,
                                       std::string_view source,
                                       const std::vector<config::DestinationConfig>& destinations) {
  // The minimal document analytics-next accepts, plus what keeps it from calling Segment's own
  // services: no remote plugins, metrics sampling off. Device-mode destinations sit beside
  // "Segment.io", keyed by destination name: analytics-next installs an entry only when it says
  // `type: "browser"` or `versionSettings.componentTypes: ["browser"]`, which these never do, so
  // it ignores them (tests/browser/analytics_next.test.mjs); Switchyard's library reads them.
  json::object segment{
      {"apiKey", write_key},
      {"apiHost", options.public_api_host},
      {"protocol", options.public_api_protocol},
      {"unbundledIntegrations", json::array{}},
      {"addBundledMetadata", true},
      {"maybeBundledConfigIds", json::object{}},
      {"versionSettings",
       json::object{{"version", "4.4.7"}, {"componentTypes", json::array{"browser"}}}},
  };
  json::object plan{
      {"track", json::object{{"__default", json::object{{"enabled", true}}}}},
      {"identify", json::object{{"__default", json::object{{"enabled", true}}}}},
      {"group", json::object{{"__default", json::object{{"enabled", true}}}}},
  };
  json::object integrations{{"Segment.io", std::move(segment)}};
  for (const config::DestinationConfig* d : DeviceDestinationsOf(source, destinations))
    integrations[d->name] = DeviceEntry(*d, *FindBrowserIntegration(d->type));
  json::object doc{
      {"integrations", std::move(integrations)},
      {"plan", std::move(plan)},
      {"edgeFunction", json::object{}},
      {"analyticsNextEnabled", true},
      {"middlewareSettings", json::object{}},
      {"enabledMiddleware", json::object{}},
      {"metrics", json::object{{"sampleRate", 0}}},
      {"legacyVideoPluginsEnabled", false},
      {"remotePlugins", json::array{}},
  };
  return json::serialize(doc);
}

std::shared_ptr<const WebEndpoints::Entry> WebEndpoints::Find(const std::string& write_key) {
  {
    std::shared_lock lock(mu_);
    auto it = by_write_key_.find(write_key);
    if (it != by_write_key_.end()) return it->second;
  }
  std::optional<std::string> source = lookup_(write_key);
  if (!source) return nullptr;
  std::shared_ptr<const std::vector<config::DestinationConfig>> destinations;
  {
    std::shared_lock lock(mu_);
    destinations = destinations_;
  }
  static const std::vector<config::DestinationConfig> kNone;
  const auto& dests = destinations ? *destinations : kNone;
  auto make = [](std::string_view type, std::string body) {
    Document d;
    d.content_type = type;
    std::string digest = config::Sha256Hex(body).substr(0, 32);
    d.identity = {std::move(body), "\"" + digest + "\""};
    if (auto gz = Gzip(d.identity.body); gz.ok())
      d.gzip = Representation{*gz, "\"" + digest + "-gz\""};
    return d;
  };
  std::string settings = SettingsJson(write_key, options_, *source, dests);
  // The integrations' code first (each registers itself), once per integration, in table order;
  // then the library, which finds them when it starts.
  std::set<std::string> used;
  for (const config::DestinationConfig* d : DeviceDestinationsOf(*source, dests))
    used.insert(FindBrowserIntegration(d->type)->id);
  std::string script;
  for (const auto& b : BrowserIntegrations()) {
    if (used.erase(b.id)) script += integration_code_.at(b.id);
  }
  script += bundle_;
  script.replace(script.rfind(kSettingsPlaceholder), kSettingsPlaceholder.size(), settings);
  auto entry = std::make_shared<Entry>();
  entry->settings = make("application/json; charset=utf-8", std::move(settings));
  entry->script = make("application/javascript; charset=utf-8", std::move(script));
  std::unique_lock lock(mu_);
  // Destinations changed while building: serve these bytes once, cache nothing stale.
  if (destinations_ != destinations) return entry;
  // Another thread may have published first: keep one, both are identical.
  auto [it, inserted] = by_write_key_.emplace(write_key, std::move(entry));
  return it->second;
}

void WebEndpoints::ForgetSources() {
  std::unique_lock lock(mu_);
  by_write_key_.clear();
}

void WebEndpoints::SetDestinations(std::vector<config::DestinationConfig> destinations) {
  auto next =
      std::make_shared<const std::vector<config::DestinationConfig>>(std::move(destinations));
  std::unique_lock lock(mu_);
  destinations_ = std::move(next);
  by_write_key_.clear();
}

http::Response WebEndpoints::Handle(const http::Request& request) {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool settings = path.starts_with(kSettingsPrefix);
  auto key = settings ? KeyBetween(path, kSettingsPrefix, kSettingsSuffix)
                      : KeyBetween(path, kScriptPrefix, kScriptSuffix);
  if (request.method() != http::bhttp::verb::get) {
    http::Response res{http::bhttp::status::method_not_allowed, request.version()};
    res.set(http::bhttp::field::allow, "GET, OPTIONS");
    res.set(http::bhttp::field::content_type, "text/plain");
    res.body() = "use GET\n";
    res.prepare_payload();
    cors_(request, &res);
    return res;
  }
  std::shared_ptr<const Entry> entry = key ? Find(*key) : nullptr;
  if (!entry) return NotFound(request);
  return Serve(request, settings ? entry->settings : entry->script);
}

http::Response WebEndpoints::Serve(const http::Request& request, const Document& doc) const {
  bool gzip = doc.gzip && http::AcceptsGzip(request[http::bhttp::field::accept_encoding]);
  const Representation& rep = gzip ? *doc.gzip : doc.identity;
  auto inm = request[http::bhttp::field::if_none_match];
  // Either representation's tag means the client holds these bytes: answer with its own tag.
  const Representation* held = nullptr;
  if (!inm.empty()) {
    if (TagListHas(inm, rep.etag))
      held = &rep;
    else if (doc.gzip && TagListHas(inm, (gzip ? doc.identity : *doc.gzip).etag))
      held = gzip ? &doc.identity : &*doc.gzip;
  }
  http::Response res{held ? http::bhttp::status::not_modified : http::bhttp::status::ok,
                     request.version()};
  res.set(http::bhttp::field::cache_control, cache_control_);
  cors_(request, &res);  // may set Vary: Origin
  auto vary = res[http::bhttp::field::vary];
  res.set(http::bhttp::field::vary,
          vary.empty() ? std::string("Accept-Encoding") : std::string(vary) + ", Accept-Encoding");
  if (held) {
    res.set(http::bhttp::field::etag, held->etag);
    return res;
  }
  res.set(http::bhttp::field::etag, rep.etag);
  res.set(http::bhttp::field::content_type, doc.content_type);
  res.set("X-Content-Type-Options", "nosniff");
  if (gzip) res.set(http::bhttp::field::content_encoding, "gzip");
  res.body() = rep.body;
  res.prepare_payload();
  return res;
}

http::Response WebEndpoints::NotFound(const http::Request& request) const {
  http::Response res{http::bhttp::status::not_found, request.version()};
  res.set(http::bhttp::field::content_type, "application/json");
  res.set(http::bhttp::field::cache_control, cache_control_);
  res.body() = R"({"success":false,"error":"unknown_write_key","code":"unknown_write_key",)"
               R"("message":"the write key matches no source"})";
  res.prepare_payload();
  cors_(request, &res);
  return res;
}

}  // namespace sy::web
