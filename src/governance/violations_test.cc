#include "governance/violations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <future>

#include "config/config.h"
#include "delivery/routing.h"
#include "log/local/local_log.h"

namespace sy::governance {
namespace {

namespace json = boost::json;

class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sy_violations_test_" + std::to_string(::getpid()) + "_" + std::to_string(n_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }

 private:
  static inline int n_ = 0;
  std::filesystem::path path_;
};

// Plans over source `web`: Order Completed needs properties.total; `violations` as given.
std::shared_ptr<const TrackingPlans> Plans(const ScratchDir& dir, const std::string& violations,
                                           const std::string& schema) {
  std::ofstream(dir.path() + "/order.json") << schema;
  auto cfg = config::LoadConfigString(
      "version: 1\ndata_dir: /tmp/x\nsources: [{name: web, write_key: k}]\n"
      "tracking_plans:\n  - name: shop\n    sources: [web]\n    violations: " +
          violations + "\n    events:\n      Order Completed: {schema: order.json}\n",
      dir.path() + "/switchyard.yaml");
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto plans = TrackingPlans::Compile(*cfg);
  EXPECT_TRUE(plans.ok()) << plans.status().ToString();
  return *plans;
}

constexpr const char* kNeedsTotal = R"({"properties":{"properties":{"required":["total"]}}})";
constexpr const char* kAnything = R"({})";

log::LogRecord Blocked(const std::string& id, const std::string& payload) {
  log::LogRecord r{"web", id, TimestampMs(1'700'000'000'000), payload};
  r.headers = {{std::string(log::kHeaderBlocked), "shop"},
               {std::string(log::kHeaderViolations),
                R"([{"path":"properties.total","rule":"required","message":"m"}])"}};
  return r;
}

void AppendSync(log::EventLog& log, std::vector<log::LogRecord> records) {
  std::promise<Status> p;
  auto f = p.get_future();
  log.Append(std::move(records), [&p](const log::AppendResult& r) { p.set_value(r.status); });
  ASSERT_TRUE(f.get().ok());
}

std::vector<log::LogEntry> ReadAll(log::EventLog& log) {
  auto reader = log.OpenReader();
  std::vector<log::LogEntry> all;
  while (true) {
    auto batch = (*reader)->Read(1000, 1 << 20);
    if (!batch.ok() || batch->empty()) break;
    for (auto& e : *batch)
      all.push_back(std::move(e));
  }
  return all;
}

const std::string kOrder = R"({"type":"track","event":"Order Completed","properties":{"x":1}})";
const std::string kFixed =
    R"({"type":"track","event":"Order Completed","properties":{"total":9.99}})";

class ViolationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = log::OpenLocalEventLog({.dir = dir_.path() + "/log"});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    log_ = std::move(*opened);
    AppendSync(*log_, {log::LogRecord{"web", "plain", TimestampMs(1), "{\"type\":\"page\"}"},
                       Blocked("b1", kOrder), Blocked("b2", kFixed),
                       Blocked("b3", R"({"type":"identify","userId":"u"})")});
  }
  ScratchDir dir_;
  std::unique_ptr<log::LocalEventLog> log_;
};

TEST_F(ViolationsTest, ListsBlockedEventsWithFilters) {
  auto all = ScanBlocked(log_.get(), {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].entry.message_id, "b1");
  EXPECT_EQ((*all)[0].event, "Order Completed");
  EXPECT_FALSE((*all)[0].released_as);
  auto line = json::parse(BlockedEventJson((*all)[0]));
  EXPECT_EQ(line.at("plan"), "shop");
  EXPECT_EQ(line.at("offset"), 1);
  EXPECT_EQ(line.at("violations").at(0).at("rule"), "required");
  EXPECT_EQ(line.at("released"), false);

  EXPECT_EQ(ScanBlocked(log_.get(), {.event = "identify"})->size(), 1u);
  EXPECT_EQ(ScanBlocked(log_.get(), {.event = "Order Completed"})->size(), 2u);
  EXPECT_EQ(ScanBlocked(log_.get(), {.plan = "other"})->size(), 0u);
  EXPECT_EQ(ScanBlocked(log_.get(), {.offsets = {2}})->size(), 1u);
}

TEST_F(ViolationsTest, ReleaseRevalidatesAppendsCopiesOnceAndDestinationsTakeThem) {
  // Today's plan still needs properties.total and blocks: only b2 (which has it) and b3 (an
  // identify, which the plan does not check) go.
  auto plans = Plans(dir_, "block", kNeedsTotal);
  auto r = ReleaseBlocked(log_.get(), plans.get(), {}, /*force=*/false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->released, 2u);
  EXPECT_EQ(r->still_blocked, 1u);
  EXPECT_EQ(r->still_blocked_offsets, std::vector<uint64_t>{1});

  auto all = ReadAll(*log_);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[4].message_id, "b2");
  EXPECT_EQ(all[4].payload, kFixed);  // as stored, byte for byte
  EXPECT_EQ(*log::FindHeader(all[4].headers, log::kHeaderReleasedFrom), "2");
  EXPECT_EQ(log::FindHeader(all[4].headers, log::kHeaderBlocked), nullptr);

  // Every destination skips the originals and takes the copies.
  config::DestinationConfig dc;
  dc.name = "hook";
  dc.type = "webhook";
  delivery::EventRouter router(dc, "Webhook");
  delivery::RoutedEvent out;
  EXPECT_EQ(router.Route(all[2], &out), delivery::RouteDecision::kBlockedByPlan);
  EXPECT_EQ(router.Route(all[4], &out), delivery::RouteDecision::kSend);
  EXPECT_EQ(delivery::RouteDecisionName(delivery::RouteDecision::kBlockedByPlan), "tracking_plan");

  // A second release does nothing.
  auto again = ReleaseBlocked(log_.get(), plans.get(), {}, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->released, 0u);
  EXPECT_EQ(again->already_released, 2u);
  EXPECT_EQ(ReadAll(*log_).size(), 6u);
  auto listed = ScanBlocked(log_.get(), {});
  EXPECT_EQ(*(*listed)[1].released_as, 4u);

  // The plan fixed to flag: b1 goes with context.violations; then nothing is left.
  auto flagging = Plans(dir_, "flag", kNeedsTotal);
  auto third = ReleaseBlocked(log_.get(), flagging.get(), {}, false);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->released, 1u);
  all = ReadAll(*log_);
  ASSERT_EQ(all.size(), 7u);
  auto doc = json::parse(all[6].payload);
  EXPECT_EQ(doc.at("context").at("violations").at(0).at("rule"), "required");
  EXPECT_EQ(ReleaseBlocked(log_.get(), flagging.get(), {}, false)->released, 0u);
}

TEST_F(ViolationsTest, ForceReleasesWithoutJudgingAndFiltersApply) {
  auto plans = Plans(dir_, "block", kNeedsTotal);
  auto r = ReleaseBlocked(log_.get(), plans.get(), {.offsets = {1}}, /*force=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->released, 1u);
  auto all = ReadAll(*log_);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[4].payload, kOrder);
  // A plan that now accepts everything releases the rest.
  auto open = Plans(dir_, "block", kAnything);
  EXPECT_EQ(ReleaseBlocked(log_.get(), open.get(), {}, false)->released, 2u);
}

}  // namespace
}  // namespace sy::governance
