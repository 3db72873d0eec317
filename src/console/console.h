// Console: the console's pages (issue 13, docs/console.md), served from the admin listener.
// The assets (src/console/assets: plain ES modules, CSS, one HTML page) are embedded at build
// time and served from memory:
//   GET /, /login, /overview, /sources[/…], /destinations[/…], /replay, /warehouse, /users,
//       /tokens, /audit      the single-page app (index.html), `Cache-Control: no-cache` and a
//                           strong ETag (304 on If-None-Match), so a new binary is picked up at
//                           once
//   GET /assets/<build>/<file>  an asset, with its Content-Type, a strong ETag and
//                           `Cache-Control: public, max-age=31536000, immutable`: <build> is a
//                           hash of every asset, so a new binary changes every asset URL.
//                           Another <build> is 404 (never the wrong bytes cached for a year).
//                           Gzipped at build time: a request whose Accept-Encoding admits gzip
//                           gets those bytes with `Content-Encoding: gzip` (and its own ETag),
//                           any other the plain ones; both carry `Vary: Accept-Encoding`. The
//                           page itself (index.html, ~1 KB, its build id set at start) is plain.
// Every answer carries `Content-Security-Policy: default-src 'self'; …` (no inline script or
// style, no other origin), `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`.
// Other paths are 404; other methods 405. /api/… paths are not the console's (Serves()).
//
// The console is the admin API's client: it holds no state and needs no authentication to
// load (the pages are public code; every datum comes from /api/v1 after login).
//
// Threads: immutable after construction; Handle() is safe from any thread, never blocks, and
// its cost is one copy of the asset (at most a few tens of KB).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/server.h"

namespace sy::console {

// One embedded file: its name in assets/ and its bytes.
struct Asset {
  std::string_view name;
  std::string_view bytes;
  // The same bytes gzipped at build time (gzip -9 -n); empty: none.
  std::string_view gzip = {};
};

// The files of src/console/assets as built into this binary (generated table).
const std::vector<Asset>& EmbeddedAssets();

// The placeholder index.html holds for the build id (in its asset URLs).
inline constexpr std::string_view kBuildPlaceholder = "@@BUILD@@";

class Console {
 public:
  // `assets` must contain index.html; its kBuildPlaceholder occurrences become the build id.
  explicit Console(const std::vector<Asset>& assets = EmbeddedAssets());

  // True when `path` (without the query) belongs to the console rather than the API.
  static bool Serves(std::string_view path);

  http::Response Handle(const http::Request& request) const;

  // A hash of every asset's name and bytes, 16 hex digits.
  const std::string& build_id() const { return build_id_; }

 private:
  struct File {
    std::string_view content_type;
    std::string body;
    std::string etag;       // strong, quoted
    std::string_view gzip;  // the body gzipped (embedded); empty: none
    std::string gzip_etag;  // strong, quoted: another representation, another tag
  };
  http::Response Answer(const http::Request& request, const File& file,
                        std::string_view cache_control) const;
  http::Response Plain(const http::Request& request, unsigned status, std::string_view text) const;

  std::string build_id_;
  File index_;
  std::unordered_map<std::string, File> assets_;  // by file name
};

}  // namespace sy::console
