// Segment's warehouse schema, as a pure mapping shared by every loader (SQLite, PostgreSQL):
// one stored event (Segment message JSON) → the rows it becomes (`tracks` + the event's own
// table, `identifies` + `users`, `pages`, `screens`, `groups`, `aliases`), their flattened
// snake_case columns and inferred types; and the planner that reconciles a batch of rows with
// the tables as they are (new tables, new columns, integer → float widening) and moves every
// value that cannot be stored to `discards`. See docs/warehouse.md for the rules and why.
//
// No I/O and no clock: the load time (`uuid_ts`) is passed in, so everything here is
// golden-testable. Threads: an EventMapper is thread-compatible (one per loader thread); the
// free functions are reentrant.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"

namespace sy::warehouse {

// Logical column types. Loaders map them to their SQL types (docs/warehouse.md).
enum class ColumnType : uint8_t { kBoolean, kInteger, kFloat, kTimestamp, kText };
std::string_view ColumnTypeName(
    ColumnType t);  // "boolean", "integer", "float", "timestamp", "text"

// PostgreSQL's limits, enforced for every backend so a schema loads anywhere (Redshift allows
// 127-character names; PostgreSQL truncates at 63 and would merge two long names silently).
inline constexpr size_t kMaxIdentifierChars = 63;
inline constexpr size_t kMaxColumnsPerTable = 1600;

// Segment's go-snakecase: words split at non-alphanumerics, at a lower-case letter or digit
// followed by an upper-case one, and before the last capital of an acronym followed by a
// lower-case letter ("HTTPRequest" → "http_request"); lower-cased, joined with '_'. Characters
// other than ASCII letters and digits are separators ("$something%" → "something").
std::string SnakeCase(std::string_view name);

// True for SQL reserved words of PostgreSQL and Redshift (lower-case input).
bool IsReservedWord(std::string_view name);

// A name made safe as an identifier: snake_case, then `_` prefixed to reserved words and to
// names starting with a digit ("open" → "_open", "3 doctors" → "_3_doctors").
std::string SafeName(std::string_view raw);

// Milliseconds since the Unix epoch of a timestamp already in the mapper's canonical form
// "YYYY-MM-DDTHH:MM:SS.mmmZ" (years 1900–9999, a valid date and time), by fixed positions;
// nullopt for anything else (ParseIso8601 handles the general case). What JavaScript's
// toISOString, hence most SDKs, send: the common case of the mapping and of the loaders.
std::optional<int64_t> CanonicalTimestampMs(std::string_view s);

// The tables every source has; an event whose slug is one of them gets a `_` prefix.
bool IsSystemTable(std::string_view table);

// The table of a track event's own rows (docs/warehouse.md, "Reserved table names"): its SafeName,
// with `_` prefixed to the tables every source has (`tracks` → `_tracks`) and to the databases'
// own prefixes (`sqlite_stat1` → `_sqlite_stat1`, `pg_class` → `_pg_class`), and `_` appended to
// names the loaders give their indexes (`tracks_id_key` → `tracks_id_key_`, `pages_id_idx` →
// `pages_id_idx_`, `discards_key`, `discards_row_id`). "" when the name has no letters or digits.
// Never equal to any name a loader creates for itself, whatever events came before.
std::string EventTableName(std::string_view event);

// Bytes that live as long as the rows pointing into them: values are appended to big chunks
// instead of one allocation each (the mapping's main cost before). Never reallocates a chunk,
// so views stay valid; movable, not copyable.
class Arena {
 public:
  Arena() = default;
  Arena(Arena&&) = default;
  Arena& operator=(Arena&&) = default;
  std::string_view Copy(std::string_view s);

 private:
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t used_ = 0;
  size_t capacity_ = 0;
};

struct Cell {
  std::string_view column;  // interned by the EventMapper; valid until its next MaybeTrim()
  ColumnType type = ColumnType::kText;
  bool discarded = false;  // set by the planner: stored as NULL, the value is in `discards`
  std::string_view value;  // canonical text (timestamps "YYYY-MM-DDTHH:MM:SS.mmmZ"), in the
                           // MappedEvent's arena (or static)
};

struct Row {
  std::string table;
  // In the MappedEvent's arena (or static), like the cells' values: no allocation per row.
  std::string_view id;           // messageId (users: userId)
  std::string_view received_at;  // ISO-8601 (for discards)
  bool upsert = false;           // users: merged into the row with this id instead of deduped
  std::vector<Cell> cells;       // one per column, no duplicates, `id` first
  const Cell* Find(std::string_view column) const;
};

// A value that could not be stored where it belonged (docs/warehouse.md, "Discards").
struct Discard {
  std::string table;
  std::string column;
  std::string value;
  std::string reason;
  std::string row_id;
  std::string received_at;
};

struct MappedEvent {
  std::vector<Row> rows;
  std::vector<Discard> discards;
  Arena arena;  // the cells' values
};

// Maps stored events to rows. Holds a parser and caches of column names (the interned names
// that Cell::column points into), so mapping an event costs no name computation once seen.
class EventMapper {
 public:
  EventMapper();

  // Appends the rows and discards of one event to `out`. `load_time` is `uuid_ts`
  // (ISO-8601). Errors (the event is not loadable at all): not a JSON object, no messageId,
  // unknown type.
  Status Map(std::string_view payload, std::string_view load_time, MappedEvent* out);

  // Forgets the interned names once there are many (between batches only: rows point at them).
  void MaybeTrim();

 private:
  struct Flattener;
  std::string_view Intern(std::string&& name);
  // A fixed name ("user_id"), interned once: keyed by the literal's address.
  std::string_view Fixed(const char* name);

  simdjson::dom::parser parser_;
  std::string buffer_;                     // payload + padding
  std::string probe_;                      // scratch key of columns_
  std::unordered_set<std::string> names_;  // node-based: the views stay valid
  // (prefix, '\x01', raw key) → the flattened name (interned; "" = no letters or digits): as a
  // prefix of nested keys, and as a column (reserved words and leading digits `_`-prefixed).
  struct FlatName {
    std::string_view prefix;
    std::string_view column;
  };
  std::unordered_map<std::string, FlatName> columns_;
  // Events of one kind list their keys in the same order: per object (its prefix, interned, by
  // address) the key seen at each position last time, compared before hashing into columns_.
  struct Slot {
    std::string key;
    FlatName name;
  };
  std::unordered_map<const char*, std::vector<Slot>> by_position_;
  std::unordered_map<const char*, std::string_view> fixed_;
  // The last track event name and its table (interned): events of one name come in runs.
  std::string last_event_;
  std::string_view last_slug_;
  bool has_last_event_ = false;
};

// The rows of the `violations` table (docs/governance.md) for one event's tracking-plan
// violations: `violations_json` is the log header `sy-violations` (a JSON array of {path, rule,
// message}); one row per element, id "<messageId>#<index>", columns id, event_id, plan, path,
// rule, message, received_at, uuid_ts. kInvalidArgument when the header is not such an array.
Status AppendViolationRows(std::string_view message_id, std::string_view plan,
                           std::string_view violations_json, std::string_view received_at,
                           std::string_view load_time, MappedEvent* out);

// The shape of one table as a loader knows it.
struct TableDef {
  std::string name;
  std::vector<std::pair<std::string, ColumnType>> columns;  // in creation order
  std::unordered_map<std::string, size_t> index;            // column → position
  const ColumnType* Find(std::string_view column) const;
  void Add(std::string column, ColumnType type);
};
using SchemaMap = std::map<std::string, TableDef, std::less<>>;

struct SchemaChange {
  enum class Kind { kCreateTable, kAddColumn, kWidenToFloat };
  Kind kind;
  std::string table;
  std::string column;                                       // kAddColumn, kWidenToFloat
  ColumnType type = ColumnType::kText;                      // kAddColumn
  std::vector<std::pair<std::string, ColumnType>> columns;  // kCreateTable
};

// Whether a value of type `value` fits a column of type `column`: as is (same type, an integer
// into a float column, anything into a text column — written as its text), by widening the
// column (an integer column receiving a float), or not at all (→ a discard).
enum class Fit { kAsIs, kWidenToFloat, kNo };
Fit FitValue(ColumnType column, ColumnType value);

// Brings `schema` (the tables as they are) to a state where every non-discarded cell of `rows`
// fits, and returns the DDL to get there, in order. A new column takes the type of its first
// value in `rows`; cells that cannot be stored (type conflict, the table at its column limit)
// are marked discarded and recorded in `discards`. Tables in `schema` that `rows` do not touch
// are left alone.
//
// Event tables (every table but the system ones and `discards`) are capped at
// `max_event_tables`: a row whose table does not exist yet when the schema already has that
// many is removed from `rows` (its event's `tracks` row stays) and recorded in `discards` with
// reason "event table limit (N) reached", once per row; `*capped` (may be null) counts them.
inline constexpr size_t kDefaultMaxEventTables = 1000;
std::vector<SchemaChange> PlanSchema(SchemaMap& schema, std::vector<Row>& rows,
                                     std::vector<Discard>* discards,
                                     size_t max_event_tables = SIZE_MAX,
                                     uint64_t* capped = nullptr);

// Row sets per table in first-seen order, after dropping rows whose id repeats within the batch
// (the first is kept) and merging `users` rows with the same id (later values win per column).
struct TableBatch {
  std::string table;
  std::vector<Row*> rows;
};
// `repeats` (may be null) receives the number of rows dropped as repeats (users merges excluded).
std::vector<TableBatch> GroupRows(std::vector<Row>& rows, uint64_t* repeats = nullptr);

}  // namespace sy::warehouse
