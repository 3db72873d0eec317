// Privacy deletion in the SQLite warehouse (warehouse_eraser.h): every table reached, nothing of
// another user touched, idempotent, and a run killed (SIGKILL, in a child process) after each
// table in turn converges when run again. PostgreSQL: tests/erase/erase_real_servers.cc.
#include "warehouse/warehouse_eraser.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/erase/warehouse_fixture.h"
#include "warehouse/sqlite_loader.h"

namespace sy::warehouse {
namespace {

namespace fx = erase_fixture;

std::vector<std::vector<std::string>> Query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::vector<std::string>> out;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    out.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

class SqliteErase : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sy_wh_erase_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    SqliteLoader loader(dir_.string());
    fx::Load(&loader, "web");
    fx::Load(&loader, "app");  // a second source: every database file is reached
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  fx::Probe ProbeOf(const std::string& source) {
    const std::string path = SqliteLoader::PathFor(dir_.string(), source);
    fx::Probe p;
    p.tables = [path] {
      std::vector<std::string> out;
      for (auto& r : Query(path, "SELECT name FROM sqlite_master WHERE type = 'table'"))
        out.push_back(r[0]);
      return out;
    };
    p.column = [path](const std::string& table, const std::string& column) {
      std::vector<std::string> out;
      for (auto& r : Query(path, "SELECT \"" + column + "\" FROM \"" + table + "\""))
        out.push_back(r[0]);
      return out;
    };
    p.has_column = [path](const std::string& table, const std::string& column) {
      for (auto& r : Query(path, "PRAGMA table_info(\"" + table + "\")"))
        if (r[1] == column) return true;
      return false;
    };
    return p;
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteErase, RemovesEveryRowOfTheUsersAndNothingElse) {
  auto before_web = fx::RowsByOwner(ProbeOf("web"));
  auto before_app = fx::RowsByOwner(ProbeOf("app"));
  fx::ExpectFixtureCoversEveryTable(before_web);

  WarehouseEraseProgress progress;
  ASSERT_TRUE(NewSqliteEraser(dir_.string())->EraseUsers(fx::Request(), &progress).ok());
  fx::ExpectErasedAndRestKept(ProbeOf("web"), before_web);
  fx::ExpectErasedAndRestKept(ProbeOf("app"), before_app);
  EXPECT_EQ(progress.sources, 2u);
  EXPECT_GT(progress.rows_per_table["web.users"], 0u);
  EXPECT_GT(progress.rows_per_table["web.violations"], 0u);
  EXPECT_GT(progress.rows_per_table["web.discards"], 0u);
  EXPECT_GT(progress.rows_per_table["web.order_completed"], 0u);
  const std::string summary = progress.Summary();
  EXPECT_EQ(
      summary.rfind("rows_deleted=" + std::to_string(progress.rows_deleted) + " sources=2", 0), 0u)
      << summary;
  EXPECT_EQ(summary.find("u1"), std::string::npos) << summary;  // no ids in the record

  // Idempotent: the second run finds nothing and changes nothing.
  WarehouseEraseProgress again;
  ASSERT_TRUE(NewSqliteEraser(dir_.string())->EraseUsers(fx::Request(), &again).ok());
  EXPECT_EQ(again.rows_deleted, 0u);
  fx::ExpectErasedAndRestKept(ProbeOf("web"), before_web);
}

TEST_F(SqliteErase, UnknownIdsAndEmptyRequestsRemoveNothing) {
  auto before = fx::RowsByOwner(ProbeOf("web"));
  WarehouseEraseProgress progress;
  ASSERT_TRUE(NewSqliteEraser(dir_.string())
                  ->EraseUsers(privacy::UserSet({"nobody", "a3"}, {"u1", "p1-track"}), &progress)
                  .ok());  // ids in the wrong namespace match nothing either
  ASSERT_TRUE(NewSqliteEraser(dir_.string())->EraseUsers(privacy::UserSet(), &progress).ok());
  EXPECT_EQ(progress.rows_deleted, 0u);
  EXPECT_EQ(fx::RowsByOwner(ProbeOf("web")), before);
}

// An alias links two ids of one person: a request naming its previousId (either kind of id)
// reaches the alias row too.
TEST_F(SqliteErase, AnAliasIsReachedThroughItsPreviousId) {
  SqliteLoader loader(dir_.string());
  EventMapper mapper;
  MappedEvent mapped;
  for (const char* e :
       {R"({"type":"alias","messageId":"al-1","userId":"u7","previousId":"legacy-7"})",
        R"({"type":"alias","messageId":"al-2","userId":"u8","previousId":"legacy-8"})"}) {
    ASSERT_TRUE(mapper.Map(e, fx::kLoadTime, &mapped).ok());
  }
  ASSERT_TRUE(loader.Load("crm", mapped.rows, mapped.discards, fx::kLoadTime).ok());
  const std::string path = SqliteLoader::PathFor(dir_.string(), "crm");
  ASSERT_TRUE(
      NewSqliteEraser(dir_.string())->EraseUsers(privacy::UserSet({}, {"legacy-7"}), nullptr).ok());
  EXPECT_EQ(Query(path, "SELECT id FROM aliases"),
            (std::vector<std::vector<std::string>>{{"al-2"}}));
  ASSERT_TRUE(
      NewSqliteEraser(dir_.string())->EraseUsers(privacy::UserSet({"legacy-8"}, {}), nullptr).ok());
  EXPECT_TRUE(Query(path, "SELECT id FROM aliases").empty());
}

// Erases racing loads of another user's events (the loader on its own thread, as the warehouse
// destination runs it): every row loaded meanwhile is there.
TEST_F(SqliteErase, LoadsDuringAnEraseAreNeverLost) {
  std::atomic<bool> loading{true};
  std::thread loader_thread([&] {
    SqliteLoader loader(dir_.string());
    EventMapper mapper;
    for (int batch = 0; batch < 20; ++batch) {
      MappedEvent mapped;
      for (int i = 0; i < 5; ++i) {
        const std::string id = "p5-" + std::to_string(batch) + "-" + std::to_string(i);
        EXPECT_TRUE(mapper
                        .Map(R"({"type":"track","event":"Order Completed","messageId":")" + id +
                                 R"(","userId":"u5","properties":{"revenue":1}})",
                             fx::kLoadTime, &mapped)
                        .ok());
      }
      auto stats = loader.Load("web", mapped.rows, mapped.discards, fx::kLoadTime);
      EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    }
    loading = false;
  });
  int erases = 0;
  while (loading || erases == 0) {
    Status st = NewSqliteEraser(dir_.string())->EraseUsers(fx::Request(), nullptr);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ++erases;
  }
  loader_thread.join();
  const std::string path = SqliteLoader::PathFor(dir_.string(), "web");
  EXPECT_EQ(Query(path, "SELECT count(*) FROM tracks WHERE user_id = 'u5'"),
            (std::vector<std::vector<std::string>>{{"100"}}));
  EXPECT_EQ(Query(path, "SELECT count(*) FROM order_completed WHERE user_id = 'u5'"),
            (std::vector<std::vector<std::string>>{{"100"}}));
  EXPECT_EQ(Query(path, "SELECT count(*) FROM tracks WHERE user_id = 'u1'"),
            (std::vector<std::vector<std::string>>{{"0"}}));
}

TEST_F(SqliteErase, IdsAreDataNotSql) {
  auto before = fx::RowsByOwner(ProbeOf("web"));
  WarehouseEraseProgress progress;
  ASSERT_TRUE(
      NewSqliteEraser(dir_.string())
          ->EraseUsers(privacy::UserSet({"x' OR '1'='1", "\")--"}, {"' OR 1=1 --"}), &progress)
          .ok());
  EXPECT_EQ(progress.rows_deleted, 0u);
  EXPECT_EQ(fx::RowsByOwner(ProbeOf("web")), before);
}

TEST_F(SqliteErase, NoDeletedBytesLeftInTheFiles) {
  ASSERT_TRUE(NewSqliteEraser(dir_.string())->EraseUsers(fx::Request(), nullptr).ok());
  // secure_delete zeroes freed pages and the WAL is checkpointed and truncated: the erased
  // people's e-mail addresses are nowhere in the database's files.
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("p1@example.com"), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("p3@example.com"), std::string::npos) << entry.path();
    if (entry.path().extension() == ".sqlite") {
      EXPECT_NE(bytes.find("p2@example.com"), std::string::npos) << entry.path();
    }
  }
}

TEST_F(SqliteErase, ErasersFromTheDestinationsConfig) {
  config::DestinationConfig d;
  d.name = "dw";
  d.type = "sqlite";
  auto scalar = [](std::string key, std::string value) {
    config::RawSetting r;
    r.key = std::move(key);
    r.scalar = std::move(value);
    return r;
  };
  d.settings.push_back(scalar("path", dir_.string()));
  auto eraser = NewWarehouseEraserFor(d, {"web"});
  ASSERT_TRUE(eraser.ok()) << eraser.status().ToString();
  WarehouseEraseProgress progress;
  ASSERT_TRUE((*eraser)->EraseUsers(fx::Request(), &progress).ok());
  EXPECT_EQ(progress.sources, 2u);  // every database file of the directory
  EXPECT_GT(progress.rows_deleted, 0u);
  d.type = "postgres";
  EXPECT_EQ(NewWarehouseEraserFor(d, {"web"}).status().code(), StatusCode::kInvalidArgument);
  d.settings = {scalar("dsn", "postgresql://127.0.0.1:1/x")};
  EXPECT_TRUE(NewWarehouseEraserFor(d, {"web"}).ok());  // connects on first use
  d.type = "webhook";
  EXPECT_EQ(NewWarehouseEraserFor(d, {"web"}).status().code(), StatusCode::kInvalidArgument);
}

// kill -9 after the k-th committed table, for every k: the rerun converges to the same result.
TEST_F(SqliteErase, KilledAfterAnyTableConvergesWhenRunAgain) {
  auto before_web = fx::RowsByOwner(ProbeOf("web"));
  auto before_app = fx::RowsByOwner(ProbeOf("app"));
  const auto pristine = dir_.string() + ".pristine";
  std::filesystem::remove_all(pristine);
  std::filesystem::copy(dir_, pristine);
  size_t tables = 0;
  {
    auto eraser = NewSqliteEraser(dir_.string());
    eraser->set_after_table([&](std::string_view, std::string_view) { ++tables; });
    ASSERT_TRUE(eraser->EraseUsers(fx::Request(), nullptr).ok());
  }
  ASSERT_GT(tables, 10u);
  for (size_t k = 1; k <= tables; ++k) {
    std::filesystem::remove_all(dir_);
    std::filesystem::copy(pristine, dir_);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      size_t n = 0;
      auto eraser = NewSqliteEraser(dir_.string());
      eraser->set_after_table([&](std::string_view, std::string_view) {
        if (++n == k) ::kill(::getpid(), SIGKILL);
      });
      (void)eraser->EraseUsers(fx::Request(), nullptr);
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "k=" << k;
    ASSERT_TRUE(NewSqliteEraser(dir_.string())->EraseUsers(fx::Request(), nullptr).ok());
    fx::ExpectErasedAndRestKept(ProbeOf("web"), before_web);
    fx::ExpectErasedAndRestKept(ProbeOf("app"), before_app);
    if (HasFailure()) {
      ADD_FAILURE() << "after a kill at table " << k;
      break;
    }
  }
  std::filesystem::remove_all(pristine);
}

}  // namespace
}  // namespace sy::warehouse
