#include "console/console.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <regex>
#include <set>

namespace sy::console {
namespace {

namespace bhttp = http::bhttp;

http::Request Get(std::string target, bhttp::verb verb = bhttp::verb::get) {
  http::Request r{verb, target, 11};
  return r;
}

std::vector<Asset> TestAssets() {
  return {{"index.html", "<script src=\"/assets/@@BUILD@@/app.js\"></script>@@BUILD@@"},
          {"app.js", "import './api.js';"},
          {"api.js", "export {};"},
          {"console.css", "body{}"},
          {"favicon.svg", "<svg/>"}};
}

TEST(ConsoleTest, PagesServeTheAppWithTheBuildIdFilledIn) {
  Console c(TestAssets());
  ASSERT_EQ(c.build_id().size(), 16u);
  for (std::string path :
       {"/", "/login", "/overview", "/sources", "/sources/web", "/destinations/hook", "/replay",
        "/warehouse", "/users", "/tokens", "/audit", "/overview?x=1"}) {
    auto res = c.Handle(Get(path));
    EXPECT_EQ(res.result_int(), 200) << path;
    EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
    EXPECT_EQ(res[bhttp::field::cache_control], "no-cache");
    EXPECT_EQ(res.body(),
              "<script src=\"/assets/" + c.build_id() + "/app.js\"></script>" + c.build_id());
    EXPECT_EQ(res["Content-Security-Policy"],
              "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
  }
}

TEST(ConsoleTest, AssetsHaveTheirTypeAndAreImmutable) {
  Console c(TestAssets());
  std::string base = "/assets/" + c.build_id() + "/";
  struct Want {
    std::string name, type;
  };
  for (const Want& w :
       {Want{"app.js", "text/javascript; charset=utf-8"},
        Want{"console.css", "text/css; charset=utf-8"}, Want{"favicon.svg", "image/svg+xml"}}) {
    auto res = c.Handle(Get(base + w.name));
    ASSERT_EQ(res.result_int(), 200) << w.name;
    EXPECT_EQ(res[bhttp::field::content_type], w.type);
    EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=31536000, immutable");
    EXPECT_FALSE(res[bhttp::field::etag].empty());
  }
  EXPECT_EQ(c.Handle(Get(base + "app.js")).body(), "import './api.js';");
}

TEST(ConsoleTest, EtagAnswers304) {
  Console c(TestAssets());
  for (std::string path : std::vector<std::string>{"/", "/assets/" + c.build_id() + "/app.js"}) {
    auto first = c.Handle(Get(path));
    std::string etag(first[bhttp::field::etag]);
    ASSERT_EQ(etag.front(), '"');
    auto req = Get(path);
    req.set(bhttp::field::if_none_match, "\"other\", " + etag);
    auto again = c.Handle(req);
    EXPECT_EQ(again.result_int(), 304) << path;
    EXPECT_TRUE(again.body().empty());
    EXPECT_EQ(again[bhttp::field::etag], etag);
    req.set(bhttp::field::if_none_match, "\"stale\"");
    EXPECT_EQ(c.Handle(req).result_int(), 200);
  }
}

TEST(ConsoleTest, ABuildIdChangesWithAnyAsset) {
  auto assets = TestAssets();
  Console a(assets);
  assets[2].bytes = "export const x = 1;";
  Console b(assets);
  EXPECT_NE(a.build_id(), b.build_id());
  // An old build's URL is not answered with this build's bytes.
  EXPECT_EQ(b.Handle(Get("/assets/" + a.build_id() + "/api.js")).result_int(), 404);
}

TEST(ConsoleTest, UnknownPathsAndMethods) {
  Console c(TestAssets());
  std::string base = "/assets/" + c.build_id() + "/";
  for (std::string path :
       std::vector<std::string>{"/nope", "/favicon.ico", "/assets/", "/assets/app.js", base,
                                base + "missing.js", base + "index.html", base + "../" + "app.js",
                                base + "%2e%2e/app.js", "/loginx", "//etc/passwd"}) {
    auto res = c.Handle(Get(path));
    EXPECT_EQ(res.result_int(), 404) << path;
    EXPECT_FALSE(res["Content-Security-Policy"].empty());
  }
  auto post = c.Handle(Get("/", bhttp::verb::post));
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[bhttp::field::allow], "GET, HEAD");
  auto head = c.Handle(Get("/", bhttp::verb::head));
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_TRUE(head.body().empty());
}

TEST(ConsoleTest, ApiPathsAreNotTheConsoles) {
  EXPECT_FALSE(Console::Serves("/api/v1/session"));
  EXPECT_FALSE(Console::Serves("/api"));
  EXPECT_TRUE(Console::Serves("/"));
  EXPECT_TRUE(Console::Serves("/apiary"));
  EXPECT_TRUE(Console::Serves("/assets/x/app.js"));
}

// The embedded build: index.html and every module import name assets that exist, so a page never
// asks for a file the binary does not have (the browser suite fails on any failed request, but
// only for the pages it visits).
TEST(ConsoleTest, EmbeddedAssetsReferenceOnlyEmbeddedAssets) {
  std::set<std::string> names;
  for (const Asset& a : EmbeddedAssets())
    names.insert(std::string(a.name));
  ASSERT_TRUE(names.count("index.html"));
  std::regex ref(R"((?:/assets/@@BUILD@@/|from '\./|import '\./|import\('\./)([A-Za-z0-9_.-]+))");
  size_t refs = 0;
  for (const Asset& a : EmbeddedAssets()) {
    std::string text(a.bytes);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), ref);
         it != std::sregex_iterator(); ++it) {
      ++refs;
      EXPECT_TRUE(names.count((*it)[1].str())) << a.name << " refers to " << (*it)[1].str();
    }
  }
  EXPECT_GE(refs, 3u);
  Console c;
  EXPECT_EQ(c.Handle(Get("/")).result_int(), 200);
}

// gzip's own format, inflated with zlib (windowBits 16 + 15): what a browser does.
std::string Gunzip(std::string_view gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + 15), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

// The embedded assets of this build: each has its gzipped bytes (made at build time), and they
// inflate to the plain ones.
TEST(ConsoleTest, EveryEmbeddedAssetIsGzippedAtBuildTime) {
  ASSERT_FALSE(EmbeddedAssets().empty());
  for (const Asset& a : EmbeddedAssets()) {
    ASSERT_FALSE(a.gzip.empty()) << a.name;
    EXPECT_EQ(Gunzip(a.gzip), a.bytes) << a.name;
  }
}

TEST(ConsoleTest, GzipWhenAcceptedPlainOtherwiseAndVaryAlways) {
  Console c;  // the embedded assets
  const std::string url = "/assets/" + c.build_id() + "/app.js";
  std::string plain_body;
  for (const char* accept : {"", "identity", "gzip;q=0", "br"}) {
    auto req = Get(url);
    if (*accept) req.set(bhttp::field::accept_encoding, accept);
    auto res = c.Handle(req);
    ASSERT_EQ(res.result_int(), 200) << accept;
    EXPECT_TRUE(res[bhttp::field::content_encoding].empty()) << accept;
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding") << accept;
    plain_body = res.body();
  }
  for (const char* accept : {"gzip", "br, gzip, deflate", "GZIP;q=0.5", "*"}) {
    auto req = Get(url);
    req.set(bhttp::field::accept_encoding, accept);
    auto res = c.Handle(req);
    ASSERT_EQ(res.result_int(), 200) << accept;
    EXPECT_EQ(res[bhttp::field::content_encoding], "gzip") << accept;
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding") << accept;
    EXPECT_LT(res.body().size(), plain_body.size()) << accept;
    EXPECT_EQ(Gunzip(res.body()), plain_body) << accept;
  }
  // Each representation has its own ETag, and a 304 answers the one asked for.
  auto plain = c.Handle(Get(url));
  auto gz_req = Get(url);
  gz_req.set(bhttp::field::accept_encoding, "gzip");
  auto gz = c.Handle(gz_req);
  EXPECT_NE(plain[bhttp::field::etag], gz[bhttp::field::etag]);
  gz_req.set(bhttp::field::if_none_match, gz[bhttp::field::etag]);
  auto again = c.Handle(gz_req);
  EXPECT_EQ(again.result_int(), 304);
  EXPECT_EQ(again[bhttp::field::vary], "Accept-Encoding");
  auto head = Get(url, bhttp::verb::head);
  head.set(bhttp::field::accept_encoding, "gzip");
  EXPECT_EQ(c.Handle(head)[bhttp::field::content_length], std::to_string(gz.body().size()));
  // The page itself is plain whatever is accepted.
  auto page = Get("/overview");
  page.set(bhttp::field::accept_encoding, "gzip");
  EXPECT_TRUE(c.Handle(page)[bhttp::field::content_encoding].empty());
}

}  // namespace
}  // namespace sy::console
