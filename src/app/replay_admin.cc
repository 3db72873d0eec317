#include "app/replay_admin.h"

#include <boost/json.hpp>

#include <algorithm>

#include "archive/object_store.h"
#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "base/time_format.h"
#include "destinations/registry.h"

namespace sy::app {

namespace json = boost::json;

namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("app");
  return l;
}

admin::ApiResult Answer(int status, std::string body) {
  admin::ApiResult r;
  r.http_status = status;
  r.body = std::move(body);
  return r;
}

admin::ApiResult ErrorAnswer(int status, std::string_view code, std::string_view message,
                             std::string_view field = {}) {
  json::object e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return Answer(status, json::serialize(json::object{{"error", std::move(e)}}));
}

int64_t NowMs() {
  return SystemClock::Get()->Now().value();
}

std::string_view StateName(int s) {
  static constexpr std::string_view kNames[] = {"running", "done", "failed", "cancelled"};
  return kNames[s];
}

}  // namespace

ReplayAdmin::~ReplayAdmin() {
  std::deque<std::unique_ptr<Job>> jobs;
  {
    std::lock_guard lock(mu_);
    for (auto& j : jobs_)
      j->interrupt = true;
    jobs.swap(jobs_);
  }
  for (auto& j : jobs)
    if (j->thread.joinable()) j->thread.join();
}

std::string ReplayAdmin::JobJson(const Job& j) const {
  const replay::ReplayProgress& p = j.progress;
  // The fraction done, as `switchyard replay` shows it: bytes read while importing, then the
  // events with a final outcome out of those imported.
  double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / p.bytes_total : 0.0;
  if (p.import_done && p.events_imported)
    frac = static_cast<double>(p.events_done) / p.events_imported;
  else if (p.import_done)
    frac = 1.0;
  else if (p.events_imported)
    frac = std::min(frac, frac * p.events_done / p.events_imported);
  if (j.state == State::kDone) frac = 1.0;
  const double rate = p.elapsed_s > 0 ? p.events_done / p.elapsed_s : 0;
  json::value eta = nullptr;
  if (j.state == State::kRunning && frac > 0.001) eta = p.elapsed_s * (1 - frac) / frac;
  json::object o{{"id", j.id},
                 {"destination", j.request.destination},
                 {"source", j.request.source},
                 {"rate", j.request.rate},
                 {"state", StateName(static_cast<int>(j.state))},
                 {"started", FormatIso8601(TimestampMs(j.started_ms))},
                 {"finished", j.finished_ms ? json::value(FormatIso8601(TimestampMs(j.finished_ms)))
                                            : json::value(nullptr)},
                 {"files_done", p.files_done},
                 {"files_total", p.files_total},
                 {"events_imported", p.events_imported},
                 {"events_done", p.events_done},
                 {"delivered", p.delivered},
                 {"dead_lettered", p.dead_lettered},
                 {"events_per_second", rate},
                 {"eta_seconds", eta},
                 {"percent", std::clamp(frac, 0.0, 1.0) * 100},
                 {"error", j.error}};
  o["from"] = j.request.from_ms ? json::value(FormatIso8601(TimestampMs(*j.request.from_ms)))
                                : json::value(nullptr);
  o["to"] = j.request.to_ms ? json::value(FormatIso8601(TimestampMs(*j.request.to_ms)))
                            : json::value(nullptr);
  return json::serialize(o);
}

admin::ApiResult ReplayAdmin::StartReplay(const admin::Actor& actor,
                                          const admin::ReplayRequest& request) {
  config::DestinationConfig d;
  if (!options_.find_destination(request.destination, &d))
    return ErrorAnswer(404, "not_found", "no destination '" + request.destination + "'",
                       "destination");
  if (!request.source.empty() && !options_.has_source(request.source))
    return ErrorAnswer(404, "not_found", "no source '" + request.source + "'", "source");
  if (!options_.archive.enabled)
    return ErrorAnswer(409, "no_archive",
                       "this server has no archive: section; replays read the archive");
  {
    std::lock_guard lock(mu_);
    size_t running = 0;
    for (const auto& j : jobs_) {
      if (j->state != State::kRunning) continue;
      ++running;
      if (j->request.destination == request.destination)
        return ErrorAnswer(409, "replay_running",
                           "replay " + j->id + " of this destination is running; cancel it first");
    }
    if (running >= kMaxRunning)
      return ErrorAnswer(409, "too_many_replays",
                         std::to_string(kMaxRunning) + " replays are running; wait for one");
  }
  auto instance = destinations::CreateDestination(d, options_.config_file);
  if (!instance.ok())
    return ErrorAnswer(409, "destination_unusable",
                       "cannot build the destination: " + instance.status().ToString());

  replay::ReplayOptions o;
  o.data_dir = options_.data_dir;
  o.destination = d;
  const auto* type = destinations::FindDestinationType(d.type);
  o.display_name = type ? type->display_name : d.type;
  o.instance = std::move(*instance);
  o.prefix = options_.archive.prefix;
  o.selection.source = request.source;
  if (request.from_ms) o.selection.from = TimestampMs(*request.from_ms);
  if (request.to_ms) o.selection.to = TimestampMs(*request.to_ms);
  o.rate = request.rate;
  o.http = options_.http;
  o.dead_letters = options_.dead_letters;
  if (options_.make_transform) o.transform = options_.make_transform(d);

  std::lock_guard lock(mu_);
  for (const auto& j : jobs_)  // checked again: another start may have won meanwhile
    if (j->state == State::kRunning && j->request.destination == request.destination)
      return ErrorAnswer(409, "replay_running",
                         "replay " + j->id + " of this destination is running");
  auto job = std::make_unique<Job>();
  job->id = "r" + std::to_string(next_id_++);
  job->request = request;
  job->started_ms = NowMs();
  Job* raw = job.get();
  raw->thread = std::thread([this, raw, o = std::move(o)]() mutable { Run(raw, std::move(o)); });
  jobs_.push_front(std::move(job));
  // Forget the oldest finished ones past the bound (running ones are never dropped).
  size_t finished = 0;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if ((*it)->state != State::kRunning && ++finished > kKeepFinished) {
      if ((*it)->thread.joinable()) (*it)->thread.join();  // ended: returns at once
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  Logger()->info("replay started id={} destination={} by={}", raw->id, request.destination,
                 actor.name);
  return Answer(202, JobJson(*raw));
}

void ReplayAdmin::Run(Job* job, replay::ReplayOptions o) {
  SetThreadName("sy-replay-api");
  MetricsRegistry metrics;  // its own: the stream's series must not collide with the server's
  auto store = archive::OpenObjectStore(options_.archive);
  Result<replay::ReplayProgress> r = store.status();
  if (store.ok()) {
    o.store = store->get();
    o.metrics = &metrics;
    o.interrupt = &job->interrupt;
    o.on_progress = [this, job](const replay::ReplayProgress& p) {
      std::lock_guard lock(mu_);
      job->progress = p;
    };
    r = replay::RunReplay(std::move(o));
  }
  std::lock_guard lock(mu_);
  job->finished_ms = NowMs();
  if (r.ok()) {
    job->progress = *r;
    job->state = State::kDone;
  } else if (job->interrupt.load()) {
    job->state = State::kCancelled;
  } else {
    job->state = State::kFailed;
    job->error = r.status().ToString();
  }
  Logger()->info("replay ended id={} state={} error={}", job->id,
                 StateName(static_cast<int>(job->state)), job->error);
}

admin::ApiResult ReplayAdmin::ListReplays() {
  std::lock_guard lock(mu_);
  std::string out = "{\"replays\":[";
  for (size_t i = 0; i < jobs_.size(); ++i) {
    if (i) out += ',';
    out += JobJson(*jobs_[i]);
  }
  out += "]}";
  return Answer(200, std::move(out));
}

admin::ApiResult ReplayAdmin::GetReplay(std::string_view id) {
  std::lock_guard lock(mu_);
  for (const auto& j : jobs_)
    if (j->id == id) return Answer(200, JobJson(*j));
  return ErrorAnswer(404, "not_found", "no replay '" + std::string(id) + "'");
}

admin::ApiResult ReplayAdmin::CancelReplay(const admin::Actor& actor, std::string_view id) {
  std::lock_guard lock(mu_);
  for (const auto& j : jobs_) {
    if (j->id != id) continue;
    if (j->state != State::kRunning)
      return ErrorAnswer(409, "not_running", "replay " + j->id + " is not running");
    j->interrupt = true;
    Logger()->info("replay cancel id={} by={}", j->id, actor.name);
    return Answer(200, JobJson(*j));
  }
  return ErrorAnswer(404, "not_found", "no replay '" + std::string(id) + "'");
}

}  // namespace sy::app
