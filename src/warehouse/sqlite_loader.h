// SqliteLoader: the embedded warehouse. One database file per source, <dir>/<source>.sqlite, in
// WAL mode with synchronous=FULL (a committed load survives a power cut, so the log cursor may
// move past it) and a 32 MiB page cache per file. Rows go in through prepared `INSERT OR IGNORE`
// statements in one transaction; every table has a unique index on `id`, which is what makes loads
// idempotent. `users` rows are upserted (`ON CONFLICT(id) DO UPDATE`, a column keeping its value
// when the new row has none).
//
// Column types: TEXT, INTEGER, REAL, BOOLEAN (0/1), TIMESTAMP (ISO-8601 text). SQLite cannot
// change a column's declared type: an INTEGER column widened to float keeps its declaration and
// stores the values as REAL (its affinity does so losslessly).
//
// Threads: one thread at a time (see loader.h). Readers (sqlite3 CLI, BI tools) may read the
// files concurrently: WAL lets them see the last committed load without blocking it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "warehouse/loader.h"

namespace sy::warehouse {

class SqliteLoader final : public Loader {
 public:
  explicit SqliteLoader(std::string dir);
  ~SqliteLoader() override;

  Status Begin(const std::string& source, std::string_view load_time) override;
  Status Add(std::vector<Row>& rows, std::vector<Discard>& discards) override;
  Result<LoadStats> Commit() override;
  void Abort() override;
  // max(rowid) per table: a lookup at the end of the rowid b-tree, instant at any size. Exact as
  // long as nobody deletes rows (loads only insert, `users` updates in place, and a rolled-back
  // insert leaves no gap); an upper bound otherwise. Opens the file read-only.
  Result<std::vector<TableRows>> ReadTableRows(
      const std::vector<std::string>& sources) const override;
  std::string_view rows_method() const override { return "max(rowid)"; }

  static std::string PathFor(const std::string& dir, const std::string& source);

 private:
  struct Db;
  Result<Db*> Open(const std::string& source);

  std::string dir_;
  std::map<std::string, std::unique_ptr<Db>> dbs_;
  // The open load (between Begin and Commit/Abort).
  Db* open_ = nullptr;
  std::string load_time_;
  LoadStats stats_;
};

// The SQLite type a column of type `t` is declared with.
std::string_view SqliteColumnType(ColumnType t);

}  // namespace sy::warehouse
