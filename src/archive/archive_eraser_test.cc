// Privacy deletion in the archive (archive_eraser.h) on the local store: files rewritten in
// place without the users' events (others' lines byte for byte, in order), files of only theirs
// deleted, untouched files never written, idempotent, unreadable files reported, and a power cut
// at every file operation (FaultInjectionEnv) converges when the erase runs again. S3 (a real
// SeaweedFS): tests/erase/erase_real_servers.cc.
#include "archive/archive_eraser.h"

#include <gtest/gtest.h>

#include "base/fault_injection_env.h"
#include "log/local/log_test_util.h"
#include "tests/erase/archive_fixture.h"

namespace sy::archive {
namespace {

namespace fx = erase_fixture;
using log::testing::TempDir;

TEST(ArchiveErase, RewritesTheFilesWithoutTheUsersAndDeletesTheirOwn) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/archive");
  auto files = fx::Write(store.get(), "sy/");
  ArchiveEraseOptions options{.prefix = "sy/"};
  ArchiveEraseProgress progress;
  ASSERT_TRUE(EraseUsersFromArchive(store.get(), fx::Request(), options, &progress).ok());
  fx::ExpectErased(store.get(), "sy/", files);
  EXPECT_EQ(progress.files_scanned, 6u);
  EXPECT_EQ(progress.files_rewritten, 4u);
  EXPECT_EQ(progress.files_deleted, 1u);
  EXPECT_EQ(progress.events_removed, 2u + 1u + 4u + 1u + 43u);
  EXPECT_EQ(progress.Summary().rfind("events_removed=51 files_rewritten=4 files_deleted=1 ", 0), 0u)
      << progress.Summary();

  // Idempotent: everything is read again, nothing is written.
  ArchiveEraseProgress again;
  ASSERT_TRUE(EraseUsersFromArchive(store.get(), fx::Request(), options, &again).ok());
  EXPECT_EQ(again.files_scanned, 5u);
  EXPECT_EQ(again.files_rewritten + again.files_deleted + again.events_removed, 0u);
  fx::ExpectErased(store.get(), "sy/", files);
}

TEST(ArchiveErase, UnknownUsersChangeNothing) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/archive");
  auto files = fx::Write(store.get(), "");
  ArchiveEraseProgress progress;
  ASSERT_TRUE(EraseUsersFromArchive(
                  store.get(), privacy::UserSet({"a3", "nobody", "x"}, {"u2", "42"}), {}, &progress)
                  .ok());
  ASSERT_TRUE(EraseUsersFromArchive(store.get(), privacy::UserSet(), {}, &progress).ok());
  EXPECT_EQ(progress.files_rewritten + progress.files_deleted, 0u);
  for (const auto& f : files)
    EXPECT_EQ(fx::Lines(store.get(), f.key), f.lines);
}

TEST(ArchiveErase, AnUnreadableFileIsReportedAndTheOthersAreStillErased) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/archive");
  auto files = fx::Write(store.get(), "");
  const std::string bad = FormatKey("", "web", Offset(9000), Offset(9001), TimestampMs(fx::kT0));
  ASSERT_TRUE(store->Put(bad, "\x1f\x8b garbage, not gzip").ok());
  ArchiveEraseProgress progress;
  Status s = EraseUsersFromArchive(store.get(), fx::Request(), {}, &progress);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(bad), std::string::npos) << s.ToString();
  EXPECT_EQ(progress.files_unreadable, 1u);
  EXPECT_EQ(progress.files_rewritten, 4u);
  auto left = store->Get(bad);
  ASSERT_TRUE(left.ok());  // left as it was
  ASSERT_TRUE(store->Delete(bad).ok());
  fx::ExpectErased(store.get(), "", files);
}

TEST(ArchiveErase, LocalDeleteIsIdempotentAndRefusesPathsOutsideTheRoot) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/archive");
  ASSERT_TRUE(store->Put("a/b", "x").ok());
  EXPECT_TRUE(store->Delete("a/b").ok());
  EXPECT_TRUE(store->Delete("a/b").ok());
  EXPECT_EQ(store->Get("a/b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Delete("../x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Delete("/etc/passwd").code(), StatusCode::kInvalidArgument);
}

// A power cut at every mutating file operation of an erase (FaultInjectionEnv), then the erase
// run again as a restarted process would: converges to the same archive, and at no point was a
// file's content lost (each object is the old or the new file).
TEST(ArchiveErase, CrashAtEveryOperationConvergesWhenRunAgain) {
  uint64_t total = 0;
  {
    TempDir dir;
    FaultInjectionEnv env;
    auto store = NewLocalObjectStore(dir.path() + "/archive", &env);
    fx::Write(store.get(), "");
    const uint64_t before = env.operations();
    ASSERT_TRUE(EraseUsersFromArchive(store.get(), fx::Request(), {}, nullptr).ok());
    total = env.operations() - before;
  }
  ASSERT_GT(total, 10u);
  for (uint64_t at = 1; at <= total; ++at) {
    for (bool torn : {false, true}) {
      SCOPED_TRACE("crash at operation " + std::to_string(at) + (torn ? " (torn tail)" : ""));
      TempDir dir;
      FaultInjectionEnv env(Env::Default(), /*real_sync=*/false, /*seed=*/at);
      std::vector<fx::File> files;
      {
        auto store = NewLocalObjectStore(dir.path() + "/archive", &env);
        files = fx::Write(store.get(), "");
        env.CrashAtOperation(at, torn);
        EXPECT_FALSE(EraseUsersFromArchive(store.get(), fx::Request(), {}, nullptr).ok());
      }
      env.Revive();
      auto store = NewLocalObjectStore(dir.path() + "/archive", &env);
      // Right after the cut: every file is readable and is either the old or the new one.
      for (const auto& f : files) {
        auto got = store->Get(f.key);
        if (!got.ok()) {
          EXPECT_TRUE(f.kept.empty()) << f.key << " lost";
          continue;
        }
        auto lines = fx::Lines(store.get(), f.key);
        EXPECT_TRUE(lines == f.lines || lines == f.kept) << f.key;
      }
      ASSERT_TRUE(EraseUsersFromArchive(store.get(), fx::Request(), {}, nullptr).ok());
      fx::ExpectErased(store.get(), "", files);
    }
  }
}

}  // namespace
}  // namespace sy::archive
