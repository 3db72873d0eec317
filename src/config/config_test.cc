#include "config/config.h"

#include <gtest/gtest.h>

namespace sy::config {
namespace {

constexpr const char* kMinimal = R"(version: 1
listen: 127.0.0.1:8080
data_dir: ./data
sources:
  - name: web
    write_key: wk_web_demo
  - name: backend
    write_key: wk_backend_demo
)";

TEST(Config, MinimalFileFromTheIssueLoads) {
  auto c = LoadConfigString(kMinimal, "switchyard.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8080);
  EXPECT_EQ(c->data_dir, "./data");
  ASSERT_EQ(c->sources.size(), 2u);
  EXPECT_EQ(c->sources[0].name, "web");
  EXPECT_EQ(c->sources[0].write_key_sha256, Sha256Hex("wk_web_demo"));
  EXPECT_EQ(c->log.fsync, FsyncPolicy::kAlways);
  EXPECT_EQ(c->ingest.max_event_bytes, 32 * 1024);
  EXPECT_EQ(c->ingest.dedupe_window_ms, 24LL * 3600 * 1000);
}

TEST(Config, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

void ExpectError(const std::string& yaml, const std::string& needle) {
  auto c = LoadConfigString(yaml, "f.yaml");
  ASSERT_FALSE(c.ok()) << "accepted: " << yaml;
  EXPECT_NE(c.status().message().find(needle), std::string::npos)
      << "error was: " << c.status().message() << "\nexpected to contain: " << needle;
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  ExpectError(std::string(kMinimal) + "lisen: 1\n", "f.yaml:9: lisen: unknown key");
  ExpectError(
      "version: 1\ndata_dir: d\nsources:\n  - name: web\n    write_key: k\n    colour: red\n",
      "f.yaml:6: sources[0].colour: unknown key");
}

TEST(Config, WrongTypesAreNamed) {
  ExpectError("version: one\ndata_dir: d\nsources: [{name: a, write_key: k}]\n",
              "f.yaml:1: version: expected an integer");
  ExpectError("version: 1\ndata_dir: d\nsources: web\n",
              "f.yaml:3: sources: expected a non-empty list");
  ExpectError("version: 1\nlisten: nowhere\ndata_dir: d\nsources: [{name: a, write_key: k}]\n",
              "f.yaml:2: listen: expected host:port");
  ExpectError(
      "version: 1\ndata_dir: d\nsources: [{name: a, write_key: k}]\nlog:\n  fsync: sometimes\n",
      "f.yaml:5: log.fsync: expected one of");
  ExpectError(
      "version: 1\ndata_dir: d\nsources: [{name: a, write_key: k}]\ningest:\n  dedupe_window: "
      "soon\n",
      "f.yaml:5: ingest.dedupe_window: expected a duration");
}

TEST(Config, MissingRequiredKeys) {
  ExpectError("data_dir: d\nsources: [{name: a, write_key: k}]\n",
              "version: required key is missing");
  ExpectError("version: 1\nsources: [{name: a, write_key: k}]\n",
              "data_dir: required key is missing");
  ExpectError("version: 1\ndata_dir: d\n", "sources: required key is missing");
  ExpectError("version: 1\ndata_dir: d\nsources: [{name: a}]\n",
              "sources[0].write_key: required key is missing");
}

TEST(Config, RejectsDuplicatesAndBadVersion) {
  ExpectError("version: 2\ndata_dir: d\nsources: [{name: a, write_key: k}]\n",
              "version: out of range");
  ExpectError(
      "version: 1\ndata_dir: d\nsources: [{name: a, write_key: k}, {name: a, write_key: j}]\n",
      "duplicate source name");
  ExpectError(
      "version: 1\ndata_dir: d\nsources: [{name: a, write_key: k}, {name: b, write_key: k}]\n",
      "same write key");
}

TEST(Config, ReportsEveryErrorAtOnce) {
  auto c = LoadConfigString(
      "version: 1\nbogus: 1\ndata_dir: d\nsources: [{name: 'a b', write_key: k}]\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bogus"), std::string::npos);
  EXPECT_NE(c.status().message().find("sources[0].name"), std::string::npos);
}

TEST(Config, YamlSyntaxErrorHasLine) {
  ExpectError("version: 1\nsources: [\n", "f.yaml:");
}

TEST(Config, WriteKeyHashAccepted) {
  auto c =
      LoadConfigString("version: 1\ndata_dir: d\nsources:\n  - name: a\n    write_key_sha256: " +
                           Sha256Hex("secret") + "\n",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sources[0].write_key_sha256, Sha256Hex("secret"));
}

TEST(Config, WebDefaultsPointBackAtTheListenAddress) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->web.cache_max_age_ms, 60'000);
  EXPECT_EQ(c->web.public_api_host, "127.0.0.1:8080/v1");
  EXPECT_EQ(c->web.public_api_protocol, "http");
  auto v6 = LoadConfigString(
      "version: 1\nlisten: '[::1]:9000'\ndata_dir: d\n"
      "sources: [{name: a, write_key: k}]\n",
      "f.yaml");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->web.public_api_host, "[::1]:9000/v1");
}

TEST(Config, WebSectionFromTheIssueLoads) {
  auto c = LoadConfigString(std::string(kMinimal) +
                                "web:\n  cache_max_age: 5m\n  public_api_host: "
                                "https://events.example.com/v1/\n",
                            "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->web.cache_max_age_ms, 300'000);
  EXPECT_EQ(c->web.public_api_host, "events.example.com/v1");
  EXPECT_EQ(c->web.public_api_protocol, "https");
  auto plain = LoadConfigString(
      std::string(kMinimal) + "web:\n  cache_max_age: 0s\n  public_api_host: 127.0.0.1:8080/v1\n",
      "f.yaml");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->web.cache_max_age_ms, 0);
  EXPECT_EQ(plain->web.public_api_host, "127.0.0.1:8080/v1");
  EXPECT_EQ(plain->web.public_api_protocol, "http");
}

TEST(Config, WebSectionIsStrict) {
  const std::string base(kMinimal);
  ExpectError(base + "web:\n  max_age: 60s\n", "f.yaml:10: web.max_age: unknown key");
  ExpectError(base + "web:\n  cache_max_age: soon\n",
              "f.yaml:10: web.cache_max_age: expected a duration");
  ExpectError(base + "web:\n  cache_max_age: 1500ms\n",
              "f.yaml:10: web.cache_max_age: must be whole seconds");
  ExpectError(base + "web:\n  cache_max_age: 400d\n", "web.cache_max_age: must be at most");
  ExpectError(base + "web:\n  public_api_host: 'api.example.com/v1\"><script>'\n",
              "f.yaml:10: web.public_api_host: expected [http://|https://]host");
  ExpectError(base + "web:\n  public_api_host: [a, b]\n", "f.yaml:10: web.public_api_host");
  ExpectError(base + "web:\n  public_api_host: ''\n", "web.public_api_host");
  ExpectError(base + "web: 60s\n", "f.yaml:9: web: expected a mapping");
}

}  // namespace
}  // namespace sy::config
