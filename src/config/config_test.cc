#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>

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

TEST(Config, ConsentCategoriesAndSourceDefault) {
  const std::string base = R"(version: 1
data_dir: d
sources:
  - name: web
    write_key: k1
    consent: {default: deny}
  - name: app
    write_key: k2
)";
  auto c = LoadConfigString(base + R"(destinations:
  - name: ads
    type: webhook
    consent_categories: [advertising, analytics]
  - name: plain
    type: webhook
)",
                            "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->sources[0].consent_default_deny);
  EXPECT_FALSE(c->sources[1].consent_default_deny);
  EXPECT_EQ(c->destinations[0].consent_categories,
            (std::vector<std::string>{"advertising", "analytics"}));
  EXPECT_EQ(c->destinations[0].consent_deny_by_default_sources, std::vector<std::string>{"web"});
  // A destination without categories is not restricted, so it needs no source list.
  EXPECT_TRUE(c->destinations[1].consent_deny_by_default_sources.empty());

  ExpectError(base + "destinations:\n  - {name: a, type: webhook, consent_categories: [x, x]}\n",
              "destinations[0].consent_categories: category 'x' is listed twice");
  ExpectError(base + "destinations:\n  - {name: a, type: webhook, consent_categories: ['']}\n",
              "destinations[0].consent_categories: a category is 1 to 64 characters");
  ExpectError(base + "destinations:\n  - {name: a, type: webhook, consent_categories: ads}\n",
              "destinations[0].consent_categories: expected a list of strings");
  ExpectError(
      "version: 1\ndata_dir: d\nsources:\n  - {name: w, write_key: k, consent: "
      "{default: maybe}}\n",
      "sources[0].consent.default: expected one of: grant, deny");
  ExpectError(
      "version: 1\ndata_dir: d\nsources:\n  - {name: w, write_key: k, consent: "
      "{fallback: deny}}\n",
      "sources[0].consent.fallback: unknown key");
}

TEST(Config, FunctionsSection) {
  const std::string yaml = R"(version: 1
data_dir: d
functions:
  - name: scrub
    file: fn/scrub.js
    settings: {marker: v1, n: 3, ratio: 0.5, on: true, quoted: "7", list: [a, 2], none: ~}
  - name: abs
    file: /opt/fn/abs.js
sources:
  - name: web
    write_key: k
    functions: [scrub]
destinations:
  - name: hooks
    type: webhook
    functions: [abs, scrub]
)";
  auto c = LoadConfigString(yaml, "/etc/sy/switchyard.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->functions.size(), 2u);
  EXPECT_EQ(c->functions[0].name, "scrub");
  EXPECT_EQ(c->functions[0].file, "/etc/sy/fn/scrub.js");  // relative to the config file
  EXPECT_EQ(
      c->functions[0].settings_json,
      R"({"marker":"v1","n":3,"ratio":0.5,"on":true,"quoted":"7","list":["a",2],"none":null})");
  EXPECT_EQ(c->functions[1].file, "/opt/fn/abs.js");
  EXPECT_EQ(c->functions[1].settings_json, "{}");
  EXPECT_EQ(c->sources[0].functions, std::vector<std::string>{"scrub"});
  EXPECT_EQ(c->destinations[0].functions, (std::vector<std::string>{"abs", "scrub"}));
}

TEST(Config, FunctionErrorsNameFileLineAndKey) {
  const std::string base = "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n";
  ExpectError(base + "functions:\n  - name: a\n", "f.yaml:5: functions[0].file: required key");
  ExpectError(base + "functions:\n  - {name: a, file: a.js}\n  - {name: a, file: b.js}\n",
              "f.yaml:6: functions[1].name: duplicate function name 'a'");
  ExpectError(base + "functions:\n  - {name: a, file: a.js, settings: [1]}\n",
              "f.yaml:5: functions[0].settings: expected a mapping");
  ExpectError(base + "destinations:\n  - {name: h, type: webhook, functions: [nope]}\n",
              "f.yaml:5: destinations[0].functions: no function named 'nope' in functions:");
  ExpectError(
      "version: 1\ndata_dir: d\nfunctions: [{name: a, file: a.js}]\n"
      "sources: [{name: web, write_key: k, functions: [a, a]}]\n",
      "f.yaml:4: sources[0].functions: function 'a' is listed twice");
}

TEST(Config, FunctionLimitsDefaultAndOverride) {
  const std::string yaml = R"(version: 1
data_dir: d
function_limits: {event_timeout: 250ms, memory: 128MB}
functions:
  - {name: plain, file: a.js}
  - name: slow
    file: b.js
    limits: {batch_timeout: 5s, memory: 32MB}
  - name: inline
    source: "export default (e) => e;"
sources: [{name: web, write_key: k}]
)";
  auto c = LoadConfigString(yaml, "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->function_limits.event_timeout_ms, 250);
  EXPECT_EQ(c->function_limits.batch_timeout_ms, 1000);  // the built-in default
  const FunctionLimitsConfig& plain = c->functions[0].limits;
  EXPECT_EQ(plain.event_timeout_ms, 250);
  EXPECT_EQ(plain.batch_timeout_ms, 1000);
  EXPECT_EQ(plain.memory_bytes, 128LL << 20);
  const FunctionLimitsConfig& slow = c->functions[1].limits;
  EXPECT_EQ(slow.event_timeout_ms, 250);  // not overridden: the section's
  EXPECT_EQ(slow.batch_timeout_ms, 5000);
  EXPECT_EQ(slow.memory_bytes, 32LL << 20);
  EXPECT_EQ(c->functions[2].file, "");
  EXPECT_EQ(c->functions[2].source, "export default (e) => e;");
  // Nothing given: the documented defaults.
  auto d =
      LoadConfigString(std::string(kMinimal) + "functions: [{name: a, file: a.js}]\n", "f.yaml");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->functions[0].limits.event_timeout_ms, 100);
  EXPECT_EQ(d->functions[0].limits.batch_timeout_ms, 1000);
  EXPECT_EQ(d->functions[0].limits.memory_bytes, 64LL << 20);
}

TEST(Config, FunctionLimitsOutOfRangeNameTheKey) {
  const std::string base = "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n";
  ExpectError(base + "function_limits: {event_timeout: 0ms}\n",
              "f.yaml:4: function_limits.event_timeout: must be at least 1ms");
  ExpectError(base + "function_limits: {batch_timeout: 61s}\n",
              "f.yaml:4: function_limits.batch_timeout: must be at most 60s");
  ExpectError(base + "function_limits: {memory: 8MB}\n",
              "f.yaml:4: function_limits.memory: must be at least 16777216 bytes");
  ExpectError(base + "function_limits: {memory: 2GB}\n",
              "f.yaml:4: function_limits.memory: must be at most 1GB");
  ExpectError(base + "function_limits: {heap: 1GB}\n",
              "f.yaml:4: function_limits.heap: unknown key");
  ExpectError(base + "functions:\n  - {name: a, file: a.js, limits: {event_timeout: 2m}}\n",
              "f.yaml:5: functions[0].limits.event_timeout: must be at most 60s");
  ExpectError(base + "functions:\n  - {name: a, file: a.js, limits: {memory: lots}}\n",
              "f.yaml:5: functions[0].limits.memory: expected a size");
  ExpectError(base + "functions:\n  - {name: a, file: a.js, source: x}\n",
              "f.yaml:5: functions[0]: give file or source, not both");
  ExpectError(base + "functions:\n  - {name: a, source: ''}\n",
              "f.yaml:5: functions[0].source: must not be empty");
}

TEST(Config, DedupeMaxMemory) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ingest.dedupe_max_memory_bytes, 128LL << 20);
  c = LoadConfigString(std::string(kMinimal) + "ingest:\n  dedupe:\n    max_memory: 32MB\n",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ingest.dedupe_max_memory_bytes, 32LL << 20);
  ExpectError(std::string(kMinimal) + "ingest:\n  dedupe:\n    max_memory: 1MB\n",
              "ingest.dedupe.max_memory: must be at least");
  ExpectError(std::string(kMinimal) + "ingest:\n  dedupe:\n    max_memroy: 1GB\n",
              "ingest.dedupe.max_memroy: unknown key");
}

TEST(Config, LogPreallocate) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->log.preallocate_bytes, 8LL << 20);  // on by default
  c = LoadConfigString(std::string(kMinimal) + "log:\n  preallocate: 0\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.preallocate_bytes, 0);  // off
  c = LoadConfigString(std::string(kMinimal) + "log:\n  preallocate: 2MB\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.preallocate_bytes, 2LL << 20);
  ExpectError(std::string(kMinimal) + "log:\n  preallocate: lots\n",
              "f.yaml:10: log.preallocate: expected a size");
  ExpectError(std::string(kMinimal) + "log:\n  preallocate: -1MB\n", "log.preallocate");
}

TEST(Config, LogReserve) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->log.reserve_bytes, 64LL << 20);  // on by default
  c = LoadConfigString(std::string(kMinimal) + "log:\n  reserve: 0\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.reserve_bytes, 0);
  c = LoadConfigString(std::string(kMinimal) + "log:\n  reserve: 256MB\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.reserve_bytes, 256LL << 20);
  ExpectError(std::string(kMinimal) + "log:\n  reserve: much\n",
              "f.yaml:10: log.reserve: expected a size");
}

TEST(Config, LogKafkaBackend) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->log.backend, LogBackend::kLocal);  // the default
  c = LoadConfigString(std::string(kMinimal) + R"(log:
  backend: kafka
  kafka:
    brokers: [k1:9092, "k2:9093"]
    topic_prefix: sy.prod
    partitions: 24
    replication_factor: 3
    min_insync_replicas: 2
    protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    username: sy
    password: hunter2
    ca_file: /etc/ca.pem
    ack_timeout: 2s
    compression: lz4
)",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const KafkaLogConfig& k = c->log.kafka;
  EXPECT_EQ(c->log.backend, LogBackend::kKafka);
  EXPECT_EQ(k.brokers, (std::vector<std::string>{"k1:9092", "k2:9093"}));
  EXPECT_EQ(k.topic_prefix, "sy.prod");
  EXPECT_EQ(k.partitions, 24);
  EXPECT_EQ(k.protocol, "SASL_SSL");
  EXPECT_EQ(k.sasl_mechanism, "SCRAM-SHA-512");
  EXPECT_EQ(k.password, "hunter2");
  EXPECT_EQ(k.ack_timeout_ms, 2000);
  EXPECT_EQ(k.compression, "lz4");
  EXPECT_EQ(k.session_timeout_ms, 10000);  // a default
  // One comma-separated string works too.
  c = LoadConfigString(
      std::string(kMinimal) + "log: {backend: kafka, kafka: {brokers: \"a:1,b:2\"}}\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.kafka.brokers, (std::vector<std::string>{"a:1", "b:2"}));
  const std::string kafka = std::string(kMinimal) + "log:\n  backend: kafka\n";
  ExpectError(std::string(kMinimal) + "log: {backend: s3}\n", "log.backend: expected one of");
  ExpectError(kafka, "log.kafka: required with backend: kafka");
  ExpectError(std::string(kMinimal) + "log: {kafka: {brokers: [a:1]}}\n",
              "log.kafka: only used with backend: kafka");
  ExpectError(kafka + "  kafka: {}\n", "log.kafka.brokers: required");
  ExpectError(kafka + "  kafka: {brokers: [nohost]}\n", "log.kafka.brokers: expected host:port");
  ExpectError(kafka + "  kafka: {brokers: [a:1], protocol: TLS}\n",
              "log.kafka.protocol: expected one of");
  ExpectError(kafka + "  kafka: {brokers: [a:1], protocol: SASL_PLAINTEXT}\n",
              "log.kafka.sasl_mechanism: protocol SASL_PLAINTEXT needs");
  ExpectError(kafka + "  kafka: {brokers: [a:1], password: x}\n",
              "log.kafka.password: only used with protocol SASL");
  ExpectError(kafka + "  kafka: {brokers: [a:1], ca_file: /x}\n",
              "log.kafka.ca_file: only used with protocol SSL");
  ExpectError(kafka + "  kafka: {brokers: [a:1], replication_factor: 1}\n",
              "log.kafka.min_insync_replicas: must not exceed");
  ExpectError(kafka + "  kafka: {brokers: [a:1], partitions: 0}\n",
              "log.kafka.partitions: out of range");
  ExpectError(kafka + "  kafka: {brokers: [a:1], topic_prefix: \"a b\"}\n",
              "log.kafka.topic_prefix");
  ExpectError(kafka + "  kafka: {brokers: [a:1], ack_timeout: 10m}\n",
              "log.kafka.ack_timeout: must be at most 300s");
  ExpectError(kafka + "  kafka: {brokers: [a:1], bogus: 1}\n", "log.kafka.bogus: unknown key");
  ExpectError(kafka + "  kafka: {brokers: [a:1]}\narchive: {store: local, path: ./a}\n",
              "archive: not available yet with log.backend: kafka");
  ExpectError(kafka +
                  "  kafka: {brokers: [a:1]}\ndestinations:\n  - {name: dw, type: sqlite, "
                  "settings: {path: ./w}}\n",
              "destinations.dw: warehouse type sqlite is not available yet");
}

TEST(Config, HttpAndMetricsSections) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->http.max_connections, 0);  // derived from the descriptor limit
  EXPECT_EQ(c->http.send_timeout_ms, 30'000);
  EXPECT_EQ(c->http.lingering_time_ms, 5'000);
  EXPECT_TRUE(c->metrics.listen_host.empty());  // /metrics served nowhere by default
  EXPECT_TRUE(c->metrics.token_sha256.empty());
  c = LoadConfigString(std::string(kMinimal) +
                           "http:\n  max_connections: 900\n  send_timeout: 10s\n"
                           "  lingering_time: 0s\nmetrics:\n  listen: 127.0.0.1:9464\n"
                           "  token: 0123456789abcdefXYZ\n",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->http.max_connections, 900);
  EXPECT_EQ(c->http.send_timeout_ms, 10'000);
  EXPECT_EQ(c->http.lingering_time_ms, 0);
  EXPECT_EQ(c->metrics.listen_host, "127.0.0.1");
  EXPECT_EQ(c->metrics.listen_port, 9464);
  EXPECT_EQ(c->metrics.token_sha256, Sha256Hex("0123456789abcdefXYZ"));
  ExpectError(std::string(kMinimal) + "metrics:\n  token: short\n",
              "metrics.token: use at least 16 characters");
  ExpectError(std::string(kMinimal) + "metrics:\n  listen: nowhere\n",
              "metrics.listen: expected host:port");
  ExpectError(std::string(kMinimal) + "http:\n  send_timeout: 1ms\n",
              "http.send_timeout: must be at least 100ms");
  ExpectError(std::string(kMinimal) + "http:\n  max_conns: 1\n", "http.max_conns: unknown key");
}

// The read timeouts (issue 18) were constants of the HTTP server; now keys with those defaults,
// range-checked (the server checks them once a second).
TEST(Config, HttpReadTimeouts) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->http.idle_timeout_ms, 75'000);
  EXPECT_EQ(c->http.header_timeout_ms, 75'000);
  EXPECT_EQ(c->http.body_timeout_ms, 30'000);
  c = LoadConfigString(std::string(kMinimal) +
                           "http:\n  idle_timeout: 5s\n  header_timeout: 10s\n"
                           "  body_timeout: 1m\n",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->http.idle_timeout_ms, 5'000);
  EXPECT_EQ(c->http.header_timeout_ms, 10'000);
  EXPECT_EQ(c->http.body_timeout_ms, 60'000);
  for (const char* key : {"idle_timeout", "header_timeout", "body_timeout"}) {
    ExpectError(std::string(kMinimal) + "http:\n  " + key + ": 500ms\n",
                std::string("http.") + key + ": must be at least 1000ms");
    ExpectError(std::string(kMinimal) + "http:\n  " + key + ": 2h\n",
                std::string("http.") + key + ": must be at most 3600s");
    ExpectError(std::string(kMinimal) + "http:\n  " + key + ": soon\n",
                std::string("http.") + key + ": expected a duration");
  }
}

TEST(Config, AdminSection) {
  auto c = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->admin.enabled);  // no admin listener unless the section is given
  c = LoadConfigString(std::string(kMinimal) + "admin:\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->admin.enabled);
  EXPECT_EQ(c->admin.listen_host, "127.0.0.1");
  EXPECT_EQ(c->admin.listen_port, 8081);
  EXPECT_EQ(c->admin.session_idle_timeout_ms, 30 * 60'000);
  EXPECT_EQ(c->admin.session_max_age_ms, 12 * 3600'000);
  EXPECT_FALSE(c->admin.secure_cookie);
  EXPECT_EQ(c->admin.max_live_streams, 16);
  EXPECT_EQ(c->admin.live_rate, 20);
  c = LoadConfigString(std::string(kMinimal) +
                           "admin:\n  listen: 127.0.0.1:0\n  session_idle_timeout: 5m\n"
                           "  session_max_age: 1h\n  secure_cookie: true\n"
                           "  max_live_streams: 2\n  live_rate: 50\n",
                       "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->admin.listen_port, 0);
  EXPECT_EQ(c->admin.session_idle_timeout_ms, 5 * 60'000);
  EXPECT_EQ(c->admin.session_max_age_ms, 3600'000);
  EXPECT_TRUE(c->admin.secure_cookie);
  EXPECT_EQ(c->admin.max_live_streams, 2);
  EXPECT_EQ(c->admin.live_rate, 50);
  ExpectError(std::string(kMinimal) + "admin:\n  live_rate: 0\n", "admin.live_rate");
  ExpectError(std::string(kMinimal) + "admin:\n  max_live_streams: 5000\n",
              "admin.max_live_streams");
  ExpectError(std::string(kMinimal) + "admin:\n  listen: nowhere\n",
              "admin.listen: expected host:port");
  ExpectError(std::string(kMinimal) + "admin:\n  session_max_age: 1s\n",
              "admin.session_max_age: must be at least 60000ms");
  ExpectError(std::string(kMinimal) + "admin:\n  tls: {}\n", "admin.tls.cert: required");
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

TEST(Config, SourceRateLimit) {
  const std::string head = "version: 1\ndata_dir: d\nsources:\n  - name: a\n    write_key: k\n";
  auto none = LoadConfigString(head, "f.yaml");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->sources[0].rate_limit_events_per_second, 0);  // no limit
  auto c = LoadConfigString(head + "    rate_limit: {events_per_second: 50}\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sources[0].rate_limit_events_per_second, 50);
  EXPECT_EQ(c->sources[0].rate_limit_burst, 50);  // one second's worth
  c = LoadConfigString(head + "    rate_limit: {events_per_second: 50, burst: 1000}\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sources[0].rate_limit_burst, 1000);
  ExpectError(head + "    rate_limit: {burst: 10}\n", "sources[0].rate_limit.events_per_second");
  ExpectError(head + "    rate_limit: {events_per_second: 0}\n",
              "sources[0].rate_limit.events_per_second");
  ExpectError(head + "    rate_limit: {events_per_second: 5, bursts: 1}\n",
              "sources[0].rate_limit.bursts");
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

constexpr const char* kDestinationsFromTheIssue = R"(
destinations:
  - name: hooks                 # unique; shown in metrics, logs, dead letters
    type: webhook
    enabled: true               # the switch: false stops delivery, the cursor stays put
    sources: [web, backend]     # which sources feed it
    allow_private_network: true # default false: refuse loopback/private/link-local targets
    retry_window: 4h            # default 4h; then the event goes to the dead-letter store
    batch: {max_events: 100, max_bytes: 1MB, max_wait: 500ms}
    ordering: per_user          # default none
    filters:
      drop_events: ["Debug Ping"]
      drop_properties: [password, ssn]
    settings:                   # type-specific, validated by the destination's settings table
      url: http://127.0.0.1:9000/hook
      headers: {X-Team: growth}
      secret: s3cr3t            # → X-Signature: sha256=<hex HMAC of the body>
)";

TEST(Config, DestinationsSectionFromTheIssueLoads) {
  auto c = LoadConfigString(std::string(kMinimal) + kDestinationsFromTheIssue, "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->destinations.size(), 1u);
  const DestinationConfig& d = c->destinations[0];
  EXPECT_EQ(d.name, "hooks");
  EXPECT_EQ(d.type, "webhook");
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.sources, (std::vector<std::string>{"web", "backend"}));
  EXPECT_TRUE(d.allow_private_network);
  EXPECT_EQ(d.retry_window_ms, 4LL * 3600 * 1000);
  EXPECT_EQ(d.batch.max_events, 100);
  EXPECT_EQ(d.batch.max_bytes, 1 << 20);
  EXPECT_EQ(d.batch.max_wait_ms, 500);
  EXPECT_EQ(d.ordering, Ordering::kPerUser);
  EXPECT_EQ(d.drop_events, (std::vector<std::string>{"Debug Ping"}));
  EXPECT_EQ(d.drop_properties, (std::vector<std::string>{"password", "ssn"}));
  ASSERT_EQ(d.settings.size(), 3u);
  EXPECT_EQ(d.settings[0].key, "url");
  EXPECT_EQ(d.settings[0].scalar, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(d.settings[0].line, 23);
  EXPECT_EQ(d.settings[1].kind, RawSetting::Kind::kMap);
  EXPECT_EQ(d.settings[1].map[0], (std::pair<std::string, std::string>{"X-Team", "growth"}));
  EXPECT_EQ(d.line, 11);
}

TEST(Config, DestinationDefaults) {
  auto c = LoadConfigString(
      std::string(kMinimal) + "destinations:\n  - {name: b, type: blackhole}\n", "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const DestinationConfig& d = c->destinations[0];
  EXPECT_TRUE(d.enabled);
  EXPECT_FALSE(d.allow_private_network);
  EXPECT_EQ(d.retry_window_ms, 4LL * 3600 * 1000);
  EXPECT_EQ(d.timeout_ms, 30'000);
  EXPECT_EQ(d.ordering, Ordering::kNone);
  EXPECT_EQ(d.mode, DeliveryMode::kCloud);
  EXPECT_TRUE(d.sources.empty());
  auto t = LoadConfigString(
      std::string(kMinimal) + "destinations:\n  - {name: b, type: blackhole, timeout: 2500ms}\n",
      "f.yaml");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->destinations[0].timeout_ms, 2500);
  for (auto [text, mode] :
       {std::pair{"cloud", DeliveryMode::kCloud}, std::pair{"device", DeliveryMode::kDevice},
        std::pair{"both", DeliveryMode::kBoth}}) {
    auto m =
        LoadConfigString(std::string(kMinimal) +
                             "destinations:\n  - {name: b, type: blackhole, mode: " + text + "}\n",
                         "f.yaml");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->destinations[0].mode, mode) << text;
  }
}

TEST(Config, DestinationErrorsNameFileLineAndKey) {
  std::string base = std::string(kMinimal) + "destinations:\n";
  ExpectError(base + "  - {name: a, type: webhook, colour: red}\n",
              "f.yaml:10: destinations[0].colour: unknown key");
  ExpectError(base + "  - {name: a, type: x}\n  - {name: a, type: x}\n",
              "f.yaml:11: destinations[1].name: duplicate destination name 'a'");
  ExpectError(base + "  - {name: a, type: x, sources: [web, mobile]}\n",
              "destinations[0].sources: no source named 'mobile'");
  ExpectError(base + "  - {type: x}\n", "destinations[0].name: required key is missing");
  ExpectError(base + "  - {name: a}\n", "destinations[0].type: required key is missing");
  ExpectError(base + "  - {name: a, type: x, ordering: strict}\n",
              "destinations[0].ordering: expected one of: none, per_user");
  ExpectError(base + "  - {name: a, type: x, mode: browser}\n",
              "destinations[0].mode: expected one of: cloud, device, both");
  ExpectError(base + "  - {name: a, type: x, enabled: maybe}\n",
              "destinations[0].enabled: expected true or false");
  ExpectError(base + "  - {name: a, type: x, batch: {max_events: 0}}\n",
              "destinations[0].batch.max_events: out of range");
  ExpectError(base + "  - {name: a, type: x, retry_window: soon}\n",
              "destinations[0].retry_window: expected a duration");
  ExpectError(base + "  - {name: a, type: x, timeout: 0s}\n",
              "destinations[0].timeout: must be at least 1ms");
  ExpectError(base + "  - {name: a, type: x, filters: {drop: [x]}}\n",
              "destinations[0].filters.drop: unknown key");
  ExpectError(base + "  - {name: a, type: x, settings: {h: }}\n",
              "destinations[0].settings.h: expected a scalar");
  ExpectError(base + "  - {name: a, type: x, settings: {h: " + std::string(40, '[') +
                  std::string(40, ']') + "}}\n",
              "destinations[0].settings.h: nested more than 32 levels deep");
  ExpectError(base + "  - {name: 'a b', type: x}\n", "destinations[0].name: use 1-64");
}

TEST(Config, NestedSettingsAreKeptAsJsonForTheTableToJudge) {
  auto p = ParseConfigString(std::string(kMinimal) +
                                 "destinations:\n"
                                 "  - name: h\n"
                                 "    type: x\n"
                                 "    settings:\n"
                                 "      headers: {A: '1', B: 2}\n"
                                 "      mappings:\n"
                                 "        track: {body: {n: 1.5, q: '7', t: true, z: ~, s: a b, "
                                 "l: [x, {y: 2}]}}\n",
                             "f.yaml");
  ASSERT_TRUE(p.errors.empty()) << p.errors;
  const auto& s = p.config.destinations.at(0).settings;
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].kind, RawSetting::Kind::kMap);
  EXPECT_EQ(s[0].json, R"({"A":"1","B":2})");
  EXPECT_EQ(s[1].kind, RawSetting::Kind::kTree);
  EXPECT_EQ(s[1].line, 14);
  EXPECT_EQ(
      s[1].json,
      R"({"track":{"body":{"n":1.5E0,"q":"7","t":true,"z":null,"s":"a b","l":["x",{"y":2}]}}})");
  // Each nested key's line, for errors about it.
  EXPECT_NE(std::find(s[1].tree_lines.begin(), s[1].tree_lines.end(),
                      std::pair<std::string, int>("track.body.l[1].y", 15)),
            s[1].tree_lines.end());
}

TEST(Config, PartialConfigKeepsWhatWasReadBesideTheErrors) {
  // The destinations' layer (types, settings) needs the entries even when the file has
  // structural errors, so check-config can report both in one pass.
  auto p =
      ParseConfigString(std::string(kMinimal) + "log: {fsync: sometimes}\n" +
                            "destinations:\n"
                            "  - {name: a, type: webhookz, settings: {url: http://x.example}}\n"
                            "  - {name: b, settings: {deep: }}\n",
                        "f.yaml");
  EXPECT_NE(p.errors.find("f.yaml:9: log.fsync: expected one of"), std::string::npos) << p.errors;
  EXPECT_NE(p.errors.find("f.yaml:12: destinations[1].type: required key is missing"),
            std::string::npos)
      << p.errors;
  EXPECT_NE(p.errors.find("f.yaml:12: destinations[1].settings.deep: expected a scalar"),
            std::string::npos)
      << p.errors;
  ASSERT_EQ(p.config.destinations.size(), 2u);
  EXPECT_EQ(p.config.destinations[0].type, "webhookz");
  EXPECT_EQ(p.config.destinations[0].line, 11);
  ASSERT_EQ(p.config.destinations[0].settings.size(), 1u);
  EXPECT_EQ(p.config.destinations[0].settings[0].scalar, "http://x.example");
  // A value config could not read stays, marked, so it is not also reported as missing.
  ASSERT_EQ(p.config.destinations[1].settings.size(), 1u);
  EXPECT_EQ(p.config.destinations[1].settings[0].kind, RawSetting::Kind::kMalformed);
  EXPECT_FALSE(
      LoadConfigString(std::string(kMinimal) + "log: {fsync: sometimes}\n", "f.yaml").ok());
  auto unreadable = ParseConfigFile("/nonexistent/switchyard.yaml");
  EXPECT_NE(unreadable.errors.find("cannot read config file"), std::string::npos);
  auto syntax = ParseConfigString("version: [1\n", "f.yaml");
  EXPECT_NE(syntax.errors.find("f.yaml:"), std::string::npos);
}

TEST(Config, ArchiveSectionFromTheIssueLoads) {
  auto c = LoadConfigString(std::string(kMinimal) + R"(archive:
  store: local                  # or s3
  path: ./data/archive          # local
  roll_size: 64MB               # uncompressed bytes per file, or
  roll_age: 5m                  # whichever comes first
)",
                            "f.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->archive.enabled);
  EXPECT_EQ(c->archive.store, ArchiveStore::kLocal);
  EXPECT_EQ(c->archive.path, "./data/archive");
  EXPECT_EQ(c->archive.roll_bytes, 64LL << 20);
  EXPECT_EQ(c->archive.roll_age_ms, 5 * 60'000);

  auto s3 = LoadConfigString(std::string(kMinimal) + R"(archive:
  store: s3
  bucket: events
  prefix: switchyard/
  region: us-east-1
  endpoint: http://127.0.0.1:8333    # any S3-compatible store
  path_style: true
)",
                             "f.yaml");
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  EXPECT_EQ(s3->archive.store, ArchiveStore::kS3);
  EXPECT_EQ(s3->archive.bucket, "events");
  EXPECT_EQ(s3->archive.prefix, "switchyard/");
  EXPECT_EQ(s3->archive.endpoint, "http://127.0.0.1:8333");
  EXPECT_TRUE(s3->archive.path_style);
  EXPECT_TRUE(s3->archive.access_key_id.empty());  // from the environment at start

  auto none = LoadConfigString(kMinimal, "f.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->archive.enabled);
}

TEST(Config, ArchiveErrorsNameFileLineAndKey) {
  std::string base = std::string(kMinimal) + "archive:\n";
  ExpectError(base + "  store: ftp\n", "f.yaml:10: archive.store: expected one of: local, s3");
  ExpectError(base + "  path: x\n", "archive.store: required key is missing");
  ExpectError(base + "  store: local\n", "archive.path: required with store: local");
  ExpectError(base + "  store: s3\n", "archive.bucket: required with store: s3");
  ExpectError(base + "  store: s3\n  bucket: b\n  path: x\n",
              "f.yaml:12: archive.path: only used with store: local");
  ExpectError(base + "  store: local\n  path: x\n  bucket: b\n",
              "f.yaml:12: archive.bucket: only used with store: s3");
  ExpectError(base + "  store: s3\n  bucket: b\n  access_key_id: a\n",
              "archive.access_key_id: give access_key_id and secret_access_key together");
  ExpectError(base + "  store: s3\n  bucket: b\n  endpoint: ftp://x\n",
              "f.yaml:12: archive.endpoint: expected http://host[:port]");
  ExpectError(base + "  store: local\n  path: x\n  roll_size: big\n",
              "f.yaml:12: archive.roll_size: expected a size");
  // Archive reads stop at 1 GiB per file (archive/gzip.h): files must stay well below it.
  ExpectError(base + "  store: local\n  path: x\n  roll_size: 1GB\n",
              "f.yaml:12: archive.roll_size: must be at most 512MB");
  ExpectError(base + "  store: local\n  path: x\n  roll_age: 1ms\n",
              "f.yaml:12: archive.roll_age: must be at least 100ms");
  ExpectError(base + "  store: s3\n  bucket: b\n  multipart_size: 1MB\n",
              "archive.multipart_size: must be at least");
  ExpectError(base + "  store: local\n  path: x\n  prefix: ../up\n", "archive.prefix:");
  ExpectError(base + "  store: local\n  path: x\n  colour: red\n",
              "f.yaml:12: archive.colour: unknown key");
}

}  // namespace
}  // namespace sy::config
