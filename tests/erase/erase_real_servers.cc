// Privacy deletion against the real servers a user would run (issue 17): the warehouse in
// PostgreSQL 15 and the archive in an S3 service (SeaweedFS, verifying SigV4), each erased,
// erased again (idempotent), and killed with SIGKILL after each step in turn (a child process)
// and run again (converges). tests/e2e/test_erase.py starts the servers and runs this program
// with their addresses in the environment:
//   SY_ERASE_PG_DSN                        a database the tests may create schemas in
//   SY_ERASE_S3_ENDPOINT, SY_ERASE_S3_BUCKET, SY_ERASE_S3_ACCESS_KEY, SY_ERASE_S3_SECRET_KEY
// Without them each test is skipped (and the pytest wrapper fails on a skip).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "archive/archive_eraser.h"
#include "tests/erase/archive_fixture.h"
#include "tests/erase/warehouse_fixture.h"
#include "warehouse/postgres_loader.h"
#include "warehouse/warehouse_eraser.h"

namespace sy {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Runs `body` in a child process and expects it to die of SIGKILL (it kills itself at the step
// the test chose); false when it ran to the end instead.
bool RunKilled(const std::function<void()>& body) {
  pid_t child = ::fork();
  if (child == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// ---- PostgreSQL --------------------------------------------------------------------------------

namespace wfx = warehouse::erase_fixture;

class PostgresErase : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = Env("SY_ERASE_PG_DSN");
    if (dsn_.empty()) GTEST_SKIP() << "SY_ERASE_PG_DSN not set (run through test_erase.py)";
  }

  void TearDown() override {
    if (conn_) PQfinish(conn_);
  }

  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    if (!conn_) conn_ = PQconnectdb(dsn_.c_str());
    PGresult* r = PQexec(conn_, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << sql << ": " << PQerrorMessage(conn_);
    for (int i = 0; i < PQntuples(r); ++i)
      out.emplace_back(PQgetvalue(r, i, 0), static_cast<size_t>(PQgetlength(r, i, 0)));
    PQclear(r);
    return out;
  }

  wfx::Probe ProbeOf(const std::string& source) {
    const std::string schema = warehouse::PostgresLoader::SchemaFor(source);
    wfx::Probe p;
    p.tables = [this, schema] {
      return Column("SELECT table_name FROM information_schema.tables WHERE table_schema = '" +
                    schema + "' AND table_type = 'BASE TABLE'");
    };
    p.column = [this, schema](const std::string& table, const std::string& column) {
      return Column("SELECT coalesce(\"" + column + "\"::text, '') FROM \"" + schema + "\".\"" +
                    table + "\"");
    };
    p.has_column = [this, schema](const std::string& table, const std::string& column) {
      return !Column("SELECT 1 FROM information_schema.columns WHERE table_schema = '" + schema +
                     "' AND table_name = '" + table + "' AND column_name = '" + column + "'")
                  .empty();
    };
    return p;
  }

  void LoadSource(const std::string& source) {
    warehouse::PostgresLoader loader(dsn_);
    wfx::Load(&loader, source);
  }

  std::string dsn_;
  PGconn* conn_ = nullptr;  // the checks' own connection (never open across a fork)
};

TEST_F(PostgresErase, RemovesEveryRowOfTheUsersAndNothingElse) {
  LoadSource("wh_web");
  LoadSource("wh_app");
  LoadSource("wh_untouched");  // not named to the eraser: never touched
  auto before_web = wfx::RowsByOwner(ProbeOf("wh_web"));
  auto before_app = wfx::RowsByOwner(ProbeOf("wh_app"));
  auto untouched = wfx::RowsByOwner(ProbeOf("wh_untouched"));
  wfx::ExpectFixtureCoversEveryTable(before_web);

  auto eraser = warehouse::NewPostgresEraser(dsn_, {"wh_web", "wh_app", "wh_missing"});
  warehouse::WarehouseEraseProgress progress;
  Status s = eraser->EraseUsers(wfx::Request(), &progress);
  ASSERT_TRUE(s.ok()) << s.ToString();
  wfx::ExpectErasedAndRestKept(ProbeOf("wh_web"), before_web);
  wfx::ExpectErasedAndRestKept(ProbeOf("wh_app"), before_app);
  EXPECT_EQ(wfx::RowsByOwner(ProbeOf("wh_untouched")), untouched);
  EXPECT_EQ(progress.sources, 2u);
  EXPECT_GT(progress.rows_per_table["wh_web.users"], 0u);
  EXPECT_GT(progress.rows_per_table["wh_web.violations"], 0u);
  EXPECT_GT(progress.rows_per_table["wh_web.discards"], 0u);

  warehouse::WarehouseEraseProgress again;
  ASSERT_TRUE(eraser->EraseUsers(wfx::Request(), &again).ok());
  EXPECT_EQ(again.rows_deleted, 0u);

  // The loader still works on the erased schema, and a reload of the erased people's events
  // (what suppression upstream must prevent) would bring them back: the eraser is not a filter.
  LoadSource("wh_web");
  EXPECT_EQ(wfx::RowsByOwner(ProbeOf("wh_web")), before_web);
}

TEST_F(PostgresErase, KilledAfterAnyTableConvergesWhenRunAgain) {
  size_t steps = 0;
  {
    LoadSource("wh_count");
    auto eraser = warehouse::NewPostgresEraser(dsn_, {"wh_count"});
    eraser->set_after_table([&](std::string_view, std::string_view) { ++steps; });
    ASSERT_TRUE(eraser->EraseUsers(wfx::Request(), nullptr).ok());
  }
  ASSERT_GT(steps, 8u);
  for (size_t k = 1; k <= steps; ++k) {
    const std::string source = "wh_kill_" + std::to_string(k);
    LoadSource(source);
    auto before = wfx::RowsByOwner(ProbeOf(source));
    PQfinish(conn_);  // not shared with the child
    conn_ = nullptr;
    ASSERT_TRUE(RunKilled([&] {
      size_t n = 0;
      auto eraser = warehouse::NewPostgresEraser(dsn_, {source});
      eraser->set_after_table([&](std::string_view, std::string_view) {
        if (++n == k) ::kill(::getpid(), SIGKILL);
      });
      (void)eraser->EraseUsers(wfx::Request(), nullptr);
    })) << "k="
        << k;
    auto eraser = warehouse::NewPostgresEraser(dsn_, {source});
    Status s = eraser->EraseUsers(wfx::Request(), nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
    wfx::ExpectErasedAndRestKept(ProbeOf(source), before);
    if (HasFailure()) FAIL() << "after a kill at table " << k;
  }
}

// ---- S3 ----------------------------------------------------------------------------------------

namespace afx = archive::erase_fixture;

class S3Erase : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("SY_ERASE_S3_ENDPOINT").empty())
      GTEST_SKIP() << "SY_ERASE_S3_ENDPOINT not set (run through test_erase.py)";
  }
  static std::unique_ptr<archive::ObjectStore> Store() {
    archive::S3Options o;
    o.endpoint = Env("SY_ERASE_S3_ENDPOINT");
    o.bucket = Env("SY_ERASE_S3_BUCKET");
    o.path_style = true;
    o.access_key_id = Env("SY_ERASE_S3_ACCESS_KEY");
    o.secret_access_key = Env("SY_ERASE_S3_SECRET_KEY");
    return archive::NewS3ObjectStore(std::move(o));
  }
};

TEST_F(S3Erase, RewritesTheFilesWithoutTheUsersAndDeletesTheirOwn) {
  auto store = Store();
  auto files = afx::Write(store.get(), "basic/");
  archive::ArchiveEraseOptions options;
  options.prefix = "basic/";
  archive::ArchiveEraseProgress progress;
  Status s = archive::EraseUsersFromArchive(store.get(), afx::Request(), options, &progress);
  ASSERT_TRUE(s.ok()) << s.ToString();
  afx::ExpectErased(store.get(), "basic/", files);
  EXPECT_EQ(progress.files_rewritten, 4u);
  EXPECT_EQ(progress.files_deleted, 1u);

  archive::ArchiveEraseProgress again;
  ASSERT_TRUE(archive::EraseUsersFromArchive(store.get(), afx::Request(), options, &again).ok());
  EXPECT_EQ(again.files_rewritten + again.files_deleted, 0u);
  afx::ExpectErased(store.get(), "basic/", files);
  EXPECT_TRUE(store->Delete("basic/no/such/key").ok());  // idempotent delete
}

TEST_F(S3Erase, KilledAfterAnyFileConvergesWhenRunAgain) {
  const size_t files_total = 6;
  for (size_t k = 1; k <= files_total; ++k) {
    const std::string prefix = "kill" + std::to_string(k) + "/";
    std::vector<afx::File> files;
    {
      auto store = Store();
      files = afx::Write(store.get(), prefix);
      ASSERT_EQ(files.size(), files_total);
    }  // no client threads alive across the fork
    ASSERT_TRUE(RunKilled([&] {
      auto store = Store();
      archive::ArchiveEraseOptions options;
      options.prefix = prefix;
      size_t n = 0;
      options.after_file = [&](const std::string&) {
        if (++n == k) ::kill(::getpid(), SIGKILL);
      };
      (void)archive::EraseUsersFromArchive(store.get(), afx::Request(), options, nullptr);
    })) << "k="
        << k;
    auto store = Store();
    // Right after the kill: every file is the old or the new one, none is lost.
    for (const auto& f : files) {
      auto got = store->Get(f.key);
      if (!got.ok()) {
        EXPECT_TRUE(f.kept.empty()) << f.key << " lost";
        continue;
      }
      auto lines = afx::Lines(store.get(), f.key);
      EXPECT_TRUE(lines == f.lines || lines == f.kept) << f.key;
    }
    archive::ArchiveEraseOptions options;
    options.prefix = prefix;
    ASSERT_TRUE(archive::EraseUsersFromArchive(store.get(), afx::Request(), options, nullptr).ok());
    afx::ExpectErased(store.get(), prefix, files);
    if (HasFailure()) FAIL() << "after a kill at file " << k;
  }
}

}  // namespace
}  // namespace sy
