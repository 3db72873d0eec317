// The cluster-mode client chain against librdkafka's in-process mock cluster (no Java, no
// network beyond loopback): idempotent produce over 3 mock brokers, then a cooperative-sticky,
// read_committed consumer group with a manual commit. The same chain runs against a real broker
// in tests/kafka/test_kafka_smoke.py.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>
#include <vector>

#include "tests/kafka/kafka_chain.h"

namespace sy::kafka_test {
namespace {

// Kafka protocol API key of Produce (librdkafka keeps its RD_KAFKAP_* names internal).
constexpr int16_t kProduceApiKey = 0;

// A mock cluster lives inside a librdkafka handle of its own; clients reach it through its
// loopback bootstrap addresses like any cluster.
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

TEST(KafkaMockCluster, IdempotentProduceThenCooperativeGroupReadsAllInOrder) {
  MockCluster mock(3);
  ASSERT_NE(mock.get(), nullptr);
  ChainOptions o;
  o.brokers = mock.bootstraps();
  o.topic = "sy-mock-chain";
  o.partitions = 3;
  o.replication_factor = 3;
  o.messages = 500;
  o.keys = 7;
  // The mock cluster has no CreateTopics handler; it makes topics through its own API.
  o.create_topic = false;
  ASSERT_EQ(
      rd_kafka_mock_topic_create(mock.get(), o.topic.c_str(), o.partitions, o.replication_factor),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  Result<ChainReport> r = RunChain(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delivered, o.messages);
  EXPECT_EQ(r->consumed, o.messages);
  EXPECT_EQ(r->rebalance_protocol, "COOPERATIVE");
}

// A produce error the cluster keeps returning past the message timeout must surface as a failed
// chain, never as a pass: the check can fail.
TEST(KafkaMockCluster, ProduceErrorsPastTheTimeoutFailTheChain) {
  MockCluster mock(1);
  ASSERT_NE(mock.get(), nullptr);
  ChainOptions o;
  o.brokers = mock.bootstraps();
  o.topic = "sy-mock-down";
  o.partitions = 1;
  o.messages = 10;
  o.create_topic = false;
  o.timeout = std::chrono::milliseconds(2000);
  ASSERT_EQ(rd_kafka_mock_topic_create(mock.get(), o.topic.c_str(), 1, 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  // Every Produce answered NOT_ENOUGH_REPLICAS (retriable): the idempotent producer retries
  // until message.timeout.ms, then reports the messages as failed.
  std::vector<rd_kafka_resp_err_t> errors(1000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(mock.get(), kProduceApiKey, errors.size(), errors.data());
  Result<ChainReport> r = RunChain(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("failed"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace sy::kafka_test
