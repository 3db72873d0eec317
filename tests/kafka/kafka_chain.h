// The librdkafka chain that cluster mode will stand on, as one checkable run: create a topic
// through the Admin API, produce N keyed messages with the idempotent producer (acks=all) and
// wait for every delivery report, then consume them back in a consumer group the way delivery
// workers will (cooperative-sticky, read_committed, manual commits) and check that every message
// arrived exactly once and in order per key, and that the group's committed offsets reached the
// end of every partition.
//
// Used by kafka_smoke (a real broker, tests/kafka/test_kafka_smoke.py) and kafka_mock_test
// (librdkafka's in-process mock cluster). Test code only; kafka_smoke --create-only also makes
// the topics of the kafka destination's e2e (tests/e2e/test_destinations_kafka.py).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "src/base/status.h"

namespace sy::kafka_test {

struct ChainOptions {
  std::string brokers;  // bootstrap servers, "host:port[,host:port…]"
  std::string topic;
  int partitions = 3;
  int replication_factor = 1;
  int messages = 1000;
  int keys = 16;  // messages are spread round-robin over this many keys
  // Create the topic through the Admin API (CreateTopics). False when the caller made it
  // already (the mock cluster's own call).
  bool create_topic = true;
  // Topic-level configs for CreateTopics (max.message.bytes=2000, …).
  std::vector<std::pair<std::string, std::string>> topic_config;
  std::chrono::milliseconds timeout{20000};  // for each phase: create, produce, consume
};

struct ChainReport {
  int delivered = 0;               // delivery reports without error
  int consumed = 0;                // messages read back by the group
  std::string rebalance_protocol;  // what the consumer group ran: "COOPERATIVE" expected
};

// Creates options.topic (with options.topic_config) through the Admin API and returns once the
// controller has made it: for tests that only need a topic (tests/e2e's kafka destination).
Status CreateTopicOnly(const ChainOptions& options);

// Runs the whole chain; any failure (a delivery error, a message missing, duplicated or out of
// order, a commit that did not reach the end) is an error naming what went wrong.
Result<ChainReport> RunChain(const ChainOptions& options);

}  // namespace sy::kafka_test
