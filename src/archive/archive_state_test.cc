// The archive's durable files under injected faults (FaultInjectionEnv): the archiver's state file
// and the local object store. A crash at any write, fsync, rename or directory fsync leaves the
// old or the new content, never a mix; a write that returned OK survives; a failed state write
// keeps the archiver's cursor where it was, and a restart archives every event exactly once.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "archive/archive_reader.h"
#include "archive/archiver.h"
#include "archive/object_store.h"
#include "base/fault_injection_env.h"
#include "base/metrics.h"
#include "base/time_format.h"
#include "log/local/log_test_util.h"

namespace sy::archive {
namespace {

using log::testing::AppendSync;
using log::testing::TempDir;

constexpr int64_t kT0 = 1'764'165'600'000;

std::map<std::string, SourceProgress> State(uint64_t web_next, bool intent) {
  std::map<std::string, SourceProgress> s;
  s["web"].next = Offset(web_next);
  s["web"].has_intent = intent;
  if (intent) s["web"].intent_last = Offset(web_next + 9);
  s["backend"].next = Offset(web_next * 2);
  return s;
}

bool Same(const std::map<std::string, SourceProgress>& a,
          const std::map<std::string, SourceProgress>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second.next != v.next || it->second.has_intent != v.has_intent ||
        (v.has_intent && it->second.intent_last != v.intent_last))
      return false;
  }
  return true;
}

TEST(ArchiveStateFaults, EachFailureIsAnErrorNamingThePath) {
  TempDir dir;
  FaultInjectionEnv env;
  const std::string path = dir.path() + "/state";
  ASSERT_TRUE(WriteArchiveState(path, State(10, false), &env).ok());
  env.FailWritesShort(1);
  EXPECT_FALSE(WriteArchiveState(path, State(20, true), &env).ok());
  env.FailSyncs(1);
  Status s = WriteArchiveState(path, State(20, true), &env);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  env.FailRenames(1);
  EXPECT_FALSE(WriteArchiveState(path, State(20, true), &env).ok());
  auto back = ReadArchiveState(path, &env);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(Same(*back, State(10, false)));  // none of the failed writes replaced it
  env.FailDirSyncs(1);
  s = WriteArchiveState(path, State(20, true), &env);
  EXPECT_FALSE(s.ok());  // a failed directory fsync is never ignored
  EXPECT_NE(s.message().find(dir.path()), std::string::npos) << s.ToString();
}

TEST(ArchiveStateFaults, CrashAtEveryOperationLeavesOldOrNewState) {
  const auto old_state = State(10, false), new_state = State(20, true);
  uint64_t ops = 0;
  {
    TempDir dir;
    FaultInjectionEnv env;
    ASSERT_TRUE(WriteArchiveState(dir.path() + "/state", old_state, &env).ok());
    uint64_t before = env.operations();
    ASSERT_TRUE(WriteArchiveState(dir.path() + "/state", new_state, &env).ok());
    ops = env.operations() - before;
  }
  ASSERT_GE(ops, 4u);  // write, fdatasync, rename, directory fsync
  for (uint64_t at = 1; at <= ops; ++at) {
    for (bool torn : {false, true}) {
      SCOPED_TRACE("crash at operation " + std::to_string(at));
      TempDir dir;
      FaultInjectionEnv env(Env::Default(), false, at);
      const std::string path = dir.path() + "/state";
      ASSERT_TRUE(WriteArchiveState(path, old_state, &env).ok());
      env.CrashAtOperation(at, torn);
      Status s = WriteArchiveState(path, new_state, &env);
      EXPECT_FALSE(s.ok());
      env.Revive();
      auto back = ReadArchiveState(path, &env);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_TRUE(Same(*back, old_state) || Same(*back, new_state));
    }
  }
}

TEST(LocalStoreFaults, CrashAtEveryOperationLeavesNoPartialObject) {
  const std::string old_data(5000, 'o'), new_data(7000, 'n');
  uint64_t ops = 0;
  {
    TempDir dir;
    FaultInjectionEnv env;
    auto store = NewLocalObjectStore(dir.path() + "/root", &env);
    ASSERT_TRUE(store->Put("p/a/k", old_data).ok());
    uint64_t before = env.operations();
    ASSERT_TRUE(store->Put("p/a/k", new_data).ok());
    ASSERT_TRUE(store->Put("p/b/c/fresh", new_data).ok());
    ops = env.operations() - before;
  }
  for (uint64_t at = 1; at <= ops; ++at) {
    SCOPED_TRACE("crash at operation " + std::to_string(at));
    TempDir dir;
    FaultInjectionEnv env(Env::Default(), false, at);
    auto store = NewLocalObjectStore(dir.path() + "/root", &env);
    ASSERT_TRUE(store->Put("p/a/k", old_data).ok());
    env.CrashAtOperation(at);
    bool replaced = store->Put("p/a/k", new_data).ok();
    bool fresh = replaced && store->Put("p/b/c/fresh", new_data).ok();
    env.Revive();
    auto got = store->Get("p/a/k");
    ASSERT_TRUE(got.ok());
    if (replaced) {
      EXPECT_EQ(*got, new_data);
    } else {
      EXPECT_TRUE(*got == old_data || *got == new_data) << got->size();
    }
    auto f = store->Get("p/b/c/fresh");
    if (fresh) {
      ASSERT_TRUE(f.ok());
      EXPECT_EQ(*f, new_data);
    } else if (f.ok()) {
      EXPECT_EQ(*f, new_data);
    }
    auto list = store->List("p/");
    ASSERT_TRUE(list.ok());
    for (const auto& o : *list)  // temp files never show as objects
      EXPECT_TRUE(o.key == "p/a/k" || o.key == "p/b/c/fresh") << o.key;
  }
}

// The state file cannot be written (its rename fails; a failing directory fsync would now stop
// Archiver::Start itself, which makes its state directory durable): the archiver uploads nothing
// whose intent is not durable and its cursor does not move; after the fault clears, a new
// archiver archives every event exactly once.
TEST(ArchiverFaults, UnwritableStateKeepsTheCursorAndARestartArchivesOnce) {
  TempDir dir;
  log::LocalLogOptions lo;
  lo.dir = dir.path() + "/log";
  lo.fsync = log::FsyncPolicy::kNever;
  auto log = std::move(*log::OpenLocalLog(lo));
  std::vector<std::string> payloads;
  std::vector<log::LogRecord> recs;
  for (int i = 0; i < 50; ++i) {
    payloads.push_back("{\"type\":\"track\",\"event\":\"E\",\"messageId\":\"m" + std::to_string(i) +
                       "\",\"receivedAt\":\"" + FormatIso8601(TimestampMs(kT0 + i)) + "\"}");
    recs.push_back({"web", "m" + std::to_string(i), TimestampMs(kT0 + i), payloads.back()});
  }
  ASSERT_TRUE(AppendSync(*log, std::move(recs)).status.ok());
  auto local = NewLocalObjectStore(dir.path() + "/archive");
  FakeClock clock{kT0};
  FaultInjectionEnv env;
  MetricsRegistry metrics;
  auto start = [&](Env* e) {
    ArchiverOptions o;
    o.metrics = &metrics;
    o.config.enabled = true;
    o.config.roll_bytes = 1'000;
    o.config.roll_age_ms = 3'600'000;
    o.config.prefix = "pre/";
    o.log = log.get();
    o.store = NewLocalObjectStore(dir.path() + "/archive");
    o.state_dir = dir.path() + "/state";
    o.clock = &clock;
    o.env = e;
    auto a = Archiver::Start(std::move(o));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return std::move(*a);
  };

  env.FailRenames(1'000'000);
  {
    auto a = start(&env);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    a->Stop();
    EXPECT_EQ(a->files_written(), 0u);
  }
  {
    auto c = log->OpenCursor("archive");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->committed(), Offset(0));
  }
  auto files = ListArchive(local.get(), "pre/", {});
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());

  env.Revive();
  {
    auto a = start(&env);
    for (int i = 0; i < 2000 && a->read_position() != Offset(50); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    a->Stop();
  }
  files = ListArchive(local.get(), "pre/", {});
  ASSERT_TRUE(files.ok());
  std::vector<std::string> lines;
  for (const auto& f : *files) {
    std::string text;
    std::vector<std::string_view> ls;
    ASSERT_TRUE(ReadArchiveFile(local.get(), f.object_key, &text, &ls).ok());
    for (auto l : ls)
      lines.emplace_back(l);
  }
  EXPECT_EQ(lines, payloads);  // every event once, in order
}

}  // namespace
}  // namespace sy::archive
