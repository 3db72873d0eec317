// The pure schema mapping: Segment's snake_case vectors, reserved words, the event → rows golden
// file, and the planner's evolution and discard rules.
#include "warehouse/schema.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/time_format.h"

namespace sy::warehouse {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Compares with testdata/<name>; SY_UPDATE_GOLDEN=1 rewrites it instead.
void ExpectGolden(const std::string& got, const std::string& name) {
  const std::string path = std::string(SY_WAREHOUSE_TESTDATA) + "/" + name;
  if (std::getenv("SY_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << got;
    return;
  }
  EXPECT_EQ(got, ReadFile(path)) << "golden " << path << " differs (SY_UPDATE_GOLDEN=1 rewrites)";
}

TEST(SnakeCase, SegmentVectors) {
  EXPECT_EQ(SnakeCase("sampleText"), "sample_text");
  EXPECT_EQ(SnakeCase("sample-text"), "sample_text");
  EXPECT_EQ(SnakeCase("sample___text"), "sample_text");
  EXPECT_EQ(SnakeCase("SAMPLE 2 TEXT"), "sample_2_text");
  EXPECT_EQ(SnakeCase("___$$Base64Encode"), "base64_encode");
  EXPECT_EQ(SnakeCase("FOO:BAR$BAZ"), "foo_bar_baz");
  EXPECT_EQ(SnakeCase("something.com"), "something_com");
  EXPECT_EQ(SnakeCase("$something%"), "something");
  EXPECT_EQ(SnakeCase("HTTPRequest"), "http_request");
  EXPECT_EQ(SnakeCase("Order Completed"), "order_completed");
  EXPECT_EQ(SnakeCase("$$$"), "");
}

TEST(SafeName, ReservedWordsAndDigits) {
  EXPECT_EQ(SafeName("open"), "_open");
  EXPECT_EQ(SafeName("Select"), "_select");
  EXPECT_EQ(SafeName("3doctors"), "_3doctors");
  EXPECT_EQ(SafeName("opened"), "opened");
  EXPECT_TRUE(IsReservedWord("user"));
  EXPECT_FALSE(IsReservedWord("users"));
}

TEST(EventMapper, GoldenRows) {
  std::istringstream events(ReadFile(std::string(SY_WAREHOUSE_TESTDATA) + "/events.ndjson"));
  EventMapper mapper;
  MappedEvent out;
  std::string line;
  while (std::getline(events, line)) {
    ASSERT_TRUE(mapper.Map(line, "2024-06-01T00:00:00.000Z", &out).ok()) << line;
  }
  std::string got;
  for (const Row& r : out.rows) {
    got += "row " + r.table + " id=" + std::string(r.id) + (r.upsert ? " upsert" : "") + "\n";
    for (const Cell& c : r.cells)
      got += "  " + std::string(c.column) + " " + std::string(ColumnTypeName(c.type)) + " " +
             std::string(c.value) + "\n";
  }
  for (const Discard& d : out.discards)
    got += "discard table=" + d.table + " column=" + d.column + " value=" + d.value +
           " reason=" + d.reason + " row_id=" + d.row_id + "\n";
  ExpectGolden(got, "rows.golden");
}

TEST(EventMapper, RefusesWhatCannotBeLoaded) {
  EventMapper mapper;
  MappedEvent out;
  EXPECT_FALSE(mapper.Map("[1]", "t", &out).ok());
  EXPECT_FALSE(mapper.Map(R"({"type":"track","event":"x"})", "t", &out).ok());
  EXPECT_FALSE(mapper.Map(R"({"type":"nope","messageId":"m"})", "t", &out).ok());
  EXPECT_FALSE(mapper.Map("{not json", "t", &out).ok());
  EXPECT_TRUE(out.rows.empty());
  EXPECT_TRUE(out.discards.empty());
}

TEST(EventMapper, TextWithNulAndCollidingNamesAreDiscards) {
  EventMapper mapper;
  MappedEvent out;
  ASSERT_TRUE(mapper
                  .Map(R"({"type":"track","event":"E","messageId":"m1",)"
                       R"("properties":{"a":"b\u0000c","fooBar":1,"foo_bar":2,"ok":"x"}})",
                       "2024-06-01T00:00:00.000Z", &out)
                  .ok());
  ASSERT_EQ(out.rows.size(), 2u);
  const Row& e = out.rows[1];
  EXPECT_EQ(e.Find("a"), nullptr);
  ASSERT_NE(e.Find("foo_bar"), nullptr);
  EXPECT_EQ(e.Find("foo_bar")->value, "1");
  EXPECT_EQ(e.Find("ok")->value, "x");
  ASSERT_EQ(out.discards.size(), 2u);
  EXPECT_EQ(out.discards[0].column, "a");
  EXPECT_EQ(out.discards[0].reason, "text contains a NUL character");
  EXPECT_EQ(out.discards[1].column, "foo_bar");
  EXPECT_EQ(out.discards[1].reason, "another property maps to the same column");
}

TEST(CanonicalTimestampMs, AgreesWithTheGeneralParser) {
  for (const char* s :
       {"2024-05-01T10:00:00.000Z", "2024-02-29T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
        "1900-03-01T12:34:56.789Z", "9999-12-31T23:59:59.999Z"}) {
    ASSERT_TRUE(CanonicalTimestampMs(s)) << s;
    EXPECT_EQ(*CanonicalTimestampMs(s), ParseIso8601(s)->value()) << s;
  }
  // Not canonical (the general parser decides): other forms, impossible dates, a leap second.
  for (const char* s :
       {"2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000+00:00", "2023-02-29T00:00:00.000Z",
        "2024-04-31T00:00:00.000Z", "2024-05-01T10:00:60.000Z", "2024-05-01 10:00:00.000Z",
        "0999-05-01T10:00:00.000Z", "2024-13-01T10:00:00.000Z"}) {
    EXPECT_FALSE(CanonicalTimestampMs(s)) << s;
  }
}

Row MakeRow(const std::string& table, const std::string& id,
            std::vector<std::tuple<std::string_view, ColumnType, std::string>> cells) {
  static Arena arena;  // the values outlive the test's rows
  Row r;
  r.table = table;
  r.id = arena.Copy(id);
  for (auto& [col, type, value] : cells) {
    Cell c;
    c.column = col;
    c.type = type;
    c.value = arena.Copy(value);
    r.cells.push_back(std::move(c));
  }
  return r;
}

TEST(PlanSchema, CreatesAddsWidensAndDiscards) {
  SchemaMap schema;
  std::vector<Discard> discards;
  std::vector<Row> rows;
  rows.push_back(
      MakeRow("t", "1", {{"id", ColumnType::kText, "1"}, {"n", ColumnType::kInteger, "5"}}));
  auto changes = PlanSchema(schema, rows, &discards);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, SchemaChange::Kind::kCreateTable);
  EXPECT_EQ(changes[0].columns.size(), 2u);

  rows.clear();
  rows.push_back(MakeRow("t", "2",
                         {{"id", ColumnType::kText, "2"},
                          {"n", ColumnType::kFloat, "1.5"},
                          {"extra", ColumnType::kBoolean, "true"}}));
  rows.push_back(MakeRow("t", "3",
                         {{"id", ColumnType::kText, "3"},
                          {"n", ColumnType::kText, "abc"},
                          {"extra", ColumnType::kInteger, "7"}}));
  changes = PlanSchema(schema, rows, &discards);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, SchemaChange::Kind::kAddColumn);
  EXPECT_EQ(changes[0].column, "extra");
  EXPECT_EQ(changes[0].type, ColumnType::kBoolean);
  EXPECT_EQ(changes[1].kind, SchemaChange::Kind::kWidenToFloat);
  EXPECT_EQ(*schema.at("t").Find("n"), ColumnType::kFloat);
  ASSERT_EQ(discards.size(), 2u);
  EXPECT_EQ(discards[0].column, "n");
  EXPECT_EQ(discards[0].value, "abc");
  EXPECT_EQ(discards[0].reason, "cannot store a text in a float column");
  EXPECT_EQ(discards[0].row_id, "3");
  EXPECT_EQ(discards[1].reason, "cannot store a integer in a boolean column");
  EXPECT_TRUE(rows[1].cells[1].discarded);
  EXPECT_FALSE(rows[0].cells[1].discarded);
}

TEST(PlanSchema, ColumnLimitIsADiscard) {
  SchemaMap schema;
  std::vector<Discard> discards;
  std::vector<std::string> names;
  for (size_t i = 0; i < kMaxColumnsPerTable + 2; ++i)
    names.push_back("c" + std::to_string(i));
  Row r;
  r.table = "wide";
  r.id = "1";
  for (const auto& n : names) {
    Cell c;
    c.column = n;
    c.type = ColumnType::kInteger;
    c.value = "1";
    r.cells.push_back(c);
  }
  std::vector<Row> rows{r};
  PlanSchema(schema, rows, &discards);
  EXPECT_EQ(schema.at("wide").columns.size(), kMaxColumnsPerTable);
  ASSERT_EQ(discards.size(), 2u);
  EXPECT_EQ(discards[0].reason, "table has reached 1600 columns");
}

TEST(GroupRows, DropsRepeatsAndMergesUsers) {
  std::vector<Row> rows;
  rows.push_back(MakeRow("t", "1", {{"id", ColumnType::kText, "1"}}));
  rows.push_back(MakeRow("t", "1", {{"id", ColumnType::kText, "1"}}));
  rows.push_back(
      MakeRow("users", "u", {{"id", ColumnType::kText, "u"}, {"a", ColumnType::kText, "old"}}));
  rows.push_back(MakeRow("users", "u",
                         {{"id", ColumnType::kText, "u"},
                          {"a", ColumnType::kText, "new"},
                          {"b", ColumnType::kInteger, "2"}}));
  rows[2].upsert = rows[3].upsert = true;
  auto groups = GroupRows(rows);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].rows.size(), 1u);
  ASSERT_EQ(groups[1].rows.size(), 1u);
  const Row* u = groups[1].rows[0];
  EXPECT_EQ(u->Find("a")->value, "new");
  EXPECT_EQ(u->Find("b")->value, "2");
}

}  // namespace
}  // namespace sy::warehouse
