// Unit tests of replay: the import path in process (files of several sources merged by
// receivedAt, integrations rewritten, every other byte kept) and the integrations rewrite.
#include "replay/replay.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "archive/archive_key.h"
#include "archive/gzip.h"
#include "archive/object_store.h"
#include "base/metrics.h"
#include "base/time_format.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "log/local/log_test_util.h"

namespace sy::replay {
namespace {

using log::testing::TempDir;

constexpr int64_t kT0 = 1'764'165'600'000;  // 2025-11-26T14:00:00Z

std::string Event(int i, int64_t received_at, const std::string& source = "web") {
  return "{\"type\":\"track\",\"event\":\"E\",\"messageId\":\"m-" + source + "-" +
         std::to_string(i) + "\",\"userId\":\"u" + std::to_string(i % 7) +
         "\",\"properties\":{\"n\":" + std::to_string(i) + "},\"receivedAt\":\"" +
         FormatIso8601(TimestampMs(received_at)) + "\"}";
}

// An in-process destination that records what it is given.
class RecordingDestination final : public delivery::Destination {
 public:
  explicit RecordingDestination(std::vector<delivery::RoutedEvent>* got) : got_(got) {}
  delivery::DestinationLimits limits() const override { return {1000, 16u << 20}; }
  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent>) const override {
    return {};
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override {
    got_->insert(got_->end(), batch.begin(), batch.end());
    return std::vector<delivery::Outcome>(batch.size(), delivery::Outcome::Delivered());
  }

 private:
  std::vector<delivery::RoutedEvent>* got_;
};

// The whole import path in process: files of two sources merged by receivedAt, integrations
// rewritten, ids and every other byte kept, a line that is not a JSON object left out, the
// destination's sources rule still applied (routing trusts only the rewritten integrations).
TEST(ReplayTest, RunReplayMergesRewritesAndSkipsLinesThatAreNotObjects) {
  TempDir dir;
  auto store = archive::NewLocalObjectStore(dir.path() + "/archive");
  auto put = [&](const std::string& source, std::vector<std::string> lines) {
    std::string ndjson, gz;
    for (const auto& l : lines)
      ndjson += l + "\n";
    archive::AppendGzipMember(ndjson, 1, &gz);
    const std::string key =
        archive::FormatKey("", source, Offset(0), Offset(lines.size() - 1), TimestampMs(kT0));
    ASSERT_TRUE(store->Put(key, gz).ok());
  };
  std::string with_integrations = Event(1, kT0 + 1);
  with_integrations.insert(1, R"("integrations":{"All":true,"rec":false},)");
  put("web", {Event(0, kT0), with_integrations, "not json at all", Event(2, kT0 + 5)});
  put("backend", {Event(10, kT0 + 2, "backend"), Event(11, kT0 + 6, "backend")});
  delivery::DeadLetterStore dead_letters(dir.path() + "/dlq");
  MetricsRegistry metrics;
  std::vector<delivery::RoutedEvent> got;
  auto replay = [&](std::vector<std::string> sources) {
    got.clear();
    ReplayOptions o;
    o.data_dir = dir.path() + "/data";
    o.destination.name = "rec";
    o.destination.type = "test";
    o.destination.sources = std::move(sources);
    o.destination.batch.max_wait_ms = 1;
    o.display_name = "Recorder";
    o.instance = std::make_unique<RecordingDestination>(&got);
    o.store = store.get();
    o.dead_letters = &dead_letters;
    o.metrics = &metrics;
    return RunReplay(std::move(o));
  };
  auto all = replay({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->delivered, 5u);
  ASSERT_EQ(got.size(), 5u);
  const std::vector<std::string> order = {"m-web-0", "m-web-1", "m-backend-10", "m-web-2",
                                          "m-backend-11"};
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].message_id, order[i]);
    EXPECT_NE(got[i].payload.find(R"("integrations":{"All":false,"rec":true})"), std::string::npos)
        << got[i].payload;
  }
  EXPECT_EQ(got[0].payload, WithIntegrations(Event(0, kT0), "rec"));
  EXPECT_EQ(got[1].payload, WithIntegrations(with_integrations, "rec"));
  EXPECT_EQ(got[2].source, "backend");
  auto web_only = replay({"web"});
  ASSERT_TRUE(web_only.ok()) << web_only.status().ToString();
  EXPECT_EQ(web_only->delivered, 3u);
  EXPECT_EQ(web_only->skipped, 2u);
}

TEST(ReplayTest, IntegrationsRewrittenEverythingElseKept) {
  EXPECT_EQ(WithIntegrations(R"({"a":1,"integrations":{"All":true,"X":false},"b":"s"})", "hook"),
            R"({"a":1,"integrations":{"All":false,"hook":true},"b":"s"})");
  EXPECT_EQ(
      WithIntegrations(R"({"messageId":"m1","timestamp":"2025-01-01T00:00:00.000Z"})", "h"),
      R"({"messageId":"m1","timestamp":"2025-01-01T00:00:00.000Z","integrations":{"All":false,"h":true}})");
  EXPECT_EQ(WithIntegrations("{}", "h"), R"({"integrations":{"All":false,"h":true}})");
  // Bytes outside the integrations value are copied through untouched, whitespace included.
  EXPECT_EQ(WithIntegrations(R"({ "a" : 1.50 , "integrations" : {"x":true} })", "h"),
            R"({ "a" : 1.50 , "integrations" : {"All":false,"h":true} })");
}

}  // namespace
}  // namespace sy::replay
