#include "app/app.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "app/overview_admin.h"
#include "app/warehouse_admin.h"
#include "base/clock.h"
#include "base/constant_time.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "destinations/registry.h"
#include "governance/tracking_plans.h"
#include "log/kafka/kafka_log.h"
#include "log/local/local_log.h"
#include "replay/replay.h"
#include "warehouse/warehouse_destination.h"
#include "web/browser_integrations.h"

namespace sy::app {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("server");
  return l;
}

log::LocalLogOptions LogOptions(const config::Config& c, MetricsRegistry* metrics) {
  log::LocalLogOptions o;
  o.dir = DataDir(c.data_dir).Log();
  switch (c.log.fsync) {
    case config::FsyncPolicy::kAlways:
      o.fsync = log::FsyncPolicy::kAlways;
      break;
    case config::FsyncPolicy::kInterval:
      o.fsync = log::FsyncPolicy::kInterval;
      break;
    case config::FsyncPolicy::kNever:
      o.fsync = log::FsyncPolicy::kNever;
      break;
  }
  o.fsync_interval_ms = static_cast<uint32_t>(c.log.fsync_interval_ms);
  o.segment_bytes = static_cast<uint64_t>(c.log.segment_bytes);
  o.preallocate_bytes = static_cast<uint64_t>(c.log.preallocate_bytes);
  o.reserve_bytes = static_cast<uint64_t>(c.log.reserve_bytes);
  o.retention_bytes = static_cast<uint64_t>(c.log.retention_bytes);
  o.retention_age_ms = c.log.retention_age_ms;
  o.compression = c.log.compression == config::Compression::kZstd ? log::LogCompression::kZstd
                                                                  : log::LogCompression::kNone;
  o.max_pending_bytes = static_cast<uint64_t>(c.log.max_pending_bytes);
  o.metrics = metrics;
  return o;
}

log::KafkaLogOptions KafkaOptions(const config::Config& c, MetricsRegistry* metrics) {
  const config::KafkaLogConfig& k = c.log.kafka;
  log::KafkaLogOptions o;
  for (const auto& b : k.brokers)
    o.brokers += (o.brokers.empty() ? "" : ",") + b;
  o.topic_prefix = k.topic_prefix;
  o.partitions = static_cast<int>(k.partitions);
  o.replication_factor = static_cast<int>(k.replication_factor);
  o.min_insync_replicas = static_cast<int>(k.min_insync_replicas);
  o.client_id = k.client_id;
  o.client_properties.emplace_back("security.protocol", k.protocol);
  if (!k.sasl_mechanism.empty()) {
    o.client_properties.emplace_back("sasl.mechanism", k.sasl_mechanism);
    o.client_properties.emplace_back("sasl.username", k.username);
    o.client_properties.emplace_back("sasl.password", k.password);
  }
  if (!k.ca_file.empty()) o.client_properties.emplace_back("ssl.ca.location", k.ca_file);
  o.ack_timeout_ms = static_cast<int>(k.ack_timeout_ms);
  o.linger_ms = static_cast<int>(k.linger_ms);
  o.producer_queue_messages = k.producer_queue_messages;
  o.producer_queue_bytes = k.producer_queue_bytes;
  o.compression = k.compression;
  o.session_timeout_ms = static_cast<int>(k.session_timeout_ms);
  o.fetch_max_bytes = k.fetch_max_bytes;
  o.metrics = metrics;
  return o;
}

}  // namespace

Result<int> HolderPid(const std::string& data_dir) {
  std::string path = DataDir(data_dir).Lock();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("no server has run on data_dir " + data_dir);
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  if (!held) return NotFound("no switchyard server is running on data_dir " + data_dir);
  int pid = n > 0 ? std::atoi(buf) : 0;
  if (pid <= 0) return NotFound("the server on data_dir " + data_dir + " did not record its pid");
  return pid;
}

Result<int> LockDataDir(const std::string& data_dir) {
  // Durably: the directory entry of a data_dir made now survives a power cut with what goes in it.
  SY_RETURN_IF_ERROR(CreateDirDurably(Env::Default(), data_dir));
  std::string path = DataDir(data_dir).Lock();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) return IoError("cannot lock " + path + ": " + std::strerror(err));
    int pid = n > 0 ? std::atoi(buf) : 0;
    return FailedPrecondition("data_dir " + data_dir + " is in use by another switchyard process" +
                              (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                              ": two servers (or a server and an offline `warehouse sync`) must "
                              "not share a data_dir");
  }
  // The holder's pid, for `switchyard reload` (informational: the flock is what protects).
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    Logger()->warn("cannot write the pid into {}: {}", path, std::strerror(errno));
  }
  return fd;
}

// Routes requests: side doors first, then the Tracking API.
class App::Router final : public http::Handler {
 public:
  Router(App* app) : app_(app) {}

  void Handle(http::Request&& req, const http::PeerInfo& peer, http::Responder respond) override {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (req.method() == http::bhttp::verb::options) return respond(app_->api_->Preflight(req));
    if (path == "/healthz") return respond(Text(req, 200, "ok\n", "text/plain"));
    if (path == "/readyz") {
      // Not ready while starting or stopping, or when the log refuses appends (after an fsync
      // failure it does so until the process restarts: let the orchestrator restart it).
      Status health =
          app_->ready_.load() ? app_->log_->Health() : Unavailable("starting or stopping");
      return respond(Text(req, health.ok() ? 200 : 503,
                          health.ok() ? "ready\n" : "not ready: " + health.message() + "\n",
                          "text/plain"));
    }
    // Not served here unless a token is configured (metrics.token): it names every source,
    // destination and warehouse table. See docs/security.md.
    if (path == "/metrics" && !app_->config_.metrics.token_sha256.empty())
      return respond(app_->Metrics(req));
    if (path == kWarehouseSyncPath)
      return app_->HandleWarehouseSync(std::move(req), peer, std::move(respond));
    if (path == kViolationsReleasePath)
      return app_->HandleViolationsRelease(std::move(req), peer, std::move(respond));
    if (web::WebEndpoints::Serves(path)) return respond(app_->web_->Handle(req));
    if (ingest::TrackingApi::Serves(path))
      return app_->api_->Handle(std::move(req), peer, std::move(respond));
    auto res = ingest::TrackingApi::ErrorResponse(404, "not_found", "no such path", req.version());
    app_->api_->AddCorsHeaders(req, &res);
    respond(std::move(res));
  }

  http::Response Reject(unsigned status, const std::string& reason,
                        const http::Request& partial) override {
    app_->metrics_
        .GetCounter("switchyard_ingest_events_rejected_total",
                    "Events not stored, by reason (each is named in its response).",
                    {{"reason", status == 413 ? "request_too_large" : "malformed_http"}})
        ->Inc();
    auto res = ingest::TrackingApi::ErrorResponse(
        status, status == 413 ? "request_too_large" : "bad_request", reason,
        partial.version() ? partial.version() : 11);
    app_->api_->AddCorsHeaders(partial, &res);
    return res;
  }

 private:
  static http::Response Text(const http::Request& req, unsigned status, std::string body,
                             std::string_view type) {
    http::Response res{static_cast<http::bhttp::status>(status), req.version()};
    res.set(http::bhttp::field::content_type, type);
    res.set(http::bhttp::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
  }

  App* app_;
};

// The `metrics.listen` listener: /metrics (with the bearer token when one is configured),
// /healthz and /readyz; 404 for anything else.
class App::MetricsRouter final : public http::Handler {
 public:
  explicit MetricsRouter(App* app) : app_(app) {}

  void Handle(http::Request&& req, const http::PeerInfo&, http::Responder respond) override {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/metrics") return respond(app_->Metrics(req));
    if (path == "/healthz" || path == "/readyz")
      return app_->router_->Handle(std::move(req), {}, respond);
    respond(App::PlainText(req, 404, "not found\n"));
  }

  http::Response Reject(unsigned status, const std::string& reason,
                        const http::Request& partial) override {
    http::Response res{static_cast<http::bhttp::status>(status),
                       partial.version() ? partial.version() : 11u};
    res.set(http::bhttp::field::content_type, "text/plain");
    res.body() = reason + "\n";
    return res;
  }

 private:
  App* app_;
};

http::Response App::PlainText(const http::Request& req, unsigned status, std::string body) {
  http::Response res{static_cast<http::bhttp::status>(status), req.version()};
  res.set(http::bhttp::field::content_type, "text/plain");
  res.set(http::bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

http::Response App::Metrics(const http::Request& req) {
  const std::string& want = config_.metrics.token_sha256;
  if (!want.empty()) {
    std::string_view auth = req[http::bhttp::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    bool ok = false;
    if (auth.size() > kBearer.size() &&
        boost::beast::iequals(auth.substr(0, kBearer.size()), kBearer)) {
      // Compared as digests, in constant time: neither the token's length nor a prefix leaks.
      ok = ConstantTimeEquals(config::Sha256Hex(auth.substr(kBearer.size())), want);
    }
    if (!ok) {
      auto res = PlainText(req, 401, "a bearer token (metrics.token) is required\n");
      res.set(http::bhttp::field::www_authenticate, "Bearer");
      return res;
    }
  }
  auto res = PlainText(req, 200, metrics_.RenderPrometheus());
  res.set(http::bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  return res;
}

// Descriptors kept for everything but client connections when http.max_connections is not
// set: the process's own (stdio, lock, log segments and cursors, dedupe journal, the I/O
// threads' epoll and event descriptors, the metrics listener), each destination's (log reader,
// dead letters, outbound connections, a warehouse's database files per source) and the
// archive's (one open file and uploads per source).
int App::DescriptorReserve(const config::Config& c) {
  int64_t reserve = 128 + 32 * static_cast<int64_t>(c.destinations.size()) +
                    8 * static_cast<int64_t>(c.sources.size()) + (c.archive.enabled ? 32 : 0);
  return static_cast<int>(std::min<int64_t>(reserve, 1 << 20));
}

App::App() = default;

App::~App() {
  Stop();
}

Status App::Start(const config::Config& config) {
  config_ = config;
  SetLogLevel(config.log_level);
  SY_RETURN_IF_ERROR(destinations::ValidateDestinations(config));
  SY_ASSIGN_OR_RETURN(lock_fd_, LockDataDir(config.data_dir));
  SY_ASSIGN_OR_RETURN(admin_token_, WriteAdminToken(config.data_dir));
  {
    // Every function compiles before anything starts (file, line and message otherwise).
    functions::FunctionRegistry::Options fo;
    fo.data_dir = config.data_dir;
    fo.metrics = &metrics_;
    functions_ = std::make_unique<functions::FunctionRegistry>(fo);
    SY_RETURN_IF_ERROR(functions_->Load(config));
  }
  if (config.log.backend == config::LogBackend::kKafka) {
    // Cluster mode, first slice (docs/cluster.md): this process runs every role on the Kafka
    // log; dedupe stays the ingest-side index in data_dir.
    SY_ASSIGN_OR_RETURN(auto log, log::OpenKafkaLog(KafkaOptions(config, &metrics_)));
    log_ = std::move(log);
  } else {
    SY_ASSIGN_OR_RETURN(auto log, log::OpenLocalLog(LogOptions(config, &metrics_)));
    log_ = std::move(log);
  }
  ingest::DedupeIndex::Options dedupe_options;
  dedupe_options.dir = DataDir(config.data_dir).Dedupe();
  dedupe_options.window_ms = config.ingest.dedupe_window_ms;
  dedupe_options.clock = SystemClock::Get();
  dedupe_options.max_memory_bytes = config.ingest.dedupe_max_memory_bytes;
  SY_ASSIGN_OR_RETURN(auto dedupe, ingest::DedupeIndex::Open(dedupe_options, log_.get()));
  dedupe_ = std::move(dedupe);
  metrics_.AddCallbackGauge("switchyard_dedupe_keys", "messageIds held by the dedupe index.", {},
                            [d = dedupe_.get()] { return static_cast<double>(d->size()); });
  metrics_.AddCallbackGauge(
      "switchyard_dedupe_memory_bytes",
      "Bytes the dedupe index holds in memory (bounded by ingest.dedupe.max_memory).", {},
      [d = dedupe_.get()] { return static_cast<double>(d->memory_bytes()); });
  metrics_.AddCallbackGauge("switchyard_dedupe_spilled_keys",
                            "messageIds of the dedupe window held in run files on disk.", {},
                            [d = dedupe_.get()] { return static_cast<double>(d->spilled_keys()); });
  metrics_.AddCallbackGauge(
      "switchyard_dedupe_run_reads",
      "Claims since start that read a dedupe run file (a duplicate on disk or a filter false "
      "positive).",
      {}, [d = dedupe_.get()] { return static_cast<double>(d->run_reads()); });
  sources_ = std::make_unique<ingest::SourceTable>(config.sources);
  api_ = std::make_unique<ingest::TrackingApi>(config.ingest, sources_.get(), log_.get(),
                                               dedupe_.get(), SystemClock::Get(), &metrics_);
  api_->set_live_feed(&live_);
  api_->set_ingest_stats(&ingest_stats_);
  api_->set_record_users(config.log.backend == config::LogBackend::kKafka);
  {
    SY_ASSIGN_OR_RETURN(auto plans, governance::TrackingPlans::Compile(config));
    api_->SetTrackingPlans(std::move(plans));
  }
  SY_ASSIGN_OR_RETURN(
      web_, web::WebEndpoints::Create(
                config.web,
                [sources = sources_.get()](std::string_view key) { return sources->Lookup(key); },
                [api = api_.get()](const http::Request& req, http::Response* res) {
                  api->AddCorsHeaders(req, res);
                }));
  web_->SetDestinations(config.destinations);  // device-mode entries of the documents
  SY_RETURN_IF_ERROR(StartDestinations());
  if (config.archive.enabled) {
    archive::ArchiverOptions ao;
    ao.config = config.archive;
    ao.log = log_.get();
    SY_ASSIGN_OR_RETURN(ao.store, archive::OpenObjectStore(config.archive));
    ao.state_dir = DataDir(config.data_dir).ArchiveState();
    ao.metrics = &metrics_;
    SY_ASSIGN_OR_RETURN(archiver_, archive::Archiver::Start(std::move(ao)));
  }
  router_ = std::make_unique<Router>(this);
  http::ServerOptions hopts;
  hopts.host = config.listen_host;
  hopts.port = config.listen_port;
  hopts.threads = static_cast<int>(config.io_threads);
  hopts.max_body_bytes = static_cast<uint64_t>(config.ingest.max_request_bytes);
  hopts.max_connections = config.http.max_connections > 0
                              ? static_cast<int>(config.http.max_connections)
                              : http::MaxConnectionsFor(DescriptorReserve(config));
  hopts.send_timeout_ms = static_cast<int>(config.http.send_timeout_ms);
  hopts.lingering_time_ms = static_cast<int>(config.http.lingering_time_ms);
  hopts.idle_timeout_ms = static_cast<int>(config.http.idle_timeout_ms);
  hopts.header_timeout_ms = static_cast<int>(config.http.header_timeout_ms);
  hopts.body_timeout_ms = static_cast<int>(config.http.body_timeout_ms);
  hopts.metrics = &metrics_;
  SY_ASSIGN_OR_RETURN(auto server, http::Server::Start(hopts, router_.get()));
  http_ = std::move(server);
  if (!config.metrics.listen_host.empty()) {
    metrics_router_ = std::make_unique<MetricsRouter>(this);
    http::ServerOptions mopts;
    mopts.host = config.metrics.listen_host;
    mopts.port = config.metrics.listen_port;
    mopts.threads = 1;
    mopts.max_body_bytes = 64 * 1024;
    mopts.max_connections = kMetricsMaxConnections;
    mopts.name = "metrics";
    mopts.thread_name = "sy-metrics";
    mopts.metrics = &metrics_;
    SY_ASSIGN_OR_RETURN(auto ms, http::Server::Start(mopts, metrics_router_.get()));
    metrics_http_ = std::move(ms);
    Logger()->info("metrics listener listen={}:{} token={}", config.metrics.listen_host,
                   metrics_http_->port(),
                   config.metrics.token_sha256.empty() ? "none" : "required");
  }
  SY_RETURN_IF_ERROR(StartAdmin());
  flusher_ = std::thread([this] { FlushLoop(); });
  replay::PublishReplayProgressFiles(&metrics_, config_.data_dir);  // listed from the start
  replay_watcher_ = std::thread([this] { WatchReplays(); });
  ready_ = true;
  Logger()->info("switchyard started listen={}:{} data_dir={} sources={}", config.listen_host,
                 http_->port(), config.data_dir, config.sources.size());
  return Status::Ok();
}

// The admin listener (`admin:`): the admin API on its own port, never on the public one.
Status App::StartAdmin() {
  if (!config_.admin.enabled) return Status::Ok();
  admin::CredentialStoreOptions co;
  co.data_dir = DataDir(config_.data_dir);
  SY_ASSIGN_OR_RETURN(admin_credentials_, admin::CredentialStore::Open(co));
  admin_audit_ = std::make_unique<admin::AuditLog>(DataDir(config_.data_dir), Env::Default(),
                                                   SystemClock::Get());
  admin::AdminApiOptions ao;
  ao.credentials = admin_credentials_.get();
  ao.audit = admin_audit_.get();
  ao.config = nullptr;  // set by StartFromFile once the config controller is attached
  ao.clock = SystemClock::Get();
  ao.delivery_stats = &delivery_stats_;
  ao.live_feed = &live_;
  ao.backlog = [this](std::string_view name, uint64_t* events, double* seconds) {
    std::lock_guard streams_lock(streams_mu_);
    if (!log_) return false;
    for (const auto& s : streams_) {
      if (s->name() != name) continue;
      const uint64_t end = log_->EndOffset().value(), done = s->committed().value();
      *events = end > done ? end - done : 0;
      *seconds =
          log::ConsumerLagSeconds(&metrics_)->With({delivery::CursorName(s->name())})->Value();
      return true;
    }
    return false;
  };
  DeadLetterAdmin::Options dlo;
  dlo.store = dead_letters_.get();
  dlo.http = outbound_.get();
  dlo.clock = SystemClock::Get();
  dlo.config_file = config_.file;
  dlo.find = [this](std::string_view name, config::DestinationConfig* out) {
    std::lock_guard streams_lock(streams_mu_);  // config_.destinations changes under it
    for (const auto& d : config_.destinations) {
      if (d.name != name) continue;
      *out = d;
      return true;
    }
    return false;
  };
  dlo.make_transform =
      [this](const config::DestinationConfig& d) -> std::unique_ptr<delivery::EventTransform> {
    std::lock_guard streams_lock(streams_mu_);
    if (!functions_ || !functions::HasFunctions(config_, d)) return nullptr;
    return functions_->NewChain(d.name, static_cast<size_t>(d.batch.max_events));
  };
  dead_letter_admin_ = std::make_unique<DeadLetterAdmin>(dlo);  // dlo.find is used again below
  ao.dead_letters = dead_letter_admin_.get();
  ReplayAdmin::Options ro;
  ro.data_dir = config_.data_dir;
  ro.config_file = config_.file;
  ro.archive = config_.archive;
  ro.http = outbound_.get();
  ro.dead_letters = dead_letters_.get();
  ro.find_destination = dlo.find;
  ro.has_source = [this](std::string_view name) {
    std::lock_guard streams_lock(streams_mu_);
    for (const auto& s : config_.sources)
      if (s.name == name) return true;
    return false;
  };
  ro.make_transform =
      [this](const config::DestinationConfig& d) -> std::unique_ptr<delivery::EventTransform> {
    std::lock_guard streams_lock(streams_mu_);
    if (!functions_ || !functions::HasFunctions(config_, d)) return nullptr;
    return functions_->NewChain(d.name, static_cast<size_t>(d.batch.max_events));
  };
  replay_admin_ = std::make_unique<ReplayAdmin>(std::move(ro));
  ao.replays = replay_admin_.get();
  warehouse_api_ = std::make_unique<WarehouseSyncApi>(this);
  ao.warehouse = warehouse_api_.get();
  overview_api_ = std::make_unique<OverviewAdmin>(this);
  ao.overview = overview_api_.get();
  ao.ingest_stats = &ingest_stats_;
  ao.live.max_streams = static_cast<size_t>(config_.admin.max_live_streams);
  ao.live.max_per_second = static_cast<double>(config_.admin.live_rate);
  ao.sessions.idle_timeout_ms = config_.admin.session_idle_timeout_ms;
  ao.sessions.max_age_ms = config_.admin.session_max_age_ms;
  // With TLS on the listener itself the cookie is always `Secure`.
  ao.secure_cookie = config_.admin.secure_cookie || !config_.admin.tls_cert.empty();
  admin_api_ = std::make_unique<admin::AdminApi>(ao);
  http::ServerOptions o;
  o.host = config_.admin.listen_host;
  o.port = config_.admin.listen_port;
  o.threads = 1;
  o.max_body_bytes = kAdminMaxBodyBytes;
  o.max_connections = kAdminMaxConnections;
  o.send_timeout_ms = static_cast<int>(config_.http.send_timeout_ms);
  o.lingering_time_ms = static_cast<int>(config_.http.lingering_time_ms);
  o.name = "admin";
  o.thread_name = "sy-admin-io";
  o.metrics = &metrics_;
  // HTTPS on the admin listener (admin.tls). The handshake runs under the header timeout.
  o.tls_cert_file = config_.admin.tls_cert;
  o.tls_key_file = config_.admin.tls_key;
  o.header_timeout_ms = static_cast<int>(config_.http.header_timeout_ms);
  auto admin_server = http::Server::Start(o, admin_api_.get());
  if (!admin_server.ok()) {
    const Status& s = admin_server.status();
    return Status(s.code(),
                  (o.tls_cert_file.empty() ? "admin.listen: " : "admin.tls: ") + s.message());
  }
  admin_http_ = std::move(*admin_server);
  Logger()->info("admin listener listen={}:{} tls={}", config_.admin.listen_host,
                 admin_http_->port(), o.tls_cert_file.empty() ? "off" : "on");
  return Status::Ok();
}

Status App::StartDestinations() {
  dead_letters_ = std::make_unique<delivery::DeadLetterStore>(DataDir(config_.data_dir).Dlq());
  SY_ASSIGN_OR_RETURN(outbound_, http::CreateCurlHttpClient({}));
  for (const auto& d : config_.destinations) {
    if (!d.enabled) {
      Logger()->info("destination disabled destination={} (its cursor stays put)", d.name);
      continue;
    }
    if (!web::RunsInCloud(d)) {
      Logger()->info("destination in device mode destination={} (the browser sends)", d.name);
      continue;
    }
    SY_RETURN_IF_ERROR(StartStream(d));
  }
  return Status::Ok();
}

Status App::StartStream(const config::DestinationConfig& d) {
  delivery::StreamOptions o;
  o.config = d;
  o.display_name = destinations::FindDestinationType(d.type)->display_name;
  SY_ASSIGN_OR_RETURN(o.destination, destinations::CreateDestination(d, config_.file));
  // A warehouse records its loads where the admin API reads them (GET /api/v1/warehouse).
  if (auto* wh = dynamic_cast<warehouse::WarehouseDestination*>(o.destination.get()))
    wh->set_history(warehouse_history_.For(d.name));
  o.log = log_.get();
  o.http = outbound_.get();
  o.dead_letters = dead_letters_.get();
  o.clock = SystemClock::Get();
  o.metrics = &metrics_;
  o.live = &live_;
  o.stats = delivery_stats_.For(d.name);
  // Only destinations whose events run functions get a chain (and, on their thread, an engine).
  if (functions_ && functions::HasFunctions(config_, d))
    o.transform = functions_->NewChain(d.name, static_cast<size_t>(d.batch.max_events));
  SY_ASSIGN_OR_RETURN(auto stream, delivery::DestinationStream::Start(std::move(o)));
  streams_.push_back(std::move(stream));
  return Status::Ok();
}

namespace {

bool SameSettings(const std::vector<config::RawSetting>& a,
                  const std::vector<config::RawSetting>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].kind != b[i].kind || a[i].scalar != b[i].scalar ||
        a[i].list != b[i].list || a[i].map != b[i].map || a[i].json != b[i].json)
      return false;
  }
  return true;
}

// Same delivery behaviour (line numbers and position in the file do not matter).
bool SameDestination(const config::DestinationConfig& a, const config::DestinationConfig& b) {
  return a.name == b.name && a.type == b.type && a.enabled == b.enabled && a.sources == b.sources &&
         a.allow_private_network == b.allow_private_network &&
         a.retry_window_ms == b.retry_window_ms && a.timeout_ms == b.timeout_ms &&
         a.batch.max_events == b.batch.max_events && a.batch.max_bytes == b.batch.max_bytes &&
         a.batch.max_wait_ms == b.batch.max_wait_ms && a.ordering == b.ordering &&
         a.drop_events == b.drop_events && a.drop_properties == b.drop_properties &&
         a.consent_categories == b.consent_categories &&
         a.consent_deny_by_default_sources == b.consent_deny_by_default_sources &&
         SameSettings(a.settings, b.settings);
}

const config::DestinationConfig* FindDestination(const config::Config& c, const std::string& name) {
  for (const auto& d : c.destinations)
    if (d.name == name) return &d;
  return nullptr;
}

}  // namespace

Status App::ReloadDestinations(const config::Config& config, std::string* ignored) {
  SY_RETURN_IF_ERROR(destinations::ValidateDestinations(config));
  std::lock_guard streams_lock(streams_mu_);
  if (!log_ || !outbound_) return FailedPrecondition("server is not running");
  if (ignored) {
    ignored->clear();
    auto note = [&](bool changed, const char* what) {
      if (changed) *ignored += std::string(ignored->empty() ? "" : ", ") + what;
    };
    note(config.listen_host != config_.listen_host || config.listen_port != config_.listen_port,
         "listen");
    note(config.data_dir != config_.data_dir, "data_dir");
    note(!(config.archive == config_.archive), "archive");
    // sources: applied live by ApplyConfig.
  }
  // Stop what went away or changed.
  std::vector<std::unique_ptr<delivery::DestinationStream>> keep;
  for (auto& stream : streams_) {
    const config::DestinationConfig* now = FindDestination(config, stream->name());
    const config::DestinationConfig* before = FindDestination(config_, stream->name());
    // Which functions run and their code come from the registry at each batch: a stream restarts
    // only when it gains or loses functions altogether (a chain or none).
    if (now && before && now->enabled && web::RunsInCloud(*now) && SameDestination(*now, *before) &&
        functions::HasFunctions(config, *now) == functions::HasFunctions(config_, *before)) {
      keep.push_back(std::move(stream));
      continue;
    }
    Logger()->info("reload: stopping destination={}", stream->name());
    stream->Stop();
  }
  streams_ = std::move(keep);
  // A destination removed from the file gives up its cursor, so it no longer holds back log
  // retention; added again later, it starts over at the oldest retained event. (Disabled ones
  // keep theirs: they resume where they stopped.)
  for (const auto& before : config_.destinations) {
    if (FindDestination(config, before.name)) continue;
    if (syncing_.contains(before.name)) continue;  // a warehouse sync reads it: left in place
    Status s = log_->DeleteCursor(delivery::CursorName(before.name));
    if (s.code() == StatusCode::kNotFound) continue;  // it never ran
    if (!s.ok()) {
      Logger()->warn("reload: cannot delete the cursor of removed destination={} status={}",
                     before.name, s.ToString());
    } else {
      Logger()->info("reload: destination={} removed, its cursor deleted", before.name);
    }
  }
  // Start what is new, enabled or changed.
  std::string file = config_.file;
  config_.destinations = config.destinations;
  config_.sources = config.sources;  // HasFunctions reads the sources' functions
  config_.functions = config.functions;
  Status result;
  for (const auto& d : config.destinations) {
    if (!d.enabled || !web::RunsInCloud(d)) continue;
    bool running = syncing_.contains(d.name);  // the sync starts it when done
    for (const auto& s : streams_)
      running = running || s->name() == d.name;
    if (running) continue;
    Logger()->info("reload: starting destination={} type={}", d.name, d.type);
    if (Status s = StartStream(d); !s.ok()) {
      Logger()->error("reload: destination={} failed to start status={}", d.name, s.ToString());
      if (result.ok()) result = s;
    }
  }
  return result;
}

Status App::StartFromFile(ConfigController::Options options) {
  SY_ASSIGN_OR_RETURN(controller_, ConfigController::Open(std::move(options)));
  EffectiveConfig effective = controller_->Effective();
  for (const auto& note : effective.notes)
    Logger()->warn("{}", note);
  SY_RETURN_IF_ERROR(Start(effective.config));
  controller_->Attach(this);
  // Only once attached may the admin API change what runs (until then: 503).
  if (admin_api_) admin_api_->SetConfigApi(controller_.get());
  return Status::Ok();
}

Status App::ReloadFromFile(std::string* ignored) {
  if (!controller_) return FailedPrecondition("not started from a config file");
  return controller_->ReloadFile(ignored);
}

Status App::ApplyConfig(const config::Config& config, std::string* ignored) {
  SY_RETURN_IF_ERROR(destinations::ValidateDestinations(config));
  if (!sources_ || !log_) return FailedPrecondition("server is not running");
  // Compiled before anything is applied: a schema that does not compile changes nothing.
  SY_ASSIGN_OR_RETURN(auto plans, governance::TrackingPlans::Compile(config));
  // Then functions: a new function that does not compile rejects the whole change; a changed
  // one that does not compile keeps its previous version running, and the rest applies (the
  // error is still returned, so SIGHUP and the admin API report it).
  Status functions_status = Status::Ok();
  if (functions_) {
    functions_status = functions_->Load(config);
    if (!functions_status.ok()) {
      Logger()->error("reload: functions: {}", functions_status.message());
      bool all_known = true;
      const auto set = functions_->Snapshot();
      for (const auto& f : config.functions)
        all_known = all_known && set->defs.contains(f.name);
      if (!all_known) return functions_status;
    }
  }
  api_->SetTrackingPlans(std::move(plans));
  sources_->Replace(config.sources);
  if (web_) web_->SetDestinations(config.destinations);  // also forgets the sources
  {
    std::lock_guard streams_lock(streams_mu_);
    config_.sources = config.sources;
  }
  Status s = ReloadDestinations(config, ignored);
  return s.ok() ? functions_status : s;
}

void App::FlushLoop() {
  SetThreadName("sy-dedupe-flush");
  std::unique_lock lock(flush_mu_);
  while (!stopping_) {
    flush_cv_.wait_for(lock, std::chrono::seconds(2));
    lock.unlock();
    if (Status s = dedupe_->Flush(); !s.ok())
      Logger()->warn("dedupe journal flush failed status={}", s.ToString());
    lock.lock();
  }
}

void App::WatchReplays() {
  SetThreadName("sy-replay-watch");
  std::unique_lock lock(flush_mu_);
  while (!stopping_) {
    flush_cv_.wait_for(lock, std::chrono::seconds(1));
    lock.unlock();
    replay::PublishReplayProgressFiles(&metrics_, config_.data_dir);
    lock.lock();
  }
}

void App::Stop() {
  // Changes through the admin API from now on are refused (503), not half-applied.
  if (controller_) controller_->Attach(nullptr);
  ready_ = false;
  if (http_) http_->Stop();
  if (metrics_http_) metrics_http_->Stop();
  if (admin_http_) admin_http_->Stop();
  admin_http_.reset();
  admin_api_.reset();     // its worker answers what is still queued
  replay_admin_.reset();  // interrupts running replays (resumable) and waits for them
  {
    std::lock_guard lock(flush_mu_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (replay_watcher_.joinable()) replay_watcher_.join();
  // A warehouse sync in progress finishes first (it restarts the streams it stopped).
  if (admin_thread_.joinable()) admin_thread_.join();
  // Streams before the log: each finishes its batch in flight and commits its cursor.
  {
    std::lock_guard streams_lock(streams_mu_);
    for (auto& s : streams_)
      s->Stop();
    streams_.clear();
  }
  // The archiver uploads its open files once, then commits its cursor.
  if (archiver_) archiver_->Stop();
  archiver_.reset();
  outbound_.reset();
  if (log_) {
    if (Status s = log_->Close(); !s.ok())
      Logger()->error("log close failed status={}", s.ToString());
  }
  if (dedupe_) {
    if (Status s = dedupe_->Flush(); !s.ok())
      Logger()->warn("dedupe journal flush failed status={}", s.ToString());
  }
  http_.reset();
  metrics_http_.reset();
  web_.reset();
  api_.reset();
  dedupe_.reset();
  log_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

uint16_t App::port() const {
  return http_ ? http_->port() : 0;
}

uint16_t App::metrics_port() const {
  return metrics_http_ ? metrics_http_->port() : 0;
}

uint16_t App::admin_port() const {
  return admin_http_ ? admin_http_->port() : 0;
}

}  // namespace sy::app
