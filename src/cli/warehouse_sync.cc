// `switchyard warehouse sync`: loads what the warehouse destinations have not loaded yet, now.
// With a server running on the config's data_dir, the server does it (POST
// /admin/warehouse/sync on its loopback listener, sent through http/client.h with the token from
// data_dir/ADMIN_TOKEN): it stops the destination's stream, loads, and restarts it. Without one,
// this process takes the data_dir lock and loads from the log itself. Either way one JSON line
// per destination.
#include <unistd.h>

#include <cstdio>

#include "app/app.h"
#include "app/warehouse_admin.h"
#include "base/data_dir.h"
#include "base/logging.h"
#include "cli/admin_door.h"
#include "cli/commands.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "destinations/registry.h"
#include "functions/registry.h"
#include "http/client.h"
#include "log/local/local_log.h"
#include "warehouse/warehouse_destination.h"

namespace sy::cli {
namespace {

bool IsWarehouse(const config::DestinationConfig& d) {
  return d.enabled && (d.type == "sqlite" || d.type == "postgres");
}

}  // namespace

// POST to the running server's loopback admin door through the process's outbound client
// (http/client.h). One attempt: a sync that failed is reported, and running the command again
// loads whatever is still pending (loads are idempotent by messageId).
Result<http::ClientResponse> PostLocal(std::string host, uint16_t port, const std::string& target,
                                       const std::string& token, std::string body) {
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "::1";
  const std::string authority =
      (host.find(':') != std::string::npos && !host.starts_with("[") ? "[" + host + "]" : host) +
      ":" + std::to_string(port);
  auto client = http::CreateCurlHttpClient({.threads = 1});
  if (!client.ok()) return client.status();
  http::ClientRequest req;
  req.method = "POST";
  req.url = "http://" + authority + target;
  req.headers = {{app::kAdminTokenHeader, token}};
  if (!body.empty()) {
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = std::move(body);
  }
  req.timeout_ms = 900'000;           // a load of a large backlog may take minutes
  req.max_response_bytes = 16 << 20;  // one JSON line per destination
  // The server's own loopback door: the private-network guard does not apply.
  http::ClientResponse res =
      (*client)->SendAndWait(std::move(req), {.allow_private_network = true});
  if (res.status == 0)
    return Unavailable("cannot reach the server at " + authority + ": " + res.error);
  return res;
}

namespace {

int SyncOnServer(const config::Config& cfg, const std::string& destination) {
  auto token = app::ReadAdminToken(cfg.data_dir);
  if (!token.ok()) {
    std::fprintf(stderr, "warehouse sync: %s\n", token.status().message().c_str());
    return 1;
  }
  std::string target = app::kWarehouseSyncPath;
  if (!destination.empty()) target += "?destination=" + destination;
  auto a = PostLocal(cfg.listen_host, cfg.listen_port, target, *token);
  if (!a.ok()) {
    std::fprintf(stderr, "warehouse sync: %s\n", a.status().message().c_str());
    return 1;
  }
  if (a->status != 200) {
    std::fprintf(stderr, "warehouse sync: the server answered %d: %s", a->status, a->body.c_str());
    return 1;
  }
  std::fwrite(a->body.data(), 1, a->body.size(), stdout);
  return 0;
}

int SyncHere(const config::Config& cfg, const std::vector<const config::DestinationConfig*>& ds) {
  auto lock = app::LockDataDir(cfg.data_dir);
  if (!lock.ok()) {
    std::fprintf(stderr, "warehouse sync: %s\n", lock.status().message().c_str());
    return 1;
  }
  log::LocalLogOptions o;
  o.dir = DataDir(cfg.data_dir).Log();
  auto opened = log::OpenLocalLog(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "warehouse sync: cannot open the log: %s\n",
                 opened.status().ToString().c_str());
    ::close(*lock);
    return 1;
  }
  delivery::DeadLetterStore dead_letters(DataDir(cfg.data_dir).Dlq());
  MetricsRegistry metrics;  // not served: this process has no /metrics
  int rc = 0;
  for (const auto* d : ds) {
    auto made = destinations::CreateDestination(*d, cfg.file);
    if (!made.ok()) {
      std::fprintf(stderr, "warehouse sync: %s: %s\n", d->name.c_str(),
                   made.status().ToString().c_str());
      rc = 1;
      continue;
    }
    (*made)->Attach(d->name, &metrics);
    auto* wh = dynamic_cast<warehouse::WarehouseDestination*>(made->get());
    // The destination's functions run as in the server's stream (docs/functions.md).
    std::unique_ptr<functions::FunctionRegistry> function_registry;
    std::unique_ptr<delivery::EventTransform> chain;
    if (functions::HasFunctions(cfg, *d)) {
      functions::FunctionRegistry::Options fo;
      fo.data_dir = cfg.data_dir;
      fo.metrics = &metrics;
      function_registry = std::make_unique<functions::FunctionRegistry>(fo);
      if (Status s = function_registry->Load(cfg); !s.ok()) {
        std::fprintf(stderr, "warehouse sync: %s\n", s.message().c_str());
        rc = 2;
        continue;
      }
      chain = function_registry->NewChain(d->name);
    }
    auto r = warehouse::SyncNow(opened->get(), *d,
                                destinations::FindDestinationType(d->type)->display_name, wh,
                                &dead_letters, std::move(chain));
    if (!r.ok()) {
      std::fprintf(stderr, "warehouse sync: %s: %s\n", d->name.c_str(),
                   r.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("%s\n", warehouse::SyncReportJson(d->name, *r).c_str());
  }
  if (Status s = (*opened)->Close(); !s.ok()) rc = 1;
  ::close(*lock);
  return rc;
}

}  // namespace

int WarehouseSync(const std::string& config_path, const std::string& destination) {
  // The file plus the admin API's changes: a warehouse made in the console syncs too.
  auto effective = app::LoadEffectiveConfig(config_path);
  if (!effective.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", effective.status().message().c_str());
    return 2;
  }
  const config::Config* cfg = &effective->config;
  SetLogLevel("warn");
  std::vector<const config::DestinationConfig*> ds;
  for (const auto& d : cfg->destinations)
    if (IsWarehouse(d) && (destination.empty() || d.name == destination)) ds.push_back(&d);
  if (ds.empty()) {
    std::fprintf(stderr, "warehouse sync: no warehouse destination%s in %s\n",
                 destination.empty() ? "" : (" named '" + destination + "'").c_str(),
                 config_path.c_str());
    return 2;
  }
  if (app::HolderPid(cfg->data_dir).ok()) return SyncOnServer(*cfg, destination);
  return SyncHere(*cfg, ds);
}

}  // namespace sy::cli
