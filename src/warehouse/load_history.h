// LoadHistory: what a warehouse destination loaded lately, for the admin API's
// `GET /api/v1/warehouse` and the console's warehouse page — the last kKeepLoads loads (started,
// finished, events, rows per table, discards, error) in a ring, and the running counts since the
// server started (rows per table, discards, events refused whole, loads by result).
//
// One per destination name, in a LoadHistoryBook the server owns: a destination's stream is
// stopped and started again on reloads and syncs (each time a new WarehouseDestination), and
// the history outlives them all.
//
// Memory: bounded whatever clients send — kKeepLoads loads of at most kTablesPerLoad tables
// each, and kMaxTables tables in the running counts (table names come from event names, which
// clients choose; past the cap, rows are counted under kOtherTables).
//
// Thread safety: every method is thread-safe (the load thread records, the admin API reads).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "warehouse/loader.h"

namespace sy::warehouse {

class LoadHistory {
 public:
  static constexpr size_t kKeepLoads = 20;
  static constexpr size_t kTablesPerLoad = 50;
  static constexpr size_t kMaxTables = 1000;
  static constexpr std::string_view kOtherTables = "(other tables)";

  struct Load {
    int64_t started_ms = 0;  // wall clock
    int64_t finished_ms = 0;
    std::string source;
    uint64_t events = 0;  // events the load carried
    uint64_t rows = 0;    // rows written, all tables
    // Rows per table, the kTablesPerLoad largest; `tables` counts them all.
    std::map<std::string, uint64_t> rows_per_table;
    uint64_t tables = 0;
    uint64_t discards = 0;
    uint64_t duplicates = 0;
    std::string error;  // empty: committed
  };
  struct Totals {
    // Rows written since the server started, per source, then per table (kMaxTables tables in
    // all at most; past it a source's rows count under kOtherTables).
    std::map<std::string, std::map<std::string, uint64_t>> rows_per_table;
    size_t tables = 0;
    uint64_t discards = 0;
    uint64_t refused = 0;  // events the database refused alone, written whole to discards
    uint64_t loads_ok = 0;
    uint64_t loads_failed = 0;
  };

  // A committed load (`stats`) or a failed one (`error`).
  void Committed(int64_t started_ms, int64_t finished_ms, std::string_view source, uint64_t events,
                 const LoadStats& stats);
  void Failed(int64_t started_ms, int64_t finished_ms, std::string_view source, uint64_t events,
              std::string error);
  // One event refused alone and written whole to discards (`discards` rows).
  void Refused(uint64_t discards);

  std::vector<Load> Recent() const;  // newest first
  Totals totals() const;

 private:
  void Push(Load load);  // under mu_
  mutable std::mutex mu_;
  std::deque<Load> loads_;
  Totals totals_;
};

class LoadHistoryBook {
 public:
  std::shared_ptr<LoadHistory> For(std::string_view destination);
  std::shared_ptr<LoadHistory> Find(std::string_view destination) const;  // null: none yet

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<LoadHistory>, std::less<>> by_name_;
};

}  // namespace sy::warehouse
