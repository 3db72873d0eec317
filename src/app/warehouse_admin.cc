// App::HandleWarehouseSync and App::SyncWarehouses: `switchyard warehouse sync` on a running
// server. Kept apart from app.cc: the warehouse is the only user of the admin door so far.
#include "app/warehouse_admin.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/json.hpp>

#include "app/app.h"
#include "base/constant_time.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "destinations/registry.h"
#include "warehouse/warehouse_destination.h"

namespace sy::app {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("server");
  return l;
}

bool IsWarehouse(const std::string& type) {
  return type == "sqlite" || type == "postgres";
}

bool Loopback(const std::string& ip) {
  return ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.");
}

}  // namespace

Result<std::string> WriteAdminToken(const std::string& data_dir) {
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 4; ++i)
    token += fmt::format("{:08x}", rd());
  // A new file (0600, base/env.h) renamed over any old one, so an old token file's mode does not
  // survive, and a CLI reading it sees the old or the new token, never half of one.
  SY_RETURN_IF_ERROR(WriteFileAtomically(Env::Default(), DataDir(data_dir).AdminToken(), token));
  return token;
}

Result<std::string> ReadAdminToken(const std::string& data_dir) {
  const std::string path = DataDir(data_dir).AdminToken();
  if (!Env::Default()->FileExists(path))
    return NotFound("no admin token in " + data_dir + " (is the server running?)");
  return ReadWholeFile(Env::Default(), path);
}

Result<std::string> App::SyncWarehouses(const std::string& destination) {
  std::lock_guard lock(streams_mu_);
  std::string out;
  bool found = false;
  for (const auto& d : config_.destinations) {
    if (!IsWarehouse(d.type) || !d.enabled) continue;
    if (!destination.empty() && d.name != destination) continue;
    found = true;
    // The stream commits its cursor and stops; the sync loads from there; a new stream resumes
    // after it. Nothing else reads this cursor meanwhile.
    for (auto it = streams_.begin(); it != streams_.end(); ++it) {
      if ((*it)->name() != d.name) continue;
      (*it)->Stop();
      streams_.erase(it);
      break;
    }
    Status status;
    auto made = destinations::CreateDestination(d, config_.file);
    if (made.ok()) {
      (*made)->Attach(d.name, &metrics_);
      auto* wh = dynamic_cast<warehouse::WarehouseDestination*>(made->get());
      auto report = warehouse::SyncNow(
          log_.get(), d, destinations::FindDestinationType(d.type)->display_name, wh,
          dead_letters_.get(),
          functions_ && functions::HasFunctions(config_, d) ? functions_->NewChain(d.name)
                                                            : nullptr);
      if (report.ok()) {
        out += warehouse::SyncReportJson(d.name, *report) + "\n";
      } else {
        status = report.status();
      }
    } else {
      status = made.status();
    }
    if (Status s = StartStream(d); !s.ok()) {
      Logger()->error("warehouse sync: destination={} failed to restart status={}", d.name,
                      s.ToString());
      if (status.ok()) status = s;
    }
    if (!status.ok()) return Status(status.code(), d.name + ": " + status.message());
  }
  if (!found) {
    return NotFound("no enabled warehouse destination" +
                    (destination.empty() ? std::string() : " named '" + destination + "'"));
  }
  return out;
}

admin::ApiResult WarehouseSyncApi::SyncWarehouse(const admin::Actor& actor,
                                                 std::string_view destination) {
  admin::ApiResult out;
  Logger()->info("warehouse sync destination={} by={}", destination, actor.name);
  auto r = app_->SyncWarehouses(std::string(destination));
  if (!r.ok()) {
    const bool missing = r.status().code() == StatusCode::kNotFound;
    out.http_status = missing ? 404 : 500;
    out.body = boost::json::serialize(boost::json::object{
        {"error", boost::json::object{{"code", missing ? "not_found" : "sync_failed"},
                                      {"message", r.status().message()}}}});
    return out;
  }
  boost::system::error_code ec;
  boost::json::value report = boost::json::parse(*r, ec);  // one line: this destination's
  int64_t loaded = 0;
  if (!ec && report.is_object()) {
    if (const auto* e = report.as_object().if_contains("events"); e && e->is_int64())
      loaded = e->as_int64();
    else if (e && e->is_uint64())
      loaded = static_cast<int64_t>(e->as_uint64());
  }
  out.body = boost::json::serialize(boost::json::object{
      {"destination", destination}, {"loaded", loaded}, {"report", std::move(report)}});
  return out;
}

void App::HandleWarehouseSync(http::Request&& req, const http::PeerInfo& peer,
                              http::Responder respond) {
  auto text = [version = req.version()](unsigned status, std::string body) {
    http::Response res{static_cast<http::bhttp::status>(status), version};
    res.set(http::bhttp::field::content_type, "application/x-ndjson");
    res.set(http::bhttp::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  if (req.method() != http::bhttp::verb::post) return respond(text(405, "POST only\n"));
  // Constant time: the answer's timing must not tell how much of a guessed token was right.
  if (!Loopback(peer.ip) || admin_token_.empty() ||
      !ConstantTimeEquals(req[kAdminTokenHeader], admin_token_)) {
    return respond(text(403, "forbidden\n"));
  }
  std::string destination;
  std::string_view target = req.target();
  if (auto q = target.find("?destination="); q != std::string_view::npos)
    destination = std::string(target.substr(q + 13));
  // A load takes time: not on the I/O thread. One admin job at a time.
  std::lock_guard lock(admin_mu_);
  if (admin_busy_) return respond(text(409, "a warehouse sync is already running\n"));
  if (admin_thread_.joinable()) admin_thread_.join();
  admin_busy_ = true;
  admin_thread_ = std::thread([this, destination, respond, text] {
    SetThreadName("sy-wh-sync");
    auto r = SyncWarehouses(destination);
    if (r.ok()) {
      respond(text(200, *r));
    } else {
      respond(text(r.status().code() == StatusCode::kNotFound ? 404 : 500,
                   r.status().message() + "\n"));
    }
    std::lock_guard l(admin_mu_);
    admin_busy_ = false;
  });
}

}  // namespace sy::app
