// Unit tests of the kafka destination: the record an event becomes, the settings checks, the
// classification of librdkafka's errors, and delivery against librdkafka's in-process mock
// cluster (delivered, a record too large, a produce refused for authorization, no broker). The
// real broker: tests/e2e/test_destinations_dest3.py (label kafka).
#include "destinations/kafka/kafka.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {
using delivery::testing::Event;
using delivery::testing::Scalar;
using K = delivery::Outcome::Kind;

TEST(Kafka, KeyIsTheUserAndValueThePayloadAsStored) {
  const std::string both = R"({"type":"track","anonymousId":"a1","userId":"u1","event":"E"})";
  EXPECT_EQ(KafkaRecordFor(Event(0, both, "m1")).key, "a1");
  EXPECT_EQ(KafkaRecordFor(Event(0, both, "m1")).value, both);
  EXPECT_EQ(KafkaRecordFor(Event(0, R"({"type":"identify","userId":"u1"})", "m1")).key, "u1");
  EXPECT_EQ(KafkaRecordFor(Event(0, R"({"type":"track","event":"E"})", "m1")).key, "m1");
  EXPECT_EQ(KafkaRecordFor(Event(0, R"({"anonymousId":7})", "m2")).key, "m2");
  EXPECT_EQ(KafkaRecordFor(Event(0, "[1]", "m3")).key, "m3");
}

std::string CreateError(std::vector<config::RawSetting> raw) {
  auto made = delivery::testing::Create(KafkaType(), std::move(raw));
  return made.ok() ? "" : made.status().message();
}

TEST(Kafka, SettingsAreCheckedNamingTheKey) {
  auto base = [] {
    return std::vector<config::RawSetting>{Scalar("brokers", "127.0.0.1:9092"),
                                           Scalar("topic", "events")};
  };
  EXPECT_EQ(CreateError(base()), "");
  auto bad_topic = base();
  bad_topic[1] = Scalar("topic", "no spaces");
  EXPECT_NE(CreateError(bad_topic).find("topic: not a Kafka topic name"), std::string::npos);
  auto sasl = base();
  sasl.push_back(Scalar("security_protocol", "sasl_ssl"));
  EXPECT_NE(CreateError(sasl).find("username, password: required with security_protocol sasl_ssl"),
            std::string::npos);
  sasl.push_back(Scalar("username", "u"));
  sasl.push_back(Scalar("password", "p"));
  sasl.push_back(Scalar("sasl_mechanism", "SCRAM-SHA-512"));
  EXPECT_EQ(CreateError(sasl), "");
  auto stray = base();
  stray.push_back(Scalar("username", "u"));
  EXPECT_NE(CreateError(stray).find("only with a sasl_* security_protocol"), std::string::npos);
  auto ca = base();
  ca.push_back(Scalar("ca_file", "/nonexistent/ca.pem"));
  EXPECT_NE(CreateError(ca).find("ca_file: only with security_protocol ssl"), std::string::npos);
  ca.push_back(Scalar("security_protocol", "ssl"));
  EXPECT_NE(CreateError(ca).find("ca_file: cannot read /nonexistent/ca.pem"), std::string::npos);
  auto codec = base();
  codec.push_back(Scalar("compression", "brotli"));
  EXPECT_NE(CreateError(codec).find("compression"), std::string::npos);
  for (const char* c : {"gzip", "snappy", "lz4", "zstd"}) {
    auto ok = base();
    ok.push_back(Scalar("compression", c));
    EXPECT_EQ(CreateError(ok), "") << c;  // this librdkafka has every codec
  }
}

TEST(Kafka, ErrorsClassify) {
  EXPECT_EQ(KafkaOutcomeFor(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "").kind, K::kRejected);
  EXPECT_EQ(KafkaOutcomeFor(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, "").kind, K::kRejected);
  EXPECT_EQ(KafkaOutcomeFor(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, "").kind, K::kRejected);
  EXPECT_EQ(KafkaOutcomeFor(RD_KAFKA_RESP_ERR_INVALID_RECORD, "").kind, K::kRejected);
  for (int auth :
       {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
        RD_KAFKA_RESP_ERR__AUTHENTICATION}) {
    auto o = KafkaOutcomeFor(auth, "");
    EXPECT_EQ(o.kind, K::kRetry) << auth;
    EXPECT_TRUE(o.auth_failure) << auth;
  }
  for (int retry : {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                    RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR__TRANSPORT,
                    RD_KAFKA_RESP_ERR__PURGE_QUEUE}) {
    auto o = KafkaOutcomeFor(retry, "");
    EXPECT_EQ(o.kind, K::kRetry) << retry;
    EXPECT_FALSE(o.auth_failure) << retry;
  }
  // A record that timed out while the client reported an authentication failure: that's why.
  auto o = KafkaOutcomeFor(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "SASL authentication failed");
  EXPECT_TRUE(o.auth_failure);
  EXPECT_EQ(o.reason, "kafka: SASL authentication failed");
  EXPECT_EQ(KafkaOutcomeFor(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "").reason,
            "kafka: Broker: Message size too large");
}

class MockCluster {
 public:
  MockCluster() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cluster_ = rd_kafka_mock_cluster_new(rk_, 1);
    rd_kafka_mock_topic_create(cluster_, "events", 2, 1);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::vector<delivery::RoutedEvent> Events(size_t n, size_t pad = 0) {
  std::vector<delivery::RoutedEvent> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(Event(i,
                        R"({"type":"track","event":"E","userId":"u)" + std::to_string(i % 3) +
                            R"(","properties":{"pad":")" + std::string(pad, 'x') + R"("}})",
                        "m" + std::to_string(i)));
  }
  return out;
}

TEST(KafkaMock, DeliversEveryRecordAndRejectsOneTooLarge) {
  MockCluster mock;
  auto d = delivery::testing::MustCreate(
      KafkaType(), {Scalar("brokers", mock.bootstraps()), Scalar("topic", "events"),
                    Scalar("max_message_bytes", "2000"), Scalar("linger", "1ms")});
  auto events = Events(20);
  events.push_back(Events(1, 3000)[0]);
  auto out = d->DeliverInProcess(events);
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->size(), 21u);
  for (size_t i = 0; i < 20; ++i)
    EXPECT_EQ((*out)[i].kind, K::kDelivered) << i << ": " << (*out)[i].reason;
  EXPECT_EQ((*out)[20].kind, K::kRejected);
  EXPECT_NE((*out)[20].reason.find("too large"), std::string::npos) << (*out)[20].reason;
  // The producer is kept: a second round on it.
  auto again = d->DeliverInProcess(Events(5));
  for (const auto& o : *again)
    EXPECT_EQ(o.kind, K::kDelivered) << o.reason;
}

TEST(KafkaMock, AuthorizationRefusedIsAnAuthFailure) {
  MockCluster mock;
  // The broker answers the produce request: topic authorization failed (Kafka protocol API key
  // 0 is Produce).
  rd_kafka_mock_push_request_errors(mock.get(), 0, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  auto d = delivery::testing::MustCreate(
      KafkaType(), {Scalar("brokers", mock.bootstraps()), Scalar("topic", "events"),
                    Scalar("message_timeout", "5s")});
  auto out = d->DeliverInProcess(Events(3));
  ASSERT_EQ(out->size(), 3u);
  for (const auto& o : *out) {
    EXPECT_EQ(o.kind, K::kRetry) << o.reason;
    EXPECT_TRUE(o.auth_failure) << o.reason;
  }
}

TEST(KafkaMock, NoBrokerIsRetriedAtOnceNotAfterTheTimeout) {
  MockCluster mock;
  const std::string bootstraps = mock.bootstraps();
  rd_kafka_mock_broker_set_down(mock.get(), 1);
  auto d = delivery::testing::MustCreate(
      KafkaType(),
      {Scalar("brokers", bootstraps), Scalar("topic", "events"), Scalar("message_timeout", "60s")});
  const auto start = std::chrono::steady_clock::now();
  auto out = d->DeliverInProcess(Events(4));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  for (const auto& o : *out) {
    EXPECT_EQ(o.kind, K::kRetry) << o.reason;
    EXPECT_FALSE(o.auth_failure);
  }
  // Back up: the same destination delivers on its next round.
  rd_kafka_mock_broker_set_up(mock.get(), 1);
  bool delivered = false;
  for (int round = 0; round < 10 && !delivered; ++round) {
    auto next = d->DeliverInProcess(Events(2));
    delivered = (*next)[0].kind == K::kDelivered && (*next)[1].kind == K::kDelivered;
  }
  EXPECT_TRUE(delivered);
}

}  // namespace
}  // namespace sy::destinations
