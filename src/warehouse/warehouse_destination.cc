#include "warehouse/warehouse_destination.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/logging.h"
#include "base/time_format.h"
#include "delivery/routing.h"
#include "warehouse/postgres_loader.h"
#include "warehouse/sqlite_loader.h"

namespace sy::warehouse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = ModuleLogger("warehouse");
  return l;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The settings of both warehouse types: each binds the keys it has.
struct WarehouseSettings {
  std::string path;  // sqlite
  std::string dsn;   // postgres
  int64_t sync_interval_ms = 0;
  int64_t max_events = 0;
};

// The batching settings every warehouse type shares.
delivery::SettingsTable<WarehouseSettings> WithBatchSettings(
    delivery::SettingsTable<WarehouseSettings> t) {
  using S = WarehouseSettings;
  t.Duration("sync_interval", &S::sync_interval_ms,
             "how often events are loaded (the longest an event waits in the log)")
      .Default("30s")
      .Min(1)
      .Int("max_events", &S::max_events,
           "events per load at most (a load starts as soon as this many wait)")
      .Default("10000")
      .Min(1);
  return t;
}

}  // namespace

struct WarehouseDestination::Metrics {
  Histogram* load_seconds = nullptr;
  Counter* loads_ok = nullptr;
  Counter* loads_failed = nullptr;
  Counter* duplicates = nullptr;
  Counter* schema_changes = nullptr;
  Gauge* lag_seconds = nullptr;
  Gauge* last_load = nullptr;
  std::map<std::string, Counter*, std::less<>> rows;      // per table
  std::map<std::string, Counter*, std::less<>> discards;  // per table
};

WarehouseDestination::WarehouseDestination(std::unique_ptr<Loader> loader, int64_t max_events,
                                           int64_t sync_ms)
    : loader_(std::move(loader)), max_events_(max_events), sync_ms_(sync_ms) {}

WarehouseDestination::~WarehouseDestination() = default;

delivery::DestinationLimits WarehouseDestination::limits() const {
  // One call of DeliverInProcess per stream batch: the whole batch is one transaction.
  return {static_cast<size_t>(max_events_), size_t{1} << 40};
}

std::optional<config::BatchConfig> WarehouseDestination::BatchOverride() const {
  config::BatchConfig b;
  b.max_events = max_events_;
  b.max_bytes = int64_t{1} << 40;  // the event count is the cap
  b.max_wait_ms = sync_ms_;
  return b;
}

void WarehouseDestination::Attach(const std::string& name, MetricsRegistry* metrics) {
  name_ = name;
  metrics_ = metrics;
  if (!metrics) return;
  m_ = std::make_unique<Metrics>();
  Labels l = {{"destination", name}};
  m_->load_seconds = metrics->GetHistogram("switchyard_warehouse_load_seconds",
                                           "Duration of one warehouse load (one transaction).",
                                           LatencyBuckets(), l);
  m_->loads_ok =
      metrics->GetCounter("switchyard_warehouse_loads_total", "Warehouse loads, by result.",
                          {{"destination", name}, {"result", "ok"}});
  m_->loads_failed =
      metrics->GetCounter("switchyard_warehouse_loads_total", "Warehouse loads, by result.",
                          {{"destination", name}, {"result", "failed"}});
  m_->duplicates = metrics->GetCounter(
      "switchyard_warehouse_duplicate_rows_total",
      "Rows not written because their id was already loaded (redelivery, replay).", l);
  m_->schema_changes = metrics->GetCounter("switchyard_warehouse_schema_changes_total",
                                           "Tables created, columns added and columns widened.", l);
  m_->lag_seconds = metrics->GetGauge(
      "switchyard_warehouse_lag_seconds",
      "At the last load: commit time minus receivedAt of its oldest event (ingest → queryable).",
      l);
  m_->last_load = metrics->GetGauge("switchyard_warehouse_last_load_timestamp_seconds",
                                    "Unix time of the last committed load.", l);
}

namespace {

// Events mapped per Loader::Add: small enough that mapping the next part overlaps loading this
// one for most of a batch, big enough that the per-part round trips (PostgreSQL: a COPY per
// table) stay a small share.
constexpr size_t kPartEvents = 1000;
// The first part is smaller: nothing overlaps its mapping, so the loader starts sooner.
constexpr size_t kFirstPartEvents = 250;

// Runs one load (Begin, Add per part, Commit) on its own thread, so that the caller maps the next
// part while the loader writes this one — the database's work (SQLite's inserts on this process's
// second core, PostgreSQL's on its server process) overlaps the mapping.
class PipelinedLoad {
 public:
  PipelinedLoad(Loader* loader, std::string source, std::string load_time)
      : loader_(loader),
        source_(std::move(source)),
        load_time_(std::move(load_time)),
        thread_([this] { Run(); }) {}
  PipelinedLoad(const PipelinedLoad&) = delete;
  PipelinedLoad& operator=(const PipelinedLoad&) = delete;
  ~PipelinedLoad() {
    if (thread_.joinable()) (void)Finish();
  }

  // `part` must stay valid until Finish returns.
  void Push(MappedEvent* part) {
    std::lock_guard l(mu_);
    queue_.push_back(part);
    cv_.notify_one();
  }
  // True once a part failed: mapping more is wasted.
  bool failed() const { return failed_.load(std::memory_order_relaxed); }

  // Commits after the parts pushed so far are written; the load's result.
  Result<LoadStats> Finish() {
    {
      std::lock_guard l(mu_);
      done_ = true;
      cv_.notify_one();
    }
    thread_.join();
    return std::move(result_);
  }

 private:
  void Run() {
    Status s = loader_->Begin(source_, load_time_);
    while (true) {
      MappedEvent* part = nullptr;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) break;
        part = queue_.front();
        queue_.pop_front();
      }
      if (!s.ok()) continue;
      s = loader_->Add(part->rows, part->discards);
      if (!s.ok()) failed_.store(true, std::memory_order_relaxed);
    }
    if (s.ok()) {
      result_ = loader_->Commit();
    } else {
      loader_->Abort();
      result_ = s;
    }
  }

  Loader* loader_;
  const std::string source_;
  const std::string load_time_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<MappedEvent*> queue_;
  bool done_ = false;
  std::atomic<bool> failed_{false};
  Result<LoadStats> result_ = Internal("not loaded");
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

std::optional<std::vector<delivery::Outcome>> WarehouseDestination::DeliverInProcess(
    std::span<const delivery::StoredEvent> batch) {
  using delivery::Outcome;
  const std::string load_time = FormatIso8601(SystemClock::Get()->Now());
  std::vector<Outcome> outcomes(batch.size(), Outcome::Delivered());
  // Per source: its own database (SQLite) or schema (PostgreSQL), its own transaction.
  std::map<std::string_view, std::vector<size_t>> sources;
  for (size_t i = 0; i < batch.size(); ++i)
    sources[batch[i].source].push_back(i);
  for (const auto& [source, indexes] : sources) {
    const auto t0 = std::chrono::steady_clock::now();
    // Mapped parts (kept until the load ends: the loader may write them again) and the events
    // they hold.
    std::vector<std::unique_ptr<MappedEvent>> parts;
    std::vector<size_t> events;
    int64_t oldest_ms = INT64_MAX;
    std::unique_ptr<PipelinedLoad> pipeline;  // from the second part on
    size_t next = 0;
    bool stopped = false;
    while (next < indexes.size()) {
      auto part = std::make_unique<MappedEvent>();
      size_t mapped = 0;
      const size_t limit = parts.empty() ? kFirstPartEvents : kPartEvents;
      for (; next < indexes.size() && mapped < limit; ++next) {
        const size_t i = indexes[next];
        if (Status s = mapper_.Map(batch[i].payload, load_time, part.get()); !s.ok()) {
          outcomes[i] = Outcome::Rejected("warehouse: " + s.message());
          continue;
        }
        ++mapped;
        events.push_back(i);
        oldest_ms = std::min(oldest_ms, batch[i].received_at.value());
      }
      if (mapped == 0) continue;
      parts.push_back(std::move(part));
      if (parts.size() == 1 && next < indexes.size()) {
        pipeline = std::make_unique<PipelinedLoad>(loader_.get(), std::string(source), load_time);
      }
      if (pipeline) {
        pipeline->Push(parts.back().get());
        if (pipeline->failed()) {
          stopped = true;
          break;
        }
      }
    }
    if (events.empty()) continue;
    Result<LoadStats> stats = Internal("not loaded");
    if (pipeline) {
      stats = pipeline->Finish();
    } else {
      // One part: no thread.
      stats = loader_->Load(std::string(source), parts[0]->rows, parts[0]->discards, load_time);
    }
    if (stopped) {  // events not mapped yet are retried with the rest
      for (; next < indexes.size(); ++next)
        events.push_back(indexes[next]);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!stats.ok()) {
      Log()->warn("load failed destination={} source={} events={} status={}", name_, source,
                  events.size(), stats.status().ToString());
      if (m_) m_->loads_failed->Inc();
      for (size_t i : events)
        outcomes[i] = Outcome::Retry(stats.status().message());
      continue;
    }
    ++loads_;
    for (const auto& [table, n] : stats->rows)
      totals_.rows[table] += n;
    totals_.duplicates += stats->duplicates;
    totals_.discards += stats->discards;
    totals_.schema_changes += stats->schema_changes;
    if (m_) {
      m_->loads_ok->Inc();
      m_->load_seconds->Observe(secs);
      m_->duplicates->Inc(stats->duplicates);
      m_->schema_changes->Inc(stats->schema_changes);
      for (const auto& [table, n] : stats->rows) {
        auto it = m_->rows.find(table);
        if (it == m_->rows.end()) {
          it = m_->rows
                   .emplace(table, metrics_->GetCounter("switchyard_warehouse_rows_loaded_total",
                                                        "Rows written to the warehouse, per table.",
                                                        {{"destination", name_}, {"table", table}}))
                   .first;
        }
        it->second->Inc(n);
      }
      if (stats->discards) {
        std::vector<Discard> all;
        for (const auto& part : parts)
          all.insert(all.end(), part->discards.begin(), part->discards.end());
        std::map<std::string, uint64_t> discarded;
        for (const Discard* d : UniqueDiscards(all))
          discarded[d->table]++;
        for (const auto& [table, n] : discarded) {
          auto it = m_->discards.find(table);
          if (it == m_->discards.end()) {
            it = m_->discards
                     .emplace(table, metrics_->GetCounter(
                                         "switchyard_warehouse_discards_total",
                                         "Values not stored in their column (type conflict, "
                                         "limit, collision), written to `discards` instead.",
                                         {{"destination", name_}, {"table", table}}))
                     .first;
          }
          it->second->Inc(n);
        }
      }
      int64_t now = SystemClock::Get()->Now().value();
      m_->lag_seconds->Set(static_cast<double>(std::max<int64_t>(0, now - oldest_ms)) / 1000.0);
      m_->last_load->Set(static_cast<double>(now) / 1000.0);
    }
    Log()->debug("loaded destination={} source={} events={} discards={} seconds={:.3f}", name_,
                 source, events.size(), stats->discards, secs);
  }
  mapper_.MaybeTrim();
  return outcomes;
}

delivery::DestinationType SqliteType() {
  using S = WarehouseSettings;
  return delivery::MakeDestinationType<S>(
      "sqlite", "SQLite",
      "Warehouse in SQLite files, one per source (<path>/<source>.sqlite), in Segment's schema.",
      WithBatchSettings(delivery::SettingsTable<S>()
                            .String("path", &S::path,
                                    "directory of the database files, one per source: "
                                    "<path>/<source>.sqlite")
                            .Default("./data/warehouse")),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.path.empty()) return InvalidArgument("path must not be empty");
        return std::unique_ptr<delivery::Destination>(new WarehouseDestination(
            std::make_unique<SqliteLoader>(s.path), s.max_events, s.sync_interval_ms));
      });
}

delivery::DestinationType PostgresType() {
  using S = WarehouseSettings;
  return delivery::MakeDestinationType<S>(
      "postgres", "PostgreSQL",
      "Warehouse in PostgreSQL (or Redshift), one schema per source, Segment's schema.",
      WithBatchSettings(
          delivery::SettingsTable<S>()
              .Secret("dsn", &S::dsn,
                      "libpq connection string or URI (postgresql://user@host:5432/db)")
              .Required()),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        // Connecting waits for the first load: check-config and reload validation stay offline.
        return std::unique_ptr<delivery::Destination>(new WarehouseDestination(
            std::make_unique<PostgresLoader>(s.dsn), s.max_events, s.sync_interval_ms));
      });
}

std::string SyncReportJson(const std::string& destination, const SyncReport& r) {
  std::string rows;
  for (const auto& [table, n] : r.stats.rows)
    rows += (rows.empty() ? "" : ",") + JsonString(table) + ":" + std::to_string(n);
  return fmt::format(
      "{{\"destination\":{},\"events\":{},\"rejected\":{},\"skipped\":{},\"rows\":{{{}}},"
      "\"duplicates\":{},\"discards\":{},\"schema_changes\":{},\"seconds\":{:.3f}}}",
      JsonString(destination), r.events, r.rejected, r.skipped, rows, r.stats.duplicates,
      r.stats.discards, r.stats.schema_changes, r.seconds);
}

Result<SyncReport> SyncNow(log::EventLog* log, const config::DestinationConfig& config,
                           const std::string& display_name, WarehouseDestination* destination,
                           delivery::DeadLetterStore* dead_letters) {
  const auto started = std::chrono::steady_clock::now();
  SyncReport report;
  const LoadStats before = destination->totals();
  SY_ASSIGN_OR_RETURN(auto cursor, log->OpenCursor("dest." + config.name));
  delivery::EventRouter router(config, display_name);
  const Offset end = log->EndOffset();
  const size_t chunk = destination->limits().max_events_per_request;
  Status result;
  while (cursor->position() < end) {
    SY_ASSIGN_OR_RETURN(auto entries, cursor->Read(chunk, 256u << 20));
    if (entries.empty()) break;
    std::vector<delivery::StoredEvent> events;
    events.reserve(entries.size());
    for (auto& e : entries) {
      delivery::StoredEvent ev;
      if (router.Route(std::move(e), &ev) != delivery::RouteDecision::kSend) {
        report.skipped++;
        continue;
      }
      events.push_back(std::move(ev));
    }
    auto outcomes = destination->DeliverInProcess(events);
    std::vector<delivery::DeadLetter> letters;
    for (size_t i = 0; i < events.size(); ++i) {
      const delivery::Outcome& o = (*outcomes)[i];
      if (o.kind == delivery::Outcome::Kind::kRetry) {
        result = Unavailable(o.reason);
        break;
      }
      if (o.kind == delivery::Outcome::Kind::kRejected) {
        delivery::DeadLetter d;
        d.destination = config.name;
        d.offset = events[i].offset;
        d.source = events[i].source;
        d.message_id = events[i].message_id;
        d.received_at = events[i].received_at;
        d.dead_lettered_at = SystemClock::Get()->Now();
        d.reason = o.reason;
        d.attempts = 1;
        d.event = events[i].payload;
        letters.push_back(std::move(d));
        continue;
      }
      report.events++;
    }
    if (!result.ok()) break;  // the chunk's source that failed is loaded again next time
    if (!letters.empty()) {
      SY_RETURN_IF_ERROR(dead_letters->AppendAll(letters));
      report.rejected += letters.size();
    }
    SY_RETURN_IF_ERROR(cursor->Commit(cursor->position()));
  }
  for (const auto& [table, n] : destination->totals().rows) {
    auto it = before.rows.find(table);
    uint64_t was = it == before.rows.end() ? 0 : it->second;
    if (n > was) report.stats.rows[table] = n - was;
  }
  report.stats.duplicates = destination->totals().duplicates - before.duplicates;
  report.stats.discards = destination->totals().discards - before.discards;
  report.stats.schema_changes = destination->totals().schema_changes - before.schema_changes;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) return result;
  return report;
}

}  // namespace sy::warehouse
