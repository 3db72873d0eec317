// Privacy deletion in the warehouse (issue 17, docs/privacy-copies.md): removes every row of the
// named users from every table of every source, in SQLite and in PostgreSQL. Called by the
// privacy deletion run, never by the loaders.
//
// What a user's rows are, per table (found by the columns the table has, so event tables are
// covered whatever their name, and a column that never got a value — so was never created —
// needs no condition):
//  - every table with a `user_id`, `anonymous_id` or (aliases) `previous_id` column: `tracks`,
//    each event's own table, `identifies`, `pages`, `screens`, `groups`, `aliases`, and any other
//    table of the source with such a column: the rows whose user_id is one of the users' userIds
//    or whose anonymous_id is one of their anonymousIds (privacy/user_set.h); `previous_id` (the
//    other id of an alias, either kind) against both. A column holding numbers is compared as
//    text (a userId sent as 42 is "42", as in UserSet).
//  - `users`: the rows whose `id` (the userId) is one of the userIds.
//  - `discards` and `violations`: the rows of those events — discards whose row_id is the id of
//    a deleted row (users: the userId), violations whose event_id is — deleted in the same
//    transaction as the rows they belong to, so a crash never leaves one whose event rows are
//    gone (it could not be found again). Discards holding a whole event the database refused
//    (table_name '', docs/warehouse.md) are matched by the ids inside that event's JSON.
//
// One transaction per table (its rows and their discards and violations together), so a run
// killed at any point and run again converges: what committed is gone, what did not is found
// again. Idempotent: a second run deletes nothing. Rows of other users are never touched.
// Concurrent loads are fine (SQLite: the eraser waits for the loader's write lock; PostgreSQL:
// DELETE and COPY do not block each other); keeping the users' still-unloaded events from being
// loaded afterwards is the suppression's job upstream (docs/privacy-copies.md).
//
// Erasure on disk: SQLite deletes with `secure_delete` on (freed pages are zeroed) and
// checkpoints and truncates the WAL after the run, so the rows' bytes do not linger in the files;
// PostgreSQL keeps dead tuples until VACUUM reuses their space (docs/privacy-copies.md).
//
// Threads: one call at a time per eraser.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "privacy/user_set.h"

namespace sy::warehouse {

struct WarehouseEraseProgress {
  uint64_t sources = 0;         // databases (SQLite) or schemas (PostgreSQL) gone through
  uint64_t tables_scanned = 0;  // tables looked at
  uint64_t rows_deleted = 0;    // over every table, discards and violations included
  std::map<std::string, uint64_t> rows_per_table;  // "<source>.<table>" → rows deleted
  // One line for a request's record ("rows_deleted=12 sources=2 tables=24 web.tracks=3 …"):
  // counts and table names only, no ids.
  std::string Summary() const;
};

class WarehouseEraser {
 public:
  virtual ~WarehouseEraser() = default;
  // Deletes the rows of `users` (see above). `progress` (may be null) accumulates.
  virtual Status EraseUsers(const privacy::UserSet& users, WarehouseEraseProgress* progress) = 0;

  // Called after each committed table transaction (source, table): progress reports, and tests
  // that kill a run between two tables.
  void set_after_table(std::function<void(std::string_view, std::string_view)> f) {
    after_table_ = std::move(f);
  }

 protected:
  std::function<void(std::string_view, std::string_view)> after_table_;
};

// SQLite: every database file <dir>/<source>.sqlite (sources no longer configured included).
std::unique_ptr<WarehouseEraser> NewSqliteEraser(std::string dir);
// PostgreSQL: the schema of each of `sources` (PostgresLoader::SchemaFor) that exists; the other
// schemas of the database are never touched.
std::unique_ptr<WarehouseEraser> NewPostgresEraser(std::string dsn,
                                                   std::vector<std::string> sources);

// The eraser of a configured warehouse destination, for the privacy deletion run: type `sqlite`
// (its `path` setting, default ./data/warehouse, as the destination uses it) or `postgres` (its
// `dsn`; the schemas of its `sources:`, or of `all_sources` — every source of the config — when
// it lists none). kInvalidArgument for any other type.
Result<std::unique_ptr<WarehouseEraser>> NewWarehouseEraserFor(
    const config::DestinationConfig& destination, const std::vector<std::string>& all_sources);

}  // namespace sy::warehouse
