// App: builds Switchyard's components from a Config and runs them — the event log, the dedupe
// index, the Tracking API, the browser endpoints (web/) and the HTTP server with its side doors
// (/healthz, /readyz, /metrics).
//
// Lifecycle: Start() validates the destinations, opens everything (failing whole if any part
// fails) and starts one DestinationStream per enabled destination once the log is open; Stop()
// stops accepting, finishes in-flight requests, stops the streams (each finishes its batch in
// flight and commits its cursor), flushes the dedupe journal and closes the log. A disabled
// destination runs no stream; its cursor stays where it stopped and holds back retention.
// Start/Stop are called from one control thread (main); the components run on their own threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "admin/admin_api.h"
#include "admin/audit_log.h"
#include "admin/credentials.h"
#include "app/config_controller.h"
#include "app/dead_letter_admin.h"
#include "app/replay_admin.h"
#include "app/warehouse_admin.h"
#include "archive/archiver.h"
#include "base/metrics.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination_stream.h"
#include "functions/registry.h"
#include "http/client.h"
#include "http/server.h"
#include "ingest/dedupe_index.h"
#include "ingest/source_table.h"
#include "ingest/tracking_api.h"
#include "log/event_log.h"
#include "observe/delivery_stats.h"
#include "observe/disk_usage.h"
#include "observe/ingest_stats.h"
#include "observe/live_feed.h"
#include "warehouse/load_history.h"
#include "web/web_endpoints.h"

namespace sy::app {

class App {
 public:
  App();
  ~App();

  Status Start(const config::Config& config);
  void Stop();

  // Live reload of destinations (ApplyConfig does sources too): validates `config` whole first (on
  // error nothing changes and the old configuration stays); then stops the streams of destinations
  // removed, disabled or changed (each finishes its batch in flight and commits its cursor) and
  // starts streams for destinations added, enabled or changed, which resume from their cursors.
  // Other sections than sources and destinations need a restart: their changes are reported in
  // `*ignored` (may be null). Called from the control thread, like Start/Stop.
  Status ReloadDestinations(const config::Config& config, std::string* ignored);

  // Starts from a config file plus the changes made through the admin API (the overlay in its
  // data_dir; app/config_controller.h): Start(file ⊕ overlay), then config_api() serves the
  // admin API's configuration calls, each applied at once through ApplyConfig.
  Status StartFromFile(ConfigController::Options options);
  // SIGHUP: re-reads the file, merges the overlay again and applies the result (ApplyConfig);
  // on error nothing changes. Needs StartFromFile.
  Status ReloadFromFile(std::string* ignored);
  // The admin API's configuration seam; null unless started by StartFromFile.
  admin::ConfigApi* config_api() { return controller_.get(); }
  ConfigController* config_controller() { return controller_.get(); }

  // Live apply of a whole validated config: sources at once (keys, enabled, rate limits,
  // rotated-out keys — SourceTable::Replace; requests in flight finish with the table they
  // started with), then destinations as ReloadDestinations. Sections that need a restart are
  // named in `*ignored`. Called with the controller's lock held (admin threads, SIGHUP).
  Status ApplyConfig(const config::Config& config, std::string* ignored);

  // `switchyard warehouse sync` on this server (app/warehouse_admin.h): stops the warehouse
  // streams named (every enabled one when `destination` is empty), loads what their cursors
  // have not passed, restarts them. One JSON report line per destination.
  // Holds streams_mu_ only to take a stream out and to start it again, never during the load:
  // the admin API's routes (stats, overview, warehouse, DLQ) and reloads do not wait behind it.
  // A destination being synced is in syncing_: a reload meanwhile neither starts its stream nor
  // deletes its cursor; the sync starts it when done, with the configuration current then.
  Result<std::string> SyncWarehouses(const std::string& destination);
  // GET /api/v1/overview's server-side facts (app/overview_admin.cc).
  admin::OverviewFacts Overview();
  // GET /api/v1/warehouse (app/warehouse_admin.cc): JSON, or kNotFound for `destination`.
  Result<std::string> WarehouseStatus(std::string_view destination);

  uint16_t port() const;
  uint16_t metrics_port() const;  // the metrics.listen listener's; 0 when there is none
  uint16_t admin_port() const;    // the admin.listen listener's; 0 when there is none
  MetricsRegistry* metrics() { return &metrics_; }
  // What the admin API's live view and stats read (observe/).
  observe::LiveFeed* live_feed() { return &live_; }
  observe::DeliveryStatsBook* delivery_stats() { return &delivery_stats_; }
  observe::IngestStats* ingest_stats() { return &ingest_stats_; }
  // Descriptors left to everything but client connections when http.max_connections is not
  // set (docs/security.md gives the formula).
  static int DescriptorReserve(const config::Config& c);

 private:
  class Router;
  class MetricsRouter;
  // Connections of the metrics listener: scrapers and probes, a few at a time.
  static constexpr int kMetricsMaxConnections = 64;
  // The admin listener: operators and their browsers, a few at a time; bodies are JSON
  // settings and names, far below the public listener's batches.
  static constexpr int kAdminMaxConnections = 128;
  static constexpr uint64_t kAdminMaxBodyBytes = 256 * 1024;
  Status StartAdmin();
  static http::Response PlainText(const http::Request& req, unsigned status, std::string body);
  // GET /metrics, checking the bearer token when metrics.token is set (401 otherwise).
  http::Response Metrics(const http::Request& req);
  void FlushLoop();
  // Publishes the progress of replays that `switchyard replay` processes run on this data_dir as
  // the switchyard_replay_* gauges, once a second: reading their files stays off the I/O threads.
  void WatchReplays();
  Status StartDestinations();
  Status StartStream(const config::DestinationConfig& d);
  // POST /admin/violations/release: governance::ReleaseBlocked on admin_thread_ with the plans
  // ingest runs (app/violations_admin.cc).
  void HandleViolationsRelease(http::Request&& req, const http::PeerInfo& peer,
                               http::Responder respond);
  // POST /admin/warehouse/sync: runs SyncWarehouses on admin_thread_, off the I/O thread.
  void HandleWarehouseSync(http::Request&& req, const http::PeerInfo& peer,
                           http::Responder respond);

  config::Config config_;
  std::unique_ptr<ConfigController> controller_;  // when started by StartFromFile
  MetricsRegistry metrics_;
  observe::LiveFeed live_;
  observe::DeliveryStatsBook delivery_stats_;
  observe::IngestStats ingest_stats_;
  observe::DiskUsage disk_usage_;  // the overview's directory sizes, cached
  // Each warehouse destination's recent loads; outlives its streams (reloads, syncs).
  warehouse::LoadHistoryBook warehouse_history_;
  // The warehouse route's row estimates per destination, read at most every kTableRowsTtlMs.
  struct TableRowsCache {
    int64_t read_ms = 0;
    std::string method;
    std::vector<warehouse::TableRows> rows;
    std::string error;
  };
  static constexpr int64_t kTableRowsTtlMs = 10'000;
  std::mutex table_rows_mu_;  // table_rows_; held while a database is read (seconds at most)
  std::map<std::string, TableRowsCache> table_rows_;
  int lock_fd_ = -1;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<ingest::SourceTable> sources_;
  std::unique_ptr<ingest::DedupeIndex> dedupe_;
  std::unique_ptr<ingest::TrackingApi> api_;
  std::unique_ptr<web::WebEndpoints> web_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<http::Server> http_;
  // `metrics.listen`: a second listener serving only /metrics, /healthz and /readyz.
  std::unique_ptr<MetricsRouter> metrics_router_;
  std::unique_ptr<http::Server> metrics_http_;
  std::unique_ptr<http::HttpClient> outbound_;
  std::unique_ptr<delivery::DeadLetterStore> dead_letters_;
  // User functions (src/functions): loaded by Start, reloaded by ApplyConfig; the streams of
  // destinations with functions run chains from it.
  std::unique_ptr<functions::FunctionRegistry> functions_;
  std::vector<std::unique_ptr<delivery::DestinationStream>> streams_;
  std::mutex streams_mu_;          // streams_: the control thread (reload, stop) and admin_thread_
  std::set<std::string> syncing_;  // warehouse destinations a sync runs for; under streams_mu_
  std::string admin_token_;
  std::mutex admin_mu_;
  bool admin_busy_ = false;
  std::thread admin_thread_;
  std::unique_ptr<archive::Archiver> archiver_;  // when `archive:` is configured
  // `admin:` — the admin listener and the admin API (src/admin). Its ConfigApi is the config
  // controller when started by StartFromFile (the configuration routes answer 503 otherwise).
  std::unique_ptr<admin::CredentialStore> admin_credentials_;
  std::unique_ptr<admin::AuditLog> admin_audit_;
  std::unique_ptr<DeadLetterAdmin> dead_letter_admin_;  // the admin API's DLQ routes
  std::unique_ptr<ReplayAdmin> replay_admin_;           // the admin API's replay routes
  std::unique_ptr<WarehouseSyncApi> warehouse_api_;     // the admin API's warehouse routes
  std::unique_ptr<admin::OverviewApi> overview_api_;    // GET /api/v1/overview
  std::unique_ptr<admin::AdminApi> admin_api_;
  std::unique_ptr<http::Server> admin_http_;
  std::atomic<bool> ready_{false};

  std::mutex flush_mu_;  // with flush_cv_ and stopping_, also stops replay_watcher_
  std::condition_variable flush_cv_;
  bool stopping_ = false;
  std::thread flusher_;
  std::thread replay_watcher_;
};

// Opens the data directory's lock file; fails if another process holds it.
// Writes the holder's pid into <data_dir>/LOCK.
Result<int> LockDataDir(const std::string& data_dir);
// The pid of the server holding the data_dir lock now, or kNotFound.
Result<int> HolderPid(const std::string& data_dir);

}  // namespace sy::app
