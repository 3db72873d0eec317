#include "log/local/local_log.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "log/local/frame.h"
#include "log/local/log_test_util.h"

namespace sy::log {
namespace {

using testing::AppendSync;
using testing::MakeRecord;
using testing::ReadAll;
using testing::SegmentFiles;
using testing::TempDir;

std::unique_ptr<LocalEventLog> MustOpen(LocalLogOptions opt) {
  auto log = OpenLocalEventLog(std::move(opt));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return std::move(log).value();
}

TEST(LocalLogTest, AppendReadRoundTripWithContiguousOffsets) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path()});
  uint64_t expected_first = 0;
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<LogRecord> recs;
    for (int i = 0; i <= batch; ++i)
      recs.push_back(MakeRecord(std::to_string(batch * 10 + i)));
    auto r = AppendSync(*log, recs);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.first.value(), expected_first);
    expected_first += recs.size();
  }
  EXPECT_EQ(log->EndOffset().value(), 15u);
  auto reader = log->OpenReader();
  ASSERT_TRUE(reader.ok());
  auto all = ReadAll(**reader);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 15u);
  for (size_t i = 0; i < all->size(); ++i)
    EXPECT_EQ((*all)[i].offset.value(), i);
  EXPECT_EQ((*all)[0].payload, "0");
  EXPECT_EQ((*all)[0].source, "web");
  EXPECT_EQ((*all)[0].message_id, "msg-0");
  EXPECT_EQ((*all)[14].payload, "44");
  EXPECT_FALSE((*reader)->Commit(Offset(1)).ok());
}

// Record headers (a blocked event's mark) survive a reopen, in frames that mix records with and
// without them, compressed or not; a frame without any keeps format 1 (no flag bit 1).
TEST(LocalLogTest, RecordHeadersRoundTripInMixedFrames) {
  for (bool zstd : {false, true}) {
    TempDir dir;
    LocalLogOptions opt{.dir = dir.path()};
    if (zstd) opt.compression = LogCompression::kZstd;
    {
      auto log = MustOpen(opt);
      LogRecord blocked = MakeRecord(std::string(300, 'b'));
      blocked.headers = {{std::string(kHeaderBlocked), "plan-a"},
                         {std::string(kHeaderViolations), R"([{"rule":"required"}])"},
                         {"empty", ""}};
      ASSERT_TRUE(
          AppendSync(*log, {MakeRecord("plain"), blocked, MakeRecord("plain2")}).status.ok());
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("alone")}).status.ok());
      ASSERT_TRUE(log->Close().ok());
    }
    auto log = MustOpen(opt);
    auto reader = log->OpenReader();
    auto all = ReadAll(**reader);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_EQ(all->size(), 4u);
    EXPECT_TRUE((*all)[0].headers.empty());
    ASSERT_EQ((*all)[1].headers.size(), 3u);
    EXPECT_EQ(*FindHeader((*all)[1].headers, kHeaderBlocked), "plan-a");
    EXPECT_EQ(*FindHeader((*all)[1].headers, kHeaderViolations), R"([{"rule":"required"}])");
    EXPECT_EQ(*FindHeader((*all)[1].headers, "empty"), "");
    EXPECT_EQ(FindHeader((*all)[1].headers, kHeaderReleasedFrom), nullptr);
    EXPECT_EQ((*all)[1].payload, std::string(300, 'b'));
    EXPECT_EQ((*all)[2].payload, "plain2");
    EXPECT_TRUE((*all)[3].headers.empty());
  }
}

// A frame whose headers length runs past the record is data loss, not a misread.
TEST(LocalLogTest, TruncatedRecordHeadersAreDataLoss) {
  LogRecord r = MakeRecord("p");
  r.headers = {{"k", "v"}};
  std::string frame(kFrameHeaderSize, '\0');
  EncodeRecord(r, &frame, true);
  frame[frame.size() - 12] = 9;  // headers_len (8: u16, u32, "k", "v") claims 9
  SealFrame(&frame, 0, 1, 0, false, nullptr, true);
  auto header = ParseFrameHeader(frame);
  ASSERT_TRUE(header.ok());
  auto decoded = DecodeFrame(*header, frame);
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
}

TEST(LocalLogTest, RollsBySizeAndReopenKeepsEverything) {
  TempDir dir;
  {
    auto log = MustOpen({.dir = dir.path(), .segment_bytes = 1024});
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(AppendSync(*log, {MakeRecord(std::string(50, 'a' + i % 26))}).status.ok());
    }
    EXPECT_GT(log->SegmentCount(), 3u);
    ASSERT_TRUE(log->Close().ok());
  }
  EXPECT_GT(SegmentFiles(dir.path()).size(), 3u);
  auto log = MustOpen({.dir = dir.path(), .segment_bytes = 1024});
  EXPECT_EQ(log->EndOffset().value(), 100u);
  auto r = AppendSync(*log, {MakeRecord("after")});
  EXPECT_EQ(r.first.value(), 100u);
  auto reader = log->OpenReader();
  auto all = ReadAll(**reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 101u);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ((*all)[i].offset.value(), i);
    EXPECT_EQ((*all)[i].payload, std::string(50, 'a' + i % 26));
  }
  EXPECT_EQ((*all)[100].payload, "after");
}

TEST(LocalLogTest, ReadRespectsLimits) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path()});
  std::vector<LogRecord> recs;
  for (int i = 0; i < 10; ++i)
    recs.push_back(MakeRecord(std::string(100, 'x')));
  ASSERT_TRUE(AppendSync(*log, recs).status.ok());
  auto reader = std::move(log->OpenReader()).value();
  auto a = reader->Read(3, 1 << 20);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 3u);
  auto b = reader->Read(100, 1);  // at least one even if over the byte budget
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 1u);
  EXPECT_EQ(reader->position().value(), 4u);
}

// A Read that stops inside a frame keeps the rest of the frame for the next Read; reads in
// small steps, across frames, after a Seek back and forward, return every record once, in order.
TEST(LocalLogTest, ReadsInsideFramesAndSeeksReturnEachRecordOnce) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path(), .compression = LogCompression::kZstd});
  for (int frame = 0; frame < 4; ++frame) {
    std::vector<LogRecord> recs;
    for (int i = 0; i < 7; ++i)
      recs.push_back(MakeRecord(std::to_string(frame * 7 + i)));
    ASSERT_TRUE(AppendSync(*log, recs).status.ok());
  }
  auto reader = std::move(log->OpenReader()).value();
  auto read_until = [&](uint64_t end, size_t step) {
    std::vector<std::string> got;
    while (reader->position().value() < end) {
      auto r = reader->Read(std::min<size_t>(step, end - reader->position().value()), 1 << 20);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || r->empty()) break;
      for (auto& e : *r) {
        EXPECT_EQ(e.payload, std::to_string(e.offset.value()));
        got.push_back(e.payload);
      }
    }
    return got;
  };
  auto first = read_until(10, 3);  // stops inside the second frame
  ASSERT_EQ(first.size(), 10u);
  EXPECT_EQ(first.back(), "9");
  ASSERT_TRUE(reader->Seek(Offset(2)).ok());  // back into the first frame
  auto again = read_until(5, 2);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again.front(), "2");
  ASSERT_TRUE(reader->Seek(Offset(12)).ok());  // forward, inside the second frame
  auto rest = read_until(28, 4);
  ASSERT_EQ(rest.size(), 16u);
  EXPECT_EQ(rest.front(), "12");
  EXPECT_EQ(rest.back(), "27");
}

TEST(LocalLogTest, CursorCommitPersistsAcrossReopen) {
  TempDir dir;
  {
    auto log = MustOpen({.dir = dir.path()});
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("e")}).status.ok());
    auto cursor = std::move(log->OpenCursor("dest.webhook-1")).value();
    EXPECT_EQ(cursor->position().value(), 0u);
    auto batch = cursor->Read(4, 1 << 20);
    ASSERT_TRUE(batch.ok());
    ASSERT_EQ(batch->size(), 4u);
    ASSERT_TRUE(cursor->Commit(cursor->position()).ok());
    EXPECT_EQ(cursor->committed().value(), 4u);
    EXPECT_FALSE(cursor->Commit(Offset(11)).ok());  // past the end
    EXPECT_FALSE(log->OpenCursor("bad name").ok());
    EXPECT_FALSE(log->OpenCursor("").ok());
  }
  auto log = MustOpen({.dir = dir.path()});
  auto cursor = std::move(log->OpenCursor("dest.webhook-1")).value();
  EXPECT_EQ(cursor->position().value(), 4u);
  EXPECT_EQ(cursor->committed().value(), 4u);
  auto rest = ReadAll(*cursor);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 6u);
  ASSERT_TRUE(log->DeleteCursor("dest.webhook-1").ok());
  EXPECT_FALSE(log->DeleteCursor("dest.webhook-1").ok());
  auto fresh = std::move(log->OpenCursor("dest.webhook-1")).value();
  EXPECT_EQ(fresh->position().value(), 0u);
}

TEST(LocalLogTest, SeekByOffsetAndTimeWithNonMonotonicTimes) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path(), .segment_bytes = 600});
  std::mt19937 rng(7);
  std::vector<int64_t> times;
  for (int i = 0; i < 200; ++i) {
    // Mostly increasing, with jitter that goes backwards.
    int64_t t = 1000 + i * 10 + static_cast<int64_t>(rng() % 50) - 25;
    times.push_back(t);
    ASSERT_TRUE(AppendSync(*log, {MakeRecord(std::to_string(i), t)}).status.ok());
  }
  ASSERT_GT(log->SegmentCount(), 2u);
  auto reader = std::move(log->OpenReader()).value();
  ASSERT_TRUE(reader->Seek(Offset(123)).ok());
  auto one = reader->Read(1, 1 << 20);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].offset.value(), 123u);
  EXPECT_EQ((*one)[0].payload, "123");
  ASSERT_TRUE(reader->Seek(Offset(100000)).ok());
  EXPECT_EQ(reader->position().value(), 200u);

  for (int64_t t = 900; t <= 3100; t += 7) {
    uint64_t want = 200;
    for (size_t i = 0; i < times.size(); ++i) {
      if (times[i] >= t) {
        want = i;
        break;
      }
    }
    ASSERT_TRUE(reader->SeekToTime(TimestampMs(t)).ok());
    EXPECT_EQ(reader->position().value(), want) << "t=" << t;
  }
}

TEST(LocalLogTest, WaitForDataWakesOnAppendAndTimesOut) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path()});
  auto cursor = std::move(log->OpenCursor("c")).value();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cursor->WaitForData(std::chrono::milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(45));

  std::thread appender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log->Append({MakeRecord("x")}, [](const AppendResult&) {});
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(cursor->WaitForData(std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  appender.join();
  auto batch = cursor->Read(10, 1 << 20);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->size(), 1u);
  EXPECT_FALSE(cursor->WaitForData(std::chrono::milliseconds(1)));

  // Close wakes a waiting reader.
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log->Close().IgnoreError();
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cursor->WaitForData(std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  closer.join();
}

TEST(LocalLogTest, RetentionByCursorKeepsUnreadSegments) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path(), .segment_bytes = 512});
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(AppendSync(*log, {MakeRecord("0123456789")}).status.ok());
  size_t segments = log->SegmentCount();
  ASSERT_GT(segments, 3u);
  // No named cursor: nothing is deleted.
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->SegmentCount(), segments);
  EXPECT_EQ(log->StartOffset().value(), 0u);

  auto a = std::move(log->OpenCursor("a")).value();
  auto b = std::move(log->OpenCursor("b")).value();
  ASSERT_TRUE(a->Commit(Offset(50)).ok());
  ASSERT_TRUE(b->Commit(Offset(20)).ok());
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_LT(log->SegmentCount(), segments);
  EXPECT_GT(log->StartOffset().value(), 0u);
  EXPECT_LE(log->StartOffset().value(), 20u);
  // b still reads everything from its committed point.
  ASSERT_TRUE(b->Seek(b->committed()).ok());
  auto rest = ReadAll(*b);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 40u);
  EXPECT_EQ(rest->front().offset.value(), 20u);

  // Deleting b releases its hold; the active segment is never deleted.
  ASSERT_TRUE(log->DeleteCursor("b").ok());
  ASSERT_TRUE(a->Commit(Offset(60)).ok());
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->SegmentCount(), 1u);
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 1u);
}

TEST(LocalLogTest, RetentionSizeCapPushesCursorAndCountsSkipped) {
  TempDir dir;
  MetricsRegistry metrics;
  auto log = MustOpen(
      {.dir = dir.path(), .segment_bytes = 512, .retention_bytes = 1500, .metrics = &metrics});
  auto slow = std::move(log->OpenCursor("slow")).value();
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(AppendSync(*log, {MakeRecord("0123456789")}).status.ok());
  ASSERT_TRUE(log->EnforceRetention().ok());
  uint64_t start = log->StartOffset().value();
  EXPECT_GT(start, 0u);
  EXPECT_EQ(slow->committed().value(), start);
  auto* skipped =
      metrics.GetCounter("switchyard_log_cursor_skipped_events_total", "", {{"cursor", "slow"}});
  EXPECT_EQ(skipped->Value(), start);
  // The cursor's next read starts at the oldest retained record.
  auto batch = slow->Read(1, 1 << 20);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ((*batch)[0].offset.value(), start);
  std::string text = metrics.RenderPrometheus();
  EXPECT_NE(text.find("switchyard_consumer_lag_events{cursor=\"slow\"}"), std::string::npos);
  EXPECT_NE(text.find("switchyard_log_fsyncs_total"), std::string::npos);
  EXPECT_NE(text.find("switchyard_log_append_latency_seconds_bucket"), std::string::npos);
  EXPECT_NE(text.find("switchyard_log_appended_events_total 60"), std::string::npos);
}

TEST(LocalLogTest, RetentionAgeCapUsesNewestRecordOfSegment) {
  TempDir dir;
  FakeClock clock(1'000'000);
  auto log = MustOpen(
      {.dir = dir.path(), .segment_bytes = 512, .retention_age_ms = 10'000, .clock = &clock});
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(AppendSync(*log, {MakeRecord("old", 1'000'000 + i)}).status.ok());
  }
  log->RequestRoll();
  ASSERT_TRUE(AppendSync(*log, {MakeRecord("new", 1'020'000)}).status.ok());
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->StartOffset().value(), 0u);  // nothing is 10 s old yet
  clock.Set(1'015'000);
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->StartOffset().value(), 30u);
  EXPECT_EQ(log->SegmentCount(), 1u);
}

TEST(LocalLogTest, ZstdCompressionRoundTripsAndShrinks) {
  TempDir plain_dir, zstd_dir;
  std::string payload = R"({"type":"track","event":"Order Completed","properties":{"revenue":1})";
  for (auto [dir, comp] : {std::pair{&plain_dir, LogCompression::kNone},
                           std::pair{&zstd_dir, LogCompression::kZstd}}) {
    auto log = MustOpen({.dir = dir->path(), .compression = comp});
    for (int b = 0; b < 10; ++b) {
      std::vector<LogRecord> recs(50, MakeRecord(payload));
      ASSERT_TRUE(AppendSync(*log, recs).status.ok());
    }
  }
  auto plain = std::filesystem::file_size(SegmentFiles(plain_dir.path())[0]);
  auto packed = std::filesystem::file_size(SegmentFiles(zstd_dir.path())[0]);
  EXPECT_LT(packed * 4, plain);
  auto log = MustOpen({.dir = zstd_dir.path(), .compression = LogCompression::kNone});
  auto all = ReadAll(*std::move(log->OpenReader()).value());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 500u);
  EXPECT_EQ((*all)[499].payload, payload);
}

TEST(LocalLogTest, MaxPendingBytesFailsFast) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path(), .max_pending_bytes = 1000});
  auto r = AppendSync(*log, {MakeRecord(std::string(2000, 'x'))});
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(AppendSync(*log, {MakeRecord("small")}).status.ok());
}

TEST(LocalLogTest, CloseCompletesQueuedAppendsAndRefusesNewOnes) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path()});
  std::atomic<int> ok{0};
  for (int i = 0; i < 200; ++i) {
    log->Append({MakeRecord(std::to_string(i))}, [&](const AppendResult& r) {
      if (r.status.ok()) ++ok;
    });
  }
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(log->EndOffset().value(), 200u);
  auto r = AppendSync(*log, {MakeRecord("late")});
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(log->Close().ok());  // idempotent
}

TEST(LocalLogTest, IntervalAndNeverPoliciesAcknowledge) {
  for (auto policy : {FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    TempDir dir;
    auto log = MustOpen({.dir = dir.path(), .fsync = policy, .fsync_interval_ms = 20});
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(AppendSync(*log, {MakeRecord("x")}).status.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(log->EndOffset().value(), 5u);
  }
}

TEST(LocalLogTest, ConcurrentAppendersGetDisjointContiguousOffsets) {
  TempDir dir;
  auto log = MustOpen({.dir = dir.path(), .segment_bytes = 4096});
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> acked;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string p = std::to_string(t) + ":" + std::to_string(i);
        auto r = AppendSync(*log, {MakeRecord(p), MakeRecord(p + "b")});
        ASSERT_TRUE(r.status.ok());
        std::lock_guard lock(mu);
        acked.emplace_back(r.first.value(), p);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  auto all = ReadAll(*std::move(log->OpenReader()).value());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<size_t>(2 * kThreads * kPerThread));
  for (const auto& [first, p] : acked) {
    EXPECT_EQ((*all)[first].payload, p);
    EXPECT_EQ((*all)[first + 1].payload, p + "b");
  }
}

}  // namespace
}  // namespace sy::log
