// KafkaLog: the scale-out EventLog backend on an Apache Kafka cluster (docs/cluster.md).
//
// Appends go to one events topic (`<prefix>-events`) through librdkafka's idempotent producer
// (enable.idempotence, acks=all). Each record is keyed by source + user (LogRecord::user, else
// the messageId), so one user's events keep their order in one partition and a client's retry of
// a message lands in the same partition. Record headers carry the LogRecord headers plus
// sy-source, sy-message-id and sy-received-at; the record timestamp is received_at, so
// SeekToTime is Kafka's offsetsForTimes.
//
// An Append's `done` runs once every record of the call has its delivery report (on the log's
// poll thread), or inline when the call is refused up front. Any failed record fails the whole
// call: the client retries it and dedupe absorbs the records that did land. The wait is bounded
// by `ack_timeout_ms` (librdkafka's message.timeout.ms): an unreachable cluster answers
// kUnavailable within it; a full producer queue answers kResourceExhausted at once.
//
// A named cursor is a consumer group `<prefix>-<cursor name>` (cooperative-sticky,
// read_committed, manual commits). The EventLog interface has one Offset per cursor and Kafka has
// one per partition, so a cursor hands out synthetic offsets, increasing from 0 in each session,
// and keeps the map back to (partition, offset): Commit(next) commits, for each partition the
// cursor holds, the Kafka offset below which every record it handed out is below `next` (so
// final). A revoked partition's records are dropped from the map; whoever gets the partition reads
// them again from the group's committed offset (at least once; duplicates are bounded by what
// was in flight). Offsets of the whole log do not exist here: StartOffset() and EndOffset() are
// 0 and lag in events is per partition (switchyard_kafka_consumer_lag_events).
//
// Ephemeral readers (OpenReader) read nothing in this slice: the dedupe index's rescan, the
// violations list and `dump` see an empty log (docs/cluster.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/metrics.h"
#include "base/status.h"
#include "log/event_log.h"

namespace sy::log {

struct KafkaLogOptions {
  std::string brokers;  // bootstrap servers, "host:port,host:port"
  std::string topic_prefix = "switchyard";
  // The events topic is created with these when missing (an existing topic is used as it is).
  int partitions = 12;
  int replication_factor = 3;
  int min_insync_replicas = 2;
  bool create_topic = true;
  std::string client_id = "switchyard";
  // librdkafka properties set on every client as given (security.protocol, sasl.*, ssl.*, and
  // tests' overrides). Secrets in here are never logged.
  std::vector<std::pair<std::string, std::string>> client_properties;
  int ack_timeout_ms = 5000;
  int linger_ms = 2;
  int64_t producer_queue_messages = 100000;
  int64_t producer_queue_bytes = 256LL << 20;
  std::string compression = "zstd";
  int session_timeout_ms = 10000;
  int64_t fetch_max_bytes = 16LL << 20;
  // How often the cluster is probed for /readyz (a metadata request, bounded by the interval)
  // and consumers' waiting streams are woken as a safety net for the queue wake-ups.
  int probe_interval_ms = 1000;
  int wake_interval_ms = 250;
  MetricsRegistry* metrics = nullptr;  // required
};

std::string KafkaEventsTopic(const std::string& prefix);
std::string KafkaGroupName(const std::string& prefix, std::string_view cursor);
// The record key: source + ":" + (user, else message_id).
std::string KafkaRecordKey(const LogRecord& r);

// Connects, creates the events topic if missing (bounded by max(ack_timeout, 10 s)), starts the
// producer. Fails when the cluster cannot be reached or the topic cannot be created.
Result<std::unique_ptr<EventLog>> OpenKafkaLog(KafkaLogOptions options);

}  // namespace sy::log
