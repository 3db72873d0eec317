// The SQLite warehouse through the destination interface, on real database files in a temp dir:
// tables and columns as Segment names them, idempotent reloads, schema evolution, discards and
// the users upsert.
#include "warehouse/sqlite_loader.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "base/clock.h"
#include "base/metrics.h"
#include "warehouse/warehouse_destination.h"

namespace sy::warehouse {
namespace {

using Table = std::vector<std::vector<std::string>>;

class SqliteWarehouse : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sy_wh_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    dest_ = std::make_unique<WarehouseDestination>(std::make_unique<SqliteLoader>(dir_.string()),
                                                   1000, 1000);
    dest_->Attach("wh", &metrics_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<delivery::Outcome> Deliver(std::vector<std::string> payloads,
                                         const std::string& source = "web") {
    std::vector<delivery::RoutedEvent> events;
    for (size_t i = 0; i < payloads.size(); ++i)
      events.push_back({Offset(i), source, "", TimestampMs(1'700'000'000'000), payloads[i]});
    auto out = dest_->DeliverInProcess(events);
    EXPECT_TRUE(out.has_value());
    return *out;
  }

  Table Query(const std::string& sql, const std::string& source = "web") {
    sqlite3* db = nullptr;
    Table out;
    EXPECT_EQ(sqlite3_open_v2(SqliteLoader::PathFor(dir_.string(), source).c_str(), &db,
                              SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::filesystem::path dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<WarehouseDestination> dest_;
};

std::string Track(const std::string& id, const std::string& props) {
  return R"({"type":"track","event":"Order Completed","messageId":")" + id +
         R"(","userId":"u1","receivedAt":"2024-05-01T10:00:00Z","properties":)" + props + "}";
}

TEST_F(SqliteWarehouse, TrackGoesToTracksAndItsOwnTable) {
  auto out = Deliver({Track("m1", R"({"revenue":9.5,"orderId":"o-1"})")});
  ASSERT_EQ(out[0].kind, delivery::Outcome::Kind::kDelivered) << out[0].reason;
  EXPECT_EQ(Query("SELECT id, event, event_text, user_id FROM tracks"),
            (Table{{"m1", "order_completed", "Order Completed", "u1"}}));
  EXPECT_EQ(Query("SELECT id, revenue, order_id FROM order_completed"),
            (Table{{"m1", "9.5", "o-1"}}));
  EXPECT_EQ(Query("SELECT type FROM pragma_table_info('order_completed') WHERE name = 'revenue'"),
            (Table{{"REAL"}}));
}

TEST_F(SqliteWarehouse, LoadingTheSameEventsAgainAddsNoRow) {
  std::vector<std::string> batch = {Track("m1", R"({"a":1})"), Track("m2", R"({"a":2})"),
                                    Track("m1", R"({"a":1})")};
  Deliver(batch);
  Deliver(batch);
  EXPECT_EQ(Query("SELECT count(*) FROM tracks"), (Table{{"2"}}));
  EXPECT_EQ(Query("SELECT count(*) FROM order_completed"), (Table{{"2"}}));
  // 1st load: m1 repeated (2 tables); 2nd: 2 tables × 3 rows already there or repeated.
  EXPECT_EQ(dest_->totals().duplicates, 8u);
}

TEST_F(SqliteWarehouse, NewPropertiesAddColumnsAndConflictsGoToDiscards) {
  Deliver({Track("m1", R"({"n":1})")});
  Deliver({Track("m2", R"({"n":2.5,"color":"red"})"), Track("m3", R"({"n":"abc"})")});
  EXPECT_EQ(Query("SELECT id, n, color FROM order_completed ORDER BY id"),
            (Table{{"m1", "1", "NULL"}, {"m2", "2.5", "red"}, {"m3", "NULL", "NULL"}}));
  EXPECT_EQ(
      Query("SELECT table_name, column_name, column_value, reason, row_id FROM discards"),
      (Table{{"order_completed", "n", "abc", "cannot store a text in a float column", "m3"}}));
  // The discard is not written twice when the event comes again.
  Deliver({Track("m3", R"({"n":"abc"})")});
  EXPECT_EQ(Query("SELECT count(*) FROM discards"), (Table{{"1"}}));
}

TEST_F(SqliteWarehouse, ABigBatchLoadsInPartsInOneTransaction) {
  // 2,500 events, mapped and written in parts (250, then 1,000; the next part mapped while this
  // one is written), all in one transaction: a repeat across parts, a widening in the second
  // part, a column that first appears in the third and a conflict in the fourth.
  std::vector<std::string> batch;
  for (int i = 0; i < 2500; ++i) {
    std::string id = "m" + std::to_string(i);
    if (i == 100) {
      batch.push_back(R"({"type":"track"})");  // no messageId: rejected
    } else if (i == 1500) {
      batch.push_back(Track("m5", R"({"n":5})"));
    } else if (i == 1200) {
      batch.push_back(Track(id, R"({"n":2.5})"));
    } else if (i == 2200) {
      batch.push_back(Track(id, R"({"n":1,"late":"x"})"));
    } else if (i == 2300) {
      batch.push_back(Track(id, R"({"n":"abc"})"));
    } else {
      batch.push_back(Track(id, R"({"n":)" + std::to_string(i) + "}"));
    }
  }
  auto out = Deliver(batch);
  EXPECT_EQ(out[100].kind, delivery::Outcome::Kind::kRejected);
  EXPECT_EQ(out[2499].kind, delivery::Outcome::Kind::kDelivered);
  EXPECT_EQ(dest_->loads(), 1u);
  EXPECT_EQ(Query("SELECT count(*), count(DISTINCT id) FROM tracks"), (Table{{"2498", "2498"}}));
  EXPECT_EQ(Query("SELECT count(*) FROM order_completed"), (Table{{"2498"}}));
  EXPECT_EQ(dest_->totals().duplicates, 2u);
  EXPECT_EQ(Query("SELECT id, late FROM order_completed WHERE late IS NOT NULL"),
            (Table{{"m2200", "x"}}));
  EXPECT_EQ(Query("SELECT n FROM order_completed WHERE id IN ('m1200', 'm5') ORDER BY id"),
            (Table{{"2.5"}, {"5"}}));
  EXPECT_EQ(Query("SELECT row_id, column_name FROM discards"), (Table{{"m2300", "n"}}));
}

TEST_F(SqliteWarehouse, UsersHoldTheLatestValueOfEveryTrait) {
  auto identify = [](const std::string& id, const std::string& at, const std::string& traits) {
    return R"({"type":"identify","messageId":")" + id + R"(","userId":"u1","receivedAt":")" + at +
           R"(","traits":)" + traits + "}";
  };
  Deliver({identify("i1", "2024-05-01T10:00:00Z", R"({"plan":"free","email":"a@x"})")});
  Deliver({identify("i2", "2024-05-02T10:00:00Z", R"({"plan":"pro"})")});
  // An older identify loaded late (a replay) does not overwrite newer values.
  Deliver({identify("i0", "2024-04-01T10:00:00Z", R"({"plan":"trial"})")});
  EXPECT_EQ(Query("SELECT id, plan, email FROM users"), (Table{{"u1", "pro", "a@x"}}));
  EXPECT_EQ(Query("SELECT count(*) FROM identifies"), (Table{{"3"}}));
}

TEST_F(SqliteWarehouse, EachSourceHasItsOwnFile) {
  Deliver({Track("m1", "{}")}, "web");
  Deliver({Track("m2", "{}")}, "backend");
  EXPECT_EQ(Query("SELECT id FROM tracks", "web"), (Table{{"m1"}}));
  EXPECT_EQ(Query("SELECT id FROM tracks", "backend"), (Table{{"m2"}}));
}

TEST_F(SqliteWarehouse, UnloadableEventsAreRejectedAndTheRestLoads) {
  auto out = Deliver({"{\"type\":\"track\"}", Track("m1", "{}")});
  EXPECT_EQ(out[0].kind, delivery::Outcome::Kind::kRejected);
  EXPECT_EQ(out[1].kind, delivery::Outcome::Kind::kDelivered);
  EXPECT_EQ(Query("SELECT id FROM tracks"), (Table{{"m1"}}));
}

TEST_F(SqliteWarehouse, AFailedLoadIsRetriedAndCommitsNothing) {
  std::filesystem::create_directories(dir_);
  // A directory where the database file should be: the open fails.
  std::filesystem::create_directories(SqliteLoader::PathFor(dir_.string(), "web"));
  auto out = Deliver({Track("m1", "{}")});
  EXPECT_EQ(out[0].kind, delivery::Outcome::Kind::kRetry);
  EXPECT_EQ(dest_->loads(), 0u);
}

std::string Named(const std::string& id, const std::string& event) {
  return R"({"type":"track","event":")" + event + R"(","messageId":")" + id +
         R"(","userId":"u1","receivedAt":"2024-05-01T10:00:00Z","properties":{"n":1}})";
}

TEST_F(SqliteWarehouse, EventNamesOfTheDatabasesOrTheLoadersOwnObjectsGetTablesOfTheirOwn) {
  // Issue 18: these failed the load (SQLite refuses `sqlite_*` tables; the loader's indexes
  // `<table>_id_key` and `discards_key` share the tables' namespace) and blocked the warehouse.
  auto out = Deliver({Named("m1", "Order Completed"), Named("m2", "sqlite_stat1"),
                      Named("m3", "Tracks Id Key"), Named("m4", "Discards Key"),
                      Named("m5", "Order Completed Id Key"), Named("m6", "Pages Id Idx"),
                      Named("m7", "pg_class"), Named("m8", "Discards Row Id")});
  for (const auto& o : out)
    EXPECT_EQ(o.kind, delivery::Outcome::Kind::kDelivered) << o.reason;
  EXPECT_EQ(Query("SELECT count(*) FROM tracks"), (Table{{"8"}}));
  EXPECT_EQ(
      Query("SELECT event, event_text FROM tracks WHERE id IN ('m2', 'm3', 'm4') ORDER BY id"),
      (Table{{"_sqlite_stat1", "sqlite_stat1"},
             {"tracks_id_key_", "Tracks Id Key"},
             {"discards_key_", "Discards Key"}}));
  EXPECT_EQ(Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                  "('tracks', 'discards') ORDER BY name"),
            (Table{{"_pg_class"},
                   {"_sqlite_stat1"},
                   {"discards_key_"},
                   {"discards_row_id_"},
                   {"order_completed"},
                   {"order_completed_id_key_"},
                   {"pages_id_idx_"},
                   {"tracks_id_key_"}}));
  EXPECT_EQ(Query("SELECT count(*) FROM discards"), (Table{{"0"}}));
}

TEST_F(SqliteWarehouse, PastTheEventTableCapEventsStayInTracksAndAreCountedInDiscards) {
  auto loader = std::make_unique<SqliteLoader>(dir_.string());
  loader->set_max_event_tables(2);
  dest_ = std::make_unique<WarehouseDestination>(std::move(loader), 1000, 1000);
  dest_->Attach("wh", &metrics_);
  Deliver({Named("a1", "A"), Named("b1", "B")});
  auto out = Deliver({Named("c1", "C"), Named("a2", "A"), Named("d1", "D"), Named("c2", "C")});
  for (const auto& o : out)
    EXPECT_EQ(o.kind, delivery::Outcome::Kind::kDelivered) << o.reason;
  EXPECT_EQ(Query("SELECT count(*) FROM tracks"), (Table{{"6"}}));
  EXPECT_EQ(Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
            (Table{{"a"}, {"b"}, {"discards"}, {"tracks"}}));
  EXPECT_EQ(
      Query("SELECT table_name, column_name, column_value, reason, row_id FROM discards "
            "ORDER BY row_id"),
      (Table{{"c", "event", "C",
              "event table limit (2) reached: no table created, the event is in tracks", "c1"},
             {"c", "event", "C",
              "event table limit (2) reached: no table created, the event is in tracks", "c2"},
             {"d", "event", "D",
              "event table limit (2) reached: no table created, the event is in tracks", "d1"}}));
  EXPECT_EQ(dest_->totals().capped, 3u);
}

TEST_F(SqliteWarehouse, LoadsAreKeptInTheHistoryAndRowEstimatesReadTheFile) {
  auto history = std::make_shared<LoadHistory>();
  dest_->set_history(history);
  // Never loaded: no tables, no error.
  auto none = dest_->ReadTableRows({"web", "ios"});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  Deliver({Track("m1", "{}"), Track("m2", "{}")});
  Deliver({Track("m2", "{}"), Track("m3", R"({"a":{"b":1}})")});  // m2 again: a duplicate
  auto recent = history->Recent();
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].events, 2u);  // newest first
  EXPECT_EQ(recent[0].source, "web");
  EXPECT_EQ(recent[0].duplicates, 2u);  // tracks and order_completed rows of m2
  EXPECT_EQ(recent[0].rows_per_table.at("tracks"), 1u);
  EXPECT_TRUE(recent[0].error.empty());
  EXPECT_LE(recent[0].started_ms, recent[0].finished_ms);
  EXPECT_EQ(recent[1].rows_per_table.at("tracks"), 2u);
  auto totals = history->totals();
  EXPECT_EQ(totals.rows_per_table.at("web").at("tracks"), 3u);
  EXPECT_EQ(totals.loads_ok, 2u);
  EXPECT_EQ(totals.loads_failed, 0u);
  // The database's own figures, read through another connection: max(rowid) per table.
  auto rows = dest_->ReadTableRows({"web", "ios"});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  std::map<std::string, uint64_t> by_table;
  for (const auto& t : *rows) {
    EXPECT_EQ(t.source, "web");  // ios never loaded: no file, no tables
    by_table[t.table] = t.rows;
  }
  EXPECT_EQ(by_table.at("tracks"), 3u);
  EXPECT_EQ(by_table.at("order_completed"), 3u);
  EXPECT_EQ(by_table.at("discards"), 0u);
  EXPECT_EQ(dest_->rows_method(), "max(rowid)");
}

TEST(LoadHistory, RingAndTablesAreBounded) {
  LoadHistory h;
  LoadStats stats;
  for (size_t i = 0; i < LoadHistory::kMaxTables + 10; ++i)
    stats.rows["t" + std::to_string(i)] = i + 1;
  for (size_t i = 0; i < LoadHistory::kKeepLoads + 5; ++i)
    h.Committed(int64_t(i), int64_t(i) + 1, "web", 1, stats);
  h.Failed(100, 101, "web", 7, "disk full");
  auto recent = h.Recent();
  ASSERT_EQ(recent.size(), LoadHistory::kKeepLoads);
  EXPECT_EQ(recent[0].error, "disk full");
  EXPECT_EQ(recent[1].rows_per_table.size(), LoadHistory::kTablesPerLoad);
  EXPECT_EQ(recent[1].tables, LoadHistory::kMaxTables + 10);
  // The largest tables are the ones listed.
  EXPECT_TRUE(recent[1].rows_per_table.contains("t" + std::to_string(LoadHistory::kMaxTables + 9)));
  auto totals = h.totals();
  EXPECT_EQ(totals.rows_per_table.at("web").size(), LoadHistory::kMaxTables + 1);  // + other
  EXPECT_TRUE(totals.rows_per_table.at("web").contains(std::string(LoadHistory::kOtherTables)));
  EXPECT_EQ(totals.loads_failed, 1u);
  EXPECT_EQ(totals.loads_ok, LoadHistory::kKeepLoads + 5);
}

// A loader that refuses (kInvalidArgument) any load holding a row of table "poison", and fails
// (kIoError) every load while `down` is set; otherwise SQLite.
class PickyLoader final : public Loader {
 public:
  PickyLoader(std::string dir, bool* down) : inner_(std::move(dir)), down_(down) {}
  Status Begin(const std::string& source, std::string_view load_time) override {
    if (*down_) return IoError("disk full");
    return inner_.Begin(source, load_time);
  }
  Status Add(std::vector<Row>& rows, std::vector<Discard>& discards) override {
    for (const Row& r : rows)
      if (r.table == "poison") return InvalidArgument("sqlite: the database refused it");
    return inner_.Add(rows, discards);
  }
  Result<LoadStats> Commit() override { return inner_.Commit(); }
  void Abort() override { inner_.Abort(); }
  Result<std::vector<TableRows>> ReadTableRows(
      const std::vector<std::string>& sources) const override {
    return inner_.ReadTableRows(sources);
  }
  std::string_view rows_method() const override { return inner_.rows_method(); }

 private:
  SqliteLoader inner_;
  bool* down_;
};

TEST_F(SqliteWarehouse, AnEventTheDatabaseRefusesGoesToDiscardsAndTheRestLoads) {
  bool down = false;
  dest_ = std::make_unique<WarehouseDestination>(
      std::make_unique<PickyLoader>(dir_.string(), &down), 1000, 1000);
  dest_->Attach("wh", &metrics_);
  std::vector<delivery::RoutedEvent> batch;
  for (int i = 0; i < 3000; ++i) {  // several parts: the refused event is in the third
    const std::string id = "m" + std::to_string(i);
    batch.push_back({Offset(static_cast<uint64_t>(i)), "web", id, TimestampMs(1'700'000'000'000),
                     Named(id, i == 1700 ? "Poison" : "Order Completed")});
  }
  auto delivered = dest_->DeliverInProcess(batch);
  ASSERT_TRUE(delivered.has_value());
  const auto& out = *delivered;
  for (const auto& o : out)
    EXPECT_EQ(o.kind, delivery::Outcome::Kind::kDelivered) << o.reason;
  EXPECT_EQ(Query("SELECT count(*) FROM tracks"), (Table{{"2999"}}));
  EXPECT_EQ(Query("SELECT row_id, substr(reason, 1, 32) FROM discards"),
            (Table{{"m1700", "the database refused the event: "}}));
  EXPECT_EQ(dest_->refused(), 1u);
}

TEST_F(SqliteWarehouse, ARefusedLoadIsInTheHistoryWithItsError) {
  bool down = true;
  dest_ = std::make_unique<WarehouseDestination>(
      std::make_unique<PickyLoader>(dir_.string(), &down), 1000, 1000);
  dest_->Attach("wh", &metrics_);
  auto history = std::make_shared<LoadHistory>();
  dest_->set_history(history);
  auto out = Deliver({Track("m1", "{}")});
  EXPECT_EQ(out[0].kind, delivery::Outcome::Kind::kRetry);
  auto recent = history->Recent();
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_NE(recent[0].error.find("disk full"), std::string::npos) << recent[0].error;
  EXPECT_EQ(history->totals().loads_failed, 1u);
}

}  // namespace
}  // namespace sy::warehouse
