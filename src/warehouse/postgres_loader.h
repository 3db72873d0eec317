// PostgresLoader: the warehouse in PostgreSQL (and, by its SQL, Redshift). One schema per
// source (the source name made safe: `web`, `web_app`). Per batch, in one transaction: the DDL
// the batch needs (CREATE TABLE, ALTER TABLE … ADD COLUMN, ALTER COLUMN … TYPE double precision);
// then per table a temporary staging table filled with `COPY … FROM STDIN` (text format) and one
// `INSERT INTO t SELECT … FROM staging WHERE NOT EXISTS (… t.id = staging.id)` — an anti-join,
// not ON CONFLICT, so the same SQL runs on Redshift; `users` is an UPDATE … FROM staging (a
// column keeps its value when the new row has none) followed by the same anti-join insert.
// When none of a table's ids in the batch is there yet (one `id = ANY(…)` index probe), the
// rows are copied straight into the table instead (the unique index still guards it).
// Each table gets a unique index on `id` (PostgreSQL only; Redshift has none), which both speeds
// the anti-join and makes a duplicate impossible even for a concurrent second loader.
//
// Types: boolean, bigint, double precision, timestamptz, text.
// Threads: one thread at a time (see loader.h). One connection, opened on first use and again
// after it breaks.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "warehouse/loader.h"

namespace sy::warehouse {

class PostgresLoader final : public Loader {
 public:
  explicit PostgresLoader(std::string dsn);
  ~PostgresLoader() override;

  Result<LoadStats> Load(const std::string& source, std::vector<Row>& rows,
                         std::vector<Discard>& discards, std::string_view load_time) override;

  // The PostgreSQL schema of a source.
  static std::string SchemaFor(const std::string& source);

 private:
  struct Conn;
  Status Connect();
  Status LoadSchema(const std::string& schema, SchemaMap* out);

  std::string dsn_;
  std::unique_ptr<Conn> conn_;
  std::map<std::string, SchemaMap> schemas_;  // per PostgreSQL schema, as last read or planned
};

}  // namespace sy::warehouse
