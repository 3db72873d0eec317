// The dead-letter store's reader and rewriter against damaged files (issue 18) and its
// durability under injected faults (FaultInjectionEnv): nothing acknowledged is lost, a failed
// write/fsync/rename is an error, and a redrive never deletes what it did not deliver.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/fault_injection_env.h"
#include "delivery/dead_letter_store.h"
#include "delivery/redrive.h"
#include "log/local/log_test_util.h"

namespace sy::delivery {
namespace {

using log::testing::TempDir;

DeadLetter Letter(uint64_t offset, std::string event = "") {
  DeadLetter d;
  d.destination = "hooks";
  d.offset = Offset(offset);
  d.source = "web";
  d.message_id = "m" + std::to_string(offset);
  d.reason = "http 400";
  d.attempts = 1;
  d.last_status = 400;
  d.event = event.empty() ? R"({"type":"track","event":"E)" + std::to_string(offset) + R"("})"
                          : std::move(event);
  return d;
}

std::vector<uint64_t> Offsets(const std::vector<DeadLetter>& letters) {
  std::vector<uint64_t> out;
  for (const auto& d : letters)
    out.push_back(d.offset.value());
  return out;
}

// A record with intact framing (magic, length, CRC-32C) around any payload: docs/formats/dlq.md.
std::string FrameRaw(std::string_view payload) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(0x4C445953);
  put(static_cast<uint32_t>(payload.size()));
  put(crc32c::Value(payload));
  out += payload;
  return out;
}

void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::app | std::ios::binary);
  f << bytes;
}

// A number outside the double range (issue 18) used to be written back as `Infinity`: a record
// no reader could parse, which then hid every later dead letter.
TEST(DeadLetterStoreIntegrity, EventWithAnOutOfRangeNumberStaysReadable) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  ASSERT_TRUE(store.Append(Letter(2, R"({"type":"track","properties":{"n":1e400}})")).ok());
  ASSERT_TRUE(store.Append(Letter(3)).ok());
  uint64_t skipped = 0;
  auto letters = store.List("hooks", &skipped);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(Offsets(*letters), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(skipped, 0u);
  EXPECT_EQ((*letters)[1].event, R"({"type":"track","properties":{"n":1e400}})");
}

// The dead letter keeps the event's bytes as the log stored them (issue 18): the payload used
// to embed a re-serialized copy, so 9.99 came back as 9.99E0, 1e5 as 1E5 and a 23-digit integer
// as a double, in `dlq list` and in what redrive sent.
constexpr std::string_view kNumbersEvent =
    R"({"type":"track","event":"Order","properties":{"price":9.99,"count":1e5,)"
    R"("big":12345678901234567890123,"neg":-0.0,"list":[1.50,2E+3,-7]}})";

TEST(DeadLetterStoreVerbatim, EventNumbersAreKeptAsStored) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1, std::string(kNumbersEvent))).ok());
  const std::string json = DeadLetterToJson(Letter(1, std::string(kNumbersEvent)));
  EXPECT_NE(json.find(kNumbersEvent), std::string::npos) << json;
  auto letters = store.List("hooks");
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].event, kNumbersEvent);
  // The file's payload holds the same bytes, and a rewrite that keeps the letter keeps them too.
  ASSERT_TRUE(store.Rewrite("hooks", [](std::vector<DeadLetter> all) { return all; }).ok());
  letters = store.List("hooks");
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].event, kNumbersEvent);
  std::ifstream f(dir.path() + "/hooks.dlq", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find(kNumbersEvent), std::string::npos);
}

// A destination that records what redrive hands it and takes everything.
class RecordingDestination final : public Destination {
 public:
  DestinationLimits limits() const override { return {}; }
  EncodedBatch Encode(std::span<const RoutedEvent>) const override { return {}; }
  std::optional<std::vector<Outcome>> DeliverInProcess(
      std::span<const RoutedEvent> batch) override {
    std::vector<Outcome> out;
    for (const auto& e : batch) {
      payloads.push_back(e.payload);
      out.push_back(Outcome::Delivered());
    }
    return out;
  }
  std::vector<std::string> payloads;
};

TEST(DeadLetterStoreVerbatim, RedriveSendsTheStoredBytes) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1, std::string(kNumbersEvent))).ok());
  RecordingDestination dest;
  FakeClock clock;
  auto r = RedriveDeadLetters(&store, "hooks", &dest, nullptr, false, &clock);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delivered, 1u);
  ASSERT_EQ(dest.payloads.size(), 1u);
  EXPECT_EQ(dest.payloads[0], kNumbersEvent);
}

// A checksummed record whose payload is not JSON is skipped and reported; the records after it
// are still listed.
TEST(DeadLetterStoreIntegrity, UnreadableRecordIsSkippedNotTreatedAsTheEnd) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  const std::string bad = R"({"destination":"hooks","event":{"n":Infinity}})";
  AppendBytes(dir.path() + "/hooks.dlq", FrameRaw(bad));
  ASSERT_TRUE(store.Append(Letter(3)).ok());
  uint64_t skipped = 0;
  auto letters = store.List("hooks", &skipped);
  ASSERT_TRUE(letters.ok());
  EXPECT_EQ(Offsets(*letters), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(skipped, 12u + bad.size());
  auto scan = store.Scan("hooks");
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->unreadable.size(), 1u);
  EXPECT_EQ(scan->unreadable[0], bad);
  EXPECT_EQ(scan->corrupt_bytes, 0u);
}

// Damage in the middle (a bad CRC) skips that record only: the reader resynchronises on the next
// intact record, it never truncates the checksummed records after the damage.
TEST(DeadLetterStoreIntegrity, CorruptRecordInTheMiddleHidesNothingAfterIt) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  for (uint64_t i = 1; i <= 3; ++i)
    ASSERT_TRUE(store.Append(Letter(i)).ok());
  const std::string path = dir.path() + "/hooks.dlq";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);  // inside the first record's payload
    f.put('#');
  }
  auto scan = store.Scan("hooks");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(Offsets(scan->letters), (std::vector<uint64_t>{2, 3}));
  EXPECT_GT(scan->corrupt_bytes, 0u);
}

// Redrive (Rewrite) sends the readable letters; whatever it does not deliver stays: the kept
// letters, the unreadable records byte for byte, and every letter after an unreadable record.
TEST(DeadLetterStoreIntegrity, RewriteNeverDeletesWhatWasNotDelivered) {
  TempDir dir;
  DeadLetterStore store(dir.path());
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  const std::string bad = R"({"event":Infinity})";
  AppendBytes(dir.path() + "/hooks.dlq", FrameRaw(bad));
  ASSERT_TRUE(store.Append(Letter(3)).ok());
  ASSERT_TRUE(store.Append(Letter(4)).ok());

  std::vector<uint64_t> offered;
  ASSERT_TRUE(store
                  .Rewrite("hooks",
                           [&](std::vector<DeadLetter> letters) {
                             offered = Offsets(letters);
                             std::vector<DeadLetter> keep;
                             for (auto& d : letters)  // "delivers" offset 3 only
                               if (d.offset != Offset(3)) keep.push_back(std::move(d));
                             return keep;
                           })
                  .ok());
  EXPECT_EQ(offered, (std::vector<uint64_t>{1, 3, 4}));
  auto scan = store.Scan("hooks");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(Offsets(scan->letters), (std::vector<uint64_t>{1, 4}));
  ASSERT_EQ(scan->unreadable.size(), 1u);
  EXPECT_EQ(scan->unreadable[0], bad);
}

TEST(DeadLetterStoreFiles, CreatedPrivate) {
  TempDir dir;
  DeadLetterStore store(dir.path() + "/dlq");
  ASSERT_TRUE(store.Append(Letter(1)).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/dlq").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir.path() + "/dlq/hooks.dlq").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  ASSERT_EQ(::stat((dir.path() + "/dlq/hooks.lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

// Each kind of injected failure makes the append fail (naming the path), leaves no partial
// record behind, and the letters acknowledged before and after are all there exactly once.
TEST(DeadLetterStoreFaults, FailedWriteOrSyncIsAnErrorAndLeavesNothingHalfWritten) {
  TempDir dir;
  FaultInjectionEnv env;
  DeadLetterStore store(dir.path() + "/dlq", &env);
  // The first append creates the directory: the fsync of its parent failing fails the append.
  env.FailDirSyncs(1);
  Status s = store.Append(Letter(1));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir.path()), std::string::npos) << s.ToString();
  DeadLetter other = Letter(7);
  other.destination = "other";
  ASSERT_TRUE(store.Append(other).ok());
  // The first append of a destination creates its file: its directory fsync failing must fail
  // the append too.
  env.FailDirSyncs(1);
  s = store.Append(Letter(1));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/dlq"), std::string::npos) << s.ToString();
  ASSERT_TRUE(store.Append(Letter(1)).ok());  // the retry syncs the directory again

  env.FailWritesShort(1);
  s = store.Append(Letter(2));
  EXPECT_FALSE(s.ok());
  env.FailSyncs(1);
  s = store.Append(Letter(2));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("hooks.dlq"), std::string::npos) << s.ToString();
  env.SetDiskFull(true);
  EXPECT_EQ(store.Append(Letter(2)).code(), StatusCode::kResourceExhausted);
  env.SetDiskFull(false);
  ASSERT_TRUE(store.Append(Letter(2)).ok());

  uint64_t skipped = 0;
  auto letters = store.List("hooks", &skipped);
  ASSERT_TRUE(letters.ok());
  EXPECT_EQ(Offsets(*letters), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(skipped, 0u);
}

// A crash at every mutating file operation of a sequence of appends and a redrive: after the
// crash (unsynced bytes dropped, a random torn tail kept) every acknowledged letter that the
// redrive did not deliver is still there; a delivered one may reappear (at least once, as
// documented) but nothing is listed twice.
TEST(DeadLetterStoreFaults, CrashAtEveryOperationLosesNothingAcknowledged) {
  auto run = [](DeadLetterStore& store, std::set<uint64_t>* acked, std::set<uint64_t>* delivered) {
    for (uint64_t i = 1; i <= 4; ++i) {
      if (!store.Append(Letter(i)).ok()) return;
      acked->insert(i);
    }
    // Redrive delivers the even offsets (they count as delivered even when the rewrite then
    // fails: the receiver has them).
    std::set<uint64_t>& sent = *delivered;
    Status s = store.Rewrite("hooks", [&](std::vector<DeadLetter> letters) {
      std::vector<DeadLetter> keep;
      for (auto& d : letters) {
        if (d.offset.value() % 2 == 0) {
          sent.insert(d.offset.value());
        } else {
          keep.push_back(std::move(d));
        }
      }
      return keep;
    });
    if (!s.ok()) return;
    for (uint64_t i = 5; i <= 6; ++i) {
      if (!store.Append(Letter(i)).ok()) return;
      acked->insert(i);
    }
  };

  uint64_t total = 0;
  {
    TempDir dir;
    FaultInjectionEnv env;
    DeadLetterStore store(dir.path() + "/dlq", &env);
    std::set<uint64_t> acked, delivered;
    run(store, &acked, &delivered);
    ASSERT_EQ(acked.size(), 6u);
    total = env.operations();
  }
  ASSERT_GT(total, 10u);
  for (uint64_t at = 1; at <= total; ++at) {
    for (bool torn : {false, true}) {
      SCOPED_TRACE("crash at operation " + std::to_string(at) + (torn ? " (torn tail)" : ""));
      TempDir dir;
      FaultInjectionEnv env(Env::Default(), /*real_sync=*/false, /*seed=*/at);
      DeadLetterStore store(dir.path() + "/dlq", &env);
      std::set<uint64_t> acked, delivered;
      env.CrashAtOperation(at, torn);
      run(store, &acked, &delivered);
      env.Revive();
      auto scan = store.Scan("hooks");
      ASSERT_TRUE(scan.ok()) << scan.status().ToString();
      EXPECT_TRUE(scan->unreadable.empty());
      std::multiset<uint64_t> listed;
      for (const auto& d : scan->letters)
        listed.insert(d.offset.value());
      for (uint64_t i : acked) {
        if (!delivered.count(i)) {
          EXPECT_EQ(listed.count(i), 1u) << "lost letter " << i;
        }
      }
      for (uint64_t i : listed)
        EXPECT_EQ(listed.count(i), 1u) << "letter " << i << " listed twice";
      // A later append after recovery is readable too.
      ASSERT_TRUE(store.Append(Letter(9)).ok());
      auto after = store.List("hooks");
      ASSERT_TRUE(after.ok());
      ASSERT_FALSE(after->empty());
      EXPECT_EQ(after->back().offset, Offset(9));
    }
  }
}

// ---- Privacy deletion (EraseUsers, issue 17) ---------------------------------------------------

// A letter of `user` (userId) or, with `anonymous`, of that anonymousId.
DeadLetter LetterOf(uint64_t offset, const std::string& ids) {
  return Letter(offset, R"({"type":"track","event":"E","messageId":"m)" + std::to_string(offset) +
                            "\"," + ids + "}");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The file a store that never held the users' letters would have: the others, byte for byte.
std::string FramedLetters(const std::vector<DeadLetter>& letters) {
  std::string out;
  for (const auto& d : letters)
    out += FrameRaw(DeadLetterToJson(d));
  return out;
}

TEST(DeadLetterStoreErase, RemovesTheUsersLettersAndKeepsEveryOtherRecordByteForByte) {
  TempDir dir;
  DeadLetterStore store(dir.path() + "/dlq");
  const DeadLetter keep1 = LetterOf(1, R"("userId":"u2","anonymousId":"a2")");
  const DeadLetter keep2 = LetterOf(4, R"("userId":"u1x","properties":{"userId":"u1"})");
  const DeadLetter keep3 = LetterOf(7, R"("anonymousId":"u1")");  // the other namespace
  const DeadLetter keep4 = Letter(8, "not an object");            // no ids at all
  std::vector<DeadLetter> all = {
      keep1,
      LetterOf(2, R"("userId":"u1","anonymousId":"a9")"),
      LetterOf(3, R"("anonymousId":"a3")"),
      keep2,
      LetterOf(5, R"("userId":"\u0075\u0031")"),  // "u1", escaped
      LetterOf(6, R"("userId":42)"),              // a number: its text "42"
      keep3,
      keep4,
  };
  for (const auto& d : all)
    ASSERT_TRUE(store.Append(d).ok());
  // An unreadable record (intact framing, not a JSON object) in the middle is kept too.
  const std::string path = dir.path() + "/dlq/hooks.dlq";
  AppendBytes(path, FrameRaw("[1,2,3]"));
  ASSERT_TRUE(store.Append(LetterOf(9, R"("userId":"u1")")).ok());
  // A stale temp file of an interrupted rewrite (it could hold anyone's letters).
  AppendBytes(path + ".tmp", FramedLetters({LetterOf(10, R"("userId":"u1")")}));

  DeadLetterEraseProgress progress;
  const privacy::UserSet users({"u1", "42"}, {"a3"});
  ASSERT_TRUE(store.EraseUsersEverywhere(users, &progress).ok());
  EXPECT_EQ(progress.letters_removed, 5u);
  EXPECT_EQ(progress.files_rewritten, 1u);
  EXPECT_EQ(progress.stale_temp_files_removed, 1u);
  EXPECT_EQ(progress.Summary().rfind("letters_removed=5 files_rewritten=1 ", 0), 0u)
      << progress.Summary();
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(ReadFile(path), FramedLetters({keep1, keep2, keep3, keep4}) + FrameRaw("[1,2,3]"));

  // Idempotent: nothing more to remove, the file is not even rewritten.
  const std::string before = ReadFile(path);
  DeadLetterEraseProgress again;
  ASSERT_TRUE(store.EraseUsersEverywhere(users, &again).ok());
  EXPECT_EQ(again.letters_removed, 0u);
  EXPECT_EQ(again.files_rewritten, 0u);
  EXPECT_EQ(ReadFile(path), before);
}

TEST(DeadLetterStoreErase, CorruptBytesDoNotHideTheLettersAfterThem) {
  TempDir dir;
  DeadLetterStore store(dir.path() + "/dlq");
  const std::string path = dir.path() + "/dlq/hooks.dlq";
  ASSERT_TRUE(store.Append(LetterOf(1, R"("userId":"u2")")).ok());
  AppendBytes(path, "torn bytes of a record that never finished");
  ASSERT_TRUE(store.Append(LetterOf(2, R"("userId":"u1")")).ok());
  ASSERT_TRUE(store.Append(LetterOf(3, R"("userId":"u2")")).ok());
  DeadLetterEraseProgress progress;
  ASSERT_TRUE(store.EraseUsers("hooks", privacy::UserSet({"u1"}, {}), &progress).ok());
  EXPECT_EQ(progress.letters_removed, 1u);
  EXPECT_GT(progress.corrupt_bytes_dropped, 0u);
  auto listed = store.List("hooks");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(Offsets(*listed), (std::vector<uint64_t>{1, 3}));
}

TEST(DeadLetterStoreErase, UnknownUsersLeaveTheFileUntouched) {
  TempDir dir;
  DeadLetterStore store(dir.path() + "/dlq");
  ASSERT_TRUE(store.Append(LetterOf(1, R"("userId":"u2")")).ok());
  const std::string path = dir.path() + "/dlq/hooks.dlq";
  const std::string before = ReadFile(path);
  DeadLetterEraseProgress progress;
  ASSERT_TRUE(store.EraseUsersEverywhere(privacy::UserSet({"nobody"}, {"u2"}), &progress).ok());
  ASSERT_TRUE(store.EraseUsersEverywhere(privacy::UserSet(), &progress).ok());
  EXPECT_EQ(progress.letters_removed, 0u);
  EXPECT_EQ(ReadFile(path), before);
}

// Erases racing the server's appends (another thread; the lock serializes them): every letter of
// another user appended meanwhile is there once, and none of the erased user's that were appended
// before the last erase began.
TEST(DeadLetterStoreErase, AppendsDuringAnEraseAreNeverLost) {
  TempDir dir;
  DeadLetterStore store(dir.path() + "/dlq");
  const privacy::UserSet users({"u1"}, {});
  std::atomic<bool> appending{true};
  std::thread appender([&] {
    for (uint64_t i = 1; i <= 300; ++i) {
      Status st = store.Append(LetterOf(i, i % 3 ? R"("userId":"u2")" : R"("userId":"u1")"));
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (!st.ok()) break;
    }
    appending = false;
  });
  int erases = 0;
  while (appending || erases == 0) {
    EXPECT_TRUE(store.EraseUsers("hooks", users, nullptr).ok());
    ++erases;
  }
  appender.join();
  ASSERT_TRUE(store.EraseUsers("hooks", users, nullptr).ok());
  auto listed = store.List("hooks");
  ASSERT_TRUE(listed.ok());
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 300; ++i)
    if (i % 3) expected.push_back(i);
  EXPECT_EQ(Offsets(*listed), expected);
}

// A power cut at every mutating file operation of an erase, then the erase run again (a
// restarted process): the users' letters are gone and every other letter is there, once.
TEST(DeadLetterStoreErase, CrashAtEveryOperationConvergesWhenRunAgain) {
  const privacy::UserSet users({"u1"}, {});
  auto fill = [](DeadLetterStore& store) {
    for (uint64_t i = 1; i <= 6; ++i) {
      ASSERT_TRUE(store.Append(LetterOf(i, i % 2 ? R"("userId":"u1")" : R"("userId":"u2")")).ok());
      ASSERT_TRUE(store.Append(LetterOf(i, R"("userId":"u3")")).ok());
    }
  };
  uint64_t total = 0;
  {
    TempDir dir;
    FaultInjectionEnv env;
    DeadLetterStore store(dir.path() + "/dlq", &env);
    fill(store);
    const uint64_t before = env.operations();
    ASSERT_TRUE(store.EraseUsers("hooks", users, nullptr).ok());
    total = env.operations() - before;
  }
  ASSERT_GE(total, 3u);  // write, sync, rename, directory sync
  for (uint64_t at = 1; at <= total; ++at) {
    for (bool torn : {false, true}) {
      SCOPED_TRACE("crash at operation " + std::to_string(at) + (torn ? " (torn tail)" : ""));
      TempDir dir;
      FaultInjectionEnv env(Env::Default(), /*real_sync=*/false, /*seed=*/at);
      {
        DeadLetterStore store(dir.path() + "/dlq", &env);
        fill(store);
        env.CrashAtOperation(at, torn);
        EXPECT_FALSE(store.EraseUsers("hooks", users, nullptr).ok());
      }
      env.Revive();
      DeadLetterStore restarted(dir.path() + "/dlq", &env);
      ASSERT_TRUE(restarted.EraseUsers("hooks", users, nullptr).ok());
      auto scan = restarted.Scan("hooks");
      ASSERT_TRUE(scan.ok());
      EXPECT_EQ(scan->corrupt_bytes, 0u);
      std::multiset<std::string> events;
      for (const auto& d : scan->letters)
        events.insert(d.event);
      EXPECT_EQ(events.size(), 9u);  // 3 of u2 and 6 of u3
      for (uint64_t i = 1; i <= 6; ++i) {
        EXPECT_EQ(events.count(LetterOf(i, R"("userId":"u3")").event), 1u) << i;
        EXPECT_EQ(events.count(LetterOf(i, R"("userId":"u2")").event), i % 2 ? 0u : 1u) << i;
        EXPECT_EQ(events.count(LetterOf(i, R"("userId":"u1")").event), 0u) << i;
      }
      EXPECT_FALSE(std::filesystem::exists(dir.path() + "/dlq/hooks.dlq.tmp"));
    }
  }
}

}  // namespace
}  // namespace sy::delivery
