// Fault injection: write and fsync failures make appends fail visibly and never lose anything
// that was acknowledged.
#include "base/fault_injection_env.h"

#include <gtest/gtest.h>

#include "log/local/local_log.h"
#include "log/local/log_test_util.h"

namespace sy::log {
namespace {

using testing::AppendSync;
using testing::MakeRecord;
using testing::ReadAll;
using testing::TempDir;

class FaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<LocalEventLog> Open() {
    auto log = OpenLocalEventLog({.dir = dir_.path(), .segment_bytes = 700, .env = &env_});
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return std::move(log).value();
  }
  // Appends one record; remembers it if acknowledged.
  AppendResult Add(EventLog& log, const std::string& payload) {
    auto r = AppendSync(log, {MakeRecord(payload)});
    if (r.status.ok()) acked_[r.first.value()] = payload;
    return r;
  }
  void ExpectAckedSurvive() {
    env_.Revive();
    auto log = Open();
    auto all = ReadAll(*std::move(log->OpenReader()).value());
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    for (const auto& [offset, payload] : acked_) {
      ASSERT_LT(offset, all->size());
      EXPECT_EQ((*all)[offset].payload, payload) << "offset " << offset;
    }
  }

  TempDir dir_;
  FaultInjectionEnv env_{Env::Default(), /*real_sync=*/false, /*seed=*/42};
  std::map<uint64_t, std::string> acked_;
};

TEST_F(FaultTest, ShortWriteFailsAppendAndLogContinues) {
  auto log = Open();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Add(*log, "a" + std::to_string(i)).status.ok());
  env_.FailWritesShort(1);
  auto r = Add(*log, "lost");
  EXPECT_EQ(r.status.code(), StatusCode::kIoError);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(Add(*log, "b" + std::to_string(i)).status.ok());
  EXPECT_EQ(log->EndOffset().value(), 25u);  // the failed append left no gap
  log.reset();
  ExpectAckedSurvive();
}

TEST_F(FaultTest, DiskFullIsResourceExhaustedAndRecovers) {
  auto log = Open();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Add(*log, "a" + std::to_string(i)).status.ok());
  env_.SetDiskFull(true);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Add(*log, "full").status.code(), StatusCode::kResourceExhausted);
  }
  env_.SetDiskFull(false);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(Add(*log, "b" + std::to_string(i)).status.ok());
  log.reset();
  ExpectAckedSurvive();
}

TEST_F(FaultTest, FsyncFailureIsFatalUntilReopen) {
  auto log = Open();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Add(*log, "a" + std::to_string(i)).status.ok());
  env_.FailSyncs(1);
  EXPECT_EQ(Add(*log, "unsynced").status.code(), StatusCode::kIoError);
  // Later appends are refused: nothing written after a failed fsync can be vouched for.
  EXPECT_EQ(Add(*log, "refused").status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(log->EndOffset().value(), 5u);
  EXPECT_FALSE(log->Close().ok());
  log.reset();
  // Simulate the worst case: the unsynced page was dropped.
  env_.Crash(/*torn_tail=*/true);
  ExpectAckedSurvive();
  env_.Revive();
  auto reopened = Open();
  EXPECT_TRUE(Add(*reopened, "again").status.ok());
}

TEST_F(FaultTest, CrashLosesNothingAcknowledged) {
  for (int round = 0; round < 20; ++round) {
    env_.Revive();
    auto log = Open();
    std::vector<std::thread> threads;
    std::mutex mu;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 30; ++i) {
          std::string p = std::to_string(round) + "/" + std::to_string(t) + "/" + std::to_string(i);
          auto r = AppendSync(*log, {MakeRecord(p)});
          if (!r.status.ok()) return;
          std::lock_guard lock(mu);
          acked_[r.first.value()] = p;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 5)));
    env_.Crash(/*torn_tail=*/true);
    for (auto& th : threads)
      th.join();
    log.reset();
    ExpectAckedSurvive();
  }
}

}  // namespace
}  // namespace sy::log
