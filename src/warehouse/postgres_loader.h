// PostgresLoader: the warehouse in PostgreSQL (and, by its SQL, Redshift). One schema per
// source (the source name made safe: `web`, `web_app`). Per batch, in one transaction: the DDL
// the batch needs (CREATE TABLE, ALTER TABLE … ADD COLUMN, ALTER COLUMN … TYPE double precision);
// then per table and part (loader.h) the rows go in by `COPY … FROM STDIN (FORMAT binary)` on one
// of three paths:
//  - direct: straight into the table, after locking it (ROW EXCLUSIVE, what COPY takes) and
//    checking once per transaction that its column types are the ones the binary data encodes.
//    An id already there fails the COPY on the table's unique index and aborts the
//    transaction; Add then writes every part of the load again on the probe path;
//  - probe: one `SELECT id … WHERE id = ANY(…)` index probe first, the ids found dropped as
//    duplicates, the rest copied straight in. Should a concurrent loader commit one of them
//    between the probe and the COPY, the transaction is written again through staging. A load
//    that found loaded ids (a replay) makes the next one start here; one that found none, direct;
//  - staging: into a temporary table, then `INSERT INTO t SELECT … FROM staging WHERE NOT EXISTS
//    (… t.id = staging.id)` — an anti-join, not ON CONFLICT, so the same SQL runs on Redshift.
//    `users` always takes this path, as an UPDATE … FROM staging (a column keeps its value when
//    the new row has none) followed by the same anti-join insert.
// Binary COPY data is sent while it is encoded (256 KiB at a time), so the server parses one
// part while the next is built. Each table gets a unique index on `id` (PostgreSQL only;
// Redshift has none), which both speeds the anti-join and makes a duplicate impossible even for a
// concurrent second loader.
//
// Types: boolean, bigint, double precision, timestamptz, text.
// Threads: one thread at a time (see loader.h). One connection, opened on first use and again
// after it breaks.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "warehouse/loader.h"

namespace sy::warehouse {

class PostgresLoader final : public Loader {
 public:
  explicit PostgresLoader(std::string dsn);
  ~PostgresLoader() override;

  Status Begin(const std::string& source, std::string_view load_time) override;
  Status Add(std::vector<Row>& rows, std::vector<Discard>& discards) override;
  Result<LoadStats> Commit() override;
  // pg_stat_user_tables.n_live_tup per table of the source's schema: the server's running count
  // of live rows (inserts minus deletes, reported at the end of each transaction, within a
  // second or so), read from the statistics views, never by scanning. Its own short connection.
  Result<std::vector<TableRows>> ReadTableRows(
      const std::vector<std::string>& sources) const override;
  std::string_view rows_method() const override { return "pg_stat_user_tables.n_live_tup"; }
  void Abort() override;

  // The PostgreSQL schema of a source.
  static std::string SchemaFor(const std::string& source);

 private:
  struct Conn;
  Status Connect();
  Status LoadSchema(const std::string& schema, SchemaMap* out);
  // Connects, creates and reads schema_ if needed, and opens the transaction.
  Status Start();
  // One part inside the open transaction. `conflict` (may be null) is set when a direct COPY
  // met an id that a concurrent loader committed meanwhile.
  Status Write(std::vector<Row>& rows, std::vector<Discard>& discards, bool* conflict);
  // Whether the table's columns have exactly the types of `def` (binary COPY needs them).
  Status CheckTypes(const std::string& qualified, const TableDef& def, bool* match);

  std::string dsn_;
  std::unique_ptr<Conn> conn_;
  std::map<std::string, SchemaMap> schemas_;  // per PostgreSQL schema, as last read or planned

  // The open load (between Begin and Commit or Abort).
  struct Part {
    std::vector<Row>* rows;
    std::vector<Discard>* discards;
  };
  bool open_ = false;
  std::string schema_;
  std::string load_time_;
  std::vector<Part> parts_;  // written so far, to write again after a conflict
  // How rows reach a table (users: always staging). A conflict (an id already there) aborts
  // the transaction, which is then written again on the next path.
  enum class Path {
    kDirect,   // COPY straight into the table
    kProbe,    // ids looked up first, those found dropped, the rest COPY'd straight in
    kStaging,  // COPY into a temporary table, then the anti-join insert
  };
  Path path_ = Path::kDirect;
  Path next_path_ = Path::kDirect;  // the next load's first path
  bool found_any_ = false;          // a probe of this load found loaded ids
  bool stale_ = false;              // a column type changed under us: read the schema again
  std::set<std::string> checked_;   // tables locked and type-checked in this transaction
  int stage_no_ = 0;
  LoadStats stats_;
  std::string buf_;  // COPY data being sent
};

// The PostgreSQL type a column of type `t` is created with.
std::string_view PostgresColumnType(ColumnType t);

}  // namespace sy::warehouse
