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
#include "base/thread_name.h"
#include "base/time_format.h"
#include "delivery/destination_stream.h"
#include "delivery/routing.h"
#include "warehouse/postgres_loader.h"
#include "warehouse/sqlite_loader.h"

namespace sy::warehouse {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
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
  int64_t max_event_tables = 0;
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
      .Min(1)
      .Int("max_event_tables", &S::max_event_tables,
           "event tables per source at most; past it a new event name's rows stay in tracks "
           "(and discards)")
      .Default(std::to_string(kDefaultMaxEventTables))
      .Min(0);
  return t;
}

}  // namespace

struct WarehouseDestination::Metrics {
  Histogram* load_seconds = nullptr;
  Counter* loads_ok = nullptr;
  Counter* loads_failed = nullptr;
  Counter* duplicates = nullptr;
  Counter* schema_changes = nullptr;
  Counter* capped = nullptr;
  Counter* refused = nullptr;
  Gauge* last_load = nullptr;
  CounterFamily* rows = nullptr;      // destination, table
  CounterFamily* discards = nullptr;  // destination, table
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
  m_->capped = metrics->GetCounter(
      "switchyard_warehouse_event_tables_capped_total",
      "Track events whose own table was not created because the source has max_event_tables "
      "event tables (the event is in tracks and in discards).",
      l);
  m_->refused = metrics->GetCounter(
      "switchyard_warehouse_refused_events_total",
      "Events the database refused alone (isolated from their load), written whole to discards.",
      l);
  m_->last_load = metrics->GetGauge("switchyard_warehouse_last_load_timestamp_seconds",
                                    "Unix time of the last committed load.", l);
  // Tables come from event names, which clients choose: the registry's series cap bounds them.
  m_->rows =
      metrics->Counters("switchyard_warehouse_rows_loaded_total",
                        "Rows written to the warehouse, per table.", {"destination", "table"});
  m_->discards = metrics->Counters("switchyard_warehouse_discards_total",
                                   "Values not stored in their column (type conflict, limit, "
                                   "collision), written to `discards` instead.",
                                   {"destination", "table"});
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
        thread_([this] {
          SetThreadName("sy-wh-load");
          Run();
        }) {}
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

WarehouseDestination::SourceLoad WarehouseDestination::LoadEvents(
    std::span<const delivery::RoutedEvent> batch, std::string_view source,
    const std::vector<size_t>& indexes, const std::string& load_time,
    std::vector<delivery::Outcome>* outcomes) {
  using delivery::Outcome;
  SourceLoad load;
  std::unique_ptr<PipelinedLoad> pipeline;  // from the second part on
  size_t next = 0;
  bool stopped = false;
  while (next < indexes.size()) {
    auto part = std::make_unique<MappedEvent>();
    size_t mapped = 0;
    const size_t limit = load.parts.empty() ? kFirstPartEvents : kPartEvents;
    for (; next < indexes.size() && mapped < limit; ++next) {
      const size_t i = indexes[next];
      const auto& headers = batch[i].headers;
      const std::string* blocked =
          headers.empty() ? nullptr : log::FindHeader(headers, log::kHeaderBlocked);
      // A blocked event is not loaded, only its violations (below).
      if (blocked == nullptr) {
        if (Status s = mapper_.Map(batch[i].payload, load_time, part.get()); !s.ok()) {
          (*outcomes)[i] = Outcome::Rejected("warehouse: " + s.message());
          continue;
        }
      }
      if (const std::string* violations =
              headers.empty() ? nullptr : log::FindHeader(headers, log::kHeaderViolations)) {
        const std::string* plan = blocked ? blocked : log::FindHeader(headers, log::kHeaderPlan);
        Status s = AppendViolationRows(batch[i].message_id, plan ? *plan : "", *violations,
                                       FormatIso8601(batch[i].received_at), load_time, part.get());
        if (!s.ok())
          Logger()->warn("violations not loaded message_id={}: {}", batch[i].message_id,
                         s.message());
      }
      ++mapped;
      load.events.push_back(i);
      load.oldest_ms = std::min(load.oldest_ms, batch[i].received_at.value());
    }
    if (mapped == 0) continue;
    load.parts.push_back(std::move(part));
    if (load.parts.size() == 1 && next < indexes.size()) {
      pipeline = std::make_unique<PipelinedLoad>(loader_.get(), std::string(source), load_time);
    }
    if (pipeline) {
      pipeline->Push(load.parts.back().get());
      if (pipeline->failed()) {
        stopped = true;
        break;
      }
    }
  }
  if (load.events.empty()) {
    load.stats = LoadStats{};
    return load;
  }
  if (pipeline) {
    load.stats = pipeline->Finish();
  } else {
    // One part: no thread.
    load.stats =
        loader_->Load(std::string(source), load.parts[0]->rows, load.parts[0]->discards, load_time);
  }
  if (stopped) {  // events not mapped yet share the failure
    for (; next < indexes.size(); ++next) {
      load.events.push_back(indexes[next]);
      load.oldest_ms = std::min(load.oldest_ms, batch[indexes[next]].received_at.value());
    }
  }
  return load;
}

void WarehouseDestination::Account(const SourceLoad& load, double secs) {
  const LoadStats& stats = *load.stats;
  ++loads_;
  for (const auto& [table, n] : stats.rows)
    totals_.rows[table] += n;
  totals_.duplicates += stats.duplicates;
  totals_.discards += stats.discards;
  totals_.schema_changes += stats.schema_changes;
  totals_.capped += stats.capped;
  if (!m_) return;
  m_->loads_ok->Inc();
  m_->load_seconds->Observe(secs);
  m_->duplicates->Inc(stats.duplicates);
  m_->schema_changes->Inc(stats.schema_changes);
  if (stats.capped) m_->capped->Inc(stats.capped);
  for (const auto& [table, n] : stats.rows)
    m_->rows->With({name_, table})->Inc(n);
  if (stats.discards) {
    std::vector<Discard> all;
    for (const auto& part : load.parts)
      all.insert(all.end(), part->discards.begin(), part->discards.end());
    std::map<std::string, uint64_t> discarded;
    for (const Discard* d : UniqueDiscards(all))
      discarded[d->table]++;
    for (const auto& [table, n] : discarded)
      m_->discards->With({name_, table})->Inc(n);
  }
}

void WarehouseDestination::LoadIsolating(std::span<const delivery::RoutedEvent> batch,
                                         std::string_view source, std::vector<size_t> indexes,
                                         const std::string& load_time,
                                         std::vector<delivery::Outcome>* outcomes,
                                         Status* environment_error) {
  using delivery::Outcome;
  if (!environment_error->ok()) {  // the database itself fails: everything left is retried
    for (size_t i : indexes)
      (*outcomes)[i] = Outcome::Retry(environment_error->message());
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t started_ms = SystemClock::Get()->Now().value();
  SourceLoad load = LoadEvents(batch, source, indexes, load_time, outcomes);
  if (load.stats.ok()) {
    if (!load.events.empty()) {
      Account(load, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (history_)
        history_->Committed(started_ms, SystemClock::Get()->Now().value(), source,
                            load.events.size(), *load.stats);
    }
    return;
  }
  if (m_) m_->loads_failed->Inc();
  const Status failed = load.stats.status();
  if (failed.code() != StatusCode::kInvalidArgument) {
    *environment_error = failed;
    for (size_t i : load.events)
      (*outcomes)[i] = Outcome::Retry(failed.message());
    return;
  }
  if (load.events.size() > 1) {
    // Some event's rows were refused: halves load on their own, and the event that is refused
    // alone ends up below.
    std::vector<size_t> first(load.events.begin(), load.events.begin() + load.events.size() / 2);
    std::vector<size_t> second(load.events.begin() + load.events.size() / 2, load.events.end());
    LoadIsolating(batch, source, std::move(first), load_time, outcomes, environment_error);
    LoadIsolating(batch, source, std::move(second), load_time, outcomes, environment_error);
    return;
  }
  // One event the database will not take: it goes to `discards`, whole, so the warehouse moves
  // on (docs/warehouse.md, "Events a database refuses").
  const size_t i = load.events[0];
  Logger()->warn(
      "event refused by the warehouse, written to discards destination={} source={} "
      "message_id={} status={}",
      name_, source, batch[i].message_id, failed.ToString());
  std::vector<Row> no_rows;
  std::vector<Discard> discard = {
      {"", "", batch[i].payload,
       "the database refused the event: " + failed.message().substr(0, 300), batch[i].message_id,
       FormatIso8601(batch[i].received_at)}};
  auto written = loader_->Load(std::string(source), no_rows, discard, load_time);
  if (!written.ok()) {
    if (written.status().code() != StatusCode::kInvalidArgument)
      *environment_error = written.status();
    (*outcomes)[i] = Outcome::Retry(written.status().message());
    return;
  }
  ++refused_;
  totals_.discards += written->discards;
  if (history_) history_->Refused(written->discards);
  if (m_) {
    m_->refused->Inc();
    m_->loads_ok->Inc();
  }
}

std::optional<std::vector<delivery::Outcome>> WarehouseDestination::DeliverInProcess(
    std::span<const delivery::RoutedEvent> batch) {
  using delivery::Outcome;
  SY_CHECK(m_ != nullptr);  // Attach() first: it names the destination and its metrics
  const std::string load_time = FormatIso8601(SystemClock::Get()->Now());
  std::vector<Outcome> outcomes(batch.size(), Outcome::Delivered());
  // Per source: its own database (SQLite) or schema (PostgreSQL), its own transaction.
  std::map<std::string_view, std::vector<size_t>> sources;
  for (size_t i = 0; i < batch.size(); ++i)
    sources[batch[i].source].push_back(i);
  for (const auto& [source, indexes] : sources) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t started_ms = SystemClock::Get()->Now().value();
    SourceLoad load = LoadEvents(batch, source, indexes, load_time, &outcomes);
    if (load.events.empty()) continue;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t now = SystemClock::Get()->Now().value();
    if (!load.stats.ok()) {
      Logger()->warn("load failed destination={} source={} events={} status={}", name_, source,
                     load.events.size(), load.stats.status().ToString());
      if (m_) {
        m_->loads_failed->Inc();
      }
      if (history_) {
        const bool refused = load.stats.status().code() == StatusCode::kInvalidArgument;
        history_->Failed(started_ms, now, source, load.events.size(),
                         load.stats.status().message() +
                             (refused ? " (the database refused some events: the load is split "
                                        "until they are found; they go to discards)"
                                      : " (retried)"));
      }
      if (load.stats.status().code() == StatusCode::kInvalidArgument) {
        // Refused data, not a failing database: find the events that cause it (halving), load
        // the rest, and write those to `discards`.
        Status environment;
        LoadIsolating(batch, source, load.events, load_time, &outcomes, &environment);
      } else {
        for (size_t i : load.events)
          outcomes[i] = Outcome::Retry(load.stats.status().message());
        continue;
      }
    } else {
      Account(load, secs);
      if (history_) history_->Committed(started_ms, now, source, load.events.size(), *load.stats);
    }
    if (m_) {
      m_->last_load->Set(static_cast<double>(now) / 1000.0);
    }
    Logger()->debug("loaded destination={} source={} events={} seconds={:.3f}", name_, source,
                    load.events.size(), secs);
  }
  mapper_.MaybeTrim();
  return outcomes;
}

namespace {

Result<std::unique_ptr<delivery::Destination>> Make(std::unique_ptr<Loader> loader,
                                                    const WarehouseSettings& s) {
  loader->set_max_event_tables(static_cast<size_t>(s.max_event_tables));
  return std::unique_ptr<delivery::Destination>(
      new WarehouseDestination(std::move(loader), s.max_events, s.sync_interval_ms));
}

}  // namespace

delivery::DestinationType SqliteType() {
  using S = WarehouseSettings;
  auto t = delivery::MakeDestinationType<S>(
      "sqlite", "SQLite",
      "Warehouse in SQLite files, one per source (<path>/<source>.sqlite), in Segment's schema.",
      WithBatchSettings(delivery::SettingsTable<S>()
                            .String("path", &S::path,
                                    "directory of the database files, one per source: "
                                    "<path>/<source>.sqlite")
                            .Default("./data/warehouse")),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.path.empty()) return InvalidArgument("path must not be empty");
        return Make(std::make_unique<SqliteLoader>(s.path), s);
      });
  t.support = {"all six, a table per call type and per event (Segment's schema)",
               "loads every sync_interval, up to max_events rows",
               "messageId as the rows' id (loads are idempotent)", "n/a (your own database)"};
  return t;
}

delivery::DestinationType PostgresType() {
  using S = WarehouseSettings;
  auto t = delivery::MakeDestinationType<S>(
      "postgres", "PostgreSQL",
      "Warehouse in PostgreSQL (or Redshift), one schema per source, Segment's schema.",
      WithBatchSettings(
          delivery::SettingsTable<S>()
              .Secret("dsn", &S::dsn,
                      "libpq connection string or URI (postgresql://user@host:5432/db)")
              .Required()),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        // Connecting waits for the first load: check-config and reload validation stay offline.
        return Make(std::make_unique<PostgresLoader>(s.dsn), s);
      });
  t.support = {"all six, a table per call type and per event (Segment's schema)",
               "loads every sync_interval, up to max_events rows",
               "messageId as the rows' id (loads are idempotent)", "n/a (your own database)"};
  return t;
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

namespace {

// The stream owns its destination; SyncNow's caller owns this one. Forwards what the stream
// asks of a warehouse (it has no HTTP side), not Attach: the caller attached it already or
// wants no metrics.
class BorrowedWarehouse final : public delivery::Destination {
 public:
  explicit BorrowedWarehouse(WarehouseDestination* d) : d_(d) {}
  delivery::DestinationLimits limits() const override { return d_->limits(); }
  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> b) const override {
    return d_->Encode(b);
  }
  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    return d_->Classify(request, response);
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override {
    return d_->DeliverInProcess(batch);
  }
  std::optional<config::BatchConfig> BatchOverride() const override { return d_->BatchOverride(); }

 private:
  WarehouseDestination* d_;
};

}  // namespace

Result<SyncReport> SyncNow(log::EventLog* log, const config::DestinationConfig& config,
                           const std::string& display_name, WarehouseDestination* destination,
                           delivery::DeadLetterStore* dead_letters,
                           std::unique_ptr<delivery::EventTransform> transform) {
  const auto started = std::chrono::steady_clock::now();
  SyncReport report;
  const LoadStats before = destination->totals();
  // The server's stream code, drained once on this thread (DestinationStream::DrainOnce).
  delivery::StreamOptions o;
  o.config = config;
  o.display_name = display_name;
  o.destination = std::make_unique<BorrowedWarehouse>(destination);
  o.log = log;
  o.dead_letters = dead_letters;
  o.transform = std::move(transform);
  // The drain's own stream counters are not served (the warehouse's metrics, attached by the
  // caller, are); a registry the stream can require.
  MetricsRegistry stream_metrics;
  o.metrics = &stream_metrics;
  // One load per max_events: the whole window at once.
  o.window_events =
      static_cast<size_t>(std::max<int64_t>(destination->limits().max_events_per_request, 1));
  SY_ASSIGN_OR_RETURN(auto stream, delivery::DestinationStream::Open(std::move(o)));
  auto drained = stream->DrainOnce();
  if (!drained.ok()) return drained.status();
  report.events = drained->delivered;
  report.rejected = drained->dead_lettered;
  report.skipped = drained->skipped;
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
  return report;
}

}  // namespace sy::warehouse
