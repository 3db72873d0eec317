// kinesis: every routed event → one record of an Amazon Kinesis Data Stream with `PutRecords`
// (`POST /` on the region's endpoint, `X-Amz-Target: Kinesis_20131202.PutRecords`, JSON 1.1,
// signed with AWS Signature Version 4 for the service `kinesis`, http/sigv4.h): ≤ 500 records and
// ≤ 5 MiB per request, each record ≤ 1 MiB (Kinesis' documented limits). A record's `Data` is the
// stored Segment message JSON (base64 on the wire), its `PartitionKey` the user — anonymousId,
// else userId, else messageId, at most 256 characters — so one user's records share a shard and
// keep their order within it.
//
// Classification: a 200 names failed records by position (`FailedRecordCount`, each failed
// entry's `ErrorCode`): ProvisionedThroughputExceededException, InternalFailure (and any other
// per-record code) retried, the others delivered. A 400's `__type`: ResourceNotFoundException,
// ValidationException, InvalidArgumentException rejected with Kinesis' message;
// ProvisionedThroughputExceeded/LimitExceeded/Throttling/KMSThrottling retried;
// UnrecognizedClient, InvalidSignature, AccessDenied, IncompleteSignature,
// MissingAuthenticationToken, ExpiredToken (also as a 403) an AuthFailure; 5xx retried.
#pragma once

#include "base/clock.h"
#include "delivery/destination.h"

namespace sy::destinations {

// `clock` dates the signatures (tests pass a FakeClock).
delivery::DestinationType KinesisType(const Clock* clock = SystemClock::Get());

}  // namespace sy::destinations
