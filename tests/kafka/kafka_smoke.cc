// kafka_smoke: runs the cluster-mode client chain (tests/kafka/kafka_chain.h) against a real
// Kafka cluster and exits 0 only when every message was delivered, consumed back in order per
// key, and committed. Driven by tests/kafka/test_kafka_smoke.py, which starts the broker.
//
// Usage: kafka_smoke --brokers HOST:PORT[,…] --topic NAME [--partitions N]
//                    [--replication-factor N] [--messages N] [--keys N] [--timeout-ms N]
//                    [--no-create] [--create-only] [--topic-config NAME=VALUE]…
// --no-create: the topic exists (an earlier run made it); produce to it and consume from the
// group's committed offsets. --create-only: create the topic (with the --topic-config entries)
// and stop there (tests/e2e/test_destinations_kafka.py makes its topics so).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/kafka/kafka_chain.h"

int main(int argc, char** argv) {
  sy::kafka_test::ChainOptions o;
  bool create_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-create") {
      o.create_topic = false;
      continue;
    }
    if (arg == "--create-only") {
      create_only = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "kafka_smoke: %s needs a value\n", arg.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (arg == "--brokers") {
      o.brokers = value;
    } else if (arg == "--topic") {
      o.topic = value;
    } else if (arg == "--partitions") {
      o.partitions = std::atoi(value);
    } else if (arg == "--replication-factor") {
      o.replication_factor = std::atoi(value);
    } else if (arg == "--messages") {
      o.messages = std::atoi(value);
    } else if (arg == "--keys") {
      o.keys = std::atoi(value);
    } else if (arg == "--topic-config") {
      std::string kv = value;
      size_t eq = kv.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "kafka_smoke: --topic-config wants NAME=VALUE\n");
        return 2;
      }
      o.topic_config.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (arg == "--timeout-ms") {
      o.timeout = std::chrono::milliseconds(std::atoi(value));
    } else {
      std::fprintf(stderr, "kafka_smoke: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  if (o.brokers.empty() || o.topic.empty()) {
    std::fprintf(stderr, "usage: kafka_smoke --brokers HOST:PORT --topic NAME [options]\n");
    return 2;
  }
  if (create_only) {
    sy::Status made = sy::kafka_test::CreateTopicOnly(o);
    if (!made.ok()) {
      std::fprintf(stderr, "kafka_smoke: FAILED: %s\n", made.ToString().c_str());
      return 1;
    }
    std::printf("kafka_smoke: created %s\n", o.topic.c_str());
    return 0;
  }
  sy::Result<sy::kafka_test::ChainReport> r = sy::kafka_test::RunChain(o);
  if (!r.ok()) {
    std::fprintf(stderr, "kafka_smoke: FAILED: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("kafka_smoke: ok: %d delivered, %d consumed in order, group protocol %s\n",
              r->delivered, r->consumed, r->rebalance_protocol.c_str());
  return 0;
}
