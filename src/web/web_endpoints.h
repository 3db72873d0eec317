// WebEndpoints: the browser side doors of the HTTP server.
//   GET /v1/projects/{writeKey}/settings            Segment-compatible settings document
//   GET /analytics.js/v1/{writeKey}/analytics.min.js the browser library with those settings
//                                                    inlined (one request starts a page)
// Both are served from memory with `Cache-Control: public, max-age=<web.cache_max_age>`, a strong
// ETag (304 on a matching If-None-Match), gzip when the client accepts it (bytes compressed once)
// and CORS headers. An unknown write key gets 404, cached like a hit.
//
// Sources hold only the SHA-256 of their write key, so a source's documents (which carry the key)
// are built on the first request that presents a valid key and kept for the process lifetime:
// at most one entry per source, never for an unknown key. A settings change (a new config) builds
// a new WebEndpoints; new ETags reach browsers within max-age with no invalidation step.
//
// Device mode (docs/browser.md): the settings document lists the source's enabled device-mode
// destinations with their browser-safe settings (web/browser_integrations.h), and the script
// carries the code of their integrations ahead of the library; a source with none gets the
// library alone, byte for byte.
//
// Threads: Handle() is called on HTTP I/O threads, concurrently. A hit takes a shared lock and
// copies the precomputed bytes; a first request per source builds and gzips its documents (about
// a millisecond) under no lock, then publishes them under an exclusive one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"
#include "config/config.h"
#include "http/server.h"
#include "web/browser_integrations.h"

namespace sy::web {

class WebEndpoints {
 public:
  // The source name for a presented write key, or nullopt (the ingest SourceTable's lookup).
  using SourceLookup = std::function<std::optional<std::string>(std::string_view write_key)>;
  // Adds the server's CORS headers for `request` to `response` (same policy as the Tracking API).
  using CorsHeaders = std::function<void(const http::Request&, http::Response*)>;

  // `bundle` is the library (default: the embedded build, AnalyticsJsBundle()); it must hold
  // kSettingsPlaceholder exactly once (kInvalidArgument otherwise). `integrations` is the code
  // of the browser integrations in the embedded format (default: AnalyticsJsIntegrations());
  // every integration of BrowserIntegrations() must be there.
  static Result<std::unique_ptr<WebEndpoints>> Create(const config::WebConfig& options,
                                                      SourceLookup lookup, CorsHeaders cors,
                                                      std::string_view bundle,
                                                      std::string_view integrations);
  static Result<std::unique_ptr<WebEndpoints>> Create(const config::WebConfig& options,
                                                      SourceLookup lookup, CorsHeaders cors);
  ~WebEndpoints();

  // True for the two paths above (so a router can dispatch here).
  static bool Serves(std::string_view path);

  // Answers one request to a path for which Serves() is true. Never blocks on I/O.
  http::Response Handle(const http::Request& request);

  // Drops every cached document: called when sources change live (admin API, SIGHUP), so a key
  // removed, disabled or rotated out is looked up again, and refused. Thread-safe.
  void ForgetSources();

  // The destinations whose device-mode entries the documents carry (validated config: every
  // device-mode type has an integration). Drops every cached document. Thread-safe.
  void SetDestinations(std::vector<config::DestinationConfig> destinations);

  // The settings document for a source (exposed for tests and the benchmark): `source` is its
  // name; `destinations` those of the config (only enabled device-mode ones for that source
  // appear).
  static std::string SettingsJson(std::string_view write_key, const config::WebConfig& options);
  static std::string SettingsJson(std::string_view write_key, const config::WebConfig& options,
                                  std::string_view source,
                                  const std::vector<config::DestinationConfig>& destinations);

  // The device-mode destinations of `destinations` that reach `source`, in config order.
  static std::vector<const config::DestinationConfig*> DeviceDestinationsOf(
      std::string_view source, const std::vector<config::DestinationConfig>& destinations);

 private:
  struct Representation;
  struct Document;
  struct Entry;

  WebEndpoints(const config::WebConfig& options, SourceLookup lookup, CorsHeaders cors,
               std::string_view bundle, std::unordered_map<std::string, std::string> code);
  std::shared_ptr<const Entry> Find(const std::string& write_key);
  http::Response Serve(const http::Request& request, const Document& doc) const;
  http::Response NotFound(const http::Request& request) const;

  config::WebConfig options_;
  SourceLookup lookup_;
  CorsHeaders cors_;
  std::string bundle_;
  std::unordered_map<std::string, std::string> integration_code_;  // by integration id
  std::string cache_control_;

  std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Entry>> by_write_key_;  // guarded by mu_
  std::shared_ptr<const std::vector<config::DestinationConfig>> destinations_;  // guarded by mu_
};

}  // namespace sy::web
