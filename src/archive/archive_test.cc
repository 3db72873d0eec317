// Unit tests of the archive: key layout, gzip members, SigV4 against AWS's published vectors,
// the local store, the archiver (roll by size and age, restart after a failed upload rebuilds
// the same file) and reading back with time selection. Replay's tests: src/replay/replay_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "archive/archive_key.h"
#include "archive/archive_reader.h"
#include "archive/archiver.h"
#include "archive/gzip.h"
#include "archive/object_store.h"
#include "base/time_format.h"
#include "http/sigv4.h"
#include "log/local/log_test_util.h"
#include "replay/replay.h"
#include "tests/support/canned_http_server.h"

namespace sy::archive {
namespace {
// SigV4 lives with the HTTP client (http/sigv4.h), shared with the kinesis destination.
using http::CanonicalQuery;
using http::HexEncode;
using http::Sha256Hex;
using http::SigV4Authorization;
using http::SigV4Request;
using http::SigV4Scope;
using http::SigV4SigningKey;
using http::UriEncode;

using log::testing::AppendSync;
using log::testing::TempDir;

constexpr int64_t kT0 = 1'764'165'600'000;  // 2025-11-26T14:00:00Z

// ---- keys --------------------------------------------------------------------------------

TEST(ArchiveKeyTest, LayoutIsSpreadSourceDateHourOffsets) {
  std::string key = FormatKey("sw/", "web", Offset(7), Offset(1234), TimestampMs(kT0 + 61'000));
  std::string h = SpreadHash("web", Offset(7));
  EXPECT_EQ(key,
            "sw/" + h + "/web/2025-11-26/14/00000000000000000007-00000000000000001234.ndjson.gz");
  auto k = ParseKey("sw/", key);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->source, "web");
  EXPECT_EQ(k->first, Offset(7));
  EXPECT_EQ(k->last, Offset(1234));
  EXPECT_EQ(k->hour, TimestampMs(kT0));
}

TEST(ArchiveKeyTest, DeterministicAndSpreadOverPrefixes) {
  EXPECT_EQ(FormatKey("", "web", Offset(1), Offset(2), TimestampMs(kT0)),
            FormatKey("", "web", Offset(1), Offset(2), TimestampMs(kT0)));
  std::set<std::string> prefixes;
  for (uint64_t first = 0; first < 100'000; first += 97)
    prefixes.insert(SpreadHash("web", Offset(first)));
  EXPECT_GE(prefixes.size(), 250u);  // 1031 files land on (nearly) all 256 prefixes
}

TEST(ArchiveKeyTest, RejectsForeignAndTamperedKeys) {
  std::string key = FormatKey("", "web", Offset(7), Offset(9), TimestampMs(kT0));
  EXPECT_FALSE(ParseKey("other/", key).has_value());
  std::string bad_hash = key;
  bad_hash[0] = bad_hash[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(ParseKey("", bad_hash).has_value());
  EXPECT_FALSE(ParseKey("", key + ".tmp.12").has_value());
  EXPECT_FALSE(ParseKey("", "ab/web/2025-11-26/14/x.ndjson.gz").has_value());
  EXPECT_FALSE(ParseKey("", FormatKey("", "web", Offset(9), Offset(7), TimestampMs(kT0))));
}

// ---- gzip ---------------------------------------------------------------------------------

TEST(GzipTest, MembersConcatenateIntoOneStream) {
  std::string a = "{\"a\":1}\n", b;
  for (int i = 0; i < 20'000; ++i)
    b += "{\"event\":\"e" + std::to_string(i) + "\"}\n";
  std::string gz;
  AppendGzipMember(a, 1, &gz);
  AppendGzipMember(b, 6, &gz);
  EXPECT_LT(gz.size(), (a.size() + b.size()) / 3);
  auto back = Gunzip(gz);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, a + b);
}

TEST(GzipTest, CorruptOrTruncatedIsDataLoss) {
  std::string gz;
  AppendGzipMember(std::string(100'000, 'x'), 1, &gz);
  EXPECT_EQ(Gunzip(gz.substr(0, gz.size() - 5)).status().code(), StatusCode::kDataLoss);
  std::string bad = gz;
  bad[gz.size() / 2] ^= 0x55;
  bad[gz.size() / 2 + 1] ^= 0x55;
  EXPECT_EQ(Gunzip(bad).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Gunzip("not gzip at all").status().code(), StatusCode::kDataLoss);
}

// Gzip bombs (issue 18): an archive read stops at a bound instead of following the bomb. A
// member's output room used to double up to 4 GiB, and a file of many members had no bound.
TEST(GzipTest, OneMemberBombStopsAtTheBoundWithoutGrowingPastIt) {
  std::string gz;
  AppendGzipMember(std::string(16u << 20, '\0'), 9, &gz);  // 16 MiB in ~16 KiB
  ASSERT_LT(gz.size(), 64u << 10);
  auto whole = Gunzip(gz, 1u << 20);
  EXPECT_EQ(whole.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(whole.status().message().find("more than 1048576 bytes"), std::string::npos)
      << whole.status().ToString();
  GunzipReader reader(gz, 1u << 20);
  std::string buffer;
  size_t used = 0;
  EXPECT_EQ(reader.NextMember(&buffer, &used).code(), StatusCode::kDataLoss);
  EXPECT_LE(buffer.size(), 1u << 20);  // the room never grew past the bound
  // Within the bound the same file reads.
  auto fits = Gunzip(gz, 16u << 20);
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(fits->size(), 16u << 20);
}

// Many small members that add up past kMaxDecompressedArchiveBytes (1 GiB here, ~1 MB on disk):
// replay's streaming reader, which reuses one small buffer, stops at the bound too.
TEST(GzipTest, ManyMemberBombStopsReplaysReaderAtTheBound) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/root");
  std::string line(1023, 'a');
  line += '\n';
  std::string mib;
  while (mib.size() < (1u << 20))
    mib += line;
  std::string member;
  AppendGzipMember(mib, 9, &member);
  std::string gz;
  const size_t members = kMaxDecompressedArchiveBytes / mib.size() + 8;
  for (size_t i = 0; i < members; ++i)
    gz += member;
  ASSERT_LT(gz.size(), 16u << 20);
  ASSERT_TRUE(store->Put("bomb.ndjson.gz", gz).ok());
  size_t bytes = 0;
  Status s = ForEachArchiveLine(store.get(), "bomb.ndjson.gz",
                                [&](std::string_view l) { bytes += l.size() + 1; });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("bomb.ndjson.gz"), std::string::npos) << s.ToString();
  EXPECT_LE(bytes, kMaxDecompressedArchiveBytes);
}

// Replay's reader: lines come out whole even when a line spans members (another writer's file)
// and when one member is larger than the reader's first buffer (libdeflate retries with more).
TEST(GzipTest, ForEachArchiveLineAcrossMembersAndLargeMembers) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/root");
  std::string big;
  for (int i = 0; big.size() < (9u << 20); ++i)
    big += "{\"event\":\"big " + std::to_string(i) + "\"}\n";
  std::string gz;
  AppendGzipMember("{\"a\":1}\n{\"b\":", 1, &gz);  // a line split across two members
  AppendGzipMember("2}\n", 6, &gz);
  AppendGzipMember(big, 1, &gz);
  ASSERT_TRUE(store->Put("f.ndjson.gz", gz).ok());
  std::string joined;
  size_t lines = 0;
  ASSERT_TRUE(ForEachArchiveLine(store.get(), "f.ndjson.gz", [&](std::string_view line) {
                ++lines;
                joined.append(line);
                joined += '\n';
              }).ok());
  EXPECT_EQ(joined, "{\"a\":1}\n{\"b\":2}\n" + big);
  EXPECT_GT(lines, 2u);

  std::string unterminated;
  AppendGzipMember("{\"a\":1}\n{\"b\":2}", 1, &unterminated);
  ASSERT_TRUE(store->Put("u.ndjson.gz", unterminated).ok());
  EXPECT_EQ(ForEachArchiveLine(store.get(), "u.ndjson.gz", [](std::string_view) {}).code(),
            StatusCode::kDataLoss);
  ASSERT_TRUE(store->Put("t.ndjson.gz", gz.substr(0, gz.size() - 3)).ok());
  EXPECT_EQ(ForEachArchiveLine(store.get(), "t.ndjson.gz", [](std::string_view) {}).code(),
            StatusCode::kDataLoss);
}

// ---- SigV4: AWS's published test suite (aws-sig-v4-test-suite) ------------------------------

SigV4Scope VectorScope() {
  return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service",
          "20150830T123600Z"};
}

SigV4Request VectorRequest(std::string method) {
  SigV4Request r;
  r.method = std::move(method);
  r.canonical_uri = "/";
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  r.payload_hash = Sha256Hex("");
  return r;
}

TEST(SigV4Test, SigningKeyMatchesPublishedValue) {
  EXPECT_EQ(HexEncode(SigV4SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
                                      "us-east-1", "service")),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
}

TEST(SigV4Test, GetVanilla) {
  EXPECT_EQ(SigV4Authorization(VectorRequest("GET"), VectorScope()),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  SigV4Request r = VectorRequest("GET");
  r.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  EXPECT_TRUE(SigV4Authorization(r, VectorScope())
                  .ends_with("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(SigV4Test, PostVanilla) {
  EXPECT_TRUE(SigV4Authorization(VectorRequest("POST"), VectorScope())
                  .ends_with("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
}

TEST(SigV4Test, UriEncoding) {
  EXPECT_EQ(UriEncode("a b/c~d_e.f-g+h", true), "a%20b/c~d_e.f-g%2Bh");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQuery({{"prefix", "a/b"}, {"list-type", "2"}}), "list-type=2&prefix=a%2Fb");
}

// ---- local store --------------------------------------------------------------------------

TEST(LocalStoreTest, PutGetListOverwrite) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path() + "/root");
  ASSERT_TRUE(store->List("").ok());
  EXPECT_TRUE(store->List("")->empty());
  ASSERT_TRUE(store->Put("p/b/2", "two").ok());
  ASSERT_TRUE(store->Put("p/a/1", "one").ok());
  ASSERT_TRUE(store->Put("q/3", "three").ok());
  ASSERT_TRUE(store->Put("p/a/1", "ONE!").ok());  // replaces whole
  auto list = store->List("p/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].key, "p/a/1");
  EXPECT_EQ((*list)[0].size, 4u);
  EXPECT_EQ((*list)[1].key, "p/b/2");
  EXPECT_EQ(*store->Get("p/a/1"), "ONE!");
  EXPECT_EQ(store->Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store->Put("../escape", "x").ok());
}

// ---- archiver -----------------------------------------------------------------------------

// A store wrapper that can refuse uploads, and counts them.
class FlakyStore final : public ObjectStore {
 public:
  explicit FlakyStore(ObjectStore* inner) : inner_(inner) {}
  Status Put(const std::string& key, std::string_view data) override {
    std::lock_guard lock(mu_);
    ++puts_;
    if (store_then_fail_) {
      // The object lands, but the caller hears a failure (a crash right after the upload).
      (void)inner_->Put(key, data);
      return Unavailable("injected failure after storing");
    }
    if (refuse_) return {StatusCode::kUnauthenticated, "injected 403"};
    return inner_->Put(key, data);
  }
  Result<std::string> Get(const std::string& key) override { return inner_->Get(key); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override { return inner_->List(p); }
  std::string Describe() const override { return "flaky"; }
  std::mutex mu_;
  bool refuse_ = false;
  bool store_then_fail_ = false;
  int puts_ = 0;

 private:
  ObjectStore* inner_;
};

std::string Event(int i, int64_t received_at, const std::string& source = "web") {
  return "{\"type\":\"track\",\"event\":\"E\",\"messageId\":\"m-" + source + "-" +
         std::to_string(i) + "\",\"userId\":\"u" + std::to_string(i % 7) +
         "\",\"properties\":{\"n\":" + std::to_string(i) + "},\"receivedAt\":\"" +
         FormatIso8601(TimestampMs(received_at)) + "\"}";
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<log::EventLog> log;
  std::unique_ptr<ObjectStore> local;
  FakeClock clock{kT0};
  MetricsRegistry metrics;

  Fixture() {
    log::LocalLogOptions o;
    o.dir = dir.path() + "/log";
    o.fsync = log::FsyncPolicy::kNever;
    log = std::move(*log::OpenLocalLog(o));
    local = NewLocalObjectStore(dir.path() + "/archive");
  }

  std::vector<std::string> Append(int n, int first_index, const std::string& source = "web") {
    std::vector<log::LogRecord> recs;
    std::vector<std::string> payloads;
    for (int i = first_index; i < first_index + n; ++i) {
      int64_t t = kT0 + i;
      payloads.push_back(Event(i, t, source));
      recs.push_back({source, "m-" + std::to_string(i), TimestampMs(t), payloads.back()});
    }
    EXPECT_TRUE(AppendSync(*log, std::move(recs)).status.ok());
    return payloads;
  }

  std::unique_ptr<Archiver> Start(std::unique_ptr<ObjectStore> store, int64_t roll_bytes,
                                  int64_t roll_age_ms = 3'600'000) {
    ArchiverOptions o;
    o.config.enabled = true;
    o.config.roll_bytes = roll_bytes;
    o.config.roll_age_ms = roll_age_ms;
    o.config.prefix = "pre/";
    o.log = log.get();
    o.store = std::move(store);
    o.state_dir = dir.path() + "/state";
    o.clock = &clock;
    o.upload_retry.backoff = {5, 20};
    o.metrics = &metrics;
    auto a = Archiver::Start(std::move(o));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return std::move(*a);
  }

  // Every event line in the archive, per source in file order; and the keys.
  std::map<std::string, std::vector<std::string>> Archived(
      std::vector<std::string>* keys = nullptr) {
    std::map<std::string, std::vector<std::string>> out;
    auto files = ListArchive(local.get(), "pre/", {});
    EXPECT_TRUE(files.ok());
    for (const auto& f : *files) {
      if (keys) keys->push_back(f.object_key);
      std::string text;
      std::vector<std::string_view> lines;
      EXPECT_TRUE(ReadArchiveFile(local.get(), f.object_key, &text, &lines).ok());
      for (auto l : lines)
        out[f.key.source].emplace_back(l);
    }
    return out;
  }
};

template <typename F>
bool WaitFor(F f, int ms = 10'000) {
  for (int i = 0; i < ms / 5; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

std::unique_ptr<ObjectStore> Borrow(ObjectStore* s) {
  return std::make_unique<FlakyStore>(s);
}

TEST(ArchiverTest, RollsBySizePerSourceAndKeepsEventsExactly) {
  Fixture fx;
  auto web = fx.Append(500, 0, "web");
  auto backend = fx.Append(300, 1000, "backend");
  auto a = fx.Start(Borrow(fx.local.get()), 20'000);
  ASSERT_TRUE(WaitFor([&] { return a->events_archived() >= 700; }));
  ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(800); }));
  a->Stop();  // uploads the rest once
  std::vector<std::string> keys;
  auto got = fx.Archived(&keys);
  EXPECT_EQ(got["web"], web);
  EXPECT_EQ(got["backend"], backend);
  EXPECT_GE(keys.size(), 6u);  // ~70 KB of web and ~40 KB of backend events in 20 KB files
  for (const auto& k : keys) {
    auto pk = ParseKey("pre/", k);
    ASSERT_TRUE(pk.has_value()) << k;
  }
}

// A blocked event (log header sy-blocked) is not archived — replay would deliver it — and its
// released copy is.
TEST(ArchiverTest, SkipsEventsATrackingPlanBlocked) {
  Fixture fx;
  auto before = fx.Append(3, 0);
  log::LogRecord blocked{"web", "m-blocked", TimestampMs(kT0 + 3), Event(3, kT0 + 3, "web")};
  blocked.headers = {{std::string(log::kHeaderBlocked), "shop"}};
  log::LogRecord released = blocked;
  released.headers = {{std::string(log::kHeaderReleasedFrom), "3"}};
  ASSERT_TRUE(AppendSync(*fx.log, {blocked}).status.ok());
  auto after = fx.Append(2, 5);
  ASSERT_TRUE(AppendSync(*fx.log, {released}).status.ok());
  auto a = fx.Start(Borrow(fx.local.get()), 1 << 20);
  ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(7); }));
  a->Stop();
  std::vector<std::string> want = before;
  want.insert(want.end(), after.begin(), after.end());
  want.push_back(released.payload);
  EXPECT_EQ(fx.Archived()["web"], want);
}

TEST(ArchiverTest, RollsByAgeWithoutNewEvents) {
  Fixture fx;
  auto web = fx.Append(3, 0);
  auto a = fx.Start(Borrow(fx.local.get()), 64 << 20, 60'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(fx.Archived().empty());  // young file stays open
  fx.clock.Advance(std::chrono::milliseconds(61'000));
  ASSERT_TRUE(WaitFor([&] { return a->files_written() == 1; }));
  EXPECT_EQ(fx.Archived()["web"], web);
}

TEST(ArchiverTest, FailedUploadsAreRetriedAndCountedAndTheCursorWaits) {
  Fixture fx;
  auto web = fx.Append(50, 0);
  auto flaky = std::make_unique<FlakyStore>(fx.local.get());
  FlakyStore* f = flaky.get();
  f->refuse_ = true;
  auto a = fx.Start(std::move(flaky), 1024);
  ASSERT_TRUE(WaitFor([&] { return a->upload_failures() >= 3; }));
  EXPECT_TRUE(fx.Archived().empty());
  {
    std::lock_guard lock(f->mu_);
    f->refuse_ = false;
  }
  ASSERT_TRUE(WaitFor([&] { return a->events_archived() >= 40; }));
  ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(50); }));
  a->Stop();
  EXPECT_EQ(fx.Archived()["web"], web);
}

// A store that refuses the first upload with a Retry-After, then stores; records when each
// upload attempt came.
class RetryAfterStore final : public ObjectStore {
 public:
  RetryAfterStore(ObjectStore* inner, int64_t retry_after_ms)
      : inner_(inner), retry_after_ms_(retry_after_ms) {}
  Status Put(const std::string& key, std::string_view data) override {
    return PutReportingRetryAfter(key, data, nullptr);
  }
  Status PutReportingRetryAfter(const std::string& key, std::string_view data,
                                std::optional<int64_t>* retry_after_ms) override {
    std::lock_guard lock(mu_);
    attempts_.push_back(std::chrono::steady_clock::now());
    if (attempts_.size() == 1) {
      if (retry_after_ms) *retry_after_ms = retry_after_ms_;
      return Unavailable("injected 503 with Retry-After");
    }
    return inner_->Put(key, data);
  }
  Result<std::string> Get(const std::string& key) override { return inner_->Get(key); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override { return inner_->List(p); }
  std::string Describe() const override { return "retry-after"; }
  std::mutex mu_;
  std::vector<std::chrono::steady_clock::time_point> attempts_;

 private:
  ObjectStore* inner_;
  int64_t retry_after_ms_;
};

TEST(ArchiverTest, TheStoresRetryAfterHoldsBackTheNextUploadAttempt) {
  Fixture fx;
  auto web = fx.Append(50, 0);
  auto store = std::make_unique<RetryAfterStore>(fx.local.get(), 400);
  RetryAfterStore* r = store.get();
  auto a = fx.Start(std::move(store), 1024);  // backoff 5..20 ms: Retry-After dominates
  ASSERT_TRUE(WaitFor([&] { return a->events_archived() >= 40; }));
  a->Stop();
  std::lock_guard lock(r->mu_);
  ASSERT_GE(r->attempts_.size(), 2u);
  EXPECT_GE(r->attempts_[1] - r->attempts_[0], std::chrono::milliseconds(400));
  EXPECT_EQ(a->upload_failures(), 1u);
}

TEST(ArchiverTest, CrashAfterUploadRebuildsTheSameFileAndKey) {
  Fixture fx;
  auto web = fx.Append(200, 0);
  std::vector<std::string> first_keys;
  {
    // Every upload lands but reports failure, so the state never records it (as if the
    // process died right after the PUT).
    auto flaky = std::make_unique<FlakyStore>(fx.local.get());
    FlakyStore* f = flaky.get();
    f->store_then_fail_ = true;
    auto a = fx.Start(std::move(flaky), 10'000);
    ASSERT_TRUE(WaitFor([&] { return a->upload_failures() >= 2; }));
    a->Stop();
    fx.Archived(&first_keys);
    ASSERT_EQ(first_keys.size(), 1u);
  }
  // More events arrive while it is down: the rebuilt file must still end where the intent says.
  auto more = fx.Append(100, 200);
  auto a = fx.Start(Borrow(fx.local.get()), 10'000);
  ASSERT_TRUE(WaitFor([&] { return a->events_archived() >= 200; }))
      << a->events_archived() << " files " << a->files_written() << " failures "
      << a->upload_failures();
  ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(300); }));
  a->Stop();
  std::vector<std::string> keys;
  auto got = fx.Archived(&keys);
  EXPECT_EQ(keys.front(), first_keys.front());  // same object, overwritten
  std::vector<std::string> all = web;
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(got["web"], all);  // nothing lost, nothing twice
}

TEST(ArchiverTest, RestartSkipsWhatWasArchived) {
  Fixture fx;
  auto web = fx.Append(100, 0, "web");
  {
    auto a = fx.Start(Borrow(fx.local.get()), 5'000);
    ASSERT_TRUE(WaitFor([&] { return a->events_archived() >= 80; }));
    ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(100); }));
    a->Stop();
  }
  auto backend = fx.Append(10, 100, "backend");
  auto more = fx.Append(10, 110, "web");
  auto a = fx.Start(Borrow(fx.local.get()), 5'000);
  ASSERT_TRUE(WaitFor([&] { return a->read_position() == Offset(120); }));
  a->Stop();
  auto got = fx.Archived();
  web.insert(web.end(), more.begin(), more.end());
  EXPECT_EQ(got["web"], web);
  EXPECT_EQ(got["backend"], backend);
}

// The first upload blocks until released, so a test can stop the archiver in the middle of a
// batch it has read.
class BlockingStore final : public ObjectStore {
 public:
  explicit BlockingStore(ObjectStore* inner) : inner_(inner) {}
  Status Put(const std::string& key, std::string_view data) override {
    if (!blocked_once_.exchange(true)) {
      entered_.set_value();
      release_.get_future().wait();
    }
    return inner_->Put(key, data);
  }
  Result<std::string> Get(const std::string& key) override { return inner_->Get(key); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override { return inner_->List(p); }
  std::string Describe() const override { return "blocking"; }
  std::promise<void> entered_, release_;

 private:
  ObjectStore* inner_;
  std::atomic<bool> blocked_once_{false};
};

TEST(ArchiverTest, StopInTheMiddleOfABatchKeepsItsTailForTheNextRun) {
  Fixture fx;
  auto web = fx.Append(100, 0);
  auto blocking = std::make_unique<BlockingStore>(fx.local.get());
  BlockingStore* b = blocking.get();
  auto entered = b->entered_.get_future();
  auto a = fx.Start(std::move(blocking), 1'500);  // ~10 events a file
  entered.wait();                                 // the first upload is in flight
  std::thread stopper([&] { a->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  b->release_.set_value();  // the upload succeeds; the archiver then sees the stop mid-batch
  stopper.join();
  a.reset();
  auto next = fx.Start(Borrow(fx.local.get()), 1'500);
  ASSERT_TRUE(WaitFor([&] { return next->read_position() == Offset(100); }));
  next->Stop();
  EXPECT_EQ(fx.Archived()["web"], web);  // every event once: nothing skipped, nothing twice
}

// ---- reading back -------------------------------------------------------------------------

TEST(ArchiveReaderTest, SelectsFilesByHourBounds) {
  TempDir dir;
  auto store = NewLocalObjectStore(dir.path());
  const int64_t h = 3'600'000;
  auto put = [&](uint64_t first, int64_t t) {
    std::string gz;
    AppendGzipMember(Event(static_cast<int>(first), t) + "\n", 1, &gz);
    ASSERT_TRUE(
        store->Put(FormatKey("", "web", Offset(first), Offset(first), TimestampMs(t)), gz).ok());
  };
  put(0, kT0);           // 14:00
  put(10, kT0 + h);      // 15:00
  put(20, kT0 + 5 * h);  // 19:00
  auto sel = [&](std::optional<int64_t> from, std::optional<int64_t> to) {
    ArchiveSelection s;
    if (from) s.from = TimestampMs(*from);
    if (to) s.to = TimestampMs(*to);
    std::vector<uint64_t> firsts;
    auto files = ListArchive(store.get(), "", s);
    EXPECT_TRUE(files.ok());
    for (const auto& f : *files)
      firsts.push_back(f.key.first.value());
    return firsts;
  };
  EXPECT_EQ(sel({}, {}), (std::vector<uint64_t>{0, 10, 20}));
  EXPECT_EQ(sel(kT0 + 3 * h, {}),
            (std::vector<uint64_t>{10, 20}));  // 15:00's file may run to 19:xx
  EXPECT_EQ(sel({}, kT0 + h / 2), (std::vector<uint64_t>{0}));
  EXPECT_EQ(sel(kT0 + 6 * h, {}), (std::vector<uint64_t>{20}));
  ArchiveSelection other;
  other.source = "backend";
  auto none = ListArchive(store.get(), "", other);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ArchiveReaderTest, ReceivedAtAndSelection) {
  auto t = ReceivedAtOf(Event(1, kT0 + 5));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, TimestampMs(kT0 + 5));
  EXPECT_FALSE(ReceivedAtOf("{\"a\":1}").has_value());
  ArchiveSelection s;
  s.from = TimestampMs(kT0);
  s.to = TimestampMs(kT0 + 10);
  EXPECT_TRUE(InSelection(s, TimestampMs(kT0)));
  EXPECT_FALSE(InSelection(s, TimestampMs(kT0 + 10)));
  EXPECT_FALSE(InSelection(s, std::nullopt));
  EXPECT_TRUE(InSelection({}, std::nullopt));
}

// An HTTP/1.1 server on 127.0.0.1:0 that answers every request with `status` (and Retry-After:
// 0) and counts the requests: stands in for an S3 endpoint that keeps failing.
// Answers every request with `status` and Retry-After: 0 (a store's failure, at once).
class FailingHttpServer : public sy::testing::CannedHttpServer {
 public:
  explicit FailingHttpServer(int status) : CannedHttpServer(status, "Retry-After: 0\r\n", "") {}
};

S3Options FastFailingS3(const FailingHttpServer& server) {
  S3Options o;
  o.endpoint = server.endpoint();
  o.bucket = "events";
  o.path_style = true;
  o.access_key_id = "AK";
  o.secret_access_key = "SK";
  o.multipart_part_bytes = 8;
  o.read_retry.backoff = {1, 2};
  return o;
}

// The archive path has one retry loop per operation: an upload is one attempt per request (the
// archiver retries it whole), a read retries each request under read_retry — never both.
TEST(S3Store, AnUploadIsOneAttemptAndReportsRetryAfterWhileReadsRetryUnderTheirPolicy) {
  FailingHttpServer server(503);
  auto store = NewS3ObjectStore(FastFailingS3(server));
  std::optional<int64_t> retry_after;
  Status put = store->PutReportingRetryAfter("a/b.ndjson.gz", "small", &retry_after);
  EXPECT_EQ(put.code(), StatusCode::kUnavailable) << put.ToString();
  EXPECT_EQ(retry_after, 0);
  ASSERT_EQ(server.request_lines().size(), 1u);
  EXPECT_TRUE(server.request_lines()[0].starts_with("PUT /events/a/b.ndjson.gz"));

  // Multipart: the failed create is not retried either.
  EXPECT_FALSE(store->Put("a/c.ndjson.gz", "more than eight bytes").ok());
  ASSERT_EQ(server.request_lines().size(), 2u);
  EXPECT_TRUE(server.request_lines()[1].starts_with("POST /events/a/c.ndjson.gz?uploads"));

  EXPECT_FALSE(store->Get("a/b.ndjson.gz").ok());
  EXPECT_EQ(server.request_lines().size(), 2u + 4u);  // read_retry: 4 attempts
  EXPECT_FALSE(store->List("a/").ok());
  EXPECT_EQ(server.request_lines().size(), 2u + 4u + 4u);
}

TEST(S3Store, AReadRefusedFor403IsNotRetried) {
  FailingHttpServer server(403);
  auto store = NewS3ObjectStore(FastFailingS3(server));
  Result<std::string> got = store->Get("a/b.ndjson.gz");
  EXPECT_EQ(got.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(server.request_lines().size(), 1u);
}

TEST(ArchiverOptions, AnUploadPolicyThatCouldGiveUpIsRefused) {
  TempDir dir;
  log::LocalLogOptions lo;
  lo.dir = dir.path() + "/log";
  auto log = log::OpenLocalLog(lo);
  ASSERT_TRUE(log.ok());
  MetricsRegistry metrics;
  ArchiverOptions o;
  o.log = log->get();
  o.store = NewLocalObjectStore(dir.path() + "/archive");
  o.state_dir = dir.path() + "/state";
  o.metrics = &metrics;  // complete but for the policy: refused for the policy alone
  o.upload_retry.max_attempts = 5;
  EXPECT_EQ(Archiver::Start(std::move(o)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::archive
