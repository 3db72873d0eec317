// App::HandleWarehouseSync and App::SyncWarehouses: `switchyard warehouse sync` on a running
// server. Kept apart from app.cc: the warehouse is the only user of the admin door so far.
#include "app/warehouse_admin.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <boost/json.hpp>

#include "app/app.h"
#include "base/clock.h"
#include "base/constant_time.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "base/time_format.h"
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
  // Which destinations: under the lock, the names only; each is then taken out, loaded and
  // started again in turn, the lock held only around the taking out and the starting.
  std::vector<std::string> names;
  {
    std::lock_guard lock(streams_mu_);
    for (const auto& d : config_.destinations) {
      if (!IsWarehouse(d.type) || !d.enabled) continue;
      if (!destination.empty() && d.name != destination) continue;
      names.push_back(d.name);
    }
  }
  if (names.empty()) {
    return NotFound("no enabled warehouse destination" +
                    (destination.empty() ? std::string() : " named '" + destination + "'"));
  }
  std::string out;
  for (const std::string& name : names) {
    config::DestinationConfig d;
    std::string config_file;
    std::unique_ptr<delivery::DestinationStream> stopped;
    std::unique_ptr<delivery::EventTransform> transform;
    {
      std::lock_guard lock(streams_mu_);
      const config::DestinationConfig* now = nullptr;
      for (const auto& c : config_.destinations)
        if (c.name == name) now = &c;
      if (!now || !now->enabled) continue;  // removed or disabled meanwhile
      if (syncing_.contains(name))
        return FailedPrecondition(name + ": a warehouse sync of it is already running");
      d = *now;
      config_file = config_.file;
      for (auto it = streams_.begin(); it != streams_.end(); ++it) {
        if ((*it)->name() != name) continue;
        stopped = std::move(*it);
        streams_.erase(it);
        break;
      }
      syncing_.insert(name);
      if (functions_ && functions::HasFunctions(config_, d)) transform = functions_->NewChain(name);
    }
    // The stream commits its cursor and stops; the sync loads from there; a new stream resumes
    // after it. Nothing else reads this cursor meanwhile (syncing_ keeps reloads off it).
    if (stopped) stopped->Stop();
    stopped.reset();
    Status status;
    auto made = destinations::CreateDestination(d, config_file);
    if (made.ok()) {
      (*made)->Attach(d.name, &metrics_);
      auto* wh = dynamic_cast<warehouse::WarehouseDestination*>(made->get());
      wh->set_history(warehouse_history_.For(d.name));
      auto report =
          warehouse::SyncNow(log_.get(), d, destinations::FindDestinationType(d.type)->display_name,
                             wh, dead_letters_.get(), std::move(transform));
      if (report.ok()) {
        out += warehouse::SyncReportJson(d.name, *report) + "\n";
        // The drain runs no stream of the server's: its figures go to the destination's own
        // (the overview's events out, the stats route), without latencies.
        const int64_t now = SystemClock::Get()->Now().value();
        auto stats = delivery_stats_.For(d.name);
        stats->Record(observe::DeliveryStats::Kind::kDelivered, now, report->events);
        stats->Record(observe::DeliveryStats::Kind::kDeadLettered, now, report->rejected);
      } else {
        status = report.status();
      }
    } else {
      status = made.status();
    }
    {
      // Started again with the configuration current now (a reload may have changed it).
      std::lock_guard lock(streams_mu_);
      syncing_.erase(name);
      const config::DestinationConfig* now = nullptr;
      for (const auto& c : config_.destinations)
        if (c.name == name) now = &c;
      bool running = false;
      for (const auto& s : streams_)
        running = running || s->name() == name;
      if (now && now->enabled && !running && log_) {
        if (Status s = StartStream(*now); !s.ok()) {
          Logger()->error("warehouse sync: destination={} failed to restart status={}", name,
                          s.ToString());
          if (status.ok()) status = s;
        }
      }
    }
    if (!status.ok()) return Status(status.code(), d.name + ": " + status.message());
  }
  return out;
}

namespace {

void PutLoad(const warehouse::LoadHistory::Load& l, boost::json::array* out) {
  namespace json = boost::json;
  json::object per_table;
  for (const auto& [table, n] : l.rows_per_table)
    per_table[table] = n;
  json::object o{{"started", FormatIso8601(TimestampMs(l.started_ms))},
                 {"finished", FormatIso8601(TimestampMs(l.finished_ms))},
                 {"duration_ms", l.finished_ms - l.started_ms},
                 {"source", l.source},
                 {"events", l.events},
                 {"rows", l.rows},
                 {"tables", l.tables},
                 {"rows_per_table", std::move(per_table)},
                 {"discards", l.discards},
                 {"duplicates", l.duplicates}};
  o["error"] = l.error.empty() ? json::value(nullptr) : json::value(l.error);
  out->push_back(std::move(o));
}

}  // namespace

Result<std::string> App::WarehouseStatus(std::string_view destination) {
  namespace json = boost::json;
  // A copy of what is configured, under the lock for as long as a copy takes: never behind a
  // load (SyncWarehouses does not hold it while loading, and the streams load on their own
  // threads).
  std::vector<config::DestinationConfig> warehouses;
  std::vector<std::string> sources;
  std::string config_file;
  {
    std::lock_guard lock(streams_mu_);
    for (const auto& d : config_.destinations)
      if (IsWarehouse(d.type) && (destination.empty() || d.name == destination))
        warehouses.push_back(d);
    for (const auto& s : config_.sources)
      sources.push_back(s.name);
    config_file = config_.file;
  }
  if (!destination.empty() && warehouses.empty())
    return NotFound("no warehouse destination named '" + std::string(destination) + "'");
  json::array out;
  for (const auto& d : warehouses) {
    std::shared_ptr<warehouse::LoadHistory> history = warehouse_history_.Find(d.name);
    warehouse::LoadHistory::Totals totals =
        history ? history->totals() : warehouse::LoadHistory::Totals{};
    // The database's estimates through a destination of our own (never the stream's: its loader
    // is the load thread's), at most every kTableRowsTtlMs per destination.
    TableRowsCache cache;
    {
      std::lock_guard lock(table_rows_mu_);
      const int64_t now = SystemClock::Get()->Now().value();
      auto it = table_rows_.find(d.name);
      if (it == table_rows_.end() || now - it->second.read_ms >= kTableRowsTtlMs ||
          now < it->second.read_ms) {
        TableRowsCache fresh;
        fresh.read_ms = now;
        auto made = destinations::CreateDestination(d, config_file);
        auto* wh =
            made.ok() ? dynamic_cast<warehouse::WarehouseDestination*>(made->get()) : nullptr;
        if (!wh) {
          fresh.error = made.ok() ? "not a warehouse" : made.status().message();
        } else {
          fresh.method = std::string(wh->rows_method());
          auto rows = wh->ReadTableRows(sources);
          if (rows.ok())
            fresh.rows = std::move(*rows);
          else
            fresh.error = rows.status().message();
        }
        it = table_rows_.insert_or_assign(d.name, std::move(fresh)).first;
      }
      cache = it->second;
    }
    json::array tables;
    uint64_t discards_in_warehouse = 0;
    std::set<std::pair<std::string, std::string>> listed;
    auto loaded = [&](const std::string& source, const std::string& table) -> uint64_t {
      auto s = totals.rows_per_table.find(source);
      if (s == totals.rows_per_table.end()) return 0;
      auto t = s->second.find(table);
      return t == s->second.end() ? 0 : t->second;
    };
    for (const auto& t : cache.rows) {
      if (t.table == "discards") discards_in_warehouse += t.rows;
      listed.emplace(t.source, t.table);
      tables.push_back(json::object{{"source", t.source},
                                    {"name", t.table},
                                    {"rows", t.rows},
                                    {"rows_loaded", loaded(t.source, t.table)}});
    }
    // Tables loaded since start that the estimate does not list (yet, or not readable).
    for (const auto& [source, per_table] : totals.rows_per_table) {
      for (const auto& [table, n] : per_table) {
        if (listed.contains({source, table})) continue;
        tables.push_back(json::object{
            {"source", source}, {"name", table}, {"rows", nullptr}, {"rows_loaded", n}});
      }
    }
    json::array loads;
    if (history)
      for (const auto& l : history->Recent())
        PutLoad(l, &loads);
    json::object o{{"destination", d.name},       {"type", d.type},
                   {"enabled", d.enabled},        {"loads", std::move(loads)},
                   {"rows_method", cache.method}, {"tables", std::move(tables)},
                   {"discards", totals.discards}, {"refused", totals.refused},
                   {"loads_ok", totals.loads_ok}, {"loads_failed", totals.loads_failed}};
    o["tables_error"] = cache.error.empty() ? json::value(nullptr) : json::value(cache.error);
    o["discards_in_warehouse"] =
        cache.error.empty() ? json::value(discards_in_warehouse) : json::value(nullptr);
    out.push_back(std::move(o));
  }
  return json::serialize(json::object{{"warehouses", std::move(out)}});
}

admin::ApiResult WarehouseSyncApi::Warehouses(std::string_view destination) {
  admin::ApiResult out;
  auto r = app_->WarehouseStatus(destination);
  if (!r.ok()) {
    out.http_status = r.status().code() == StatusCode::kNotFound ? 404 : 500;
    out.body = boost::json::serialize(boost::json::object{
        {"error", boost::json::object{{"code", out.http_status == 404 ? "not_found" : "internal"},
                                      {"message", r.status().message()}}}});
    return out;
  }
  out.body = std::move(*r);
  return out;
}

admin::ApiResult WarehouseSyncApi::SyncWarehouse(const admin::Actor& actor,
                                                 std::string_view destination) {
  admin::ApiResult out;
  Logger()->info("warehouse sync destination={} by={}", destination, actor.name);
  auto r = app_->SyncWarehouses(std::string(destination));
  if (!r.ok()) {
    const bool missing = r.status().code() == StatusCode::kNotFound;
    const bool running = r.status().code() == StatusCode::kFailedPrecondition;
    out.http_status = missing ? 404 : running ? 409 : 500;
    out.body = boost::json::serialize(
        boost::json::object{{"error", boost::json::object{{"code", missing   ? "not_found"
                                                                   : running ? "sync_running"
                                                                             : "sync_failed"},
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
