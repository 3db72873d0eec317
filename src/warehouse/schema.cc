#include "warehouse/schema.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "base/time_format.h"

namespace sy::warehouse {
namespace {

bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAlnum(char c) {
  return IsLower(c) || IsUpper(c) || IsDigit(c);
}

// PostgreSQL's reserved key words (the "reserved" and "reserved, can be function or type"
// columns of its key word appendix) and Redshift's reserved words, sorted for binary search.
constexpr std::string_view kReserved[] = {
    "aes128",
    "aes256",
    "all",
    "allowoverwrite",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "az64",
    "backup",
    "between",
    "binary",
    "blanksasnull",
    "both",
    "bytedict",
    "bzip2",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "credentials",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "current_user_id",
    "default",
    "deferrable",
    "deflate",
    "defrag",
    "delta",
    "delta32k",
    "desc",
    "disable",
    "distinct",
    "do",
    "else",
    "emptyasnull",
    "enable",
    "encode",
    "encrypt",
    "encryption",
    "end",
    "except",
    "explicit",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "globaldict256",
    "globaldict64k",
    "grant",
    "group",
    "gzip",
    "having",
    "identity",
    "ignore",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "language",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "lun",
    "luns",
    "lzo",
    "lzop",
    "minus",
    "mostly16",
    "mostly32",
    "mostly8",
    "natural",
    "new",
    "not",
    "notnull",
    "null",
    "nulls",
    "off",
    "offline",
    "offset",
    "oid",
    "old",
    "on",
    "only",
    "open",
    "or",
    "order",
    "outer",
    "overlaps",
    "parallel",
    "partition",
    "percent",
    "permissions",
    "pivot",
    "placing",
    "primary",
    "raw",
    "readratio",
    "recover",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "sysdate",
    "system",
    "table",
    "then",
    "to",
    "top",
    "trailing",
    "true",
    "union",
    "unique",
    "unnest",
    "unpivot",
    "user",
    "using",
    "variadic",
    "verbose",
    "wallet",
    "when",
    "where",
    "window",
    "with",
    "without",
};

constexpr std::array<std::string_view, 9> kSystemTables = {
    "aliases", "discards", "groups", "identifies", "pages",
    "screens", "tracks",   "users",  "violations",
};

bool LooksLikeDate(std::string_view s) {
  return s.size() >= 10 && IsDigit(s[0]) && IsDigit(s[1]) && IsDigit(s[2]) && IsDigit(s[3]) &&
         s[4] == '-' && IsDigit(s[5]) && IsDigit(s[6]) && s[7] == '-';
}

}  // namespace

std::string_view ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kBoolean:
      return "boolean";
    case ColumnType::kInteger:
      return "integer";
    case ColumnType::kFloat:
      return "float";
    case ColumnType::kTimestamp:
      return "timestamp";
    case ColumnType::kText:
      return "text";
  }
  return "text";
}

std::string SnakeCase(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 4);
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!IsAlnum(c)) {
      in_word = false;
      continue;
    }
    if (in_word && IsUpper(c)) {
      char prev = s[i - 1];
      bool next_lower = i + 1 < s.size() && IsLower(s[i + 1]);
      if (IsLower(prev) || IsDigit(prev) || (IsUpper(prev) && next_lower)) in_word = false;
    }
    if (!in_word && !out.empty()) out += '_';
    in_word = true;
    out += IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool IsReservedWord(std::string_view name) {
  return std::binary_search(std::begin(kReserved), std::end(kReserved), name);
}

std::string SafeName(std::string_view raw) {
  std::string s = SnakeCase(raw);
  if (!s.empty() && (IsDigit(s[0]) || IsReservedWord(s))) s.insert(0, "_");
  return s;
}

bool IsSystemTable(std::string_view table) {
  return std::find(kSystemTables.begin(), kSystemTables.end(), table) != kSystemTables.end();
}

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string EventTableName(std::string_view event) {
  std::string name = SafeName(event);
  if (name.empty()) return name;
  if (IsSystemTable(name)) return "_" + name;
  // The databases' own namespaces: SQLite refuses `sqlite_*` tables; PostgreSQL keeps `pg_*`
  // for its catalogs.
  if (name.starts_with("sqlite_") || name.starts_with("pg_")) return "_" + name;
  // The loaders' index names, which share the table namespace in both databases: SQLite's
  // `<table>_id_key` and `discards_key`, PostgreSQL's `<table>_id_idx` (a digit appended when
  // taken) and `discards_row_id`. A trailing `_` cannot end an index name, nor a slug.
  std::string_view base = name;
  while (!base.empty() && IsDigit(base.back()))
    base.remove_suffix(1);
  if (EndsWith(name, "_id_key") || EndsWith(base, "_id_idx") || name == "discards_key" ||
      name == "discards_row_id") {
    return name + "_";
  }
  return name;
}

std::string_view Arena::Copy(std::string_view s) {
  if (s.empty()) return std::string_view("", 0);
  if (capacity_ - used_ < s.size()) {
    capacity_ = std::max<size_t>(size_t{256} << 10, s.size());
    chunks_.push_back(std::make_unique<char[]>(capacity_));
    used_ = 0;
  }
  char* p = chunks_.back().get() + used_;
  std::memcpy(p, s.data(), s.size());
  used_ += s.size();
  return std::string_view(p, s.size());
}

std::optional<int64_t> CanonicalTimestampMs(std::string_view s) {
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[23] != 'Z')
    return std::nullopt;
  auto num = [&](size_t at, size_t n, int* out) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, m, d, hh, mm, ss, ms;
  if (!num(0, 4, &y) || !num(5, 2, &m) || !num(8, 2, &d) || !num(11, 2, &hh) || !num(14, 2, &mm) ||
      !num(17, 2, &ss) || !num(20, 3, &ms))
    return std::nullopt;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || m < 1 || m > 12 || d < 1 || d > kDays[m - 1] + (m == 2 && leap) || hh > 23 ||
      mm > 59 || ss > 59)
    return std::nullopt;
  // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
  const int yy = y - (m <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const int yoe = yy - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = int64_t{era} * 146097 + doe - 719468;
  return ((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000) + ms;
}

const Cell* Row::Find(std::string_view column) const {
  for (const Cell& c : cells)
    if (c.column == column) return &c;
  return nullptr;
}

// ---- mapping ---------------------------------------------------------------------------------

namespace {

// Canonical text and type of a JSON scalar or array, its bytes in `arena`. False for null and
// objects.
bool Scalar(simdjson::dom::element v, Cell* cell, Arena* arena) {
  char buf[64];
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s = v.get_string().value_unsafe();
      if (LooksLikeDate(s)) {
        if (CanonicalTimestampMs(s)) {  // already as the mapper writes it: kept as is
          cell->type = ColumnType::kTimestamp;
          cell->value = arena->Copy(s);
          return true;
        }
        if (auto t = ParseIso8601(s)) {
          cell->type = ColumnType::kTimestamp;
          thread_local std::string iso;  // reused: no allocation per timestamp
          iso.clear();
          AppendIso8601(*t, &iso);
          cell->value = arena->Copy(iso);
          return true;
        }
      }
      cell->type = ColumnType::kText;
      cell->value = arena->Copy(s);
      return true;
    }
    case simdjson::dom::element_type::INT64: {
      cell->type = ColumnType::kInteger;
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64().value_unsafe());
      cell->value = arena->Copy(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
      return true;
    }
    case simdjson::dom::element_type::UINT64: {  // above INT64_MAX: only a float holds it
      cell->type = ColumnType::kFloat;
      auto r = fmt::format_to_n(buf, sizeof buf, "{}",
                                static_cast<double>(v.get_uint64().value_unsafe()));
      cell->value = arena->Copy(std::string_view(buf, r.size));
      return true;
    }
    case simdjson::dom::element_type::DOUBLE: {
      cell->type = ColumnType::kFloat;
      auto r = fmt::format_to_n(buf, sizeof buf, "{}", v.get_double().value_unsafe());
      cell->value = arena->Copy(std::string_view(buf, r.size));
      return true;
    }
    case simdjson::dom::element_type::BOOL:
      cell->type = ColumnType::kBoolean;
      cell->value = v.get_bool().value_unsafe() ? "true" : "false";
      return true;
    case simdjson::dom::element_type::ARRAY:
      cell->type = ColumnType::kText;
      cell->value = arena->Copy(simdjson::minify(v));
      return true;
    case simdjson::dom::element_type::OBJECT:
    case simdjson::dom::element_type::NULL_VALUE:
      return false;
  }
  return false;
}

std::string_view Str(simdjson::dom::element obj, std::string_view key) {
  auto v = obj[key];
  if (v.error() || !v.value_unsafe().is_string()) return {};
  return v.value_unsafe().get_string().value_unsafe();
}

}  // namespace

// Builds the cells of one row, resolving collisions: a second value for a column already set
// is dropped silently when equal, else recorded as a discard.
struct EventMapper::Flattener {
  EventMapper* m;
  MappedEvent* out;
  Row* row;
  size_t system_cells = 0;  // cells before this index were set from the message itself

  void Discard(std::string column, std::string_view value, std::string reason) {
    out->discards.push_back({row->table, std::move(column), std::string(value), std::move(reason),
                             std::string(row->id), std::string(row->received_at)});
  }

  // A 256-bit filter of the row's columns (by interned address): a column not in it is not in
  // the row, so most Puts skip the scan for a collision.
  uint64_t seen[4] = {0, 0, 0, 0};
  bool may_have_nul = true;  // false when the payload has no \u0000: no value can hold a NUL

  static unsigned FilterBit(std::string_view column) {
    return static_cast<unsigned>(
        ((reinterpret_cast<uintptr_t>(column.data()) >> 3) * 0x9E3779B97F4A7C15ull) >> 56);
  }
  void SeedFilter() {
    for (const Cell& c : row->cells) {
      const unsigned b = FilterBit(c.column);
      seen[b >> 6] |= uint64_t{1} << (b & 63);
    }
  }

  // `column` must be interned.
  void Put(std::string_view column, Cell&& cell) {
    const unsigned bit = FilterBit(column);
    if (seen[bit >> 6] & (uint64_t{1} << (bit & 63))) {
      for (size_t i = 0; i < row->cells.size(); ++i) {
        const Cell& have = row->cells[i];
        if (have.column.data() != column.data()) continue;
        if (have.value == cell.value) return;
        Discard(std::string(column), cell.value,
                i < system_cells ? "collides with a system column"
                                 : "another property maps to the same column");
        return;
      }
    }
    if (may_have_nul && cell.type == ColumnType::kText &&
        cell.value.find('\0') != std::string::npos) {
      Discard(std::string(column), "", "text contains a NUL character");
      return;
    }
    cell.column = column;
    row->cells.push_back(std::move(cell));
    seen[bit >> 6] |= uint64_t{1} << (bit & 63);
  }

  // A system column from a top-level field.
  void System(const char* column, simdjson::dom::element v, bool timestamp) {
    Cell c;
    if (!Scalar(v, &c, &out->arena)) return;
    if (timestamp && c.type != ColumnType::kTimestamp) {
      Discard(column, c.value, "not an ISO-8601 timestamp");
      return;
    }
    if (!timestamp) c.type = ColumnType::kText;  // ids are text even when sent as numbers
    Put(m->Fixed(column), std::move(c));
  }
  void SystemText(const char* column, std::string_view value) {
    Cell c;
    c.type = ColumnType::kText;
    c.value = out->arena.Copy(value);
    Put(m->Fixed(column), std::move(c));
  }
  void SystemField(simdjson::dom::element msg, std::string_view key, const char* column,
                   bool timestamp) {
    auto v = msg[key];
    if (!v.error()) System(column, v.value_unsafe(), timestamp);
  }

  // Flattens `obj` into columns named prefix_key (no prefix: key). Cached per (prefix, key).
  FlatName Lookup(std::string_view prefix, std::string_view key) {
    std::string& probe = m->probe_;
    probe.assign(prefix);
    probe += '\x01';
    probe.append(key);
    auto it = m->columns_.find(probe);
    if (it == m->columns_.end()) {
      std::string snake = SnakeCase(key);
      std::string name;
      if (!snake.empty()) name = prefix.empty() ? snake : std::string(prefix) + "_" + snake;
      FlatName flat;
      flat.prefix = m->Intern(std::move(name));
      flat.column = flat.prefix;
      // Reserved words and leading digits apply to the final column name.
      if (!flat.column.empty() && (IsDigit(flat.column[0]) || IsReservedWord(flat.column)))
        flat.column = m->Intern("_" + std::string(flat.column));
      it = m->columns_.emplace(probe, flat).first;
    }
    return it->second;
  }

  void Flatten(simdjson::dom::object obj, std::string_view prefix) {
    auto& slots = m->by_position_[prefix.data()];
    size_t pos = 0;
    for (auto [key, value] : obj) {
      FlatName flat;
      if (pos < slots.size() && slots[pos].key == key) {
        flat = slots[pos].name;
      } else {
        flat = Lookup(prefix, key);
        if (pos >= slots.size()) slots.resize(pos + 1);
        slots[pos].key.assign(key);
        slots[pos].name = flat;
      }
      ++pos;
      if (value.is_object()) {
        if (!flat.prefix.empty()) Flatten(value.get_object().value_unsafe(), flat.prefix);
        continue;
      }
      std::string_view name = flat.column;
      Cell c;
      if (!Scalar(value, &c, &out->arena)) continue;  // null: no column
      if (name.empty()) {
        Discard(std::string(key), c.value, "name has no letters or digits");
        continue;
      }
      if (name.size() > kMaxIdentifierChars) {
        Discard(std::string(name), c.value, "column name longer than 63 characters");
        continue;
      }
      Put(name, std::move(c));
    }
  }
};

EventMapper::EventMapper() = default;

std::string_view EventMapper::Intern(std::string&& name) {
  return *names_.insert(std::move(name)).first;
}

std::string_view EventMapper::Fixed(const char* name) {
  auto it = fixed_.find(name);
  if (it == fixed_.end()) it = fixed_.emplace(name, Intern(name)).first;
  return it->second;
}

void EventMapper::MaybeTrim() {
  if (names_.size() > 200'000) {
    columns_.clear();
    by_position_.clear();
    fixed_.clear();
    names_.clear();
    has_last_event_ = false;
  }
}

Status EventMapper::Map(std::string_view payload, std::string_view load_time, MappedEvent* out) {
  buffer_.assign(payload);
  buffer_.append(simdjson::SIMDJSON_PADDING, '\0');
  auto doc = parser_.parse(buffer_.data(), payload.size(), false);
  if (doc.error() || !doc.value_unsafe().is_object()) {
    return InvalidArgument("event is not a JSON object");
  }
  simdjson::dom::element msg = doc.value_unsafe();
  std::string_view type = Str(msg, "type");
  std::string_view message_id = Str(msg, "messageId");
  if (message_id.empty()) return InvalidArgument("event has no messageId");
  if (message_id.find('\0') != std::string_view::npos)
    return InvalidArgument("messageId contains a NUL character");
  std::string_view table;
  if (type == "track") {
    table = "tracks";
  } else if (type == "identify") {
    table = "identifies";
  } else if (type == "page") {
    table = "pages";
  } else if (type == "screen") {
    table = "screens";
  } else if (type == "group") {
    table = "groups";
  } else if (type == "alias") {
    table = "aliases";
  } else {
    return InvalidArgument("unknown event type '" + std::string(type) + "'");
  }
  std::string_view received_at;  // in the arena
  {
    Cell c;
    auto v = msg["receivedAt"];
    if (!v.error() && Scalar(v.value_unsafe(), &c, &out->arena) && c.type == ColumnType::kTimestamp)
      received_at = c.value;
  }

  Row base;
  base.table = table;
  base.id = out->arena.Copy(message_id);
  base.received_at = received_at;
  base.cells.reserve(24);
  // JSON strings hold a NUL only as the escape \u0000 (raw control characters are invalid).
  const bool may_have_nul = payload.find("\\u0000") != std::string_view::npos;
  Flattener f{this, out, &base};
  f.may_have_nul = may_have_nul;
  f.SystemText("id", message_id);
  f.SystemField(msg, "anonymousId", "anonymous_id", false);
  f.SystemField(msg, "userId", "user_id", false);
  f.SystemField(msg, "timestamp", "timestamp", true);
  f.SystemField(msg, "originalTimestamp", "original_timestamp", true);
  f.SystemField(msg, "sentAt", "sent_at", true);
  f.SystemField(msg, "receivedAt", "received_at", true);
  {
    Cell c;
    c.type = ColumnType::kTimestamp;
    c.value = out->arena.Copy(load_time);
    f.Put(Fixed("uuid_ts"), std::move(c));
  }

  std::string_view event_table;  // track: the event's own table ("" = none)
  if (type == "track") {
    std::string_view event = Str(msg, "event");
    if (!has_last_event_ || event != last_event_) {
      std::string name = EventTableName(event);
      last_event_.assign(event);
      last_slug_ = Intern(std::move(name));
      has_last_event_ = true;
    }
    const std::string_view slug = last_slug_;
    f.SystemText("event", slug);
    f.SystemText("event_text", event);
    if (slug.empty()) {
      f.Discard("event", std::string(event), "event name has no letters or digits: no table");
    } else if (slug.size() > kMaxIdentifierChars) {
      f.Discard("event", std::string(event), "table name longer than 63 characters: no table");
    } else {
      event_table = slug;
    }
  } else if (type == "page" || type == "screen") {
    f.SystemField(msg, "name", "name", false);
    if (type == "page") f.SystemField(msg, "category", "category", false);
  } else if (type == "group") {
    f.SystemField(msg, "groupId", "group_id", false);
  } else if (type == "alias") {
    f.SystemField(msg, "previousId", "previous_id", false);
  }
  auto context = msg["context"];
  if (!context.error() && context.value_unsafe().is_object())
    f.Flatten(context.value_unsafe().get_object().value_unsafe(), "context");
  f.system_cells = base.cells.size();

  auto object_of = [&](std::string_view key) -> std::optional<simdjson::dom::object> {
    auto v = msg[key];
    if (v.error() || !v.value_unsafe().is_object()) return std::nullopt;
    return v.value_unsafe().get_object().value_unsafe();
  };

  if (type == "track") {
    if (!event_table.empty()) {
      Row ev;
      ev.table = event_table;
      ev.id = base.id;
      ev.received_at = base.received_at;
      auto props = object_of("properties");
      ev.cells.reserve(base.cells.size() + (props ? props->size() : 0) + 2);
      ev.cells = base.cells;
      Flattener fe{this, out, &ev, f.system_cells};
      fe.may_have_nul = may_have_nul;
      fe.SeedFilter();
      if (props) fe.Flatten(*props, "");
      out->rows.push_back(std::move(base));
      out->rows.push_back(std::move(ev));
    } else {
      out->rows.push_back(std::move(base));
    }
    return Status::Ok();
  }
  if (type == "identify") {
    auto traits = object_of("traits");
    if (traits) f.Flatten(*traits, "");
    std::string_view user_id;
    if (const Cell* u = base.Find("user_id")) user_id = u->value;
    if (!user_id.empty()) {
      // users: one row per user_id holding the latest value of every trait (no anonymous_id).
      Row user;
      user.table = "users";
      user.id = user_id;
      user.received_at = received_at;
      user.upsert = true;
      Flattener fu{this, out, &user};
      fu.may_have_nul = may_have_nul;
      fu.SystemText("id", user_id);
      if (!received_at.empty()) {
        Cell c;
        c.type = ColumnType::kTimestamp;
        c.value = out->arena.Copy(received_at);
        fu.Put(Fixed("received_at"), std::move(c));
      }
      Cell c;
      c.type = ColumnType::kTimestamp;
      c.value = out->arena.Copy(load_time);
      fu.Put(Fixed("uuid_ts"), std::move(c));
      fu.system_cells = user.cells.size();
      if (traits) fu.Flatten(*traits, "");
      out->rows.push_back(std::move(base));
      out->rows.push_back(std::move(user));
      return Status::Ok();
    }
  } else if (type == "page" || type == "screen") {
    if (auto props = object_of("properties")) f.Flatten(*props, "");
  } else if (type == "group") {
    if (auto traits = object_of("traits")) f.Flatten(*traits, "");
  }
  out->rows.push_back(std::move(base));
  return Status::Ok();
}

// ---- planning --------------------------------------------------------------------------------

const ColumnType* TableDef::Find(std::string_view column) const {
  auto it = index.find(std::string(column));
  return it == index.end() ? nullptr : &columns[it->second].second;
}

void TableDef::Add(std::string column, ColumnType type) {
  index.emplace(column, columns.size());
  columns.emplace_back(std::move(column), type);
}

Fit FitValue(ColumnType column, ColumnType value) {
  if (column == value || column == ColumnType::kText) return Fit::kAsIs;
  if (column == ColumnType::kFloat && value == ColumnType::kInteger) return Fit::kAsIs;
  if (column == ColumnType::kInteger && value == ColumnType::kFloat) return Fit::kWidenToFloat;
  return Fit::kNo;
}

std::vector<SchemaChange> PlanSchema(SchemaMap& schema, std::vector<Row>& rows,
                                     std::vector<Discard>* discards, size_t max_event_tables,
                                     uint64_t* capped) {
  if (max_event_tables != SIZE_MAX) {
    // The cap first: a row that would make one table too many never reaches the plan below.
    auto is_event_table = [](std::string_view t) { return !IsSystemTable(t) && t != "discards"; };
    size_t event_tables = 0;
    for (const auto& [name, def] : schema)
      event_tables += is_event_table(name) ? 1 : 0;
    std::unordered_set<std::string_view> admitted;
    bool any_capped = false;
    for (Row& row : rows) {
      if (!is_event_table(row.table) || schema.contains(row.table) ||
          admitted.contains(row.table)) {
        continue;
      }
      if (event_tables < max_event_tables) {
        admitted.insert(row.table);
        ++event_tables;
        continue;
      }
      const Cell* text = row.Find("event_text");
      discards->push_back({row.table, "event", text ? std::string(text->value) : row.table,
                           fmt::format("event table limit ({}) reached: no table created, the "
                                       "event is in tracks",
                                       max_event_tables),
                           std::string(row.id), std::string(row.received_at)});
      row.table.clear();  // removed below
      any_capped = true;
      if (capped) ++*capped;
    }
    if (any_capped) std::erase_if(rows, [](const Row& r) { return r.table.empty(); });
  }
  std::vector<std::string> new_tables;
  std::vector<std::pair<std::string, std::string>> new_columns;  // of existing tables
  std::vector<std::pair<std::string, std::string>> widened;      // existing columns
  auto is_new_table = [&](const std::string& t) {
    return std::find(new_tables.begin(), new_tables.end(), t) != new_tables.end();
  };
  // Rows of one kind list the same columns in the same order, and column names are interned:
  // per table, the previous row's (name → position) by index in the row is a pointer compare.
  struct Seen {
    TableDef* def;
    bool fresh;
    std::vector<std::pair<const char*, size_t>> last;
  };
  std::unordered_map<std::string_view, Seen> seen;
  for (Row& row : rows) {
    auto s = seen.find(row.table);
    if (s == seen.end()) {
      auto it = schema.find(row.table);
      if (it == schema.end()) {
        it = schema.emplace(row.table, TableDef{}).first;
        it->second.name = row.table;
        new_tables.push_back(row.table);
      }
      s = seen.emplace(row.table, Seen{&it->second, is_new_table(row.table), {}}).first;
    }
    TableDef& def = *s->second.def;
    const bool fresh = s->second.fresh;
    auto& last = s->second.last;
    for (size_t ci = 0; ci < row.cells.size(); ++ci) {
      Cell& cell = row.cells[ci];
      if (cell.discarded) continue;
      if (ci < last.size() && last[ci].first == cell.column.data() &&
          def.columns[last[ci].second].first.size() == cell.column.size()) {
        ColumnType& have = def.columns[last[ci].second].second;
        if (have == cell.type) continue;  // the common case: nothing to decide
      }
      auto col = def.index.find(std::string(cell.column));
      if (col != def.index.end()) {
        if (ci >= last.size()) last.resize(ci + 1, {nullptr, 0});
        last[ci] = {cell.column.data(), col->second};
      }
      if (col == def.index.end()) {
        if (def.columns.size() >= kMaxColumnsPerTable) {
          cell.discarded = true;
          discards->push_back({row.table, std::string(cell.column), std::string(cell.value),
                               "table has reached 1600 columns", std::string(row.id),
                               std::string(row.received_at)});
          continue;
        }
        def.Add(std::string(cell.column), cell.type);
        if (!fresh) new_columns.emplace_back(row.table, std::string(cell.column));
        continue;
      }
      ColumnType& have = def.columns[col->second].second;
      switch (FitValue(have, cell.type)) {
        case Fit::kAsIs:
          break;
        case Fit::kWidenToFloat: {
          have = ColumnType::kFloat;
          bool added_now =
              fresh ||
              std::find(new_columns.begin(), new_columns.end(),
                        std::make_pair(row.table, std::string(cell.column))) != new_columns.end();
          if (!added_now) widened.emplace_back(row.table, std::string(cell.column));
          break;
        }
        case Fit::kNo:
          cell.discarded = true;
          discards->push_back({row.table, std::string(cell.column), std::string(cell.value),
                               fmt::format("cannot store a {} in a {} column",
                                           ColumnTypeName(cell.type), ColumnTypeName(have)),
                               std::string(row.id), std::string(row.received_at)});
          break;
      }
    }
  }
  std::vector<SchemaChange> changes;
  for (const auto& t : new_tables) {
    SchemaChange c{SchemaChange::Kind::kCreateTable, t, "", ColumnType::kText, {}};
    c.columns = schema.at(t).columns;
    changes.push_back(std::move(c));
  }
  for (const auto& [t, col] : new_columns) {
    changes.push_back({SchemaChange::Kind::kAddColumn, t, col, *schema.at(t).Find(col), {}});
  }
  for (const auto& [t, col] : widened) {
    changes.push_back({SchemaChange::Kind::kWidenToFloat, t, col, ColumnType::kFloat, {}});
  }
  return changes;
}

std::vector<TableBatch> GroupRows(std::vector<Row>& rows, uint64_t* repeats) {
  std::vector<TableBatch> out;
  std::unordered_map<std::string_view, size_t> by_table;
  std::unordered_map<std::string_view, std::unordered_map<std::string_view, Row*>> seen;
  seen.reserve(16);
  for (Row& row : rows) {
    auto [t, added] = by_table.emplace(row.table, out.size());
    if (added) out.push_back({row.table, {}});
    auto& ids = seen[row.table];
    if (ids.empty()) ids.reserve(rows.size());
    auto [first, is_new] = ids.emplace(row.id, &row);
    if (is_new) {
      out[t->second].rows.push_back(&row);
      continue;
    }
    if (!row.upsert) {  // the same messageId again in this batch: keep the first
      if (repeats) ++*repeats;
      continue;
    }
    // users: the later identify's values win, column by column.
    Row* into = first->second;
    for (Cell& cell : row.cells) {
      bool found = false;
      for (Cell& have : into->cells) {
        if (have.column != cell.column) continue;
        if (!cell.discarded) have = cell;
        found = true;
        break;
      }
      if (!found) into->cells.push_back(cell);
    }
    into->received_at = row.received_at;
  }
  return out;
}

Status AppendViolationRows(std::string_view message_id, std::string_view plan,
                           std::string_view violations_json, std::string_view received_at,
                           std::string_view load_time, MappedEvent* out) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(violations_json, ec);
  if (ec || !doc.is_array()) return InvalidArgument("violations header is not a JSON array");
  const boost::json::array& list = doc.as_array();
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) return InvalidArgument("a violation is not a JSON object");
    const boost::json::object& v = list[i].as_object();
    Row row;
    row.table = "violations";
    row.id = out->arena.Copy(std::string(message_id) + "#" + std::to_string(i));
    row.received_at = out->arena.Copy(received_at);
    auto text = [&](const char* column, std::string_view value) {
      row.cells.push_back(Cell{column, ColumnType::kText, false, out->arena.Copy(value)});
    };
    auto field = [&](const char* key) -> std::string_view {
      const boost::json::value* f = v.if_contains(key);
      return f != nullptr && f->is_string() ? std::string_view(f->get_string()) : "";
    };
    text("id", row.id);
    text("event_id", message_id);
    text("plan", plan);
    text("path", field("path"));
    text("rule", field("rule"));
    text("message", field("message"));
    row.cells.push_back(Cell{"received_at", ColumnType::kTimestamp, false, row.received_at});
    row.cells.push_back(Cell{"uuid_ts", ColumnType::kTimestamp, false, out->arena.Copy(load_time)});
    out->rows.push_back(std::move(row));
  }
  return Status::Ok();
}

}  // namespace sy::warehouse
