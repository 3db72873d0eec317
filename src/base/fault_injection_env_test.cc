// FaultInjectionEnv's power-cut model (issue 18): what a cut keeps and what it takes back —
// unsynced bytes, and directory entries (new files, renames, unlinks, new directories) that no
// directory fsync covered. Before this model, a new or renamed entry counted as durable at once,
// so a missing SyncDir could not be found by any test.
#include "base/fault_injection_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>

namespace sy {
namespace {

namespace fs = std::filesystem;

class PowerCutModelTest : public ::testing::Test {
 protected:
  PowerCutModelTest() {
    static std::atomic<int> counter{0};
    dir_ = (fs::temp_directory_path() /
            ("sy_fi_env_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
             "_" + std::to_string(std::random_device{}())))
               .string();
    fs::create_directories(dir_);
  }
  ~PowerCutModelTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Write(const std::string& path, std::string_view data, bool sync) {
    auto f = env_.OpenWritable(path, /*truncate=*/true);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->WriteAt(0, data).ok());
    if (sync) {
      ASSERT_TRUE((*f)->Sync().ok());
    }
  }
  std::string Read(const std::string& path) {
    auto r = ReadWholeFile(&env_, path);
    return r.ok() ? *r : "<missing>";
  }
  void Cut() {
    env_.Crash(/*torn_tail=*/false);
    env_.Revive();
  }

  std::string dir_;
  FaultInjectionEnv env_;
};

TEST_F(PowerCutModelTest, NewFileWithoutDirectorySyncDisappears) {
  Write(dir_ + "/a", "synced data", /*sync=*/true);
  Cut();
  EXPECT_FALSE(env_.FileExists(dir_ + "/a"));
}

TEST_F(PowerCutModelTest, NewFileWithDirectorySyncKeepsItsSyncedBytesOnly) {
  auto f = env_.OpenWritable(dir_ + "/a", true);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, "durable").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE((*f)->WriteAt(7, " and lost").ok());
  Cut();
  EXPECT_EQ(Read(dir_ + "/a"), "durable");
  // A file opened before the cut is dead, also after Revive.
  EXPECT_FALSE((*f)->WriteAt(0, "x").ok());
}

TEST_F(PowerCutModelTest, RenameWithoutDirectorySyncReverts) {
  Write(dir_ + "/state", "old", true);
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  Write(dir_ + "/state.tmp", "new", true);
  ASSERT_TRUE(env_.Rename(dir_ + "/state.tmp", dir_ + "/state").ok());
  EXPECT_EQ(Read(dir_ + "/state"), "new");
  Cut();
  EXPECT_EQ(Read(dir_ + "/state"), "old");
  EXPECT_FALSE(env_.FileExists(dir_ + "/state.tmp"));

  // With the directory fsync the rename holds.
  Write(dir_ + "/state.tmp", "new", true);
  ASSERT_TRUE(env_.Rename(dir_ + "/state.tmp", dir_ + "/state").ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  Cut();
  EXPECT_EQ(Read(dir_ + "/state"), "new");
}

TEST_F(PowerCutModelTest, RenamedAwayFileComesBackUnderItsOldName) {
  Write(dir_ + "/a", "content", true);
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE(env_.Rename(dir_ + "/a", dir_ + "/b").ok());
  Cut();
  EXPECT_EQ(Read(dir_ + "/a"), "content");
  EXPECT_FALSE(env_.FileExists(dir_ + "/b"));
}

TEST_F(PowerCutModelTest, UnlinkWithoutDirectorySyncReappears) {
  Write(dir_ + "/seg", "segment", true);
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE(env_.RemoveFile(dir_ + "/seg").ok());
  Cut();
  EXPECT_EQ(Read(dir_ + "/seg"), "segment");
  ASSERT_TRUE(env_.RemoveFile(dir_ + "/seg").ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  Cut();
  EXPECT_FALSE(env_.FileExists(dir_ + "/seg"));
}

TEST_F(PowerCutModelTest, NewDirectoryNeedsItsParentSynced) {
  ASSERT_TRUE(env_.CreateDirIfMissing(dir_ + "/d/e").ok());
  Write(dir_ + "/d/e/f", "x", true);
  ASSERT_TRUE(env_.SyncDir(dir_ + "/d/e").ok());
  Cut();  // d's entry in dir_ was never synced: d goes, with everything in it
  EXPECT_FALSE(env_.FileExists(dir_ + "/d"));

  ASSERT_TRUE(CreateDirDurably(&env_, dir_ + "/d/e").ok());
  Write(dir_ + "/d/e/f", "x", true);
  ASSERT_TRUE(env_.SyncDir(dir_ + "/d/e").ok());
  Cut();
  EXPECT_EQ(Read(dir_ + "/d/e/f"), "x");
}

TEST_F(PowerCutModelTest, FilesNotCreatedThroughTheEnvCountAsDurable) {
  { std::ofstream(dir_ + "/old") << "before"; }
  auto f = env_.OpenWritable(dir_ + "/old", /*truncate=*/false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(6, " after").ok());  // not synced
  Cut();
  EXPECT_EQ(Read(dir_ + "/old"), "before");
}

}  // namespace
}  // namespace sy
