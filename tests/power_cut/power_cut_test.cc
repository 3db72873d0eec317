// Power cuts (issue 18): the durable state of a server — the event log (appends, segment rolls,
// retention, a consumer cursor), the dedupe index (claims committed after each append, journal
// flushes, spills to run files and their merges), the dead-letter store (appends and redrive
// rewrites) and the archive state file — driven from several threads through FaultInjectionEnv
// while the power is cut at a random file operation. The cut drops everything not made durable:
// unsynced file bytes (a random part of an unsynced tail may remain) and directory entries (new
// files and directories, renames, unlinks) not covered by a directory fsync
// (base/fault_injection_env.h). After each cut everything is reopened as a restarted server would,
// and
//  - every acknowledged log record is there, byte for byte (or was removed by retention);
//  - the consumer cursor is at or past its last acknowledged commit and not past the log's end;
//  - the dedupe index reopens (journal, runs and the log's tail) and still knows the key of every
//    acknowledged record that is still in the log or that a successful Flush covered: a client's
//    retry of it would be answered as a duplicate;
//  - every acknowledged dead letter that a redrive did not deliver is listed exactly once, and
//    no intact record is unreadable;
//  - the archive state reads back as the last acknowledged state or a later attempted one.
// Rounds build on each other in one data directory (recovery after recovery).
//
// SY_POWER_CUT_ROUNDS (default 100) and SY_POWER_CUT_SEED (default fixed; "random" picks one)
// choose the run; the seed is printed, and each failure names its round's seed; SY_POWER_CUT_LOG
// (e.g. info) shows the components' log lines. The threads make
// a seed reproduce the cut point, not the exact interleaving.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "archive/archiver.h"
#include "base/fault_injection_env.h"
#include "base/logging.h"
#include "delivery/dead_letter_store.h"
#include "ingest/dedupe_index.h"
#include "log/local/local_log.h"
#include "log/local/log_test_util.h"

namespace sy {
namespace {

using log::testing::MakeRecord;
using log::testing::ReadAll;
using log::testing::TempDir;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  if (std::string(v) == "random") return std::random_device{}();
  return std::strtoull(v, nullptr, 10);
}

// What the workload was told is durable, across rounds.
struct Acknowledged {
  std::mutex mu;
  std::map<uint64_t, std::string> records;  // log offset → payload
  uint64_t cursor_commit = 0;               // last acknowledged commit of the cursor
  // Dedupe keys of acknowledged records, in commit order, with the record's offset. `flushed`:
  // a Flush of the round that committed the key began after the commit and succeeded, so the
  // key is in the journal or a run file. (A key not flushed before a cut is known only from the
  // log's tail: retention may delete its record first, and then a retry of it would be stored
  // again — docs/formats/dedupe.md, "Power cuts".)
  struct Key {
    Hash128 key;
    uint64_t offset;
    bool flushed = false;
  };
  std::vector<Key> keys;
  size_t unmarked = 0;           // keys below this index were considered by a successful Flush
  std::set<uint64_t> letters;    // dead letters appended (by offset)
  std::set<uint64_t> delivered;  // dead letters a redrive took out (may reappear)
  uint64_t state = 0;            // last acknowledged archive state
  uint64_t state_attempted = 0;  // last archive state a write was attempted for
};

delivery::DeadLetter Letter(uint64_t n) {
  delivery::DeadLetter d;
  d.destination = "hooks";
  d.offset = Offset(n);
  d.source = "web";
  d.message_id = "m" + std::to_string(n);
  d.reason = "http 400";
  d.attempts = 1;
  d.event = R"({"type":"track","event":"E","properties":{"n":)" + std::to_string(n) +
            R"(,"price":9.99}})";
  return d;
}

// An archive state whose content encodes `n`, so a read-back says which write it came from.
std::map<std::string, archive::SourceProgress> State(uint64_t n) {
  std::map<std::string, archive::SourceProgress> s;
  s["web"] = {Offset(n), n % 2 == 1, Offset(n + 7)};
  s["app"] = {Offset(n * 3), false, Offset(0)};
  return s;
}

class PowerCutTest : public ::testing::Test {
 protected:
  // Each store in a parent directory of its own (made before the test, so durable): a store that
  // does not make its own directory's entry durable cannot be covered by another's fsync.
  PowerCutTest() {
    for (const char* parent : {"/l", "/d", "/s", "/x"})
      std::filesystem::create_directories(dir_.path() + parent);
  }
  std::string LogDir() const { return dir_.path() + "/l/log"; }
  std::string DlqDir() const { return dir_.path() + "/d/dlq"; }
  std::string StateDir() const { return dir_.path() + "/s/archive-state"; }
  std::string StatePath() const { return StateDir() + "/state"; }
  std::string DedupeDir() const { return dir_.path() + "/x/dedupe"; }

  // A small memory budget, so every round spills keys to run files and merges them.
  Result<std::unique_ptr<ingest::DedupeIndex>> OpenDedupe(FaultInjectionEnv* env,
                                                          log::EventLog* log) {
    ingest::DedupeIndex::Options o;
    o.dir = DedupeDir();
    o.env = env;
    o.clock = SystemClock::Get();
    o.max_memory_bytes = 48 * 1024;
    o.spill_in_background = false;  // Flush spills, on the flusher thread below
    if (Status s = CreateDirDurably(env, o.dir); !s.ok()) return s;  // as the server does
    return ingest::DedupeIndex::Open(o, log);
  }

  Result<std::unique_ptr<log::LocalEventLog>> OpenLog(FaultInjectionEnv* env,
                                                      std::mt19937_64& rng) {
    log::LocalLogOptions o;
    o.dir = LogDir();
    o.segment_bytes = 2048 + rng() % 4096;  // rolls every few rounds of appends
    o.retention_bytes = 64 * 1024;          // and retention deletes old segments
    o.preallocate_bytes = rng() % 2 ? 8192 : 0;
    o.env = env;
    return log::OpenLocalEventLog(o);
  }

  // Everything acknowledged so far is there after the cut (see the file comment).
  void Verify(FaultInjectionEnv* env, std::mt19937_64& rng) {
    auto opened = OpenLog(env, rng);
    ASSERT_TRUE(opened.ok()) << "log recovery: " << opened.status().ToString();
    auto& log = **opened;
    auto reader = log.OpenReader();
    ASSERT_TRUE(reader.ok());
    auto all = ReadAll(**reader);
    ASSERT_TRUE(all.ok()) << "log read: " << all.status().ToString();
    const uint64_t start = log.StartOffset().value(), end = log.EndOffset().value();
    std::map<uint64_t, const log::LogEntry*> by_offset;
    for (const auto& e : *all)
      by_offset[e.offset.value()] = &e;
    // Retention took what is below the start (after it was acknowledged): no need to look again.
    ack_.records.erase(ack_.records.begin(), ack_.records.lower_bound(start));
    for (const auto& [offset, payload] : ack_.records) {
      ASSERT_LT(offset, end) << "acknowledged record past the recovered end";
      auto it = by_offset.find(offset);
      ASSERT_NE(it, by_offset.end()) << "acknowledged record lost: offset " << offset;
      ASSERT_EQ(it->second->payload, payload) << "offset " << offset;
    }
    auto cursor = log.OpenCursor("dest.hooks");
    ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
    EXPECT_GE((*cursor)->committed().value(), ack_.cursor_commit)
        << "cursor behind its acknowledged commit";
    EXPECT_LE((*cursor)->committed().value(), end) << "cursor ahead of its data";
    cursor->reset();
    VerifyDedupe(env, log, start, rng);
    ASSERT_TRUE(log.Close().ok());

    delivery::DeadLetterStore dlq(DlqDir(), env);
    auto scan = dlq.Scan("hooks");
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_TRUE(scan->unreadable.empty()) << scan->unreadable.size() << " unreadable records";
    std::multiset<uint64_t> listed;
    for (const auto& d : scan->letters) {
      listed.insert(d.offset.value());
      EXPECT_EQ(d.event, Letter(d.offset.value()).event);
    }
    for (uint64_t n : ack_.letters) {
      if (!ack_.delivered.count(n)) {
        ASSERT_EQ(listed.count(n), 1u) << "dead letter " << n;
      }
    }
    for (uint64_t n : listed)
      ASSERT_EQ(listed.count(n), 1u) << "dead letter " << n << " listed twice";

    if (ack_.state_attempted > 0) {
      auto state = archive::ReadArchiveState(StatePath(), env);
      ASSERT_TRUE(state.ok()) << "archive state: " << state.status().ToString();
      ASSERT_EQ(state->size(), 2u);
      const uint64_t n = state->at("web").next.value();
      ASSERT_GE(n, ack_.state) << "archive state older than acknowledged";
      ASSERT_LE(n, ack_.state_attempted);
      const auto want = State(n);
      EXPECT_EQ(state->at("web").has_intent, want.at("web").has_intent);
      if (want.at("web").has_intent) {
        EXPECT_EQ(state->at("web").intent_last, want.at("web").intent_last);
      }
      EXPECT_EQ(state->at("app").next, want.at("app").next) << "a state that was never written";
    }
  }

  // The keys of this round's acknowledged records and a sample of older ones: each must be a
  // duplicate when its record is still in the log (the recovery scan finds it) or a Flush
  // covered it (journal or run file).
  void VerifyDedupe(FaultInjectionEnv* env, log::EventLog& log, uint64_t log_start,
                    std::mt19937_64& rng) {
    auto opened = OpenDedupe(env, &log);
    ASSERT_TRUE(opened.ok()) << "dedupe recovery: " << opened.status().ToString();
    auto& index = **opened;
    std::vector<const Acknowledged::Key*> check;
    for (size_t i = keys_before_round_; i < ack_.keys.size(); ++i)
      check.push_back(&ack_.keys[i]);
    for (size_t n = 0; n < 200 && keys_before_round_ > 0; ++n)
      check.push_back(&ack_.keys[rng() % keys_before_round_]);
    size_t required = 0;
    for (const auto* k : check) {
      if (k->offset < log_start && !k->flushed) continue;  // may be forgotten (see Key)
      ++required;
      ASSERT_EQ(index.Claim(k->key, /*claimant=*/1), ingest::DedupeIndex::ClaimResult::kDuplicate)
          << "dedupe forgot the key of acknowledged offset " << k->offset
          << (k->flushed ? " (flushed)" : " (still in the log)");
    }
    dedupe_checked_ += required;
  }

  // One round: open, run the writers until the power goes, join.
  void Round(FaultInjectionEnv* env, std::mt19937_64& rng) {
    auto opened = OpenLog(env, rng);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<log::LocalEventLog> log = std::move(*opened);
    auto cursor_r = log->OpenCursor("dest.hooks");
    ASSERT_TRUE(cursor_r.ok()) << cursor_r.status().ToString();
    std::unique_ptr<log::LogCursor> cursor = std::move(*cursor_r);
    auto dedupe_r = OpenDedupe(env, log.get());
    ASSERT_TRUE(dedupe_r.ok()) << dedupe_r.status().ToString();
    std::unique_ptr<ingest::DedupeIndex> dedupe = std::move(*dedupe_r);
    keys_before_round_ = ack_.keys.size();
    delivery::DeadLetterStore dlq(DlqDir(), env);
    ASSERT_TRUE(CreateDirDurably(env, StateDir()).ok());  // as Archiver::Start does

    env->CrashAtOperation(1 + rng() % 600, /*torn_tail=*/rng() % 2 == 0);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t, seed = rng()] {
        std::mt19937_64 r(seed);
        for (int i = 0; i < 200 && !stop.load(); ++i) {
          std::vector<log::LogRecord> batch;
          std::vector<std::string> payloads;
          std::vector<Hash128> keys;
          const int n = 1 + static_cast<int>(r() % 4);
          const uint64_t claimant = (static_cast<uint64_t>(t) << 32) + 1 + static_cast<uint64_t>(i);
          const TimestampMs now = SystemClock::Get()->Now();
          for (int j = 0; j < n; ++j) {
            payloads.push_back("r" + std::to_string(round_) + "-t" + std::to_string(t) + "-" +
                               std::to_string(i) + "-" + std::to_string(j) + "-" +
                               std::string(r() % 300, static_cast<char>('a' + r() % 26)));
            batch.push_back(MakeRecord(payloads.back(), now.value()));
            keys.push_back(ingest::DedupeIndex::Key(batch.back().source, batch.back().message_id));
          }
          // As ingest does: claim, append, then commit (or release when the append failed).
          for (size_t j = 0; j < keys.size(); ++j) {
            if (dedupe->Claim(keys[j], claimant) != ingest::DedupeIndex::ClaimResult::kNew) {
              dedupe->Release(std::vector<Hash128>(keys.begin(), keys.begin() + j), claimant);
              return;  // unavailable after the cut (every payload is new)
            }
          }
          // The commit runs in the append's callback, on the log's completion thread, as in
          // the server: so commits reach the index in offset order.
          std::promise<log::AppendResult> done;
          log->Append(std::move(batch), [&](const log::AppendResult& res) {
            if (res.status.ok()) {
              dedupe->Commit(keys, now, res.first.Plus(static_cast<uint64_t>(n)));
              std::lock_guard lock(ack_.mu);
              for (int j = 0; j < n; ++j) {
                ack_.records[res.first.value() + j] = payloads[j];
                ack_.keys.push_back({keys[j], res.first.value() + j});
              }
            }
            done.set_value(res);
          });
          auto res = done.get_future().get();
          if (!res.status.ok()) {
            dedupe->Release(keys, claimant);
            return;
          }
          std::lock_guard lock(ack_.mu);
          records_acked_ += static_cast<uint64_t>(n);
        }
      });
    }
    // The consumer: reads what is durable and commits behind it, until the writers are done.
    std::thread consumer([&] {
      while (!stop.load()) {
        auto got = cursor->Read(10, 1 << 16);
        if (!got.ok()) return;
        if (got->empty()) {
          cursor->WaitForData(std::chrono::milliseconds(5));
          continue;
        }
        const uint64_t next = got->back().offset.value() + 1;
        if (!cursor->Commit(Offset(next)).ok()) return;
        std::lock_guard lock(ack_.mu);
        ack_.cursor_commit = std::max(ack_.cursor_commit, next);
      }
    });
    // The server's flusher: journal writes, spills and merges of the dedupe index.
    std::thread flusher([&] {
      while (!stop.load()) {
        size_t committed;
        {
          std::lock_guard lock(ack_.mu);
          committed = ack_.keys.size();
        }
        if (dedupe->Flush().ok()) {
          std::lock_guard lock(ack_.mu);
          // Only this round's keys: an earlier round's key lost at its cut is not in this
          // process's index, so no Flush here covers it.
          for (size_t i = std::max(ack_.unmarked, keys_before_round_); i < committed; ++i)
            ack_.keys[i].flushed = true;
          ack_.unmarked = std::max(ack_.unmarked, committed);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    // Dead letters and the archive state.
    threads.emplace_back([&, seed = rng()] {
      std::mt19937_64 r(seed);
      for (int i = 0; i < 30 && !stop.load(); ++i) {
        switch (r() % 4) {
          case 0:
          case 1: {
            std::vector<delivery::DeadLetter> letters;
            for (uint64_t k = 0, n = 1 + r() % 3; k < n; ++k)
              letters.push_back(Letter(next_letter_++));
            if (!dlq.AppendAll(letters).ok()) return;
            std::lock_guard lock(ack_.mu);
            for (const auto& d : letters)
              ack_.letters.insert(d.offset.value());
            break;
          }
          case 2: {  // a redrive delivering the letters whose offset is divisible by 3, and all
                     // but the newest few (so the file stays small over a long run)
            std::set<uint64_t> sent;
            Status s = dlq.Rewrite("hooks", [&](std::vector<delivery::DeadLetter> letters) {
              std::vector<delivery::DeadLetter> keep;
              for (auto& d : letters) {
                if (d.offset.value() % 3 == 0 || d.offset.value() + 40 < next_letter_) {
                  sent.insert(d.offset.value());
                } else {
                  keep.push_back(std::move(d));
                }
              }
              return keep;
            });
            std::lock_guard lock(ack_.mu);
            // Sent counts as delivered even when the rewrite failed: the receiver has them.
            ack_.delivered.insert(sent.begin(), sent.end());
            if (!s.ok()) return;
            break;
          }
          default: {
            uint64_t n;
            {
              std::lock_guard lock(ack_.mu);
              n = ++ack_.state_attempted;
            }
            if (!archive::WriteArchiveState(StatePath(), State(n), env).ok()) return;
            std::lock_guard lock(ack_.mu);
            ack_.state = std::max(ack_.state, n);
            break;
          }
        }
      }
    });
    for (auto& th : threads)
      th.join();
    stop = true;
    consumer.join();
    flusher.join();
    env->Crash(/*torn_tail=*/rng() % 2 == 0);  // if the armed cut did not come yet
    dedupe.reset();
    cursor.reset();
    log.reset();  // a dead process: nothing it does now reaches the disk
    env->CrashAtOperation(0);
    env->Revive();
  }

  TempDir dir_;
  Acknowledged ack_;
  uint64_t next_letter_ = 1;
  uint64_t records_acked_ = 0;
  size_t keys_before_round_ = 0;
  uint64_t dedupe_checked_ = 0;
  int round_ = 0;
};

TEST_F(PowerCutTest, AcknowledgedStateSurvivesRandomPowerCuts) {
  const uint64_t rounds = EnvNumber("SY_POWER_CUT_ROUNDS", 100);
  const uint64_t seed = EnvNumber("SY_POWER_CUT_SEED", 20261203);
  // The cuts make the log complain every round; SY_POWER_CUT_LOG=info shows it.
  SetLogLevel(std::getenv("SY_POWER_CUT_LOG") ? std::getenv("SY_POWER_CUT_LOG") : "off");
  std::printf("power cut: %llu rounds, SY_POWER_CUT_SEED=%llu\n",
              static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(seed));
  std::fflush(stdout);  // shown even if a round hangs or crashes
  for (round_ = 0; round_ < static_cast<int>(rounds); ++round_) {
    const uint64_t round_seed = seed + static_cast<uint64_t>(round_);
    SCOPED_TRACE("round " + std::to_string(round_) + ", round seed " + std::to_string(round_seed) +
                 " (SY_POWER_CUT_SEED=" + std::to_string(seed) + ")");
    std::mt19937_64 rng(round_seed);
    FaultInjectionEnv env(Env::Default(), /*real_sync=*/false, round_seed);
    ASSERT_NO_FATAL_FAILURE(Round(&env, rng));
    ASSERT_NO_FATAL_FAILURE(Verify(&env, rng));
    if (HasFailure()) return;
  }
  std::printf(
      "power cut: %llu records, %zu dead letters, archive state %llu acknowledged; %llu dedupe "
      "keys checked, %zu committed\n",
      static_cast<unsigned long long>(records_acked_), ack_.letters.size(),
      static_cast<unsigned long long>(ack_.state), static_cast<unsigned long long>(dedupe_checked_),
      ack_.keys.size());
}

}  // namespace
}  // namespace sy
