// Read-only snapshots of the local log (LocalLogOptions::read_only): what `switchyard dump` uses
// next to a running server.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "log/local/frame.h"
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

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Every entry under `dir` (directories too), with the bytes of files.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::string rel = std::filesystem::relative(e.path(), dir).string();
    out[rel] = e.is_directory() ? std::string("<dir>") : ReadFile(e.path().string());
  }
  return out;
}

std::unique_ptr<LocalEventLog> OpenReadOnly(const std::string& dir) {
  auto log = OpenLocalEventLog({.dir = dir, .read_only = true});
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  if (!log.ok()) return nullptr;
  return std::move(log).value();
}

// Appends from two threads to `writer` while read-only snapshots are opened and read over and
// over: each snapshot holds everything published before it was opened, with contiguous offsets
// and intact records, and the final one holds every appended record.
void ReadWhileAppending(LocalLogOptions writer_options, bool expect_retention) {
  TempDir dir;
  writer_options.dir = dir.path();  // the caller leaves it empty
  auto writer = std::move(OpenLocalEventLog(writer_options)).value();
  constexpr int kThreads = 2;
  constexpr int kAppends = 250;
  std::atomic<int> running{kThreads};
  std::vector<std::thread> appenders;
  for (int t = 0; t < kThreads; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        std::vector<LogRecord> recs;
        for (int j = 0; j <= i % 3; ++j) {
          std::string id = std::to_string(t) + "-" + std::to_string(i) + "-" + std::to_string(j);
          recs.push_back(LogRecord{"web", id, TimestampMs(1'700'000'000'000), "p-" + id});
        }
        auto r = AppendSync(*writer, std::move(recs));
        ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      }
      running.fetch_sub(1);
    });
  }
  int snapshots = 0;
  bool saw_gap_start = false;
  auto check_snapshot = [&](bool final) {
    const uint64_t published = writer->EndOffset().value();
    auto ro = OpenReadOnly(dir.path());
    ASSERT_NE(ro, nullptr);
    EXPECT_GE(ro->EndOffset().value(), published);
    if (ro->StartOffset().value() > 0) saw_gap_start = true;
    auto reader = std::move(ro->OpenReader()).value();
    auto all = ReadAll(*reader);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_EQ(all->size(), ro->EndOffset().value() - ro->StartOffset().value());
    std::set<std::string> ids;
    for (size_t i = 0; i < all->size(); ++i) {
      const auto& e = (*all)[i];
      ASSERT_EQ(e.offset.value(), ro->StartOffset().value() + i);
      ASSERT_EQ(e.payload, "p-" + e.message_id);
      ASSERT_TRUE(ids.insert(e.message_id).second) << e.message_id;
    }
    if (final && !expect_retention) {
      size_t total = 0;
      for (int i = 0; i < kAppends; ++i)
        total += static_cast<size_t>(i % 3 + 1);
      EXPECT_EQ(all->size(), total * kThreads);
    }
    ASSERT_TRUE(ro->Close().ok());
    ++snapshots;
  };
  while (running.load() > 0) {
    check_snapshot(false);
    if (::testing::Test::HasFatalFailure()) break;
  }
  for (auto& t : appenders)
    t.join();
  check_snapshot(true);
  EXPECT_GT(snapshots, 1);
  if (expect_retention) {
    EXPECT_TRUE(saw_gap_start);
    EXPECT_GT(writer->StartOffset().value(), 0u);
  }
  ASSERT_TRUE(writer->Close().ok());
}

TEST(ReadOnlyLogTest, ReadsEverythingPublishedWhileAnotherInstanceAppends) {
  ReadWhileAppending({.dir = "", .segment_bytes = 2048}, /*expect_retention=*/false);
}

TEST(ReadOnlyLogTest, ReadsWhileRetentionDeletesSegments) {
  ReadWhileAppending({.dir = "", .segment_bytes = 512, .retention_bytes = 4096},
                     /*expect_retention=*/true);
}

TEST(ReadOnlyLogTest, ZstdAndNeverPolicy) {
  ReadWhileAppending({.dir = "",
                      .fsync = FsyncPolicy::kNever,
                      .segment_bytes = 1024,
                      .compression = LogCompression::kZstd},
                     /*expect_retention=*/false);
}

TEST(ReadOnlyLogTest, StopsAtTornTailWithoutTouchingAnything) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 1024})).value();
    for (int i = 0; i < 40; ++i)
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("payload-" + std::to_string(i))}).status.ok());
    ASSERT_TRUE(log->OpenCursor("archive").ok());
    ASSERT_TRUE(log->Close().ok());
  }
  auto files = SegmentFiles(dir.path());
  ASSERT_GT(files.size(), 1u);
  const std::string last_path = files.back();
  const std::string last = ReadFile(last_path);
  ASSERT_FALSE(last.empty());
  // Tear the last frame (cut its final bytes), then leave a half-written frame header after it
  // as well, as a writer dying mid-write could; also a stray .tmp cursor, which a writable open
  // would delete.
  std::string torn = last.substr(0, last.size() - 3);
  WriteFile(last_path, torn);
  WriteFile(dir.path() + "/cursors/archive.cursor.tmp", "half");
  const auto before = Snapshot(dir.path());
  const auto mtime_before = std::filesystem::last_write_time(last_path);

  auto ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->StartOffset().value(), 0u);
  EXPECT_EQ(ro->EndOffset().value(), 39u);  // one record per frame: the torn one is hidden
  auto reader = std::move(ro->OpenReader()).value();
  auto all = ReadAll(*reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 39u);
  for (size_t i = 0; i < all->size(); ++i)
    EXPECT_EQ((*all)[i].payload, "payload-" + std::to_string(i));
  // Caught up: WaitForData answers at once (a snapshot never grows).
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(reader->WaitForData(std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  ASSERT_TRUE(ro->Close().ok());
  ro.reset();

  EXPECT_EQ(Snapshot(dir.path()), before);
  EXPECT_EQ(std::filesystem::file_size(last_path), torn.size());
  EXPECT_EQ(std::filesystem::last_write_time(last_path), mtime_before);

  // Garbage after the last whole frame is hidden the same way.
  WriteFile(last_path, last + std::string(25, '\x5a'));
  const auto before_garbage = Snapshot(dir.path());
  ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->EndOffset().value(), 40u);
  auto reader2 = std::move(ro->OpenReader()).value();
  auto all2 = ReadAll(*reader2);
  ASSERT_TRUE(all2.ok()) << all2.status().ToString();
  EXPECT_EQ(all2->size(), 40u);
  reader2.reset();
  ro.reset();
  EXPECT_EQ(Snapshot(dir.path()), before_garbage);
}

TEST(ReadOnlyLogTest, RefusesEverythingThatWrites) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path()})).value();
    ASSERT_TRUE(AppendSync(*log, {MakeRecord("a")}).status.ok());
  }
  const auto before = Snapshot(dir.path());
  auto ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  auto r = AppendSync(*ro, {MakeRecord("b")});
  EXPECT_EQ(r.status.code(), StatusCode::kFailedPrecondition) << r.status.ToString();
  EXPECT_EQ(ro->OpenCursor("dest").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->DeleteCursor("dest").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->EnforceRetention().code(), StatusCode::kFailedPrecondition);
  ro->RequestRoll();
  auto reader = std::move(ro->OpenReader()).value();
  EXPECT_EQ(reader->Commit(Offset(1)).code(), StatusCode::kFailedPrecondition);
  auto all = ReadAll(*reader);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].payload, "a");
  EXPECT_EQ(ro->SegmentCount(), 1u);
  EXPECT_TRUE(ro->Close().ok());
  EXPECT_TRUE(ro->Close().ok());
  EXPECT_EQ(Snapshot(dir.path()), before);
}

TEST(ReadOnlyLogTest, MissingDirIsNotFoundAndEmptyDirIsEmpty) {
  TempDir dir;
  const std::string missing = dir.path() + "/nope";
  auto log = OpenLocalEventLog({.dir = missing, .read_only = true});
  EXPECT_EQ(log.status().code(), StatusCode::kNotFound) << log.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(missing));

  auto ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->StartOffset().value(), 0u);
  EXPECT_EQ(ro->EndOffset().value(), 0u);
  auto reader = std::move(ro->OpenReader()).value();
  auto all = ReadAll(*reader);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_TRUE(reader->SeekToTime(TimestampMs(0)).ok());
  EXPECT_EQ(reader->position().value(), 0u);
  ro.reset();
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(ReadOnlyLogTest, CorruptFrameInOlderSegmentIsDataLoss) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512})).value();
    for (int i = 0; i < 60; ++i)
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("payload-" + std::to_string(i))}).status.ok());
  }
  auto files = SegmentFiles(dir.path());
  ASSERT_GT(files.size(), 2u);
  std::string data = ReadFile(files[0]);
  auto h0 = ParseFrameHeader(data);
  ASSERT_TRUE(h0.ok());
  uint64_t target = h0->frame_size() + kFrameHeaderSize + kRecordHeaderSize + 3;
  data[target] = static_cast<char>(data[target] ^ 0x01);
  WriteFile(files[0], data);

  auto ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->EndOffset().value(), 60u);
  auto reader = std::move(ro->OpenReader()).value();
  auto all = ReadAll(*reader);
  EXPECT_EQ(all.status().code(), StatusCode::kDataLoss) << all.status().ToString();
}

TEST(ReadOnlyLogTest, SegmentsDeletedAfterOpenStayReadable) {
  TempDir dir;
  auto writer = std::move(OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512})).value();
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(AppendSync(*writer, {MakeRecord("payload-" + std::to_string(i))}).status.ok());
  auto ro = OpenReadOnly(dir.path());
  ASSERT_NE(ro, nullptr);
  const size_t segments = SegmentFiles(dir.path()).size();
  ASSERT_GT(segments, 3u);
  // The live writer's retention deletes every closed segment.
  auto cursor = std::move(writer->OpenCursor("c")).value();
  ASSERT_TRUE(cursor->Commit(writer->EndOffset()).ok());
  ASSERT_TRUE(writer->EnforceRetention().ok());
  ASSERT_EQ(SegmentFiles(dir.path()).size(), 1u);

  auto reader = std::move(ro->OpenReader()).value();
  auto all = ReadAll(*reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 60u);
  for (size_t i = 0; i < all->size(); ++i)
    EXPECT_EQ((*all)[i].payload, "payload-" + std::to_string(i));
  // A snapshot opened now starts at the oldest retained record.
  auto later = OpenReadOnly(dir.path());
  ASSERT_NE(later, nullptr);
  EXPECT_EQ(later->StartOffset(), writer->StartOffset());
  EXPECT_EQ(later->EndOffset().value(), 60u);
}

}  // namespace
}  // namespace sy::log
