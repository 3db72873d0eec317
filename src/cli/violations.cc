// `switchyard violations list|release`: blocked events (docs/governance.md). List reads a
// read-only snapshot of the log, so it runs beside a server. Release appends to the log: with a
// server running on the config's data_dir the server does it (POST /admin/violations/release on
// its loopback door, one admin job at a time, judged by the plans it runs); without one, this
// process takes data_dir/LOCK, compiles the config's plans and appends itself.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>

#include "app/app.h"
#include "app/config_controller.h"
#include "app/warehouse_admin.h"
#include "base/data_dir.h"
#include "base/logging.h"
#include "cli/admin_door.h"
#include "cli/commands.h"
#include "governance/violations.h"
#include "log/local/local_log.h"

namespace sy::cli {
namespace {

namespace json = boost::json;

governance::BlockedFilter FilterOf(const ViolationsArgs& a) {
  return governance::BlockedFilter{a.plan, a.event, a.offsets};
}

int ReleaseOnServer(const config::Config& cfg, const ViolationsArgs& a) {
  auto token = app::ReadAdminToken(cfg.data_dir);
  if (!token.ok()) {
    std::fprintf(stderr, "violations release: %s\n", token.status().message().c_str());
    return 1;
  }
  json::object body;
  body["plan"] = a.plan;
  body["event"] = a.event;
  json::array offsets;
  for (uint64_t o : a.offsets)
    offsets.emplace_back(o);
  body["offsets"] = std::move(offsets);
  body["force"] = a.force;
  auto r = PostLocal(cfg.listen_host, cfg.listen_port, app::kViolationsReleasePath, *token,
                     json::serialize(body));
  if (!r.ok()) {
    std::fprintf(stderr, "violations release: %s\n", r.status().message().c_str());
    return 1;
  }
  if (r->status != 200) {
    std::fprintf(stderr, "violations release: the server answered %d: %s", r->status,
                 r->body.c_str());
    return 1;
  }
  std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  return 0;
}

int ReleaseHere(const config::Config& cfg, const ViolationsArgs& a) {
  auto plans = governance::TrackingPlans::Compile(cfg);
  if (!plans.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", plans.status().message().c_str());
    return 2;
  }
  auto lock = app::LockDataDir(cfg.data_dir);
  if (!lock.ok()) {
    std::fprintf(stderr, "violations release: %s\n", lock.status().message().c_str());
    return 1;
  }
  log::LocalLogOptions o;
  o.dir = DataDir(cfg.data_dir).Log();
  auto opened = log::OpenLocalLog(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "violations release: cannot open the log: %s\n",
                 opened.status().ToString().c_str());
    ::close(*lock);
    return 1;
  }
  auto r = governance::ReleaseBlocked(opened->get(), plans->get(), FilterOf(a), a.force);
  Status closed = (*opened)->Close();
  ::close(*lock);
  if (!r.ok() || !closed.ok()) {
    std::fprintf(stderr, "violations release: %s\n",
                 (r.ok() ? closed : r.status()).ToString().c_str());
    return 1;
  }
  std::printf("%s\n", governance::ReleaseReportJson(*r).c_str());
  return 0;
}

}  // namespace

int ViolationsList(const ViolationsArgs& a) {
  auto cfg = app::LoadEffectiveConfig(a.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  SetLogLevel("warn");
  log::LocalLogOptions o;
  o.dir = DataDir(cfg->config.data_dir).Log();
  o.read_only = true;
  auto opened = log::OpenLocalLog(o);
  if (!opened.ok() && opened.status().code() == StatusCode::kNotFound) return 0;  // no log yet
  if (!opened.ok()) {
    std::fprintf(stderr, "violations list: cannot open the log: %s\n",
                 opened.status().ToString().c_str());
    return 1;
  }
  auto blocked = governance::ScanBlocked(opened->get(), FilterOf(a));
  if (!blocked.ok()) {
    std::fprintf(stderr, "violations list: %s\n", blocked.status().ToString().c_str());
    return 1;
  }
  for (const auto& b : *blocked)
    std::printf("%s\n", governance::BlockedEventJson(b).c_str());
  std::fflush(stdout);
  return 0;
}

int ViolationsRelease(const ViolationsArgs& a) {
  auto cfg = app::LoadEffectiveConfig(a.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  SetLogLevel("warn");
  if (app::HolderPid(cfg->config.data_dir).ok()) return ReleaseOnServer(cfg->config, a);
  return ReleaseHere(cfg->config, a);
}

}  // namespace sy::cli
