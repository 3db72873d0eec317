#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "observe/delivery_stats.h"
#include "observe/disk_usage.h"
#include "observe/ingest_stats.h"
#include "observe/live_feed.h"
#include "observe/render.h"

namespace sy::observe {
namespace {

LiveRecord Rec(std::string id) {
  LiveRecord r;
  r.message_id = std::move(id);
  return r;
}

std::vector<LiveRecord> Recs(size_t n) {
  std::vector<LiveRecord> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(Rec("m" + std::to_string(i)));
  return v;
}

TEST(LiveFeed, NobodyWatchingAdmitsNothing) {
  LiveFeed feed;
  EXPECT_EQ(feed.Admit(TopicKind::kSource, "web", 100, 0), 0u);
  auto sub = feed.Subscribe(TopicKind::kSource, "web", 10);
  EXPECT_EQ(feed.subscribers(), 1u);
  EXPECT_EQ(feed.Admit(TopicKind::kSource, "other", 100, 0), 0u);
  EXPECT_EQ(feed.Admit(TopicKind::kDestination, "web", 100, 0), 0u);
  sub.reset();
  // A released subscription is forgotten at the next slow-path call.
  EXPECT_EQ(feed.Admit(TopicKind::kSource, "web", 100, 0), 0u);
  EXPECT_EQ(feed.subscribers(), 0u);
}

TEST(LiveFeed, RateCapsWhatIsAdmittedAndCountsTheRest) {
  LiveFeed feed;
  auto sub = feed.Subscribe(TopicKind::kSource, "web", 10);
  // Burst: one second's worth.
  size_t n = feed.Admit(TopicKind::kSource, "web", 100, 1'000);
  EXPECT_EQ(n, 10u);
  feed.Publish(TopicKind::kSource, "web", Recs(n));
  EXPECT_EQ(sub->sampled_out(), 90u);
  // 500 ms later: half a second's tokens.
  EXPECT_EQ(feed.Admit(TopicKind::kSource, "web", 100, 1'500), 5u);
  feed.Publish(TopicKind::kSource, "web", Recs(5));
  std::vector<LiveRecord> got;
  EXPECT_EQ(sub->Take(&got, 100, 0), 15u);
  EXPECT_EQ(got[0].message_id, "m0");
  EXPECT_EQ(got[10].message_id, "m0");
  EXPECT_EQ(sub->sampled_out(), 185u);
  // Over a long run the subscriber gets its rate, whatever is offered.
  size_t total = 0;
  for (int64_t t = 2'000; t < 12'000; t += 100) {
    size_t k = feed.Admit(TopicKind::kSource, "web", 1'000, t);
    total += k;
    feed.Publish(TopicKind::kSource, "web", Recs(k));
  }
  EXPECT_GE(total, 95u);
  EXPECT_LE(total, 110u);
}

TEST(LiveFeed, EachSubscriberGetsItsOwnShare) {
  LiveFeed feed;
  auto fast = feed.Subscribe(TopicKind::kDestination, "hook", 50);
  auto slow = feed.Subscribe(TopicKind::kDestination, "hook", 2);
  size_t n = feed.Admit(TopicKind::kDestination, "hook", 20, 0);
  EXPECT_EQ(n, 20u);  // the most any subscriber wants
  feed.Publish(TopicKind::kDestination, "hook", Recs(n));
  std::vector<LiveRecord> a, b;
  EXPECT_EQ(fast->Take(&a, 100, 0), 20u);
  EXPECT_EQ(slow->Take(&b, 100, 0), 2u);
  EXPECT_EQ(slow->sampled_out(), 18u);
}

TEST(LiveFeed, QueueIsBoundedAndKeepsTheNewest) {
  LiveFeed feed;
  auto sub = feed.Subscribe(TopicKind::kSource, "web", 1'000, /*queue_cap=*/3);
  size_t n = feed.Admit(TopicKind::kSource, "web", 5, 0);
  ASSERT_EQ(n, 5u);
  feed.Publish(TopicKind::kSource, "web", Recs(n));
  std::vector<LiveRecord> got;
  EXPECT_EQ(sub->Take(&got, 10, 0), 3u);
  EXPECT_EQ(got.front().message_id, "m2");
  EXPECT_EQ(got.back().message_id, "m4");
  EXPECT_EQ(sub->sampled_out(), 2u);
}

TEST(LiveFeed, TakeWaitsForAPublisherAndWakeupFires) {
  LiveFeed feed;
  auto sub = feed.Subscribe(TopicKind::kSource, "web", 100);
  std::atomic<int> wakeups{0};
  sub->SetWakeup([&] { ++wakeups; });
  std::thread publisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    size_t k = feed.Admit(TopicKind::kSource, "web", 1, 0);
    feed.Publish(TopicKind::kSource, "web", Recs(k));
  });
  std::vector<LiveRecord> got;
  EXPECT_EQ(sub->Take(&got, 10, 5'000), 1u);
  publisher.join();
  EXPECT_EQ(wakeups.load(), 1);
  sub->Close();
  EXPECT_EQ(sub->Take(&got, 10, 5'000), 0u);  // closed: returns at once
}

TEST(LiveFeed, PayloadIsCut) {
  LiveRecord r;
  r.SetPayload(std::string(LiveRecord::kMaxPayloadBytes + 10, 'x'));
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.payload.size(), LiveRecord::kMaxPayloadBytes);
  r.SetPayload("{}");
  EXPECT_FALSE(r.truncated);
}

TEST(DeliveryStats, CountsPerMinuteAndPercentiles) {
  DeliveryStats s;
  const int64_t t0 = 1'700'000'000'000 - (1'700'000'000'000 % 60'000);  // a minute's start
  for (int i = 0; i < 90; ++i)
    s.RecordDelivered(t0 + 1'000, 3);  // bucket ≤ 5 ms
  for (int i = 0; i < 10; ++i)
    s.RecordDelivered(t0 + 61'000, 400);  // next minute, bucket ≤ 500 ms
  s.Record(DeliveryStats::Kind::kRetried, t0 + 61'000, 4);
  s.Record(DeliveryStats::Kind::kDeadLettered, t0 + 61'000);
  s.Record(DeliveryStats::Kind::kFiltered, t0 + 2'000, 7);
  auto w = s.Snapshot(t0 + 61'500, 60);
  ASSERT_EQ(w.minutes.size(), 60u);
  EXPECT_EQ(w.minutes[58].start_ms, t0);
  EXPECT_EQ(w.minutes[58].delivered, 90u);
  EXPECT_EQ(w.minutes[58].filtered, 7u);
  EXPECT_EQ(w.minutes[59].delivered, 10u);
  EXPECT_EQ(w.minutes[59].retried, 4u);
  EXPECT_EQ(w.total.delivered, 100u);
  EXPECT_EQ(w.total.dead_lettered, 1u);
  EXPECT_EQ(w.p50_ms, 5);
  EXPECT_EQ(w.p95_ms, 500);
  // A window of one minute sees only the last one.
  auto last = s.Snapshot(t0 + 61'500, 1);
  EXPECT_EQ(last.total.delivered, 10u);
  EXPECT_EQ(last.p50_ms, 500);
}

TEST(DeliveryStats, OldMinutesAreForgottenAfterAFullTurn) {
  DeliveryStats s;
  const int64_t t0 = 6'000'000'000;
  s.Record(DeliveryStats::Kind::kFailed, t0, 3);
  const int64_t later = t0 + DeliveryStats::kKeepMinutes * 60'000LL;  // same ring slot
  s.Record(DeliveryStats::Kind::kFailed, later, 1);
  EXPECT_EQ(s.Snapshot(later, DeliveryStats::kKeepMinutes).total.failed, 1u);
  EXPECT_EQ(s.Snapshot(later, 1).total.failed, 1u);
}

TEST(DeliveryStats, PercentileEdges) {
  std::array<uint64_t, DeliveryStats::kBuckets> h{};
  EXPECT_EQ(DeliveryStats::Percentile(h, 0.5), -1);
  h.back() = 1;
  EXPECT_EQ(DeliveryStats::Percentile(h, 0.5), INT64_MAX);
  DeliveryStatsBook book;
  EXPECT_EQ(book.Find("x"), nullptr);
  auto a = book.For("x");
  EXPECT_EQ(book.For("x"), a);
  EXPECT_EQ(book.Find("x"), a);
}

}  // namespace
}  // namespace sy::observe

namespace sy::observe {
namespace {

TEST(LiveRecord, OfReadsTypeAndEventName) {
  auto r =
      LiveRecord::Of(Stage::kDelivered, 5, "web", "m1",
                     R"({"type":"track","event":"Order Completed","properties":{"event":"x"}})");
  EXPECT_EQ(r.type, "track");
  EXPECT_EQ(r.event, "Order Completed");
  EXPECT_EQ(r.source, "web");
  EXPECT_EQ(r.message_id, "m1");
  EXPECT_EQ(r.at_ms, 5);
  EXPECT_EQ(StageName(r.stage), "delivered");
  auto bad = LiveRecord::Of(Stage::kReceived, 0, "web", "m2", "not json");
  EXPECT_EQ(bad.type, "");
  EXPECT_EQ(bad.payload, "not json");
}

}  // namespace
}  // namespace sy::observe

namespace sy::observe {
namespace {

TEST(Render, LiveRecordJsonHidesThePayloadWithoutThePermission) {
  auto r = LiveRecord::Of(Stage::kRetrying, 0, "web", "m1", R"({"type":"track","event":"E"})");
  r.destination = "hook";
  r.detail = "http 503";
  r.http_status = 503;
  auto with = boost::json::parse(LiveRecordJson(r, true)).as_object();
  EXPECT_EQ(with.at("stage").as_string(), "retrying");
  EXPECT_EQ(with.at("at").as_string(), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(with.at("status").as_int64(), 503);
  EXPECT_EQ(with.at("payload").at("event").as_string(), "E");
  auto without = boost::json::parse(LiveRecordJson(r, false)).as_object();
  EXPECT_FALSE(without.contains("payload"));
  EXPECT_EQ(without.at("detail").as_string(), "http 503");
  r.SetPayload(std::string(LiveRecord::kMaxPayloadBytes + 1, ' '));
  auto cut = boost::json::parse(LiveRecordJson(r, true)).as_object();
  EXPECT_TRUE(cut.at("payload").is_string());
  EXPECT_TRUE(cut.at("truncated").as_bool());
}

TEST(Render, SseFrameAndStats) {
  EXPECT_EQ(SseFrame("event", "{}"), "event: event\ndata: {}\n\n");
  DeliveryStats s;
  s.RecordDelivered(120'000, 7);
  auto j = boost::json::parse(StatsJson(s.Snapshot(120'000, 2))).as_object();
  EXPECT_EQ(j.at("window_minutes").to_number<uint64_t>(), 2u);
  EXPECT_EQ(j.at("totals").at("delivered").to_number<uint64_t>(), 1u);
  EXPECT_EQ(j.at("latency_ms").at("p50").as_int64(), 10);
  EXPECT_EQ(j.at("minutes").as_array().size(), 2u);
  EXPECT_EQ(j.at("minutes").as_array()[1].at("start").as_string(), "1970-01-01T00:02:00.000Z");
  auto empty = boost::json::parse(StatsJson(DeliveryStats().Snapshot(0, 1))).as_object();
  EXPECT_TRUE(empty.at("latency_ms").at("p95").is_null());
}

}  // namespace
}  // namespace sy::observe

namespace sy::observe {
namespace {

TEST(IngestStats, CountsPerMinuteAndPerSource) {
  IngestStats s;
  const int64_t t0 = 6'000'000'000;  // a minute's start
  s.Record("web", t0 + 1'000, 10);
  s.Record("web", t0 + 59'999, 5);
  s.Record("ios", t0 + 60'000, 7);
  s.Record("ios", t0 + 60'000, 0);  // nothing stored: nothing recorded
  auto minutes = s.Minutes(t0 + 61'000, 3);
  ASSERT_EQ(minutes.size(), 3u);
  EXPECT_EQ(minutes[0].start_ms, t0 - 60'000);
  EXPECT_EQ(minutes[0].stored, 0u);
  EXPECT_EQ(minutes[1].start_ms, t0);
  EXPECT_EQ(minutes[1].stored, 15u);
  EXPECT_EQ(minutes[2].stored, 7u);
  auto web = s.Source("web");
  ASSERT_TRUE(web.has_value());
  EXPECT_EQ(web->stored, 15u);
  EXPECT_EQ(web->last_stored_ms, t0 + 59'999);
  EXPECT_FALSE(s.Source("android").has_value());
  // Out of order (two I/O threads): the latest time stays.
  s.Record("web", t0 + 30'000, 1);
  EXPECT_EQ(s.Source("web")->last_stored_ms, t0 + 59'999);
}

TEST(IngestStats, OldMinutesAreForgottenAfterAFullTurn) {
  IngestStats s;
  const int64_t t0 = 6'000'000'000;
  s.Record("web", t0, 3);
  const int64_t later = t0 + IngestStats::kKeepMinutes * 60'000LL;  // same ring slot
  s.Record("web", later, 1);
  auto all = s.Minutes(later, IngestStats::kKeepMinutes);
  uint64_t total = 0;
  for (const auto& m : all)
    total += m.stored;
  EXPECT_EQ(total, 1u);
  EXPECT_EQ(s.Minutes(later, 1000).size(), size_t{IngestStats::kKeepMinutes});  // clamped
}

TEST(IngestStats, ConcurrentRecordsLoseNothing) {
  IngestStats s;
  const int64_t t0 = 6'000'000'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10'000; ++i)
        s.Record(t % 2 ? "a" : "b", t0 + 5'000, 2);
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(s.Minutes(t0 + 5'000, 1)[0].stored, 80'000u);
  EXPECT_EQ(s.Source("a")->stored, 40'000u);
  EXPECT_EQ(s.Source("b")->stored, 40'000u);
}

TEST(IngestStats, SourcesPastTheCapAreCountedInMinutesOnly) {
  IngestStats s;
  for (size_t i = 0; i < IngestStats::kMaxSources + 10; ++i)
    s.Record("s" + std::to_string(i), 6'000'000'000, 1);
  EXPECT_EQ(s.Minutes(6'000'000'000, 1)[0].stored, IngestStats::kMaxSources + 10);
  size_t known = 0;
  for (size_t i = 0; i < IngestStats::kMaxSources + 10; ++i)
    known += s.Source("s" + std::to_string(i)).has_value();
  EXPECT_EQ(known, IngestStats::kMaxSources);
}

class DiskUsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sy_disk_usage_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "sub");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::filesystem::path& p, size_t bytes) {
    std::ofstream(p) << std::string(bytes, 'x');
  }
  std::filesystem::path dir_;
};

TEST_F(DiskUsageTest, SumsFilesRecursivelyAndCachesForTheTtl) {
  Write(dir_ / "a", 100);
  Write(dir_ / "sub" / "b", 50);
  DiskUsage usage(DiskUsage::Options{.max_entries = 100, .ttl_ms = 10'000});
  auto f = usage.Measure(dir_.string(), 1'000);
  EXPECT_EQ(f.bytes, 150u);
  EXPECT_EQ(f.files, 2u);
  EXPECT_TRUE(f.complete);
  EXPECT_TRUE(f.exists);
  Write(dir_ / "c", 1000);
  EXPECT_EQ(usage.Measure(dir_.string(), 5'000).bytes, 150u);    // cached
  EXPECT_EQ(usage.Measure(dir_.string(), 11'000).bytes, 1150u);  // measured again
  auto missing = usage.Measure((dir_ / "nope").string(), 1'000);
  EXPECT_FALSE(missing.exists);
  EXPECT_EQ(missing.bytes, 0u);
  EXPECT_TRUE(DiskUsage::FreeBytes(dir_.string()).has_value());
}

TEST_F(DiskUsageTest, WalkStopsAtTheEntryCap) {
  for (int i = 0; i < 30; ++i)
    Write(dir_ / ("f" + std::to_string(i)), 10);
  DiskUsage usage(DiskUsage::Options{.max_entries = 10, .ttl_ms = 0});
  auto f = usage.Measure(dir_.string(), 1);
  EXPECT_FALSE(f.complete);
  EXPECT_LE(f.files, 10u);
  EXPECT_LE(f.bytes, 100u);
}

}  // namespace
}  // namespace sy::observe
