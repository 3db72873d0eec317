// Loader: writes the rows of one batch into one source's tables of a warehouse, in one
// transaction — the schema changes the batch needs (PlanSchema), the rows whose id is not there
// yet (users: merged into the row of their user id), and the discards. Either all of it commits
// or none of it does, so the caller may commit its log cursor once Commit (or Load) returns OK,
// and a batch loaded twice (a crash before the cursor commit, a redelivery, a replay) adds no
// row twice.
//
// A load is Begin, then Add once per part of the batch (the destination maps the next part while
// the loader writes this one), then Commit; Abort rolls back. Parts are written in order, inside
// the one transaction: a later part sees the rows of an earlier one (its repeats count as
// duplicates). Load is the same in one call.
//
// Threads: a Loader is used from one thread at a time (the destination's load thread), not
// necessarily the same thread for every call.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "warehouse/schema.h"

namespace sy::warehouse {

struct LoadStats {
  std::map<std::string, uint64_t> rows;  // rows written per table (users: inserted or updated)
  uint64_t duplicates = 0;               // rows whose id was already loaded
  uint64_t discards = 0;                 // discard rows written
  uint64_t schema_changes = 0;           // tables created, columns added or widened
  uint64_t capped = 0;  // event rows not written: the source is at its event table limit
};

// One table of a source's warehouse and how many rows it holds, as the database estimates it
// cheaply (Loader::ReadTableRows): never a `SELECT count(*)`, which reads a whole big table.
struct TableRows {
  std::string source;
  std::string table;
  uint64_t rows = 0;
};

class Loader {
 public:
  virtual ~Loader() = default;

  // Opens the transaction of one load of `source`. `load_time` is uuid_ts of the discards.
  virtual Status Begin(const std::string& source, std::string_view load_time) = 0;

  // Writes one part of the load. `rows` may be changed (cells marked discarded, users rows
  // merged); discards the schema planner finds are appended to `discards`. Both must stay valid,
  // and untouched by the caller, until Commit or Abort returns: a loader may write them again
  // (PostgreSQL, after a concurrent loader inserted one of their ids). After an error the caller
  // calls Abort.
  virtual Status Add(std::vector<Row>& rows, std::vector<Discard>& discards) = 0;

  // Commits what Add wrote; on error nothing of it stays.
  virtual Result<LoadStats> Commit() = 0;

  // Rolls back what Add wrote (no-op when no load is open).
  virtual void Abort() = 0;

  // The tables of `sources` with their row estimates, read through a connection of its own (never
  // the load's), so any thread may call it while a load runs: the admin API's warehouse route.
  // How each loader estimates: rows_method(). A source never loaded has no tables.
  virtual Result<std::vector<TableRows>> ReadTableRows(
      const std::vector<std::string>& sources) const = 0;
  // How ReadTableRows counts, for the operator ("max(rowid)", "pg_stat n_live_tup").
  virtual std::string_view rows_method() const = 0;

  // Event tables per source at most (PlanSchema's cap); set before the first load.
  void set_max_event_tables(size_t n) { max_event_tables_ = n; }

  // Begin, Add, Commit: `rows` and `discards` of `source` in one transaction.
  Result<LoadStats> Load(const std::string& source, std::vector<Row>& rows,
                         std::vector<Discard>& discards, std::string_view load_time) {
    SY_RETURN_IF_ERROR(Begin(source, load_time));
    if (Status s = Add(rows, discards); !s.ok()) {
      Abort();
      return s;
    }
    return Commit();
  }

 protected:
  size_t max_event_tables_ = kDefaultMaxEventTables;
};

// Discards minus repeats of the same (row_id, table, column) within the batch.
std::vector<const Discard*> UniqueDiscards(const std::vector<Discard>& discards);

}  // namespace sy::warehouse
