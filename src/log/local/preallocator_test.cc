#include "log/local/preallocator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "base/logging.h"
#include "log/local/local_log.h"
#include "log/local/log_test_util.h"

namespace sy::log {
namespace {

using testing::AppendSync;
using testing::MakeRecord;
using testing::ReadAll;
using testing::ReadFile;
using testing::SegmentFiles;
using testing::TempDir;

// Whether the file's last `n` bytes are all zero.
bool EndsWithZeros(const std::string& path, size_t n) {
  std::string data = ReadFile(path);
  if (data.size() < n) return false;
  return data.find_first_not_of('\0', data.size() - n) == std::string::npos;
}

bool WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 400; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// An Env whose files block writes of zeros (the preallocator's) until released.
class GatedEnv final : public Env {
 public:
  class File final : public WritableFile {
   public:
    File(std::unique_ptr<WritableFile> base, GatedEnv* env) : base_(std::move(base)), env_(env) {}
    Status WriteAt(uint64_t offset, std::string_view data) override {
      if (!data.empty() && data.find_first_not_of('\0') == std::string_view::npos) {
        env_->fill_started_.set_value();
        env_->release_.wait();
      }
      return base_->WriteAt(offset, data);
    }
    Status Sync() override { return base_->Sync(); }
    Status Truncate(uint64_t size) override { return base_->Truncate(size); }

   private:
    std::unique_ptr<WritableFile> base_;
    GatedEnv* env_;
  };

  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                     bool truncate) override {
    SY_ASSIGN_OR_RETURN(auto f, base_->OpenWritable(path, truncate));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(std::move(f), this));
  }
  Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) override {
    return base_->OpenReadable(path);
  }
  Status CreateDirIfMissing(const std::string& path) override {
    return base_->CreateDirIfMissing(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }

  std::promise<void> fill_started_;
  std::shared_future<void> release_;

 private:
  Env* base_ = Env::Default();
};

TEST(PreallocatorTest, FillsAheadOfTheWriterUpToTheLimit) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  std::ofstream(path) << "abc";
  Preallocator p(Env::Default(), 64 * 1024, ModuleLogger("test"));
  ASSERT_TRUE(p.Reset(path, 3, 40 * 1024).ok());
  p.Written(3, 3);
  ASSERT_TRUE(WaitFor([&] { return p.prepared() == 40 * 1024; }));
  EXPECT_EQ(std::filesystem::file_size(path), 40u * 1024);  // capped by the limit
  std::string data = ReadFile(path);
  EXPECT_EQ(data.substr(0, 3), "abc");  // the writer's bytes are never overwritten
  EXPECT_TRUE(EndsWithZeros(path, data.size() - 3));
}

TEST(PreallocatorTest, BigFramesStopTheFilling) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  std::ofstream(path).flush();
  Preallocator p(Env::Default(), 64 * 1024, ModuleLogger("test"));
  // Frames well above kSmallFrameBytes before the file is handed over: no fill starts.
  for (int i = 0; i < 40; ++i)
    p.Written(0, 4 * Preallocator::kSmallFrameBytes);
  ASSERT_TRUE(p.Reset(path, 0, 1 << 20).ok());
  p.Written(0, 4 * Preallocator::kSmallFrameBytes);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(p.prepared(), 0u);
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
  // Small frames again: the average falls below the threshold and filling resumes.
  for (int i = 0; i < 40; ++i)
    p.Written(0, 100);
  ASSERT_TRUE(WaitFor([&] { return p.prepared() >= 64 * 1024; }));
}

TEST(PreallocatorTest, AWriteOverlappingARunningFillWaitsForIt) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  std::ofstream(path).flush();
  GatedEnv env;
  std::promise<void> release;
  env.release_ = release.get_future().share();
  auto started = env.fill_started_.get_future();
  Preallocator p(&env, 16 * 1024, ModuleLogger("test"));
  ASSERT_TRUE(p.Reset(path, 0, 1 << 20).ok());
  p.Written(0, 0);
  started.wait();  // the thread is zero-filling [0, 16 KiB)
  auto writer = std::async(std::launch::async, [&] { p.BeforeWrite(100, 50); });
  EXPECT_EQ(writer.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  release.set_value();
  writer.get();
  EXPECT_EQ(p.waits(), 1u);
  // A write already below the prepared bytes never waits.
  ASSERT_TRUE(WaitFor([&] { return p.prepared() >= 16 * 1024; }));
  p.BeforeWrite(1000, 100);
  EXPECT_EQ(p.waits(), 1u);
}

TEST(PreallocatorTest, LogKeepsZerosAheadAndCutsThemFromClosedSegments) {
  TempDir dir;
  LocalLogOptions opt{.dir = dir.path(), .segment_bytes = 8 * 1024};
  opt.preallocate_bytes = 32 * 1024;
  {
    auto log = OpenLocalEventLog(opt);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_TRUE(AppendSync(**log, {MakeRecord("first")}).status.ok());
    // The active segment gets zeros past its one frame, up to the segment size.
    auto files = SegmentFiles(dir.path());
    ASSERT_EQ(files.size(), 1u);
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::file_size(files[0]) == 8 * 1024; }));
    EXPECT_TRUE(EndsWithZeros(files[0], 4096));
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(AppendSync(**log, {MakeRecord(std::string(100, 'a' + i % 26))}).status.ok());
    }
    EXPECT_GT((*log)->SegmentCount(), 2u);
    // Every closed segment ends exactly at its last frame.
    files = SegmentFiles(dir.path());
    for (size_t i = 0; i + 1 < files.size(); ++i)
      EXPECT_FALSE(EndsWithZeros(files[i], 64)) << files[i];
    ASSERT_TRUE((*log)->Close().ok());
    EXPECT_FALSE(EndsWithZeros(SegmentFiles(dir.path()).back(), 64));  // a clean close cuts too
  }
  auto log = OpenLocalEventLog(opt);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto reader = (*log)->OpenReader();
  auto all = ReadAll(**reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 201u);
  EXPECT_EQ((*all)[0].payload, "first");
  EXPECT_EQ((*all)[200].payload, std::string(100, 'a' + 199 % 26));
}

TEST(PreallocatorTest, RecoveryAfterACrashCutsTheZerosAndKeepsEveryFrame) {
  TempDir live, crashed;
  LocalLogOptions opt{.dir = live.path()};
  opt.preallocate_bytes = 64 * 1024;
  auto log = OpenLocalEventLog(opt);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(AppendSync(**log, {MakeRecord("e" + std::to_string(i))}).status.ok());
  auto files = SegmentFiles(live.path());
  ASSERT_EQ(files.size(), 1u);
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::file_size(files[0]) >= 64 * 1024; }));
  // What a kill -9 leaves: the segment with its preallocated zeros (copied while the log is open).
  std::filesystem::copy_file(
      files[0], crashed.path() + "/" + std::filesystem::path(files[0]).filename().string());
  ASSERT_TRUE(EndsWithZeros(SegmentFiles(crashed.path())[0], 4096));

  LocalLogOptions copy = opt;
  copy.dir = crashed.path();
  auto recovered = OpenLocalEventLog(copy);
  ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();
  EXPECT_EQ((*recovered)->EndOffset().value(), 50u);
  auto r = AppendSync(**recovered, {MakeRecord("after")});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.first.value(), 50u);
  auto reader = (*recovered)->OpenReader();
  auto all = ReadAll(**reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 51u);
  EXPECT_EQ((*all)[49].payload, "e49");
  EXPECT_EQ((*all)[50].payload, "after");
}

}  // namespace
}  // namespace sy::log
