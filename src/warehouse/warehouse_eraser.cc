#include "warehouse/warehouse_eraser.h"

#include <sqlite3.h>

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "event/user_ids.h"
#include "warehouse/postgres_loader.h"

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

// The columns of one table that say whose its rows are.
struct TableShape {
  std::string name;
  bool id = false;
  bool user_id = false;
  bool anonymous_id = false;
  bool previous_id = false;
};

bool IsDependentTable(std::string_view t) {
  return t == "discards" || t == "violations";
}

// How one backend writes "this column's text is one of the users' userIds / anonymousIds".
struct IdLists {
  std::string user_ids;       // an SQL expression usable as `x IN <it>` or `x = ANY(<it>)`
  std::string anonymous_ids;  // likewise
  bool any_form = false;      // PostgreSQL: `= ANY(…)`; SQLite: `IN (…)`
  std::string text_cast_prefix, text_cast_suffix;  // CAST(x AS TEXT) / x::text
};

std::string AsText(const IdLists& l, std::string_view column) {
  return l.text_cast_prefix + Quote(column) + l.text_cast_suffix;
}

std::string In(const IdLists& l, const std::string& expr, const std::string& list) {
  return l.any_form ? expr + " = ANY(" + list + ")" : expr + " IN " + list;
}

// The WHERE condition of the users' rows in `t` ("" when the table has no column to match).
std::string MatchCondition(const TableShape& t, const IdLists& l, const privacy::UserSet& users) {
  std::vector<std::string> any;
  const bool has_users = !users.SortedUserIds().empty();
  const bool has_anonymous = !users.SortedAnonymousIds().empty();
  if (t.name == "users") {
    if (t.id && has_users) any.push_back(In(l, AsText(l, "id"), l.user_ids));
  }
  if (t.user_id && has_users) any.push_back(In(l, AsText(l, "user_id"), l.user_ids));
  if (t.anonymous_id && has_anonymous)
    any.push_back(In(l, AsText(l, "anonymous_id"), l.anonymous_ids));
  if (t.previous_id) {
    if (has_users) any.push_back(In(l, AsText(l, "previous_id"), l.user_ids));
    if (has_anonymous) any.push_back(In(l, AsText(l, "previous_id"), l.anonymous_ids));
  }
  std::string out;
  for (const auto& c : any)
    out += (out.empty() ? "(" : " OR ") + c;
  return out.empty() ? out : out + ")";
}

// The statements of one table's transaction, in order: its discards, its violations, its rows.
std::vector<std::string> TableStatements(const std::string& qualify_prefix, const TableShape& t,
                                         const std::string& match, bool has_discards,
                                         bool has_violations, const IdLists& l) {
  std::vector<std::string> out;
  const std::string table = qualify_prefix + Quote(t.name);
  if (t.id) {
    const std::string ids =
        "(SELECT " + AsText(l, "id") + " FROM " + table + " WHERE " + match + ")";
    if (has_discards) {
      // users' discards carry the userId as row_id; every other table's, the messageId.
      out.push_back(
          "DELETE FROM " + qualify_prefix + "discards WHERE row_id IN " + ids +
          (t.name == "users" ? " AND table_name = 'users'" : " AND table_name <> 'users'"));
    }
    if (has_violations && t.name != "users")
      out.push_back("DELETE FROM " + qualify_prefix + "violations WHERE event_id IN " + ids);
  }
  out.push_back("DELETE FROM " + table + " WHERE " + match);
  return out;
}

void Count(WarehouseEraseProgress& p, std::string_view source, std::string_view table, uint64_t n) {
  if (n == 0) return;
  p.rows_deleted += n;
  p.rows_per_table[std::string(source) + "." + std::string(table)] += n;
}

// ---- SQLite ------------------------------------------------------------------------------------

struct SqliteDb {
  sqlite3* db = nullptr;
  ~SqliteDb() {
    if (db) sqlite3_close_v2(db);
  }
  Status Error(std::string_view what) const {
    return IoError("sqlite: " + std::string(what) + ": " + sqlite3_errmsg(db));
  }
  // A lock held past the busy timeout (a long load) is transient: kUnavailable.
  Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string m = "sqlite: " + std::string(err ? err : "unknown error") +
                      " (in: " + sql.substr(0, 200) + ")";
      sqlite3_free(err);
      return (rc & 0xff) == SQLITE_BUSY ? Unavailable(std::move(m)) : IoError(std::move(m));
    }
    return Status::Ok();
  }
};

struct SqliteStmt {
  sqlite3_stmt* s = nullptr;
  ~SqliteStmt() { sqlite3_finalize(s); }
};

class SqliteEraser final : public WarehouseEraser {
 public:
  explicit SqliteEraser(std::string dir) : dir_(std::move(dir)) {}

  Status EraseUsers(const privacy::UserSet& users, WarehouseEraseProgress* progress) override {
    WarehouseEraseProgress local;
    WarehouseEraseProgress& p = progress ? *progress : local;
    if (users.empty()) return Status::Ok();
    std::error_code ec;
    if (!std::filesystem::exists(dir_, ec)) return Status::Ok();
    std::vector<std::pair<std::string, std::string>> dbs;  // source, path
    for (auto it = std::filesystem::directory_iterator(dir_, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > 7 && name.ends_with(".sqlite") && it->is_regular_file(ec))
        dbs.emplace_back(name.substr(0, name.size() - 7), it->path().string());
    }
    if (ec) return IoError("list " + dir_ + ": " + ec.message());
    std::sort(dbs.begin(), dbs.end());
    for (const auto& [source, path] : dbs) {
      SY_RETURN_IF_ERROR(EraseIn(source, path, users, p));
      ++p.sources;
    }
    return Status::Ok();
  }

 private:
  Status EraseIn(const std::string& source, const std::string& path, const privacy::UserSet& users,
                 WarehouseEraseProgress& p) {
    SqliteDb db;
    if (sqlite3_open_v2(path.c_str(), &db.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      return db.Error("cannot open " + path);
    }
    sqlite3_busy_timeout(db.db, 30'000);  // a load holds the write lock for one transaction
    // A committed deletion survives a power cut (synchronous is per connection), and the pages
    // it frees are zeroed, so the rows' bytes do not stay in the file.
    SY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON"));
    // The ids, in temporary tables (this connection only, never written to the file).
    SY_RETURN_IF_ERROR(
        db.Exec("CREATE TEMP TABLE sy_erase_user_ids (id TEXT PRIMARY KEY);"
                "CREATE TEMP TABLE sy_erase_anonymous_ids (id TEXT PRIMARY KEY)"));
    SY_RETURN_IF_ERROR(FillIds(db, "sy_erase_user_ids", users.SortedUserIds()));
    SY_RETURN_IF_ERROR(FillIds(db, "sy_erase_anonymous_ids", users.SortedAnonymousIds()));
    IdLists lists{.user_ids = "(SELECT id FROM temp.sy_erase_user_ids)",
                  .anonymous_ids = "(SELECT id FROM temp.sy_erase_anonymous_ids)",
                  .any_form = false,
                  .text_cast_prefix = "CAST(",
                  .text_cast_suffix = " AS TEXT)"};

    SY_ASSIGN_OR_RETURN(std::vector<TableShape> tables, Shapes(db));
    bool has_discards = false, has_violations = false;
    for (const auto& t : tables) {
      has_discards |= t.name == "discards";
      has_violations |= t.name == "violations";
    }
    for (const TableShape& t : tables) {
      ++p.tables_scanned;
      if (IsDependentTable(t.name)) continue;
      const std::string match = MatchCondition(t, lists, users);
      if (match.empty()) continue;
      SY_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
      Status s;
      for (const std::string& sql :
           TableStatements("main.", t, match, has_discards, has_violations, lists)) {
        s = db.Exec(sql);
        if (!s.ok()) break;
        const std::string_view target = sql.starts_with("DELETE FROM main.discards") ? "discards"
                                        : sql.starts_with("DELETE FROM main.violations")
                                            ? "violations"
                                            : std::string_view(t.name);
        Count(p, source, target, static_cast<uint64_t>(sqlite3_changes(db.db)));
      }
      if (s.ok()) s = db.Exec("COMMIT");
      if (!s.ok()) {
        (void)db.Exec("ROLLBACK");
        return s;
      }
      if (after_table_) after_table_(source, t.name);
    }
    if (has_discards) SY_RETURN_IF_ERROR(EraseRefused(db, source, users, p));
    // Moves the zeroed pages into the database file and empties the WAL, whose older frames may
    // still hold the rows. Best effort: a reader in the middle of a long query keeps the WAL.
    (void)db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return Status::Ok();
  }

  static Status FillIds(SqliteDb& db, const char* table, const std::vector<std::string>& ids) {
    SqliteStmt st;
    const std::string sql = std::string("INSERT OR IGNORE INTO temp.") + table + " VALUES (?)";
    if (sqlite3_prepare_v2(db.db, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
      return db.Error("prepare");
    for (const auto& id : ids) {
      sqlite3_bind_text(st.s, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      if (sqlite3_step(st.s) != SQLITE_DONE) return db.Error("insert id");
      sqlite3_reset(st.s);
    }
    return Status::Ok();
  }

  static Result<std::vector<TableShape>> Shapes(SqliteDb& db) {
    std::vector<TableShape> out;
    {
      SqliteStmt st;
      if (sqlite3_prepare_v2(
              db.db,
              "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT "
              "LIKE 'sqlite_%' ORDER BY name",
              -1, &st.s, nullptr) != SQLITE_OK) {
        return db.Error("list tables");
      }
      while (sqlite3_step(st.s) == SQLITE_ROW) {
        TableShape t;
        t.name = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
        out.push_back(std::move(t));
      }
    }
    for (TableShape& t : out) {
      SqliteStmt st;
      const std::string sql = "PRAGMA main.table_info(" + Quote(t.name) + ")";
      if (sqlite3_prepare_v2(db.db, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
        return db.Error("table_info");
      while (sqlite3_step(st.s) == SQLITE_ROW) {
        const char* c = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
        std::string_view col = c ? c : "";
        t.id |= col == "id";
        t.user_id |= col == "user_id";
        t.anonymous_id |= col == "anonymous_id";
        t.previous_id |= col == "previous_id" && t.name == "aliases";
      }
    }
    return out;
  }

  // Discards holding a whole event the database refused: matched by the ids in its JSON.
  Status EraseRefused(SqliteDb& db, const std::string& source, const privacy::UserSet& users,
                      WarehouseEraseProgress& p) {
    SY_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    std::vector<int64_t> rowids;
    {
      SqliteStmt st;
      if (sqlite3_prepare_v2(db.db,
                             "SELECT rowid, column_value FROM main.discards WHERE table_name = ''",
                             -1, &st.s, nullptr) != SQLITE_OK) {
        (void)db.Exec("ROLLBACK");
        return db.Error("select refused events");
      }
      event::EventUserIds ids;
      while (sqlite3_step(st.s) == SQLITE_ROW) {
        const char* v = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
        std::string_view json(v ? v : "",
                              v ? static_cast<size_t>(sqlite3_column_bytes(st.s, 1)) : 0);
        if (event::ReadEventUserIds(json, &ids) && users.Contains(ids.user_id, ids.anonymous_id))
          rowids.push_back(sqlite3_column_int64(st.s, 0));
      }
    }
    uint64_t n = 0;
    Status s;
    for (int64_t rowid : rowids) {
      s = db.Exec("DELETE FROM main.discards WHERE rowid = " + std::to_string(rowid));
      if (!s.ok()) break;
      n += static_cast<uint64_t>(sqlite3_changes(db.db));
    }
    if (s.ok()) s = db.Exec("COMMIT");
    if (!s.ok()) {
      (void)db.Exec("ROLLBACK");
      return s;
    }
    Count(p, source, "discards", n);
    if (after_table_) after_table_(source, "discards");
    return Status::Ok();
  }

  std::string dir_;
};

// ---- PostgreSQL --------------------------------------------------------------------------------

struct PgResult {
  PGresult* r;
  explicit PgResult(PGresult* res) : r(res) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() { PQclear(r); }
};

// A text[] literal ('{"a","b"}'), every element quoted and escaped.
std::string TextArray(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : ids[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

class PostgresEraser final : public WarehouseEraser {
 public:
  PostgresEraser(std::string dsn, std::vector<std::string> sources)
      : dsn_(std::move(dsn)), sources_(std::move(sources)) {}
  ~PostgresEraser() override {
    if (pg_) PQfinish(pg_);
  }

  Status EraseUsers(const privacy::UserSet& users, WarehouseEraseProgress* progress) override {
    WarehouseEraseProgress local;
    WarehouseEraseProgress& p = progress ? *progress : local;
    if (users.empty()) return Status::Ok();
    SY_RETURN_IF_ERROR(Connect());
    params_[0] = TextArray(users.SortedUserIds());
    params_[1] = TextArray(users.SortedAnonymousIds());
    IdLists lists{.user_ids = "$1::text[]",
                  .anonymous_ids = "$2::text[]",
                  .any_form = true,
                  .text_cast_prefix = "",
                  .text_cast_suffix = "::text"};
    std::set<std::string> done;
    for (const std::string& source : sources_) {
      const std::string schema = PostgresLoader::SchemaFor(source);
      if (!done.insert(schema).second) continue;
      SY_ASSIGN_OR_RETURN(std::vector<TableShape> tables, Shapes(schema));
      if (tables.empty()) continue;  // no such schema: nothing was loaded for this source
      ++p.sources;
      bool has_discards = false, has_violations = false;
      for (const auto& t : tables) {
        has_discards |= t.name == "discards";
        has_violations |= t.name == "violations";
      }
      const std::string prefix = Quote(schema) + ".";
      for (const TableShape& t : tables) {
        ++p.tables_scanned;
        if (IsDependentTable(t.name)) continue;
        const std::string match = MatchCondition(t, lists, users);
        if (match.empty()) continue;
        SY_RETURN_IF_ERROR(Exec("BEGIN", false).status());
        Status s;
        for (const std::string& sql :
             TableStatements(prefix, t, match, has_discards, has_violations, lists)) {
          auto n = Exec(sql, true);
          if (!n.ok()) {
            s = n.status();
            break;
          }
          const std::string_view target =
              sql.starts_with("DELETE FROM " + prefix + "discards")     ? "discards"
              : sql.starts_with("DELETE FROM " + prefix + "violations") ? "violations"
                                                                        : std::string_view(t.name);
          Count(p, source, target, *n);
        }
        if (s.ok()) s = Exec("COMMIT", false).status();
        if (!s.ok()) {
          (void)Exec("ROLLBACK", false);
          return s;
        }
        if (after_table_) after_table_(source, t.name);
      }
      if (has_discards) SY_RETURN_IF_ERROR(EraseRefused(prefix, source, users, p));
    }
    return Status::Ok();
  }

 private:
  Status Error(std::string_view what, PGresult* r = nullptr) {
    std::string m = r ? PQresultErrorMessage(r) : PQerrorMessage(pg_);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
      m.pop_back();
    return Unavailable("postgres: " + std::string(what) + ": " + m);
  }

  Status Connect() {
    if (pg_ && PQstatus(pg_) == CONNECTION_OK) return Status::Ok();
    if (pg_) PQfinish(pg_);
    pg_ = PQconnectdb(dsn_.c_str());
    if (!pg_) return Unavailable("postgres: out of memory");
    if (PQstatus(pg_) != CONNECTION_OK) return Error("connect");
    return Status::Ok();
  }

  // Runs `sql`; with `with_ids`, $1 and $2 are the userIds and anonymousIds. The rows it
  // changed.
  Result<uint64_t> Exec(const std::string& sql, bool with_ids) {
    const char* values[] = {params_[0].c_str(), params_[1].c_str()};
    // Typed text[] (OID 1009): a statement that uses only one of them is still valid.
    const Oid types[] = {1009, 1009};
    PgResult r(with_ids ? PQexecParams(pg_, sql.c_str(), 2, types, values, nullptr, nullptr, 0)
                        : PQexec(pg_, sql.c_str()));
    auto st = PQresultStatus(r.r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      return Error("in \"" + sql.substr(0, 160) + "\"", r.r);
    return static_cast<uint64_t>(std::strtoull(PQcmdTuples(r.r), nullptr, 10));
  }

  Result<std::vector<TableShape>> Shapes(const std::string& schema) {
    const char* values[] = {schema.c_str()};
    PgResult r(PQexecParams(
        pg_,
        "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN "
        "information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = "
        "c.table_name WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' ORDER BY "
        "c.table_name",
        1, nullptr, values, nullptr, nullptr, 0));
    if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return Error("reading the schema", r.r);
    std::vector<TableShape> out;
    for (int i = 0; i < PQntuples(r.r); ++i) {
      std::string table = PQgetvalue(r.r, i, 0);
      std::string_view col = PQgetvalue(r.r, i, 1);
      if (out.empty() || out.back().name != table) out.push_back({.name = std::move(table)});
      TableShape& t = out.back();
      t.id |= col == "id";
      t.user_id |= col == "user_id";
      t.anonymous_id |= col == "anonymous_id";
      t.previous_id |= col == "previous_id" && t.name == "aliases";
    }
    return out;
  }

  // Discards holding a whole event the database refused: matched by the ids in its JSON, the
  // rows locked (FOR UPDATE) so their ctid stays valid until the DELETE.
  Status EraseRefused(const std::string& prefix, const std::string& source,
                      const privacy::UserSet& users, WarehouseEraseProgress& p) {
    SY_RETURN_IF_ERROR(Exec("BEGIN", false).status());
    auto fail = [&](Status s) {
      (void)Exec("ROLLBACK", false);
      return s;
    };
    std::string ctids;
    {
      const std::string sql = "SELECT ctid::text, column_value FROM " + prefix +
                              "discards WHERE table_name = '' FOR UPDATE";
      PgResult r(PQexec(pg_, sql.c_str()));
      if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return fail(Error("refused events", r.r));
      event::EventUserIds ids;
      for (int i = 0; i < PQntuples(r.r); ++i) {
        std::string_view json(PQgetvalue(r.r, i, 1), static_cast<size_t>(PQgetlength(r.r, i, 1)));
        if (!event::ReadEventUserIds(json, &ids) || !users.Contains(ids.user_id, ids.anonymous_id))
          continue;
        ctids += (ctids.empty() ? "'" : ",'");
        ctids += PQgetvalue(r.r, i, 0);  // "(block,offset)": digits, a comma and parentheses
        ctids += "'::tid";
      }
    }
    uint64_t n = 0;
    if (!ctids.empty()) {
      auto deleted =
          Exec("DELETE FROM " + prefix + "discards WHERE ctid IN (" + ctids + ")", false);
      if (!deleted.ok()) return fail(deleted.status());
      n = *deleted;
    }
    SY_RETURN_IF_ERROR(Exec("COMMIT", false).status());
    Count(p, source, "discards", n);
    if (after_table_) after_table_(source, "discards");
    return Status::Ok();
  }

  std::string dsn_;
  std::vector<std::string> sources_;
  PGconn* pg_ = nullptr;
  std::string params_[2];
};

}  // namespace

std::string WarehouseEraseProgress::Summary() const {
  std::string out = "rows_deleted=" + std::to_string(rows_deleted) +
                    " sources=" + std::to_string(sources) +
                    " tables=" + std::to_string(tables_scanned);
  for (const auto& [table, n] : rows_per_table)
    out += " " + table + "=" + std::to_string(n);
  return out;
}

std::unique_ptr<WarehouseEraser> NewSqliteEraser(std::string dir) {
  return std::make_unique<SqliteEraser>(std::move(dir));
}

std::unique_ptr<WarehouseEraser> NewPostgresEraser(std::string dsn,
                                                   std::vector<std::string> sources) {
  return std::make_unique<PostgresEraser>(std::move(dsn), std::move(sources));
}

Result<std::unique_ptr<WarehouseEraser>> NewWarehouseEraserFor(
    const config::DestinationConfig& destination, const std::vector<std::string>& all_sources) {
  auto setting = [&](std::string_view key) -> std::string {
    for (const auto& raw : destination.settings) {
      if (raw.key == key && raw.kind == config::RawSetting::Kind::kScalar) return raw.scalar;
    }
    return "";
  };
  if (destination.type == "sqlite") {
    std::string path = setting("path");
    return NewSqliteEraser(path.empty() ? "./data/warehouse" : path);  // the type's default
  }
  if (destination.type == "postgres") {
    std::string dsn = setting("dsn");
    if (dsn.empty()) return InvalidArgument("destination " + destination.name + ": no dsn");
    return NewPostgresEraser(std::move(dsn),
                             destination.sources.empty() ? all_sources : destination.sources);
  }
  return InvalidArgument("destination " + destination.name + " (type " + destination.type +
                         ") is not a warehouse");
}

}  // namespace sy::warehouse
