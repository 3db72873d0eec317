// The warehouse as a destination: types `sqlite` and `postgres`, switched on and off, routed,
// filtered and replayed into like any other destination. In-process: the stream hands a batch to
// DeliverInProcess on its own thread; the batch is mapped to Segment's schema (schema.h) and
// loaded in one transaction per source (loader.h). A batch of more than one part (1,000 events;
// the first 250) is mapped on the caller's thread while a second thread, started per load and
// joined before DeliverInProcess returns, writes the previous part into the same transaction.
// Every event of a source is delivered only once its transaction committed, so the stream's
// cursor never passes a row that is not in the warehouse. A failed load is retried (the
// framework's backoff); an event that cannot be mapped at all (no messageId, unknown type) is
// rejected to the dead-letter store. A load the database refuses for its data (kInvalidArgument
// from the loader: a constraint, a name it will not take) is split in halves until the events
// it refuses alone are found; those go whole to `discards`, so one event never blocks a
// warehouse.
//
// Batching: every `sync_interval` (the stream's batch max_wait) or at `max_events`, whichever
// comes first (BatchOverride).
//
// SyncNow is `switchyard warehouse sync`: it loads everything the destination's cursor has not
// passed yet, now, on the caller's thread, then commits the cursor. The caller guarantees that no
// stream of the same destination runs meanwhile (the server stops it first; the CLI holds the
// data_dir lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/metrics.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "delivery/transform.h"
#include "log/event_log.h"
#include "warehouse/load_history.h"
#include "warehouse/loader.h"

namespace sy::warehouse {

delivery::DestinationType SqliteType();
delivery::DestinationType PostgresType();

class WarehouseDestination final : public delivery::Destination {
 public:
  WarehouseDestination(std::unique_ptr<Loader> loader, int64_t max_events, int64_t sync_ms);
  ~WarehouseDestination() override;

  delivery::DestinationLimits limits() const override;
  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent>) const override {
    return {};
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override;
  std::optional<config::BatchConfig> BatchOverride() const override;
  // Blocked events come too: their tracking-plan violations are loaded into `violations`, the
  // events themselves are not (docs/governance.md).
  bool TakesBlockedEvents() const override { return true; }
  // Required before the first DeliverInProcess (DestinationStream::Start calls it; callers of
  // SyncNow call it themselves).
  void Attach(const std::string& name, MetricsRegistry* metrics) override;

  // Where each load is recorded (load_history.h); none when not set. Set before the first
  // DeliverInProcess (the server sets its book's entry for this destination's name).
  void set_history(std::shared_ptr<LoadHistory> history) { history_ = std::move(history); }
  // The tables of `sources` with the database's cheap row estimates (Loader::ReadTableRows): its
  // own connection, any thread, while loads run.
  Result<std::vector<TableRows>> ReadTableRows(const std::vector<std::string>& sources) const {
    return loader_->ReadTableRows(sources);
  }
  std::string_view rows_method() const { return loader_->rows_method(); }

  // Everything loaded by this instance so far (rows per table, duplicates, discards).
  const LoadStats& totals() const { return totals_; }
  uint64_t loads() const { return loads_; }
  // Events the database refused on their own, written whole to `discards`.
  uint64_t refused() const { return refused_; }

 private:
  struct Metrics;
  struct SourceLoad {
    Result<LoadStats> stats = Internal("not loaded");
    std::vector<std::unique_ptr<MappedEvent>> parts;  // kept until the load ended
    std::vector<size_t> events;                       // loaded (or failed) together
    int64_t oldest_ms = INT64_MAX;                    // receivedAt of the oldest of them
  };
  // Maps and loads `indexes` of `batch` (one source) in one transaction; unmappable events are
  // rejected in `outcomes`.
  SourceLoad LoadEvents(std::span<const delivery::RoutedEvent> batch, std::string_view source,
                        const std::vector<size_t>& indexes, const std::string& load_time,
                        std::vector<delivery::Outcome>* outcomes);
  // After a load failed with kInvalidArgument (the database refused some data): loads halves
  // of `indexes` recursively; an event refused alone is written whole to `discards` and counts
  // as delivered. A failure of the database itself (any other code) stops the search and
  // retries every event not loaded yet (`environment_error`).
  void LoadIsolating(std::span<const delivery::RoutedEvent> batch, std::string_view source,
                     std::vector<size_t> indexes, const std::string& load_time,
                     std::vector<delivery::Outcome>* outcomes, Status* environment_error);
  void Account(const SourceLoad& load, double secs);  // totals and metrics of a committed load
  std::unique_ptr<Loader> loader_;
  int64_t max_events_;
  int64_t sync_ms_;
  EventMapper mapper_;
  LoadStats totals_;
  uint64_t loads_ = 0;
  uint64_t refused_ = 0;
  std::string name_;
  std::unique_ptr<Metrics> m_;
  std::shared_ptr<LoadHistory> history_;
};

struct SyncReport {
  uint64_t events = 0;    // events loaded (delivered)
  uint64_t rejected = 0;  // events that cannot be mapped, now in the dead-letter store
  uint64_t skipped = 0;   // not for this destination (sources, integrations, filters)
  LoadStats stats;
  double seconds = 0;
};
std::string SyncReportJson(const std::string& destination, const SyncReport& r);

// Loads what the cursor "dest.<name>" has not passed, up to the end of the log as it is now,
// and commits the cursor after each committed transaction. A load failure stops the sync with
// its error (what was committed before stays committed). `transform`: the destination's user
// functions (docs/functions.md), run as the server's stream runs them; null when it has none.
Result<SyncReport> SyncNow(log::EventLog* log, const config::DestinationConfig& config,
                           const std::string& display_name, WarehouseDestination* destination,
                           delivery::DeadLetterStore* dead_letters,
                           std::unique_ptr<delivery::EventTransform> transform = nullptr);

}  // namespace sy::warehouse
