#include "warehouse/postgres_loader.h"

#include <cstring>

#include <libpq-fe.h>

#include <bit>
#include <charconv>
#include <cstdlib>
#include <map>
#include <optional>
#include <unordered_set>

#include "base/time_format.h"

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

// COPY binary format (PostgreSQL's "Binary Format" of COPY): a signature, then per tuple a
// 16-bit field count and per field a 32-bit length (-1: NULL) and the type's binary
// representation, all big-endian; -1 as the field count ends the data. Binary is what makes
// COPY cheap for the server: no timestamptz, float8 or int8 text to parse.
constexpr std::string_view kBinarySignature{"PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19};

void AppendBE(uint64_t v, size_t bytes, std::string* out) {
  char b[8];
  for (size_t i = 0; i < bytes; ++i)
    b[i] = static_cast<char>((v >> (8 * (bytes - 1 - i))) & 0xff);
  out->append(b, bytes);
}

// The PostgreSQL type names (format_type) that binary COPY writes for each column type.
std::string_view BinaryTypeName(ColumnType t) {
  return t == ColumnType::kTimestamp ? "timestamp with time zone" : PostgresColumnType(t);
}

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
constexpr int64_t kPgEpochMs = 946'684'800'000;

// One non-NULL field of a column of type `column` holding `cell` (whose type fits it:
// FitValue). False when the value does not convert (the mapper never produces one).
bool AppendBinaryField(const Cell& cell, ColumnType column, std::string* out) {
  const std::string_view v = cell.value;
  switch (column) {
    case ColumnType::kText:
      AppendBE(static_cast<uint32_t>(v.size()), 4, out);
      out->append(v);
      return true;
    case ColumnType::kBoolean:
      if (cell.type != ColumnType::kBoolean) return false;
      AppendBE(1, 4, out);
      *out += v == "true" ? '\1' : '\0';
      return true;
    case ColumnType::kInteger: {
      int64_t i = 0;
      if (cell.type != ColumnType::kInteger) return false;
      auto r = std::from_chars(v.data(), v.data() + v.size(), i);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return false;
      AppendBE(8, 4, out);
      AppendBE(static_cast<uint64_t>(i), 8, out);
      return true;
    }
    case ColumnType::kFloat: {
      double d = 0;
      if (cell.type != ColumnType::kInteger && cell.type != ColumnType::kFloat) return false;
      auto r = std::from_chars(v.data(), v.data() + v.size(), d);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return false;
      AppendBE(8, 4, out);
      AppendBE(std::bit_cast<uint64_t>(d), 8, out);
      return true;
    }
    case ColumnType::kTimestamp: {
      if (cell.type != ColumnType::kTimestamp) return false;
      std::optional<int64_t> ms = CanonicalTimestampMs(v);
      if (!ms) {
        auto t = ParseIso8601(v);
        if (!t) return false;
        ms = t->value();
      }
      AppendBE(8, 4, out);
      AppendBE(static_cast<uint64_t>((*ms - kPgEpochMs) * 1000), 8, out);
      return true;
    }
  }
  return false;
}

bool IsUniqueViolation(const PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return state && std::string_view(state) == "23505";
}

struct PgResult {
  PGresult* r;
  explicit PgResult(PGresult* res) : r(res) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() { PQclear(r); }
};

}  // namespace

std::string_view PostgresColumnType(ColumnType t) {
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

struct PostgresLoader::Conn {
  PGconn* pg = nullptr;
  ~Conn() {
    if (pg) PQfinish(pg);
  }

  // A failed statement whose SQLSTATE says the data or the schema was refused (class 22 data
  // exception, 23 integrity constraint, 42 syntax or name, e.g. 42P07 a relation that exists; not
  // 42501) is kInvalidArgument: the destination isolates the events that cause it. Anything else (a
  // lost connection, 53100 a full disk, a deadlock, a shutdown) is kUnavailable, retried.
  Status Error(std::string_view what, const PGresult* result = nullptr) const {
    std::string m = PQerrorMessage(pg);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
      m.pop_back();
    std::string message = "postgres: " + std::string(what) + ": " + m;
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    // 42501 (permission denied) is about the role, not the data: retried like an outage.
    if (state && std::strcmp(state, "42501") != 0 &&
        (std::strncmp(state, "22", 2) == 0 || std::strncmp(state, "23", 2) == 0 ||
         std::strncmp(state, "42", 2) == 0)) {
      return InvalidArgument(message + " (SQLSTATE " + state + ")");
    }
    return Unavailable(message);
  }

  // Runs statements with no result rows.
  Status Exec(const std::string& sql) {
    PgResult r(PQexec(pg, sql.c_str()));
    auto st = PQresultStatus(r.r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      return Error("in \"" + sql.substr(0, 160) + "\"", r.r);
    return Status::Ok();
  }

  Result<uint64_t> ExecCount(const std::string& sql) {
    PgResult r(PQexec(pg, sql.c_str()));
    if (PQresultStatus(r.r) != PGRES_COMMAND_OK)
      return Error("in \"" + sql.substr(0, 160) + "\"", r.r);
    return static_cast<uint64_t>(std::strtoull(PQcmdTuples(r.r), nullptr, 10));
  }

  // The first column of the rows `sql` (one text parameter) returns.
  Result<std::unordered_set<std::string>> Ids(const std::string& sql, const std::string& param) {
    const char* values[] = {param.c_str()};
    PgResult r(PQexecParams(pg, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
    if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return Error("in \"" + sql.substr(0, 160) + "\"");
    std::unordered_set<std::string> out;
    for (int i = 0; i < PQntuples(r.r); ++i)
      out.emplace(PQgetvalue(r.r, i, 0), static_cast<size_t>(PQgetlength(r.r, i, 0)));
    return out;
  }

  // COPY … FROM STDIN, its data sent while it is produced: `fill` appends to the buffer it is
  // given and returns false when done; whatever it appended is sent each time, so the server
  // parses one part while the next is encoded. `unique_violation` (may be null) tells a
  // duplicate id apart from other failures.
  template <typename Fill>
  Status Copy(const std::string& sql, std::string* buf, Fill fill,
              bool* unique_violation = nullptr) {
    {
      PgResult r(PQexec(pg, sql.c_str()));
      if (PQresultStatus(r.r) != PGRES_COPY_IN) return Error("COPY start", r.r);
    }
    Status result;
    bool more = true;
    while (more) {
      buf->clear();
      more = fill(buf);
      if (!buf->empty() && PQputCopyData(pg, buf->data(), static_cast<int>(buf->size())) != 1) {
        result = Error("COPY data");
        break;
      }
    }
    if (PQputCopyEnd(pg, result.ok() ? nullptr : "aborted by the loader") != 1 && result.ok())
      result = Error("COPY end");
    while (PGresult* res = PQgetResult(pg)) {
      PgResult r(res);
      if (PQresultStatus(res) != PGRES_COMMAND_OK && result.ok()) {
        if (unique_violation) *unique_violation = IsUniqueViolation(res);
        result = Error("COPY", res);
      }
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

Status PostgresLoader::Start() {
  SY_RETURN_IF_ERROR(Connect());
  const std::string qs = Quote(schema_);
  if (!schemas_.contains(schema_)) {
    SY_RETURN_IF_ERROR(conn_->Exec(
        "CREATE SCHEMA IF NOT EXISTS " + qs + "; CREATE TABLE IF NOT EXISTS " + qs +
        ".discards (table_name text, column_name text, column_value text, reason text, row_id "
        "text, received_at timestamptz, uuid_ts timestamptz); CREATE INDEX IF NOT EXISTS "
        "discards_row_id ON " +
        qs + ".discards (row_id)"));
    SchemaMap m;
    SY_RETURN_IF_ERROR(LoadSchema(schema_, &m));
    schemas_.emplace(schema_, std::move(m));
  }
  // The loader never analyzes its tables, and without statistics the planner takes the id
  // lookups (the probe, the anti-join, the users update) for sequential scans of the whole
  // table; the unique index on id is always the better plan for them.
  SY_RETURN_IF_ERROR(conn_->Exec("BEGIN; SET LOCAL enable_seqscan = off"));
  stats_ = LoadStats{};
  checked_.clear();
  found_any_ = false;
  return Status::Ok();
}

Status PostgresLoader::Begin(const std::string& source, std::string_view load_time) {
  if (open_) Abort();
  schema_ = SchemaFor(source);
  load_time_ = load_time;
  parts_.clear();
  path_ = next_path_;
  stale_ = false;
  stage_no_ = 0;
  SY_RETURN_IF_ERROR(Start());
  open_ = true;
  return Status::Ok();
}

void PostgresLoader::Abort() {
  if (!open_) return;
  open_ = false;
  parts_.clear();
  if (conn_ && PQstatus(conn_->pg) == CONNECTION_OK) {
    (void)conn_->Exec("ROLLBACK");
  } else {
    conn_.reset();
  }
  schemas_.erase(schema_);  // the plan changed it in memory only: read it again
}

Result<LoadStats> PostgresLoader::Commit() {
  if (!open_) return Internal("postgres: commit without a load");
  if (Status s = conn_->Exec("COMMIT"); !s.ok()) {
    Abort();
    return s;
  }
  open_ = false;
  parts_.clear();
  if (stale_) schemas_.erase(schema_);
  // Probe first while loads meet loaded ids (a replay); straight copies again once they do not.
  next_path_ = path_ == Path::kStaging || (path_ == Path::kProbe && found_any_) ? Path::kProbe
                                                                                : Path::kDirect;
  return std::move(stats_);
}

Status PostgresLoader::Add(std::vector<Row>& rows, std::vector<Discard>& discards) {
  if (!open_) return Internal("postgres: add without a load");
  parts_.push_back({&rows, &discards});
  bool conflict = false;
  Status s = Write(rows, discards, &conflict);
  if (s.ok() || !conflict) return s;
  // A direct COPY met an id already in the table: a redelivery or a replay (kDirect), or one a
  // concurrent loader committed after the probe (kProbe). The unique index failed it and the
  // transaction is aborted: write every part of it again, now probing for ids first (kDirect)
  // or through staging and the anti-join (kProbe), both of which skip ids already there.
  (void)conn_->Exec("ROLLBACK");
  schemas_.erase(schema_);  // DDL of the aborted transaction is gone
  path_ = path_ == Path::kDirect ? Path::kProbe : Path::kStaging;
  SY_RETURN_IF_ERROR(Start());
  for (const Part& p : parts_)
    SY_RETURN_IF_ERROR(Write(*p.rows, *p.discards, nullptr));
  return Status::Ok();
}

Status PostgresLoader::CheckTypes(const std::string& qt, const TableDef& def, bool* match) {
  // Called with the table locked by this transaction: no other transaction can change a
  // column's type until this one ends.
  *match = false;
  const char* values[] = {qt.c_str()};
  PgResult r(PQexecParams(conn_->pg,
                          "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                          "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                          1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return conn_->Error("reading column types");
  size_t found = 0;
  bool all = true;
  for (int i = 0; i < PQntuples(r.r); ++i) {
    auto it = def.index.find(PQgetvalue(r.r, i, 0));
    if (it == def.index.end()) continue;  // added by another loader; this batch lists its own
    ++found;
    const std::string_view type = PQgetvalue(r.r, i, 1);
    const ColumnType want = def.columns[it->second].second;
    if (type != BinaryTypeName(want)) {
      all = false;
      if (FromSqlType(type) != want) stale_ = true;  // changed since read: read it again
    }
  }
  *match = all && found == def.columns.size();
  return Status::Ok();
}

Status PostgresLoader::Write(std::vector<Row>& rows, std::vector<Discard>& discards,
                             bool* conflict) {
  const std::string qs = Quote(schema_);
  SchemaMap& tables = schemas_.at(schema_);
  for (const auto& c : PlanSchema(tables, rows, &discards, max_event_tables_, &stats_.capped)) {
    const std::string qt = qs + "." + Quote(c.table);
    std::string sql;
    switch (c.kind) {
      case SchemaChange::Kind::kCreateTable:
        sql = "CREATE TABLE " + qt + " (";
        for (size_t i = 0; i < c.columns.size(); ++i) {
          if (i) sql += ", ";
          sql += Quote(c.columns[i].first) + " " +
                 std::string(PostgresColumnType(c.columns[i].second));
        }
        sql += "); CREATE UNIQUE INDEX ON " + qt + " (id)";
        break;
      case SchemaChange::Kind::kAddColumn:
        sql = "ALTER TABLE " + qt + " ADD COLUMN " + Quote(c.column) + " " +
              std::string(PostgresColumnType(c.type));
        break;
      case SchemaChange::Kind::kWidenToFloat:
        sql = "ALTER TABLE " + qt + " ALTER COLUMN " + Quote(c.column) + " TYPE double precision";
        break;
    }
    SY_RETURN_IF_ERROR(conn_->Exec(sql));
    stats_.schema_changes++;
    if (c.kind == SchemaChange::Kind::kCreateTable) checked_.insert(c.table);  // ours, as planned
  }

  for (TableBatch& batch : GroupRows(rows, &stats_.duplicates)) {
    const TableDef& def = tables.at(batch.table);
    const std::string qt = qs + "." + Quote(batch.table);
    const std::string stage = "sy_stage_" + std::to_string(stage_no_++);
    // Rows go straight into the table (kDirect, kProbe) unless a conflict showed a concurrent
    // loader (kStaging); `users` always through staging (it is an upsert).
    bool direct = path_ != Path::kStaging && batch.table != "users";
    if (direct && path_ == Path::kProbe) {
      // The ids already in the table (a redelivery, a replay) are looked up by one index probe
      // and dropped as duplicates.
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
      SY_ASSIGN_OR_RETURN(auto found,
                          conn_->Ids("SELECT id FROM " + qt + " WHERE id = ANY($1::text[])", ids));
      if (!found.empty()) {
        found_any_ = true;
        const size_t before = batch.rows.size();
        std::erase_if(batch.rows, [&](const Row* r) { return found.contains(std::string(r->id)); });
        stats_.duplicates += before - batch.rows.size();
        if (batch.rows.empty()) continue;
      }
    }
    if (direct && !checked_.contains(batch.table)) {
      // Locked (in the mode COPY takes anyway) before its column types are read, so that no
      // other transaction changes them until this one ends.
      SY_RETURN_IF_ERROR(conn_->Exec("LOCK TABLE " + qt + " IN ROW EXCLUSIVE MODE"));
      bool match = false;
      SY_RETURN_IF_ERROR(CheckTypes(qt, def, &match));
      if (!match) {
        direct = false;  // not the types binary COPY writes: staging, whose INSERT casts
      } else {
        checked_.insert(batch.table);
      }
    }
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
    std::vector<int> slot(def.columns.size(), -1);  // column position → copied field
    std::string create = "CREATE TEMPORARY TABLE " + stage + " (";
    std::string list;
    for (size_t i = 0; i < def.columns.size(); ++i) {
      if (!used[i]) continue;
      slot[i] = static_cast<int>(cols.size());
      if (!cols.empty()) create += ", ", list += ", ";
      cols.push_back(i);
      create += Quote(def.columns[i].first) + " " +
                std::string(PostgresColumnType(def.columns[i].second));
      list += Quote(def.columns[i].first);
    }
    create += ") ON COMMIT DROP";

    // The rows in COPY binary format, typed as `def` says (the staging table is created so; the
    // table itself was checked to be so), sent in parts of about 256 KiB.
    Status encoded;
    std::vector<const Cell*> fields(cols.size());
    size_t next = 0;
    auto fill = [&](std::string* out) {
      if (next == 0) out->append(kBinarySignature);
      while (next < batch.rows.size() && out->size() < (size_t{256} << 10)) {
        const Row* row = batch.rows[next++];
        std::fill(fields.begin(), fields.end(), nullptr);
        for (size_t i = 0; i < row->cells.size(); ++i) {
          const Cell& cell = row->cells[i];
          if (!cell.discarded) fields[static_cast<size_t>(slot[position(i, cell)])] = &cell;
        }
        AppendBE(fields.size(), 2, out);
        for (size_t f = 0; f < fields.size(); ++f) {
          if (!fields[f]) {
            AppendBE(0xffffffffu, 4, out);
          } else if (!AppendBinaryField(*fields[f], def.columns[cols[f]].second, out) &&
                     encoded.ok()) {
            encoded = Internal("postgres: value of column " + def.columns[cols[f]].first +
                               " does not convert to its type");
            AppendBE(0xffffffffu, 4, out);
          }
        }
      }
      if (next < batch.rows.size()) return true;
      AppendBE(0xffff, 2, out);
      return false;
    };

    if (direct) {
      bool unique = false;
      Status s = conn_->Copy("COPY " + qt + " (" + list + ") FROM STDIN (FORMAT binary)", &buf_,
                             fill, &unique);
      SY_RETURN_IF_ERROR(encoded);
      if (!s.ok()) {
        if (conflict) *conflict = unique;
        return s;
      }
      stats_.rows[batch.table] += batch.rows.size();
      continue;
    }
    SY_RETURN_IF_ERROR(conn_->Exec(create));
    SY_RETURN_IF_ERROR(
        conn_->Copy("COPY " + stage + " (" + list + ") FROM STDIN (FORMAT binary)", &buf_, fill));
    SY_RETURN_IF_ERROR(encoded);

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
        SY_ASSIGN_OR_RETURN(uint64_t n,
                            conn_->ExecCount("UPDATE " + qt + " t SET " + set + " FROM " + stage +
                                             " s WHERE t.id = s.id AND (t.received_at IS NULL OR "
                                             "s.received_at IS NULL OR s.received_at >= "
                                             "t.received_at)"));
        written += n;
      }
    }
    SY_ASSIGN_OR_RETURN(uint64_t n, conn_->ExecCount("INSERT INTO " + qt + " (" + list +
                                                     ") SELECT " + select + new_rows));
    written += n;
    if (batch.table != "users") stats_.duplicates += batch.rows.size() - n;
    if (written) stats_.rows[batch.table] += written;
  }

  std::vector<const Discard*> unique = UniqueDiscards(discards);
  if (!unique.empty()) {
    std::string data;
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
      data += load_time_;
      data += '\n';
    }
    const std::string qt = qs + ".discards";
    const std::string stage = "sy_stage_" + std::to_string(stage_no_++);
    SY_RETURN_IF_ERROR(
        conn_->Exec("CREATE TEMPORARY TABLE " + stage + " (LIKE " + qt + ") ON COMMIT DROP"));
    bool sent = false;
    SY_RETURN_IF_ERROR(conn_->Copy("COPY " + stage + " FROM STDIN", &buf_, [&](std::string* out) {
      if (!sent) out->append(data);
      sent = true;
      return false;
    }));
    SY_ASSIGN_OR_RETURN(uint64_t n,
                        conn_->ExecCount("INSERT INTO " + qt + " SELECT * FROM " + stage +
                                         " s WHERE NOT EXISTS (SELECT 1 FROM " + qt +
                                         " d WHERE d.row_id = s.row_id AND d.table_name = "
                                         "s.table_name AND d.column_name = s.column_name)"));
    stats_.discards += n;
  }
  return Status::Ok();
}

}  // namespace sy::warehouse

namespace sy::warehouse {

Result<std::vector<TableRows>> PostgresLoader::ReadTableRows(
    const std::vector<std::string>& sources) const {
  std::vector<TableRows> out;
  if (sources.empty()) return out;
  // A connection of its own (the load's is the load thread's), closed on return. At most 5 s to
  // connect and to answer: the caller (the admin API's worker) must not hang on a database that
  // does not answer.
  const char* keys[] = {"dbname", "connect_timeout", "options", nullptr};
  const char* values[] = {dsn_.c_str(), "5", "-c statement_timeout=5000", nullptr};
  PGconn* pg = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  struct Finish {
    PGconn* pg;
    ~Finish() { PQfinish(pg); }
  } finish{pg};
  if (!pg) return Unavailable("postgres: out of memory");
  if (PQstatus(pg) != CONNECTION_OK)
    return Unavailable(std::string("postgres: connect: ") + PQerrorMessage(pg));
  std::map<std::string, std::string> source_of;  // schema → source
  std::string in;
  for (const std::string& source : sources) {
    const std::string schema = SchemaFor(source);
    source_of.emplace(schema, source);
    in += (in.empty() ? "" : ", ") + Literal(schema);
  }
  const std::string sql =
      "SELECT schemaname, relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname IN (" + in +
      ") ORDER BY schemaname, relname";
  PGresult* r = PQexec(pg, sql.c_str());
  struct Clear {
    PGresult* r;
    ~Clear() { PQclear(r); }
  } clear{r};
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    return Unavailable(std::string("postgres: reading table statistics: ") + PQerrorMessage(pg));
  for (int i = 0; i < PQntuples(r); ++i) {
    TableRows t{source_of[PQgetvalue(r, i, 0)], PQgetvalue(r, i, 1), 0};
    std::string_view n = PQgetvalue(r, i, 2);
    std::from_chars(n.data(), n.data() + n.size(), t.rows);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace sy::warehouse
