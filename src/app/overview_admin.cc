// App::Overview: what GET /api/v1/overview needs from the running server — the configured
// sources and destinations, each stream's health and backlog, and disk use under data_dir.
#include "app/overview_admin.h"

#include "app/app.h"
#include "base/clock.h"
#include "base/data_dir.h"
#include "delivery/destination_stream.h"
#include "log/event_log.h"

namespace sy::app {

admin::OverviewFacts OverviewAdmin::Facts() {
  return app_->Overview();
}

admin::OverviewFacts App::Overview() {
  admin::OverviewFacts facts;
  std::string data_dir;
  config::ArchiveConfig archive;
  {
    // A copy under the lock, never held behind a load (App::SyncWarehouses loads outside it).
    std::lock_guard lock(streams_mu_);
    data_dir = config_.data_dir;
    archive = config_.archive;
    for (const auto& s : config_.sources)
      facts.sources.push_back({s.name, s.enabled});
    const uint64_t end = log_ ? log_->EndOffset().value() : 0;
    for (const auto& d : config_.destinations) {
      admin::OverviewFacts::Destination out;
      out.name = d.name;
      out.type = d.type;
      out.enabled = d.enabled;
      for (const auto& s : streams_) {
        if (s->name() != d.name) continue;
        out.running = true;
        delivery::DestinationStream::Health h = s->health();
        out.failing = h.failing;
        out.credentials_refused = h.credentials_refused;
        out.reason = h.reason;
        const uint64_t done = s->committed().value();
        out.backlog_known = true;
        out.backlog_events = end > done ? end - done : 0;
        out.backlog_seconds =
            log::ConsumerLagSeconds(&metrics_)->With({delivery::CursorName(s->name())})->Value();
        break;
      }
      facts.destinations.push_back(std::move(out));
    }
  }
  // Off the lock: directory walks, cached (observe::DiskUsage).
  const int64_t now = SystemClock::Get()->Now().value();
  const DataDir dir(data_dir);
  facts.log = disk_usage_.Measure(dir.Log(), now);
  facts.dlq = disk_usage_.Measure(dir.Dlq(), now);
  facts.data_dir_free_bytes = observe::DiskUsage::FreeBytes(data_dir);
  if (archive.enabled) {
    facts.archive_store = archive.store == config::ArchiveStore::kLocal ? "local" : "s3";
    if (archive.store == config::ArchiveStore::kLocal)
      facts.archive_local = disk_usage_.Measure(archive.path, now);
  }
  return facts;
}

}  // namespace sy::app
