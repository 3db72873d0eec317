// KafkaLog on librdkafka's in-process mock cluster (no Java): appends acknowledged only when
// every record has its report, failures of a whole call, the cursor's synthetic offsets and the
// per-partition commits behind them, readiness. The real broker runs in tests/e2e/test_kafka.py.
#include "log/kafka/kafka_log.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sy::log {
namespace {

using namespace std::chrono_literals;

constexpr int16_t kProduceApiKey = 0;  // Kafka protocol API key of Produce

class MockCluster {
 public:
  explicit MockCluster(int brokers) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return;
    }
    cluster_ = rd_kafka_mock_cluster_new(rk_, brokers);
  }
  ~MockCluster() {
    if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;
  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

struct Fixture {
  explicit Fixture(int brokers = 1, int partitions = 4) : mock(brokers) {
    o.brokers = mock.bootstraps();
    o.topic_prefix = "sy-test";
    o.partitions = partitions;
    o.replication_factor = 1;
    o.create_topic = false;  // the mock cluster has no CreateTopics handler
    o.ack_timeout_ms = 3000;
    o.probe_interval_ms = 200;
    o.wake_interval_ms = 50;
    o.session_timeout_ms = 6000;
    o.metrics = &metrics;
    o.client_properties = {{"log_level", "3"}};
    rd_kafka_mock_topic_create(mock.get(), KafkaEventsTopic(o.topic_prefix).c_str(), partitions, 1);
  }
  MockCluster mock;
  MetricsRegistry metrics;
  KafkaLogOptions o;
};

// Appends and waits for `done`.
AppendResult AppendSync(EventLog* log, std::vector<LogRecord> records) {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  AppendResult result;
  log->Append(std::move(records), [&](const AppendResult& r) {
    std::lock_guard lock(mu);
    result = r;
    finished = true;
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished; });
  return result;
}

LogRecord Record(int user, int seq) {
  LogRecord r;
  r.source = "web";
  r.message_id = "m-" + std::to_string(user) + "-" + std::to_string(seq);
  r.user = "user-" + std::to_string(user);
  r.received_at = TimestampMs(1'700'000'000'000 + seq);
  r.payload = "{\"u\":" + std::to_string(user) + ",\"seq\":" + std::to_string(seq) + "}";
  if (seq % 3 == 0) r.headers.push_back({std::string(kHeaderPlan), "plan-" + std::to_string(user)});
  return r;
}

// Reads until `want` entries or the timeout.
std::vector<LogEntry> ReadN(LogCursor* c, size_t want, std::chrono::milliseconds timeout) {
  std::vector<LogEntry> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    if (!c->WaitForData(100ms)) continue;
    auto r = c->Read(want - out.size(), 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    for (auto& e : *r)
      out.push_back(std::move(e));
  }
  return out;
}

int SeqOf(const LogEntry& e) {
  return std::stoi(e.payload.substr(e.payload.find("\"seq\":") + 6));
}
int UserOf(const LogEntry& e) {
  return std::stoi(e.payload.substr(5));
}

TEST(KafkaLog, RecordKeyIsSourceAndUserElseMessageId) {
  LogRecord r;
  r.source = "web";
  r.message_id = "m1";
  EXPECT_EQ(KafkaRecordKey(r), "web:m1");
  r.user = "anon-7";
  EXPECT_EQ(KafkaRecordKey(r), "web:anon-7");
  EXPECT_EQ(KafkaEventsTopic("sy"), "sy-events");
  EXPECT_EQ(KafkaGroupName("sy", "dest.hook"), "sy-dest.hook");
}

TEST(KafkaLog, AppendsAreReadBackInOrderPerUserWithTheirHeaders) {
  Fixture f(3, 4);
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  constexpr int kUsers = 7, kPerUser = 30;
  int seq = 0;
  for (int call = 0; call < 10; ++call) {
    std::vector<LogRecord> records;
    for (int i = 0; i < kUsers * kPerUser / 10; ++i, ++seq)
      records.push_back(Record(seq % kUsers, seq));
    AppendResult r = AppendSync(log->get(), std::move(records));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
  auto cursor = (*log)->OpenCursor("dest.hook");
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  std::vector<LogEntry> got = ReadN(cursor->get(), kUsers * kPerUser, 20s);
  ASSERT_EQ(got.size(), static_cast<size_t>(kUsers * kPerUser));
  std::map<int, int> last;
  std::set<std::string> ids;
  for (size_t i = 0; i < got.size(); ++i) {
    const LogEntry& e = got[i];
    EXPECT_EQ(e.offset.value(), i);  // synthetic, dense from 0 in a session
    EXPECT_EQ(e.source, "web");
    const int u = UserOf(e), s = SeqOf(e);
    EXPECT_EQ(e.message_id, "m-" + std::to_string(u) + "-" + std::to_string(s));
    EXPECT_EQ(e.received_at.value(), 1'700'000'000'000 + s);
    if (s % 3 == 0) {
      ASSERT_EQ(e.headers.size(), 1u);
      EXPECT_EQ(e.headers[0].key, kHeaderPlan);
      EXPECT_EQ(e.headers[0].value, "plan-" + std::to_string(u));
    } else {
      EXPECT_TRUE(e.headers.empty());
    }
    auto it = last.find(u);
    if (it != last.end()) {
      EXPECT_GT(s, it->second) << "user " << u << " out of order";
    }
    last[u] = s;
    ids.insert(e.message_id);
  }
  EXPECT_EQ(ids.size(), got.size());
  EXPECT_EQ((*cursor)->position().value(), got.size());
  ASSERT_TRUE((*cursor)->Commit((*cursor)->position()).ok());
  EXPECT_EQ((*cursor)->committed(), (*cursor)->position());
  cursor->reset();
  // Everything was committed: a new session of the same cursor reads nothing.
  auto again = (*log)->OpenCursor("dest.hook");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(ReadN(again->get(), 1, 4s).empty());
  again->reset();
  EXPECT_NE(f.metrics.RenderPrometheus().find("switchyard_kafka_produced_events_total 210"),
            std::string::npos);
}

// Commit(next) commits, per partition, below the first record handed out at or after `next`:
// a new session reads again exactly the records from `next` on.
TEST(KafkaLog, CommitHoldsEachPartitionBelowItsFirstUnfinishedRecord) {
  Fixture f(1, 3);
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::vector<LogRecord> records;
  for (int i = 0; i < 90; ++i)
    records.push_back(Record(i % 9, i));
  ASSERT_TRUE(AppendSync(log->get(), std::move(records)).status.ok());
  std::set<std::string> unfinished;
  {
    auto cursor = (*log)->OpenCursor("dest.partial");
    ASSERT_TRUE(cursor.ok());
    std::vector<LogEntry> got = ReadN(cursor->get(), 90, 20s);
    ASSERT_EQ(got.size(), 90u);
    for (size_t i = 40; i < got.size(); ++i)
      unfinished.insert(got[i].message_id);
    ASSERT_TRUE((*cursor)->Commit(Offset(40)).ok());
    EXPECT_EQ((*cursor)->committed().value(), 40u);
    // Past the position is refused.
    EXPECT_FALSE((*cursor)->Commit(Offset(91)).ok());
  }
  auto cursor = (*log)->OpenCursor("dest.partial");
  ASSERT_TRUE(cursor.ok());
  std::vector<LogEntry> again = ReadN(cursor->get(), unfinished.size(), 15s);
  std::vector<LogEntry> more = ReadN(cursor->get(), 1, 500ms);  // and nothing else
  again.insert(again.end(), more.begin(), more.end());
  std::set<std::string> ids;
  for (const auto& e : again)
    ids.insert(e.message_id);
  EXPECT_EQ(ids, unfinished);
  EXPECT_EQ(again.size(), unfinished.size());
}

// Produce errors past the ack timeout fail the whole call with kUnavailable, within the bound.
TEST(KafkaLog, AppendFailsWholeWithinTheAckTimeout) {
  Fixture f(1, 2);
  f.o.ack_timeout_ms = 1000;
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE(AppendSync(log->get(), {Record(1, 1)}).status.ok());  // connected
  std::vector<rd_kafka_resp_err_t> errors(5000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(f.mock.get(), kProduceApiKey, errors.size(),
                                          errors.data());
  std::vector<LogRecord> records;
  for (int i = 0; i < 20; ++i)
    records.push_back(Record(i, 100 + i));
  const auto start = std::chrono::steady_clock::now();
  AppendResult r = AppendSync(log->get(), std::move(records));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable) << r.status.ToString();
  EXPECT_LT(took, 4s);
  EXPECT_NE(f.metrics.RenderPrometheus().find("switchyard_kafka_append_failures_total 1"),
            std::string::npos);
}

// More records than the producer queue holds: refused at once, as kResourceExhausted.
TEST(KafkaLog, AFullProducerQueueRefusesTheWholeCall) {
  Fixture f(1, 2);
  f.o.producer_queue_messages = 5;
  f.o.linger_ms = 1000;  // keep them queued
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::vector<LogRecord> records;
  for (int i = 0; i < 10; ++i)
    records.push_back(Record(i, i));
  AppendResult r = AppendSync(log->get(), std::move(records));
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.ToString();
  // A call that fits goes through.
  r = AppendSync(log->get(), {Record(1, 50), Record(2, 51)});
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

// Health follows the cluster: down → unavailable (and appends refused at once), up → OK.
TEST(KafkaLog, HealthFollowsTheClusterAndAppendsRecover) {
  Fixture f(1, 1);
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE(AppendSync(log->get(), {Record(1, 1)}).status.ok());
  EXPECT_TRUE((*log)->Health().ok());
  rd_kafka_mock_broker_set_down(f.mock.get(), 1);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((*log)->Health().ok() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_FALSE((*log)->Health().ok());
  EXPECT_EQ(AppendSync(log->get(), {Record(1, 2)}).status.code(), StatusCode::kUnavailable);
  rd_kafka_mock_broker_set_up(f.mock.get(), 1);
  const auto deadline2 = std::chrono::steady_clock::now() + 10s;
  while (!(*log)->Health().ok() && std::chrono::steady_clock::now() < deadline2)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE((*log)->Health().ok()) << (*log)->Health().ToString();
  EXPECT_TRUE(AppendSync(log->get(), {Record(1, 3)}).status.ok());
}

// New records wake a data listener (the destination stream's wait), with no read in between.
TEST(KafkaLog, DataListenersAreWokenAndAClosedLogRefusesAppends) {
  Fixture f(1, 1);
  auto log = OpenKafkaLog(f.o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::atomic<int> wakes{0};
  uint64_t id = (*log)->AddDataListener([&] { wakes.fetch_add(1); });
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(wakes.load(), 0);
  (*log)->RemoveDataListener(id);
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_EQ(AppendSync(log->get(), {Record(1, 1)}).status.code(), StatusCode::kUnavailable);
  EXPECT_FALSE((*log)->Health().ok());
}

}  // namespace
}  // namespace sy::log
