// Operation-sequence test: drives the local log with random appends (from several threads),
// reads, cursor commits, rolls, retention, injected faults, clean reopens and crashes (via
// FaultInjectionEnv), checking it against a simple in-memory model after every step:
//  - every acknowledged record is readable at its acknowledged offset after any reopen or crash;
//  - a record that was never acknowledged may appear (at-least-once) but at most once, and
//    nothing else appears;
//  - offsets are contiguous; a committed cursor resumes where it committed;
//  - without a retention cap, nothing at or after the committed cursor is deleted.
// Seeded; a failure prints the seed. Default: 2000 sequences or 40 s, whichever comes first;
// SY_OPFUZZ_SEQUENCES=N runs exactly N; SY_OPFUZZ_SEED=S runs the single sequence S.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "base/fault_injection_env.h"
#include "base/logging.h"
#include "log/local/local_log.h"
#include "log/local/log_test_util.h"

namespace sy::log {
namespace {

using testing::MakeRecord;
using testing::TempDir;

class Sequence {
 public:
  explicit Sequence(uint64_t seed) : seed_(seed), rng_(seed), env_(Env::Default(), false, seed) {
    opt_.dir = dir_.path();
    opt_.segment_bytes = 200 + rng_() % 2000;
    opt_.compression = rng_() % 4 == 0 ? LogCompression::kZstd : LogCompression::kNone;
    size_cap_ = rng_() % 5 == 0;
    if (size_cap_) opt_.retention_bytes = 1500 + rng_() % 3000;
    opt_.retention_check_interval_ms = 3'600'000;  // retention only when the sequence asks
    opt_.env = &env_;
  }

  void Run() {
    Open();
    int ops = 15 + static_cast<int>(rng_() % 30);
    for (int i = 0; i < ops && !::testing::Test::HasFatalFailure(); ++i) {
      int choice = static_cast<int>(rng_() % 100);
      SCOPED_TRACE("op " + std::to_string(i) + " choice " + std::to_string(choice));
      if (choice < 35) {
        AppendConcurrently(/*crash=*/false);
      } else if (choice < 52) {
        ReadSome();
      } else if (choice < 62) {
        CommitCursor();
      } else if (choice < 67) {
        log_->RequestRoll();
      } else if (choice < 75) {
        Retention();
      } else if (choice < 83) {
        Reopen(/*crash=*/false);
      } else if (choice < 93) {
        AppendConcurrently(/*crash=*/true);
      } else {
        InjectFault();
      }
    }
    if (!::testing::Test::HasFatalFailure()) Reopen(/*crash=*/false);
  }

 private:
  void Open() {
    auto log = OpenLocalEventLog(opt_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    auto cursor = log_->OpenCursor("c");
    ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
    cursor_ = std::move(cursor).value();
    if (size_cap_) {
      EXPECT_GE(cursor_->committed().value(), committed_);
    } else {
      EXPECT_EQ(cursor_->committed().value(), committed_);
    }
    committed_ = cursor_->committed().value();
    VerifyEverything();
  }

  std::string NextPayload() { return std::to_string(seed_) + "-" + std::to_string(counter_++); }

  void AppendConcurrently(bool crash) {
    int threads = 1 + static_cast<int>(rng_() % 3);
    std::vector<std::vector<std::vector<LogRecord>>> work(threads);
    for (auto& w : work) {
      int appends = 1 + static_cast<int>(rng_() % 3);
      for (int a = 0; a < appends; ++a) {
        std::vector<LogRecord> recs;
        int n = 1 + static_cast<int>(rng_() % 4);
        for (int r = 0; r < n; ++r) {
          recs.push_back(MakeRecord(NextPayload() + std::string(rng_() % 64, 'x'),
                                    static_cast<int64_t>(rng_() % 100000)));
        }
        w.push_back(std::move(recs));
      }
    }
    std::mutex mu;
    std::vector<std::thread> pool;
    for (auto& w : work) {
      pool.emplace_back([&, &batches = w] {
        for (auto& recs : batches) {
          auto r = testing::AppendSync(*log_, recs);
          std::lock_guard lock(mu);
          for (size_t i = 0; i < recs.size(); ++i) {
            if (r.status.ok()) {
              acked_[r.first.value() + i] = recs[i].payload;
            } else {
              maybe_.insert(recs[i].payload);
            }
          }
        }
      });
    }
    if (crash) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 400));
      env_.Crash(/*torn_tail=*/rng_() % 2 == 0);
    }
    for (auto& t : pool)
      t.join();
    if (crash) Reopen(/*crash=*/true);
  }

  void ReadSome() {
    auto batch = cursor_->Read(1 + rng_() % 20, 1 + rng_() % 2000);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (const auto& e : *batch)
      CheckEntry(e);
  }

  void CommitCursor() {
    Status st = cursor_->Commit(cursor_->position());
    if (st.ok()) {
      committed_ = cursor_->committed().value();
    } else {
      EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
    }
  }

  void Retention() {
    Status st = log_->EnforceRetention();
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!size_cap_) {
      EXPECT_LE(log_->StartOffset().value(), committed_);
    }
  }

  void InjectFault() {
    int kind = static_cast<int>(rng_() % 3);
    if (kind == 0) env_.FailWritesShort(1);
    if (kind == 1) env_.SetDiskFull(true);
    if (kind == 2) env_.FailSyncs(1);
    AppendConcurrently(/*crash=*/false);
    env_.Revive();
    if (kind == 2) Reopen(/*crash=*/false);  // the log refuses appends after a failed fsync
  }

  void Reopen(bool crash) {
    cursor_.reset();
    if (!crash) {
      Status st = log_->Close();
      (void)st;  // may carry an earlier injected failure
    }
    log_.reset();
    env_.Revive();
    Open();
  }

  // Checks one entry read from the log against the model.
  void CheckEntry(const LogEntry& e) {
    uint64_t off = e.offset.value();
    auto it = acked_.find(off);
    if (it != acked_.end()) {
      ASSERT_EQ(e.payload, it->second) << "offset " << off;
      return;
    }
    auto m = maybe_.find(e.payload);
    ASSERT_TRUE(m != maybe_.end()) << "unexpected record at offset " << off << ": " << e.payload;
    // A never-acknowledged record that is now in the log: it must keep this offset.
    acked_[off] = e.payload;
    maybe_.erase(m);
  }

  void VerifyEverything() {
    auto reader = std::move(log_->OpenReader()).value();
    uint64_t start = log_->StartOffset().value();
    uint64_t end = log_->EndOffset().value();
    uint64_t expect = start;
    for (;;) {
      auto batch = reader->Read(64, 1 << 20);
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      if (batch->empty()) break;
      for (const auto& e : *batch) {
        ASSERT_EQ(e.offset.value(), expect);
        ++expect;
        CheckEntry(e);
      }
    }
    ASSERT_EQ(expect, end);
    for (const auto& [off, payload] : acked_) {
      if (off >= start) {
        ASSERT_LT(off, end) << "acknowledged record lost: " << payload;
      }
    }
    if (!size_cap_) {
      ASSERT_LE(start, committed_);
    }
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  TempDir dir_;
  FaultInjectionEnv env_;
  LocalLogOptions opt_;
  bool size_cap_ = false;
  std::unique_ptr<LocalEventLog> log_;
  std::unique_ptr<LogCursor> cursor_;
  std::map<uint64_t, std::string> acked_;  // offset → payload, never erased
  std::set<std::string> maybe_;            // payloads of appends that failed
  uint64_t committed_ = 0;
  uint64_t counter_ = 0;
};

TEST(LogOpFuzzTest, RandomSequencesMatchModel) {
  SetLogLevel("off");
  uint64_t sequences = 2000;
  // Without an explicit count, stop after this much wall time so the binary stays well under a
  // minute on a busy 2-core machine (about 2000 sequences take 20 s on an idle one).
  auto budget = std::chrono::seconds(40);
  if (const char* n = std::getenv("SY_OPFUZZ_SEQUENCES")) {
    sequences = std::strtoull(n, nullptr, 10);
    budget = std::chrono::hours(24);
  }
  uint64_t first_seed = std::random_device{}();
  if (const char* s = std::getenv("SY_OPFUZZ_SEED")) {
    first_seed = std::strtoull(s, nullptr, 10);
    sequences = 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + budget;
  uint64_t ran = 0;
  for (uint64_t i = 0; i < sequences && std::chrono::steady_clock::now() < deadline; ++i) {
    uint64_t seed = first_seed + i;
    {
      SCOPED_TRACE("reproduce with SY_OPFUZZ_SEED=" + std::to_string(seed));
      Sequence(seed).Run();
    }
    ++ran;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "sequence failed; reproduce with SY_OPFUZZ_SEED=" << seed;
      break;
    }
  }
  SetLogLevel("info");
  std::printf("opfuzz: %llu sequences from seed %llu\n", static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(first_seed));
}

}  // namespace
}  // namespace sy::log
