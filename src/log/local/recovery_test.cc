// Recovery: a torn or corrupt tail is cut back to the last whole frame; corruption anywhere else
// is reported as kDataLoss and never handed to a reader.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Writes `frames` frames of two records each; returns the byte position where the last starts.
uint64_t WriteFrames(const std::string& dir, int frames, LogCompression comp) {
  auto log = std::move(OpenLocalEventLog({.dir = dir, .compression = comp})).value();
  for (int i = 0; i < frames; ++i) {
    EXPECT_TRUE(AppendSync(*log, {MakeRecord("rec-" + std::to_string(i) + "-a"),
                                  MakeRecord("rec-" + std::to_string(i) + "-b")})
                    .status.ok());
  }
  EXPECT_TRUE(log->Close().ok());
  auto files = SegmentFiles(dir);
  EXPECT_EQ(files.size(), 1u);
  // Walk the frames to find where the last one starts.
  std::string data = ReadFile(files[0]);
  uint64_t pos = 0, last = 0;
  while (pos < data.size()) {
    auto h = ParseFrameHeader(std::string_view(data).substr(pos));
    EXPECT_TRUE(h.ok());
    last = pos;
    pos += h->frame_size();
  }
  return last;
}

void ExpectRecords(const std::string& dir, int frames) {
  auto log = OpenLocalEventLog({.dir = dir});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->EndOffset().value(), static_cast<uint64_t>(2 * frames));
  auto all = ReadAll(*std::move((*log)->OpenReader()).value());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), static_cast<size_t>(2 * frames));
  for (int i = 0; i < frames; ++i) {
    EXPECT_EQ((*all)[2 * i].payload, "rec-" + std::to_string(i) + "-a");
    EXPECT_EQ((*all)[2 * i + 1].payload, "rec-" + std::to_string(i) + "-b");
  }
  // The log keeps working after recovery: new appends follow the recovered records.
  auto r = AppendSync(**log, {MakeRecord("after")});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.first.value(), static_cast<uint64_t>(2 * frames));
}

class TailRecoveryTest : public ::testing::TestWithParam<LogCompression> {};

TEST_P(TailRecoveryTest, TruncatedAtEveryByteOfLastFrameKeepsWholeRecords) {
  TempDir dir;
  constexpr int kFrames = 4;
  uint64_t last_start = WriteFrames(dir.path(), kFrames, GetParam());
  std::string seg = SegmentFiles(dir.path())[0];
  std::string full = ReadFile(seg);
  for (uint64_t cut = last_start; cut < full.size(); ++cut) {
    SCOPED_TRACE("cut=" + std::to_string(cut));
    WriteFile(seg, std::string_view(full).substr(0, cut));
    ExpectRecords(dir.path(), kFrames - 1);
  }
  WriteFile(seg, full);
  ExpectRecords(dir.path(), kFrames);
}

TEST_P(TailRecoveryTest, FlippedByteInLastFrameIsTruncated) {
  TempDir dir;
  constexpr int kFrames = 3;
  uint64_t last_start = WriteFrames(dir.path(), kFrames, GetParam());
  std::string seg = SegmentFiles(dir.path())[0];
  std::string full = ReadFile(seg);
  for (uint64_t pos = last_start; pos < full.size(); ++pos) {
    SCOPED_TRACE("pos=" + std::to_string(pos));
    std::string bad = full;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
    WriteFile(seg, bad);
    ExpectRecords(dir.path(), kFrames - 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Compression, TailRecoveryTest,
                         ::testing::Values(LogCompression::kNone, LogCompression::kZstd));

TEST(RecoveryTest, CorruptRecordInOlderSegmentIsDataLossNeverBytes) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512})).value();
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("payload-" + std::to_string(i))}).status.ok());
    }
  }
  auto files = SegmentFiles(dir.path());
  ASSERT_GT(files.size(), 3u);
  // Flip a payload byte of the second frame of the second segment (body, not header).
  std::string data = ReadFile(files[1]);
  auto h0 = ParseFrameHeader(data);
  ASSERT_TRUE(h0.ok());
  uint64_t second = h0->frame_size();
  uint64_t target = second + kFrameHeaderSize + kRecordHeaderSize + 5;
  data[target] = static_cast<char>(data[target] ^ 0x01);
  WriteFile(files[1], data);
  auto h1 = ParseFrameHeader(std::string_view(data).substr(second));
  ASSERT_TRUE(h1.ok());
  const uint64_t bad_offset = h1->first_offset;

  auto log = OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->EndOffset().value(), 60u);  // an older segment is never truncated
  auto reader = std::move((*log)->OpenReader()).value();
  std::vector<LogEntry> got;
  Status final;
  for (;;) {
    auto batch = reader->Read(1, 1 << 20);
    if (!batch.ok()) {
      final = batch.status();
      break;
    }
    if (batch->empty()) break;
    for (auto& e : *batch)
      got.push_back(std::move(e));
  }
  EXPECT_EQ(final.code(), StatusCode::kDataLoss) << final.ToString();
  EXPECT_EQ(got.size(), bad_offset);
  for (const auto& e : got)
    EXPECT_EQ(e.payload, "payload-" + std::to_string(e.offset.value()));
  // Readers can skip past the damage explicitly.
  ASSERT_TRUE(reader->Seek(Offset(bad_offset + 1)).ok());
  auto rest = ReadAll(*reader);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->size(), 60 - bad_offset - 1);
}

TEST(RecoveryTest, CorruptHeaderInOlderSegmentIsDataLoss) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512})).value();
    for (int i = 0; i < 60; ++i)
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("p")}).status.ok());
  }
  auto files = SegmentFiles(dir.path());
  std::string data = ReadFile(files[0]);
  auto h0 = ParseFrameHeader(data);
  data[h0->frame_size() + 8] = 9;  // version byte of the second frame
  WriteFile(files[0], data);
  auto log = OpenLocalEventLog({.dir = dir.path(), .segment_bytes = 512});
  ASSERT_TRUE(log.ok());
  auto reader = std::move((*log)->OpenReader()).value();
  auto first = reader->Read(1, 1 << 20);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 1u);
  auto second = reader->Read(1, 1 << 20);
  EXPECT_EQ(second.status().code(), StatusCode::kDataLoss);
  // Later segments are unaffected.
  ASSERT_TRUE(reader->Seek(Offset(59)).ok());
  auto last = reader->Read(1, 1 << 20);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->size(), 1u);
}

TEST(RecoveryTest, GarbageFilesAndTmpCursorsAreIgnored) {
  TempDir dir;
  {
    auto log = std::move(OpenLocalEventLog({.dir = dir.path()})).value();
    ASSERT_TRUE(AppendSync(*log, {MakeRecord("p")}).status.ok());
    ASSERT_TRUE(log->OpenCursor("c").ok());
  }
  WriteFile(dir.path() + "/cursors/c.cursor.tmp", "half");
  WriteFile(dir.path() + "/notes.txt", "hello");
  auto log = OpenLocalEventLog({.dir = dir.path()});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/cursors/c.cursor.tmp"));
  EXPECT_EQ((*log)->EndOffset().value(), 1u);
}

}  // namespace
}  // namespace sy::log
