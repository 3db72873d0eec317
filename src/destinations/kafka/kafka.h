// kafka: produces every routed event to one topic of the user's Kafka cluster with librdkafka —
// not HTTP: an in-process destination (Destination::DeliverInProcess), like the warehouse.
//
// Each event is one record: the key is the user (anonymousId, else userId, else messageId) so
// one user's events land on one partition and keep their order; the value is the stored Segment
// message JSON as it is (after the destination's filters). The producer is idempotent with
// acks=all (no duplicates or reordering from librdkafka's own retries), created on first use and
// kept. An event is delivered when its delivery report says so.
//
// Outcomes, from the delivery report's (or the produce call's) error:
//   - message too large, invalid record, invalid or unknown topic: rejected (dead letter) with
//     librdkafka's reason — resending cannot help;
//   - SASL/SSL authentication failed, topic/cluster authorization failed: AuthFailure (the
//     stream holds the destination and probes slowly);
//   - everything else (broker down, leader moving, not enough replicas, message.timeout.ms
//     reached): retried by delivery. When every broker is down, records still queued in the
//     client are purged at once (never sent, so no duplicate) and retried instead of waiting
//     for message_timeout.
#pragma once

#include <string>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType KafkaType();

// The record an event becomes: the key (the user) and the value (the payload as stored). Pure;
// "" key only for a payload that is not a JSON object with any of the ids.
struct KafkaRecord {
  std::string key;
  std::string value;
};
KafkaRecord KafkaRecordFor(const delivery::RoutedEvent& event);

// How a librdkafka error code (rd_kafka_resp_err_t as int) classifies. `auth_error`: the
// authentication error the client reported during the attempt, if any ("" otherwise) — a record
// that then times out or is purged failed for that reason. Exposed for the unit test.
delivery::Outcome KafkaOutcomeFor(int error_code, const std::string& auth_error);

}  // namespace sy::destinations
