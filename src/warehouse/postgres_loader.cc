#include "warehouse/postgres_loader.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <optional>

namespace sy::warehouse {
namespace {

std::string Quote(std::string_view ident) {
  std::string q = "\"";
  for (char c : ident) {
    if (c == '"') q += '"';
    q += c;
  }
  q += '"';
  return q;
}

std::string Literal(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += '\'';
    q += c;
  }
  q += '\'';
  return q;
}

std::string_view SqlType(ColumnType t) {
  switch (t) {
    case ColumnType::kBoolean:
      return "boolean";
    case ColumnType::kInteger:
      return "bigint";
    case ColumnType::kFloat:
      return "double precision";
    case ColumnType::kTimestamp:
      return "timestamptz";
    case ColumnType::kText:
      return "text";
  }
  return "text";
}

ColumnType FromSqlType(std::string_view t) {
  if (t == "boolean") return ColumnType::kBoolean;
  if (t == "bigint" || t == "integer" || t == "smallint") return ColumnType::kInteger;
  if (t == "double precision" || t == "real" || t == "numeric") return ColumnType::kFloat;
  if (t.starts_with("timestamp")) return ColumnType::kTimestamp;
  return ColumnType::kText;
}

// COPY text format: backslash, newline, carriage return and tab escaped; NULL is \N.
void AppendCopyValue(std::string_view v, std::string* out) {
  for (char c : v) {
    switch (c) {
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        *out += c;
    }
  }
}

struct PgResult {
  PGresult* r;
  explicit PgResult(PGresult* res) : r(res) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() { PQclear(r); }
};

}  // namespace

struct PostgresLoader::Conn {
  PGconn* pg = nullptr;
  ~Conn() {
    if (pg) PQfinish(pg);
  }

  Status Error(std::string_view what) const {
    std::string m = PQerrorMessage(pg);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
      m.pop_back();
    return Unavailable("postgres: " + std::string(what) + ": " + m);
  }

  // Runs statements with no result rows.
  Status Exec(const std::string& sql) {
    PgResult r(PQexec(pg, sql.c_str()));
    auto st = PQresultStatus(r.r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      return Error("in \"" + sql.substr(0, 160) + "\"");
    return Status::Ok();
  }

  Result<uint64_t> ExecCount(const std::string& sql) {
    PgResult r(PQexec(pg, sql.c_str()));
    if (PQresultStatus(r.r) != PGRES_COMMAND_OK) return Error("in \"" + sql.substr(0, 160) + "\"");
    return static_cast<uint64_t>(std::strtoull(PQcmdTuples(r.r), nullptr, 10));
  }

  // Whether `sql` (one text parameter) returns a row.
  Result<bool> Exists(const std::string& sql, const std::string& param) {
    const char* values[] = {param.c_str()};
    PgResult r(PQexecParams(pg, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
    if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return Error("in \"" + sql.substr(0, 160) + "\"");
    return PQntuples(r.r) > 0;
  }

  Status Copy(const std::string& sql, const std::string& data) {
    {
      PgResult r(PQexec(pg, sql.c_str()));
      if (PQresultStatus(r.r) != PGRES_COPY_IN) return Error("COPY start");
    }
    constexpr size_t kChunk = 1 << 20;
    for (size_t off = 0; off < data.size(); off += kChunk) {
      size_t n = std::min(kChunk, data.size() - off);
      if (PQputCopyData(pg, data.data() + off, static_cast<int>(n)) != 1) return Error("COPY data");
    }
    if (PQputCopyEnd(pg, nullptr) != 1) return Error("COPY end");
    Status result;
    while (PGresult* res = PQgetResult(pg)) {
      PgResult r(res);
      if (PQresultStatus(res) != PGRES_COMMAND_OK && result.ok()) result = Error("COPY");
    }
    return result;
  }
};

PostgresLoader::PostgresLoader(std::string dsn) : dsn_(std::move(dsn)) {}
PostgresLoader::~PostgresLoader() = default;

std::string PostgresLoader::SchemaFor(const std::string& source) {
  return SafeName(source);
}

Status PostgresLoader::Connect() {
  if (conn_ && PQstatus(conn_->pg) == CONNECTION_OK) return Status::Ok();
  conn_.reset();
  schemas_.clear();  // another connection may have changed them meanwhile
  auto c = std::make_unique<Conn>();
  c->pg = PQconnectdb(dsn_.c_str());
  if (!c->pg) return Unavailable("postgres: out of memory");
  if (PQstatus(c->pg) != CONNECTION_OK) return c->Error("connect");
  // Timestamps are written as UTC ISO-8601; make what the session prints match.
  SY_RETURN_IF_ERROR(c->Exec("SET TIME ZONE 'UTC'"));
  conn_ = std::move(c);
  return Status::Ok();
}

Status PostgresLoader::LoadSchema(const std::string& schema, SchemaMap* out) {
  out->clear();
  std::string sql =
      "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE "
      "table_schema = " +
      Literal(schema) + " ORDER BY table_name, ordinal_position";
  PgResult r(PQexec(conn_->pg, sql.c_str()));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return conn_->Error("reading the schema");
  for (int i = 0; i < PQntuples(r.r); ++i) {
    std::string table = PQgetvalue(r.r, i, 0);
    auto it = out->find(table);
    if (it == out->end()) {
      it = out->emplace(table, TableDef{}).first;
      it->second.name = table;
    }
    it->second.Add(PQgetvalue(r.r, i, 1), FromSqlType(PQgetvalue(r.r, i, 2)));
  }
  return Status::Ok();
}

Result<LoadStats> PostgresLoader::Load(const std::string& source, std::vector<Row>& rows,
                                       std::vector<Discard>& discards, std::string_view load_time) {
  SY_RETURN_IF_ERROR(Connect());
  const std::string schema = SchemaFor(source);
  const std::string qs = Quote(schema);
  auto known = schemas_.find(schema);
  if (known == schemas_.end()) {
    SY_RETURN_IF_ERROR(conn_->Exec(
        "CREATE SCHEMA IF NOT EXISTS " + qs + "; CREATE TABLE IF NOT EXISTS " + qs +
        ".discards (table_name text, column_name text, column_value text, reason text, row_id "
        "text, received_at timestamptz, uuid_ts timestamptz); CREATE INDEX IF NOT EXISTS "
        "discards_row_id ON " +
        qs + ".discards (row_id)"));
    SchemaMap m;
    SY_RETURN_IF_ERROR(LoadSchema(schema, &m));
    known = schemas_.emplace(schema, std::move(m)).first;
  }
  SchemaMap& tables = known->second;

  SY_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
  LoadStats stats;
  auto fail = [&](Status s) -> Result<LoadStats> {
    if (PQstatus(conn_->pg) == CONNECTION_OK) {
      (void)conn_->Exec("ROLLBACK");
    } else {
      conn_.reset();
    }
    schemas_.erase(schema);  // the plan changed it in memory only: read it again
    return s;
  };

  for (const auto& c : PlanSchema(tables, rows, &discards)) {
    const std::string qt = qs + "." + Quote(c.table);
    std::string sql;
    switch (c.kind) {
      case SchemaChange::Kind::kCreateTable:
        sql = "CREATE TABLE " + qt + " (";
        for (size_t i = 0; i < c.columns.size(); ++i) {
          if (i) sql += ", ";
          sql += Quote(c.columns[i].first) + " " + std::string(SqlType(c.columns[i].second));
        }
        sql += "); CREATE UNIQUE INDEX ON " + qt + " (id)";
        break;
      case SchemaChange::Kind::kAddColumn:
        sql = "ALTER TABLE " + qt + " ADD COLUMN " + Quote(c.column) + " " +
              std::string(SqlType(c.type));
        break;
      case SchemaChange::Kind::kWidenToFloat:
        sql = "ALTER TABLE " + qt + " ALTER COLUMN " + Quote(c.column) + " TYPE double precision";
        break;
    }
    if (Status s = conn_->Exec(sql); !s.ok()) return fail(s);
    stats.schema_changes++;
  }

  std::string data;
  int stage_no = 0;
  for (TableBatch& batch : GroupRows(rows, &stats.duplicates)) {
    const TableDef& def = tables.at(batch.table);
    const std::string qt = qs + "." + Quote(batch.table);
    const std::string stage = "sy_stage_" + std::to_string(stage_no++);
    // Only the columns this batch uses are staged and inserted.
    std::vector<int> used(def.columns.size(), 0);
    // Rows of one kind list their columns in the same order: remember the last row's.
    // Names are interned: comparing the addresses is enough.
    std::vector<std::pair<const char*, size_t>> last;  // row cell i → column position
    auto position = [&](size_t i, const Cell& cell) {
      if (i < last.size() && last[i].first == cell.column.data()) return last[i].second;
      size_t pos = def.index.at(std::string(cell.column));
      if (i >= last.size()) last.resize(i + 1, {nullptr, 0});
      last[i] = {cell.column.data(), pos};
      return pos;
    };
    for (Row* row : batch.rows) {
      for (size_t i = 0; i < row->cells.size(); ++i) {
        if (!row->cells[i].discarded) used[position(i, row->cells[i])] = 1;
      }
    }
    std::vector<size_t> cols;
    std::vector<int> slot(def.columns.size(), -1);  // column position → staged field
    std::string create = "CREATE TEMPORARY TABLE " + stage + " (";
    std::string list;
    for (size_t i = 0; i < def.columns.size(); ++i) {
      if (!used[i]) continue;
      slot[i] = static_cast<int>(cols.size());
      if (!cols.empty()) create += ", ", list += ", ";
      cols.push_back(i);
      create += Quote(def.columns[i].first) + " " + std::string(SqlType(def.columns[i].second));
      list += Quote(def.columns[i].first);
    }
    create += ") ON COMMIT DROP";

    data.clear();
    std::vector<std::optional<std::string_view>> fields(cols.size());
    for (Row* row : batch.rows) {
      std::fill(fields.begin(), fields.end(), std::nullopt);
      for (size_t i = 0; i < row->cells.size(); ++i) {
        const Cell& cell = row->cells[i];
        if (cell.discarded) continue;
        fields[static_cast<size_t>(slot[position(i, cell)])] = cell.value;
      }
      for (size_t f = 0; f < fields.size(); ++f) {
        if (f) data += '\t';
        if (fields[f]) {
          AppendCopyValue(*fields[f], &data);
        } else {
          data += "\\N";
        }
      }
      data += '\n';
    }
    // The common case — none of these ids loaded before — skips the staging table: one COPY
    // straight into the table. Should another loader insert one of them meanwhile, the unique
    // index fails this transaction, and the retry finds the id and takes the staging path.
    if (batch.table != "users") {
      std::string ids = "{";
      for (Row* row : batch.rows) {
        if (ids.size() > 1) ids += ',';
        ids += '"';
        for (char c : row->id) {
          if (c == '"' || c == '\\') ids += '\\';
          ids += c;
        }
        ids += '"';
      }
      ids += '}';
      auto seen = conn_->Exists("SELECT 1 FROM " + qt + " WHERE id = ANY($1::text[]) LIMIT 1", ids);
      if (!seen.ok()) return fail(seen.status());
      if (!*seen) {
        if (Status s = conn_->Copy("COPY " + qt + " (" + list + ") FROM STDIN", data); !s.ok())
          return fail(s);
        stats.rows[batch.table] += batch.rows.size();
        continue;
      }
    }
    if (Status s = conn_->Exec(create); !s.ok()) return fail(s);
    if (Status s = conn_->Copy("COPY " + stage + " (" + list + ") FROM STDIN", data); !s.ok())
      return fail(s);

    const std::string new_rows =
        " FROM " + stage + " s WHERE NOT EXISTS (SELECT 1 FROM " + qt + " t WHERE t.id = s.id)";
    std::string select;
    for (size_t i = 0; i < cols.size(); ++i)
      select += std::string(i ? ", " : "") + "s." + Quote(def.columns[cols[i]].first);
    uint64_t written = 0;
    if (batch.table == "users") {
      // Latest trait values win; a column the new identify lacks keeps its value.
      std::string set;
      for (size_t c : cols) {
        const std::string& name = def.columns[c].first;
        if (name == "id") continue;
        if (!set.empty()) set += ", ";
        set += Quote(name) + " = COALESCE(s." + Quote(name) + ", t." + Quote(name) + ")";
      }
      if (!set.empty()) {
        auto n = conn_->ExecCount("UPDATE " + qt + " t SET " + set + " FROM " + stage +
                                  " s WHERE t.id = s.id AND (t.received_at IS NULL OR "
                                  "s.received_at IS NULL OR s.received_at >= t.received_at)");
        if (!n.ok()) return fail(n.status());
        written += *n;
      }
    }
    auto n = conn_->ExecCount("INSERT INTO " + qt + " (" + list + ") SELECT " + select + new_rows);
    if (!n.ok()) return fail(n.status());
    written += *n;
    if (batch.table != "users") stats.duplicates += batch.rows.size() - *n;
    if (written) stats.rows[batch.table] += written;
  }

  std::vector<const Discard*> unique = UniqueDiscards(discards);
  if (!unique.empty()) {
    data.clear();
    for (const Discard* d : unique) {
      for (const std::string* f : {&d->table, &d->column, &d->value, &d->reason, &d->row_id}) {
        AppendCopyValue(*f, &data);
        data += '\t';
      }
      if (d->received_at.empty()) {
        data += "\\N";
      } else {
        data += d->received_at;
      }
      data += '\t';
      data += load_time;
      data += '\n';
    }
    const std::string qt = qs + ".discards";
    if (Status s = conn_->Exec("CREATE TEMPORARY TABLE sy_stage_discards (LIKE " + qt +
                               ") ON COMMIT DROP");
        !s.ok())
      return fail(s);
    if (Status s = conn_->Copy("COPY sy_stage_discards FROM STDIN", data); !s.ok()) return fail(s);
    auto n = conn_->ExecCount("INSERT INTO " + qt +
                              " SELECT * FROM sy_stage_discards s WHERE NOT EXISTS (SELECT 1 "
                              "FROM " +
                              qt +
                              " d WHERE d.row_id = s.row_id AND d.table_name = s.table_name AND "
                              "d.column_name = s.column_name)");
    if (!n.ok()) return fail(n.status());
    stats.discards += *n;
  }
  if (Status s = conn_->Exec("COMMIT"); !s.ok()) return fail(s);
  return stats;
}

}  // namespace sy::warehouse
