#include "console/console.h"

#include <array>
#include <cstdio>

#include "base/hash.h"
#include "http/content_coding.h"

namespace sy::console {

namespace bhttp = http::bhttp;

namespace {

// The first path segments of the single-page app's own routes (assets/app.js has the same list).
constexpr std::array<std::string_view, 10> kPageRoots = {
    "login",     "overview", "sources", "destinations", "replay",
    "warehouse", "users",    "tokens",  "audit",        "dlq"};

// default-src 'self' covers scripts, styles, images, fonts and connections (fetch, the live
// view's EventSource); the rest closes what default-src does not: <base>, framing, form posts
// elsewhere.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
constexpr std::string_view kRevalidate = "no-cache";

std::string Hex(const Hash128& h) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.hi),
                static_cast<unsigned long long>(h.lo));
  return buf;
}

std::string_view ContentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// True when If-None-Match lists `etag` (weak comparison) or is "*".
bool TagListHas(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag || item == "*") return true;
  }
  return false;
}

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(from, pos);
    out.append(text.substr(pos, hit == std::string_view::npos ? hit : hit - pos));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    pos = hit + from.size();
  }
}

}  // namespace

Console::Console(const std::vector<Asset>& assets) {
  std::string all;
  for (const Asset& a : assets) {
    all.append(a.name).push_back('\0');
    all.append(Hex(HashPair(a.name, a.bytes))).push_back('\0');
  }
  build_id_ = Hex(HashPair(all, "console")).substr(0, 16);
  for (const Asset& a : assets) {
    File f{ContentTypeOf(a.name), std::string(a.bytes), {}, {}, {}};
    if (a.name == "index.html") {
      f.body = ReplaceAll(a.bytes, kBuildPlaceholder, build_id_);
      f.etag = "\"" + build_id_ + "\"";
      index_ = f;
      continue;  // the page is served at the app's paths, not as an asset
    }
    const std::string tag = Hex(HashPair(a.name, a.bytes)).substr(0, 20);
    f.etag = "\"" + tag + "\"";
    if (!a.gzip.empty()) {
      f.gzip = a.gzip;
      f.gzip_etag = "\"" + tag + "-gz\"";
    }
    assets_.emplace(std::string(a.name), std::move(f));
  }
}

bool Console::Serves(std::string_view path) {
  return !(path == "/api" || path.starts_with("/api/"));
}

http::Response Console::Plain(const http::Request& request, unsigned status,
                              std::string_view text) const {
  http::Response res{static_cast<bhttp::status>(status),
                     request.version() ? request.version() : 11u};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::string(text);
  res.prepare_payload();
  return res;
}

http::Response Console::Answer(const http::Request& request, const File& file,
                               std::string_view cache_control) const {
  const bool gzip = !file.gzip.empty() && http::AcceptsGzip(request[bhttp::field::accept_encoding]);
  const std::string& etag = gzip ? file.gzip_etag : file.etag;
  bool not_modified = TagListHas(request[bhttp::field::if_none_match], etag);
  http::Response res{not_modified ? bhttp::status::not_modified : bhttp::status::ok,
                     request.version() ? request.version() : 11u};
  res.set(bhttp::field::cache_control, cache_control);
  res.set(bhttp::field::etag, etag);
  // Caches keep the two representations apart.
  if (!file.gzip.empty()) res.set(bhttp::field::vary, "Accept-Encoding");
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  if (not_modified) return res;
  res.set(bhttp::field::content_type, file.content_type);
  if (gzip) res.set(bhttp::field::content_encoding, "gzip");
  if (request.method() == bhttp::verb::head) {
    res.content_length(gzip ? file.gzip.size() : file.body.size());
    return res;
  }
  res.body() = gzip ? std::string(file.gzip) : file.body;
  res.prepare_payload();
  return res;
}

http::Response Console::Handle(const http::Request& request) const {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
    auto res = Plain(request, 405, "the console's pages are read with GET\n");
    res.set(bhttp::field::allow, "GET, HEAD");
    return res;
  }
  constexpr std::string_view kAssets = "/assets/";
  if (path.starts_with(kAssets)) {
    std::string_view rest = path.substr(kAssets.size());
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos && rest.substr(0, slash) == build_id_) {
      auto it = assets_.find(std::string(rest.substr(slash + 1)));
      if (it != assets_.end()) return Answer(request, it->second, kImmutable);
    }
    return Plain(request, 404, "no such asset in this build\n");
  }
  std::string_view first = path.size() > 1 ? path.substr(1, path.find('/', 1) - 1) : "";
  bool page = path == "/";
  for (std::string_view root : kPageRoots)
    page = page || first == root;
  if (page && !index_.body.empty()) return Answer(request, index_, kRevalidate);
  return Plain(request, 404, "not found\n");
}

}  // namespace sy::console
