// Switchyard's configuration: one YAML file with `version: 1`, parsed into typed structs and
// validated up front. Unknown keys, wrong types and missing required keys are errors naming the
// file, line and key. A config that fails validation is never half-applied.
//
// Thread safety: Config is a plain value; LoadConfig is reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sy::config {

struct SourceConfig {
  std::string name;
  // SHA-256 (lowercase hex) of the write key: the key itself is never kept in memory past
  // loading, nor written anywhere. Given in the file as `write_key` or `write_key_sha256`.
  std::string write_key_sha256;
  // `rate_limit:` — a token bucket on the events this source may send: `events_per_second`
  // refill, holding at most `burst` events (default: one second's worth). 0: no limit. A request
  // over it is answered 429 with Retry-After and nothing of it is stored.
  int64_t rate_limit_events_per_second = 0;
  int64_t rate_limit_burst = 0;
  // `enabled: false`: the source's keys are refused like unknown keys (401), nothing is stored;
  // destinations keep their routing to it. Default true.
  bool enabled = true;
  // `previous_write_key: {sha256: <hex>, expires: <ISO-8601>}` — a rotated-out key still
  // accepted until `expires` (the grace period of a key rotation, docs/configuration.md). Empty:
  // none. Written by the admin API's rotate-key; kept in the file by `config export`.
  std::string previous_write_key_sha256{};
  int64_t previous_write_key_expires_ms = 0;  // Unix milliseconds
  // `functions: [a, b]` — names from the top-level `functions:`, run (in this order, before the
  // destination's own) for every destination this source's events go to (docs/functions.md).
  std::vector<std::string> functions{};
  // `consent: {default: grant|deny}` — how an event WITHOUT
  // `context.consent.categoryPreferences` is routed to destinations that list
  // `consent_categories`: as if every category were granted (the default, Segment's behaviour
  // for events that carry no consent) or none. Events that carry preferences follow them.
  bool consent_default_deny = false;
};

// The sandbox limits of a user function (docs/functions.md, "Limits"). The top-level
// `function_limits:` sets every function's default; a function's own `limits:` overrides it key
// by key. The defaults are three orders of magnitude above what a real function takes (20-35 µs
// per event, a few MiB), so only a runaway reaches them.
struct FunctionLimitsConfig {
  int64_t event_timeout_ms = 100;     // `event_timeout`: one call on one event
  int64_t batch_timeout_ms = 1000;    // `batch_timeout`: one transformBatch call, the top level
  int64_t memory_bytes = 64LL << 20;  // `memory`: the context's GC heap plus its malloc memory
};

// One entry of the top-level `functions:` (docs/functions.md): a user function in JavaScript.
struct FunctionConfig {
  std::string name;  // [A-Za-z0-9_-]{1,64}, unique
  // The .js file; a relative path is taken from the config file's directory. Empty when the
  // source is given inline (`source:`, as the admin API stores it).
  std::string file;
  // `settings:` as a JSON object: the function's ctx.props (Jitsu) / settings (Segment).
  std::string settings_json = "{}";
  int line = 0;
  // `source:` — the JavaScript text itself, instead of `file` (exactly one of the two).
  std::string source{};
  FunctionLimitsConfig limits{};  // `function_limits:` with the function's `limits:` over it
};

enum class FsyncPolicy { kAlways, kInterval, kNever };
enum class Compression { kNone, kZstd };

// `log.backend`: where accepted events are kept (docs/cluster.md).
enum class LogBackend { kLocal, kKafka };

// `log.kafka:` — the Kafka cluster the kafka backend produces to and consumes from
// (docs/cluster.md, docs/configuration.md). Only read with `backend: kafka`.
struct KafkaLogConfig {
  std::vector<std::string> brokers;         // bootstrap servers, host:port each; required
  std::string topic_prefix = "switchyard";  // topic `<prefix>-events`, groups `<prefix>-<dest>`
  int64_t partitions = 12;                  // of the events topic when it is created
  int64_t replication_factor = 3;           // of the events topic when it is created
  int64_t min_insync_replicas = 2;          // topic config when it is created
  std::string client_id = "switchyard";
  std::string protocol = "PLAINTEXT";  // PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
  std::string sasl_mechanism;          // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (with SASL_*)
  std::string username;
  std::string password;  // secret: never logged; `password_env` names a variable instead
  std::string ca_file;   // PEM bundle for SSL / SASL_SSL; empty: the system's
  // Ingest's bound: an append the cluster has not acknowledged (acks=all) by then fails and the
  // request is answered 503 (librdkafka's message.timeout.ms).
  int64_t ack_timeout_ms = 5000;
  int64_t linger_ms = 2;                       // producer batching delay
  int64_t producer_queue_messages = 100000;    // queue.buffering.max.messages
  int64_t producer_queue_bytes = 256LL << 20;  // queue.buffering.max.kbytes × 1024
  std::string compression = "zstd";            // none | gzip | snappy | lz4 | zstd
  int64_t session_timeout_ms = 10000;          // consumer groups
  int64_t fetch_max_bytes = 16LL << 20;        // per consumer fetch
};

struct LogConfig {
  LogBackend backend = LogBackend::kLocal;
  KafkaLogConfig kafka;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  int64_t fsync_interval_ms = 10;
  int64_t segment_bytes = 128LL << 20;
  int64_t preallocate_bytes = 8LL << 20;  // zero-filled ahead of the writer; 0 = off
  int64_t retention_bytes = 0;            // 0: no size cap
  int64_t retention_age_ms = 0;           // 0: no age cap
  Compression compression = Compression::kNone;
  int64_t max_pending_bytes = 64LL << 20;
  int64_t reserve_bytes = 64LL << 20;  // held for the log alone on a full disk; 0 = off
};

struct IngestConfig {
  int64_t max_event_bytes = 32 * 1024;
  int64_t max_request_bytes = 500 * 1024;
  int64_t max_batch_events = 2500;
  int64_t max_json_depth = 64;
  int64_t dedupe_window_ms = 24LL * 3600 * 1000;
  // `ingest.dedupe.max_memory`: everything the dedupe index holds in memory, whatever the
  // window and the rate: past it the oldest keys are spilled to sorted run files on disk. 128 MiB
  // keeps ~300,000 recent keys in memory and 10 filter bits per spilled key up to ~55 M keys
  // (docs/formats/dedupe.md); at least 4 MiB.
  int64_t dedupe_max_memory_bytes = 128LL << 20;
  std::vector<std::string> trusted_proxies;  // peer IPs whose X-Forwarded-For is believed
  std::vector<std::string> cors_origins = {"*"};
};

// The browser endpoints (src/web/): the settings document and the dynamic JavaScript.
struct WebConfig {
  // `Cache-Control: public, max-age=` of both endpoints: how long a settings change may take to
  // reach browsers (and any CDN in front). Whole seconds.
  int64_t cache_max_age_ms = 60 * 1000;
  // Where browsers send events, as host[:port]/path without scheme (Segment's `apiHost`).
  // Default: the listen address + "/v1". Given in the file with an optional http:// or https://
  // prefix, which sets public_api_protocol (http when absent: what this server speaks).
  std::string public_api_host;
  std::string public_api_protocol = "http";
};

// One key of a destination's `settings:` mapping, kept raw: config does not know destination
// types (core never includes a destination). The delivery module validates these against the
// destination's own settings table (delivery::ParseSettings), reporting file:line:key.
struct RawSetting {
  // kMalformed: a value config could not read; config reported it, and keeps the key so later
  // checks count it as given. kTree: a value nested deeper than a list or mapping of scalars,
  // kept only as `json`; the settings table decides whether its key takes one (SettingType::kJson)
  // and names the key in its error otherwise.
  enum class Kind { kScalar, kList, kMap, kMalformed, kTree };
  std::string key;
  int line = 0;
  Kind kind = Kind::kScalar;
  std::string scalar;
  std::vector<std::string> list;                         // kList: scalars only
  std::vector<std::pair<std::string, std::string>> map;  // kMap: scalar values only
  // kList, kMap, kTree: the value as JSON text, mappings in document order. Plain scalars that
  // read as YAML 1.2 core null/bool/int/float become JSON null/bools/numbers; quoted ones strings.
  std::string json;
  // kList, kMap, kTree: the line of each key inside the value, by path below the setting
  // ("track.body.email", list items as "[i]": "body.items[1]"), so errors about nested keys can
  // name their line.
  std::vector<std::pair<std::string, int>> tree_lines;
};

enum class Ordering { kNone, kPerUser };

// `mode:` of a destination (docs/browser.md): where its events reach the tool. kCloud: the
// server's stream delivers them; kDevice: the vendor's tag in the visitor's browser does (no
// stream runs); kBoth: both, for tools that drop the second copy. Which types allow device and
// both is checked against the browser integrations (web/browser_integrations.h).
enum class DeliveryMode { kCloud, kDevice, kBoth };

struct BatchConfig {
  int64_t max_events = 100;
  int64_t max_bytes = 1 << 20;
  int64_t max_wait_ms = 500;
};

// One entry of `destinations:`. Everything but `settings` is validated here; `type` is checked
// against the built-in destination list and `settings` against its table by the caller that
// knows the destinations (destinations::ValidateDestinations), before anything starts.
struct DestinationConfig {
  std::string name;  // unique; [A-Za-z0-9_-]{1,64}; the log cursor is "dest.<name>"
  std::string type;
  int line = 0;                      // where the entry starts, for errors found later
  bool enabled = true;               // false: no stream runs; the cursor (and retained data) stays
  std::vector<std::string> sources;  // names from `sources:`; empty in the file = all sources
  bool allow_private_network = false;
  int64_t retry_window_ms = 4LL * 3600 * 1000;
  int64_t timeout_ms = 30'000;  // `timeout:` of each request to the destination (then retried)
  BatchConfig batch;
  Ordering ordering = Ordering::kNone;
  std::vector<std::string> drop_events;
  std::vector<std::string> drop_properties;
  std::vector<RawSetting> settings;
  // `functions: [a, b]` — a chain of user functions run on each event after routing and
  // filters, before encoding (docs/functions.md). Names from the top-level `functions:`.
  std::vector<std::string> functions{};
  // `consent_categories: [analytics, advertising]` — the consent categories this destination
  // needs: an event reaches it only when its `context.consent.categoryPreferences` grants every
  // one of them (`true`); a category missing from the preferences is not granted. Empty: consent
  // does not restrict this destination (docs/delivery.md, "Consent").
  std::vector<std::string> consent_categories{};
  // Derived at load, not read from the file: the sources whose `consent.default` is deny, so the
  // router needs no source table. Empty unless `consent_categories` is set.
  std::vector<std::string> consent_deny_by_default_sources{};
  DeliveryMode mode = DeliveryMode::kCloud;  // `mode: cloud|device|both`
};

// The `archive:` section (src/archive, docs/archive.md): every stored event as gzip NDJSON files
// in a local directory or an S3 bucket. Absent from the file: no archive runs.
enum class ArchiveStore { kLocal, kS3 };

struct ArchiveConfig {
  bool enabled = false;  // true when the section is present
  ArchiveStore store = ArchiveStore::kLocal;
  std::string path;                  // kLocal: the root directory (relative to the cwd)
  int64_t roll_bytes = 64LL << 20;   // uncompressed bytes per file, or
  int64_t roll_age_ms = 5 * 60'000;  // time since the file was opened, whichever first
  std::string prefix;                // prepended to every key (both stores)
  // kS3:
  std::string bucket;
  std::string region = "us-east-1";
  std::string endpoint;  // default https://s3.<region>.amazonaws.com
  bool path_style = false;
  std::string access_key_id;  // both or neither; else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  std::string secret_access_key;
  int64_t multipart_size = 16LL << 20;  // part size; larger objects use multipart upload

  bool operator==(const ArchiveConfig&) const = default;
};

// The `http:` section: limits of the public HTTP listener (src/http, docs/security.md).
struct HttpConfig {
  int64_t max_connections = 0;        // 0: the descriptor limit minus a reserve (app/app.cc)
  int64_t send_timeout_ms = 30'000;   // a response making no progress this long closes
  int64_t lingering_time_ms = 5'000;  // reading and dropping after a refusal, at most this long
  // Read timeouts (http/server.h ServerOptions): waiting for a request's first byte, from it to
  // the end of the header, from there to the end of the body.
  int64_t idle_timeout_ms = 75'000;
  int64_t header_timeout_ms = 75'000;
  int64_t body_timeout_ms = 30'000;
};

// The `metrics:` section: where /metrics is served (docs/security.md). By default nowhere:
// /metrics names every source, destination and warehouse table.
struct MetricsConfig {
  // A separate listener serving only /metrics, /healthz and /readyz; empty host: none.
  std::string listen_host;
  uint16_t listen_port = 0;
  // SHA-256 (hex) of a bearer token. Set: /metrics is also served on the public listener, to
  // requests with `Authorization: Bearer <token>`, and the metrics listener asks for it too.
  std::string token_sha256;
};

// The `admin:` section: the admin listener (src/admin, docs/admin-api.md). Absent from the file:
// no admin listener runs. Present: it listens on 127.0.0.1:8081 unless `listen` says otherwise.
struct AdminConfig {
  bool enabled = false;  // true when the section is present
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8081;
  int64_t session_idle_timeout_ms = 30LL * 60 * 1000;  // a session unused this long ends
  int64_t session_max_age_ms = 12LL * 3600 * 1000;     // and this long after login in any case
  // `Secure` on the session cookie: for an admin listener reached through HTTPS (a proxy).
  bool secure_cookie = false;
  // `admin.tls: {cert, key}`: HTTPS on the admin listener itself (PEM files, paths as written:
  // relative ones to the working directory). Both or neither; the session cookie is then
  // `Secure` whatever secure_cookie says.
  std::string tls_cert;
  std::string tls_key;
  // The live view (GET /api/v1/live): streams open at once at most, and records per second
  // each stream is sampled at.
  int64_t max_live_streams = 16;
  int64_t live_rate = 20;
};

// What a tracking plan does with an event it finds wrong (docs/governance.md).
enum class PlanAction { kAllow, kFlag, kBlock };
std::string_view PlanActionName(PlanAction a);

// One entry of `tracking_plans:`. Schema files are paths as written (relative ones are read
// relative to the config file's directory); their contents are read and compiled by
// governance::TrackingPlans, not here.
struct TrackingPlanConfig {
  std::string name;
  std::vector<std::string> sources;  // names from `sources:`; each source in at most one plan
  // Track events: the event name → its schema file, in file order.
  std::vector<std::pair<std::string, std::string>> events;
  // Other types: "identify", "group", "page", "screen", "alias" → schema file.
  std::vector<std::pair<std::string, std::string>> types;
  PlanAction unplanned = PlanAction::kAllow;  // a track event whose name is not in `events`
  PlanAction violations = PlanAction::kFlag;  // an event its schema refuses
};

struct Config {
  std::string file;  // where it was loaded from
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string data_dir;
  int64_t io_threads = 0;  // 0: one per core
  std::string log_level = "info";
  std::vector<SourceConfig> sources;
  LogConfig log;
  IngestConfig ingest;
  WebConfig web;
  std::vector<DestinationConfig> destinations;
  ArchiveConfig archive;
  HttpConfig http;
  MetricsConfig metrics;
  AdminConfig admin;
  std::vector<TrackingPlanConfig> tracking_plans;
  std::vector<FunctionConfig> functions;  // the top-level `functions:`
  FunctionLimitsConfig function_limits;   // the top-level `function_limits:`
};

// Parses and validates. Errors read "<file>:<line>: <key>: <problem>", one per line, all of them.
Result<Config> LoadConfigFile(const std::string& path);
Result<Config> LoadConfigString(const std::string& yaml, const std::string& file_name);

// A file read as far as it could be, and every error found in it. `config` holds what was
// readable even when `errors` is not empty (entries with errors are kept as far as they were
// read), so the caller that knows the destinations can check their types and settings in the
// same pass and report every layer's errors at once (destinations::LoadConfig,
// `switchyard check-config`). Never use `config` when `errors` is not empty.
struct PartialConfig {
  Config config;
  std::string errors;  // "" = valid
};
PartialConfig ParseConfigFile(const std::string& path);
PartialConfig ParseConfigString(const std::string& yaml, const std::string& file_name);

// SHA-256 of `data` as lowercase hex.
std::string Sha256Hex(std::string_view data);

}  // namespace sy::config
