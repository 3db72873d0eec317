// The dead-letter store's reader and rewriter against damaged files (issue 18) and its
// durability under injected faults (FaultInjectionEnv): nothing acknowledged is lost, a failed
// write/fsync/rename is an error, and a redrive never deletes what it did not deliver.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <random>
#include <set>

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

}  // namespace
}  // namespace sy::delivery
