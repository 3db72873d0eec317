#include "warehouse/sqlite_loader.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <unordered_set>

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

ColumnType FromSqlType(std::string_view t) {
  if (t == "BOOLEAN") return ColumnType::kBoolean;
  if (t == "INTEGER") return ColumnType::kInteger;
  if (t == "REAL") return ColumnType::kFloat;
  if (t == "TIMESTAMP") return ColumnType::kTimestamp;
  return ColumnType::kText;
}

// What a failed statement says about the load: a refusal of this data or schema (a name
// collision, a constraint, a value SQLite will not take) is kInvalidArgument, which the
// destination answers by isolating the events that cause it (warehouse_destination.h); the
// rest (a full disk, I/O, a lock held too long, no memory) is about the database, kIoError,
// retried with backoff.
Status Classified(int code, std::string message) {
  switch (code & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return InvalidArgument(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

std::string_view SqliteColumnType(ColumnType t) {
  switch (t) {
    case ColumnType::kBoolean:
      return "BOOLEAN";
    case ColumnType::kInteger:
      return "INTEGER";
    case ColumnType::kFloat:
      return "REAL";
    case ColumnType::kTimestamp:
      return "TIMESTAMP";
    case ColumnType::kText:
      return "TEXT";
  }
  return "TEXT";
}

struct SqliteLoader::Db {
  sqlite3* db = nullptr;
  SchemaMap schema;
  bool schema_loaded = false;
  // Prepared insert per table, over all of its columns; dropped when the table changes.
  struct Insert {
    std::unique_ptr<Stmt> stmt;
  };
  std::map<std::string, Insert, std::less<>> inserts;
  std::unique_ptr<Stmt> discard;

  ~Db() {
    inserts.clear();
    discard.reset();
    if (db) sqlite3_close_v2(db);
  }

  Status Error(std::string_view what) const {
    return Classified(sqlite3_extended_errcode(db), std::string(what) + ": " + sqlite3_errmsg(db));
  }

  Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string m = err ? err : "unknown error";
      sqlite3_free(err);
      return Classified(rc, "sqlite: " + m + " (in: " + sql.substr(0, 200) + ")");
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Stmt>> Prepare(const std::string& sql) {
    auto st = std::make_unique<Stmt>();
    if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &st->s, nullptr) != SQLITE_OK) {
      return Error("sqlite prepare");
    }
    return st;
  }

  Status LoadSchema() {
    schema.clear();
    inserts.clear();
    SY_ASSIGN_OR_RETURN(auto tables,
                        Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                                "NOT LIKE 'sqlite_%'"));
    std::vector<std::string> names;
    while (sqlite3_step(tables->s) == SQLITE_ROW)
      names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(tables->s, 0)));
    for (const auto& name : names) {
      SY_ASSIGN_OR_RETURN(auto cols, Prepare("PRAGMA table_info(" + Quote(name) + ")"));
      TableDef def;
      def.name = name;
      while (sqlite3_step(cols->s) == SQLITE_ROW) {
        const char* col = reinterpret_cast<const char*>(sqlite3_column_text(cols->s, 1));
        const char* type = reinterpret_cast<const char*>(sqlite3_column_text(cols->s, 2));
        def.Add(col ? col : "", FromSqlType(type ? type : ""));
      }
      schema.emplace(name, std::move(def));
    }
    schema_loaded = true;
    return Status::Ok();
  }
};

SqliteLoader::SqliteLoader(std::string dir) : dir_(std::move(dir)) {
  // No memory statistics: they take a global mutex on every allocation. Only possible before
  // SQLite initializes; later calls fail harmlessly.
  static const int kConfigured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kConfigured;
}
SqliteLoader::~SqliteLoader() = default;

std::string SqliteLoader::PathFor(const std::string& dir, const std::string& source) {
  return dir + "/" + source + ".sqlite";
}

Result<SqliteLoader::Db*> SqliteLoader::Open(const std::string& source) {
  auto it = dbs_.find(source);
  if (it != dbs_.end()) return it->second.get();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IoError("cannot create warehouse directory " + dir_ + ": " + ec.message());
  auto db = std::make_unique<Db>();
  std::string path = PathFor(dir_, source);
  if (sqlite3_open_v2(path.c_str(), &db->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = db->Error("cannot open " + path);
    return s;
  }
  sqlite3_busy_timeout(db->db, 10'000);
  SY_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  SY_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  // 32 MiB of page cache (default 2 MiB): the id indexes of big tables stay in memory.
  SY_RETURN_IF_ERROR(db->Exec("PRAGMA cache_size=-32768"));
  SY_RETURN_IF_ERROR(
      db->Exec("CREATE TABLE IF NOT EXISTS discards (table_name TEXT, column_name TEXT, "
               "column_value TEXT, reason TEXT, row_id TEXT, received_at TIMESTAMP, uuid_ts "
               "TIMESTAMP);"
               "CREATE UNIQUE INDEX IF NOT EXISTS discards_key ON discards (row_id, table_name, "
               "column_name)"));
  SY_ASSIGN_OR_RETURN(db->discard, db->Prepare("INSERT OR IGNORE INTO discards VALUES "
                                               "(?, ?, ?, ?, ?, ?, ?)"));
  Db* p = db.get();
  dbs_.emplace(source, std::move(db));
  return p;
}

Status SqliteLoader::Begin(const std::string& source, std::string_view load_time) {
  if (open_) Abort();
  SY_ASSIGN_OR_RETURN(Db * db, Open(source));
  if (!db->schema_loaded) SY_RETURN_IF_ERROR(db->LoadSchema());
  SY_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  open_ = db;
  load_time_ = load_time;
  stats_ = LoadStats{};
  return Status::Ok();
}

void SqliteLoader::Abort() {
  if (!open_) return;
  (void)open_->Exec("ROLLBACK");
  // The plan may have changed the schema in memory only: read it again next time.
  open_->schema_loaded = false;
  open_ = nullptr;
}

Result<LoadStats> SqliteLoader::Commit() {
  if (!open_) return Internal("sqlite: commit without a load");
  if (Status s = open_->Exec("COMMIT"); !s.ok()) {
    Abort();
    return s;
  }
  open_ = nullptr;
  return std::move(stats_);
}

Status SqliteLoader::Add(std::vector<Row>& rows, std::vector<Discard>& discards) {
  if (!open_) return Internal("sqlite: add without a load");
  Db* db = open_;
  LoadStats& stats = stats_;
  const std::string_view load_time = load_time_;
  std::vector<SchemaChange> changes =
      PlanSchema(db->schema, rows, &discards, max_event_tables_, &stats.capped);
  for (const auto& c : changes) {
    std::string sql;
    switch (c.kind) {
      case SchemaChange::Kind::kCreateTable: {
        sql = "CREATE TABLE " + Quote(c.table) + " (";
        for (size_t i = 0; i < c.columns.size(); ++i) {
          if (i) sql += ", ";
          sql +=
              Quote(c.columns[i].first) + " " + std::string(SqliteColumnType(c.columns[i].second));
        }
        sql += "); CREATE UNIQUE INDEX " + Quote(c.table + "_id_key") + " ON " + Quote(c.table) +
               " (id)";
        break;
      }
      case SchemaChange::Kind::kAddColumn:
        sql = "ALTER TABLE " + Quote(c.table) + " ADD COLUMN " + Quote(c.column) + " " +
              std::string(SqliteColumnType(c.type));
        break;
      case SchemaChange::Kind::kWidenToFloat:
        continue;  // INTEGER affinity stores REAL values as they are (see the header)
    }
    if (Status s = db->Exec(sql); !s.ok()) return s;
    db->inserts.erase(c.table);
    stats.schema_changes++;
  }

  for (TableBatch& batch : GroupRows(rows, &stats.duplicates)) {
    const TableDef& def = db->schema.at(batch.table);
    auto ins = db->inserts.find(batch.table);
    if (ins == db->inserts.end()) {
      std::string cols, params;
      for (size_t i = 0; i < def.columns.size(); ++i) {
        if (i) cols += ", ", params += ", ";
        cols += Quote(def.columns[i].first);
        params += "?";
      }
      std::string sql;
      if (batch.table == "users") {
        // Latest trait values win; a column the new identify lacks keeps its value.
        sql = "INSERT INTO users (" + cols + ") VALUES (" + params +
              ") ON CONFLICT (id) DO UPDATE SET ";
        bool first = true;
        for (const auto& [name, type] : def.columns) {
          if (name == "id") continue;
          if (!first) sql += ", ";
          first = false;
          sql +=
              Quote(name) + " = coalesce(excluded." + Quote(name) + ", users." + Quote(name) + ")";
        }
        sql +=
            " WHERE users.received_at IS NULL OR excluded.received_at IS NULL OR "
            "excluded.received_at >= users.received_at";
      } else {
        sql = "INSERT OR IGNORE INTO " + Quote(batch.table) + " (" + cols + ") VALUES (" + params +
              ")";
      }
      auto st = db->Prepare(sql);
      if (!st.ok()) return st.status();
      ins = db->inserts.emplace(batch.table, Db::Insert{std::move(*st)}).first;
    }
    sqlite3_stmt* s = ins->second.stmt->s;
    // Rows of one kind list the same interned column names in the same order.
    std::vector<std::pair<const char*, int>> last;
    uint64_t written = 0;
    // Bindings outlive a step: only the parameters the previous row set and this one does not
    // are set back to NULL (rows of one kind set the same ones), not all of them every row.
    sqlite3_clear_bindings(s);
    std::vector<int> set_now, set_before;
    for (Row* row : batch.rows) {
      set_before.swap(set_now);
      set_now.clear();
      for (size_t i = 0; i < row->cells.size(); ++i) {
        const Cell& cell = row->cells[i];
        if (cell.discarded) continue;
        int param;
        if (i < last.size() && last[i].first == cell.column.data()) {
          param = last[i].second;
        } else {
          auto col = def.index.find(std::string(cell.column));
          if (col == def.index.end())
            return Internal("column not planned: " + std::string(cell.column));
          param = static_cast<int>(col->second) + 1;
          if (i >= last.size()) last.resize(i + 1, {nullptr, 0});
          last[i] = {cell.column.data(), param};
        }
        const ColumnType type = def.columns[static_cast<size_t>(param - 1)].second;
        int rc;
        if (type == ColumnType::kInteger && cell.type == ColumnType::kInteger) {
          int64_t v = 0;
          std::from_chars(cell.value.data(), cell.value.data() + cell.value.size(), v);
          rc = sqlite3_bind_int64(s, param, v);
        } else if (type == ColumnType::kInteger || type == ColumnType::kFloat) {
          double v = 0;
          std::from_chars(cell.value.data(), cell.value.data() + cell.value.size(), v);
          rc = sqlite3_bind_double(s, param, v);
        } else if (type == ColumnType::kBoolean) {
          rc = sqlite3_bind_int(s, param, cell.value == "true" ? 1 : 0);
        } else {
          rc = sqlite3_bind_text(s, param, cell.value.data(), static_cast<int>(cell.value.size()),
                                 SQLITE_STATIC);
        }
        if (rc != SQLITE_OK) return db->Error("sqlite bind");
        set_now.push_back(param);
      }
      if (set_now != set_before) {
        for (int p : set_before) {
          if (std::find(set_now.begin(), set_now.end(), p) == set_now.end())
            sqlite3_bind_null(s, p);
        }
      }
      int rc = sqlite3_step(s);
      sqlite3_reset(s);
      if (rc != SQLITE_DONE) return db->Error("sqlite insert into " + batch.table);
      if (sqlite3_changes(db->db) > 0) {
        ++written;
      } else {
        ++stats.duplicates;
      }
    }
    if (written) stats.rows[batch.table] += written;
  }

  sqlite3_stmt* d = db->discard->s;
  for (const Discard* x : UniqueDiscards(discards)) {
    sqlite3_bind_text(d, 1, x->table.data(), static_cast<int>(x->table.size()), SQLITE_STATIC);
    sqlite3_bind_text(d, 2, x->column.data(), static_cast<int>(x->column.size()), SQLITE_STATIC);
    sqlite3_bind_text(d, 3, x->value.data(), static_cast<int>(x->value.size()), SQLITE_STATIC);
    sqlite3_bind_text(d, 4, x->reason.data(), static_cast<int>(x->reason.size()), SQLITE_STATIC);
    sqlite3_bind_text(d, 5, x->row_id.data(), static_cast<int>(x->row_id.size()), SQLITE_STATIC);
    if (x->received_at.empty()) {
      sqlite3_bind_null(d, 6);
    } else {
      sqlite3_bind_text(d, 6, x->received_at.data(), static_cast<int>(x->received_at.size()),
                        SQLITE_STATIC);
    }
    sqlite3_bind_text(d, 7, load_time.data(), static_cast<int>(load_time.size()), SQLITE_STATIC);
    int rc = sqlite3_step(d);
    sqlite3_reset(d);
    if (rc != SQLITE_DONE) return db->Error("sqlite insert into discards");
    if (sqlite3_changes(db->db) > 0) stats.discards++;
  }
  return Status::Ok();
}

std::vector<const Discard*> UniqueDiscards(const std::vector<Discard>& discards) {
  std::vector<const Discard*> out;
  std::unordered_set<std::string> seen;
  for (const Discard& d : discards) {
    std::string key = d.row_id + '\x01' + d.table + '\x01' + d.column;
    if (seen.insert(std::move(key)).second) out.push_back(&d);
  }
  return out;
}

}  // namespace sy::warehouse

namespace sy::warehouse {

Result<std::vector<TableRows>> SqliteLoader::ReadTableRows(
    const std::vector<std::string>& sources) const {
  std::vector<TableRows> out;
  for (const std::string& source : sources) {
    const std::string path = PathFor(dir_, source);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;  // never loaded
    sqlite3* db = nullptr;
    struct Close {
      sqlite3*& db;
      ~Close() { sqlite3_close_v2(db); }
    } close{db};
    // Read-only, its own handle: WAL lets it read the last committed load while one runs.
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      return IoError("cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
    }
    sqlite3_busy_timeout(db, 1'000);
    auto query = [&](const std::string& sql, auto&& row) -> Status {
      Stmt st;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
        return IoError(path + ": " + sqlite3_errmsg(db));
      int rc;
      while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
        row(st.s);
      if (rc != SQLITE_DONE) return IoError(path + ": " + sqlite3_errmsg(db));
      return Status::Ok();
    };
    std::vector<std::string> tables;
    SY_RETURN_IF_ERROR(
        query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
              "ORDER BY name",
              [&](sqlite3_stmt* s) {
                tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
              }));
    for (const std::string& t : tables) {
      TableRows tr{source, t, 0};
      SY_RETURN_IF_ERROR(query("SELECT max(rowid) FROM " + Quote(t), [&](sqlite3_stmt* s) {
        tr.rows = static_cast<uint64_t>(std::max<sqlite3_int64>(sqlite3_column_int64(s, 0), 0));
      }));
      out.push_back(std::move(tr));
    }
  }
  return out;
}

}  // namespace sy::warehouse
