// EventLog: the durable, ordered record of every accepted event, and the named cursors that
// consumers (destinations, archive, warehouse) read it through.
//
// Two backends fit this interface: local/ (a segmented file log in data_dir, the embedded
// default) and kafka/ (one topic; a cursor is a consumer group whose offsets per partition stand
// behind the cursor's single Offset: docs/cluster.md says what each call means there).
//
// Ownership and threads:
// - An EventLog is created once by the server and outlives every cursor it opened.
// - Append() is thread-safe and never blocks on I/O: it queues the records and returns. `done`
//   runs exactly once, on a thread owned by the log (the local backend uses one completion
//   thread, so callbacks never run concurrently with each other), or inline on the caller's
//   thread when the append is refused up front, after every record of the call is durable or the
//   append failed. `done` must not block, and must not call Close() or destroy the log.
// - A LogCursor belongs to one consumer thread; it is not thread-safe. Reading never blocks the
//   writer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/metrics.h"
#include "base/status.h"
#include "base/types.h"

namespace sy::log {

// A key/value pair stored with a record, outside its payload (a Kafka record header in the
// scale-out backend; the local backend's frame flag bit 1, docs/formats/log.md). The log treats
// both as opaque bytes; keys are short ASCII names (below), values at most 64 KiB.
struct RecordHeader {
  std::string key;
  std::string value;
  bool operator==(const RecordHeader&) const = default;
};

// Well-known header keys. Governance marks what a consumer must know about a record without
// parsing its payload, so the mark travels with the record on either backend.
// - kHeaderBlocked: a tracking plan blocked the event (value: the plan's name). Every destination
//   skips it (counted as filtered); `switchyard violations` lists and releases it.
// - kHeaderViolations: the violations found (value: a JSON array of {path, rule, message}), on
//   blocked and on flagged records; kHeaderPlan names the plan of a flagged one.
// - kHeaderReleasedFrom: this record is a released copy of a blocked record (value: the
//   original's offset, decimal), appended by `switchyard violations release`.
inline constexpr std::string_view kHeaderBlocked = "sy-blocked";
inline constexpr std::string_view kHeaderViolations = "sy-violations";
inline constexpr std::string_view kHeaderPlan = "sy-plan";
inline constexpr std::string_view kHeaderReleasedFrom = "sy-released-from";

// The value of the first header named `key`, or null.
inline const std::string* FindHeader(const std::vector<RecordHeader>& headers,
                                     std::string_view key) {
  for (const auto& h : headers)
    if (h.key == key) return &h.value;
  return nullptr;
}

// One event as handed to the log. The log treats `payload` as opaque bytes.
struct LogRecord {
  std::string source;       // source name the event came in through ("web")
  std::string message_id;   // the event's messageId (dedupe key part; Kafka header later)
  TimestampMs received_at;  // server receive time; the log's time index uses it
  std::string payload;      // the stored event, UTF-8 JSON
  std::vector<RecordHeader> headers = {};  // usually none (no allocation then)
  // The user the event belongs to, for a backend that partitions by user (kafka: the record key
  // is source + user, or source + message_id when empty). anonymousId, else userId; filled by
  // ingest only for such a backend. Not stored by the local log.
  std::string user = {};
};

// One event as read back, with its position.
struct LogEntry {
  Offset offset;
  TimestampMs received_at;
  std::string source;
  std::string message_id;
  std::string payload;
  std::vector<RecordHeader> headers = {};
};

// Outcome of an Append: on success, the offset given to the first record (the others follow
// with no gaps). Failure codes: kResourceExhausted (queue bound or disk full: retry later),
// kUnavailable / kIoError (write or fsync failed; nothing of this call is acknowledged).
struct AppendResult {
  Status status;
  Offset first;
};
using AppendCallback = std::function<void(const AppendResult&)>;

class LogCursor {
 public:
  virtual ~LogCursor() = default;

  // Name of the consumer, or "" for an ephemeral reader.
  virtual const std::string& name() const = 0;

  // The next offset Read() returns.
  virtual Offset position() const = 0;
  // The last committed position (where a restarted consumer resumes).
  virtual Offset committed() const = 0;

  // Returns up to `max_records` entries (and about `max_bytes`, but at least one entry if any is
  // available) from position(), and advances position() past them. Empty when caught up.
  // Never returns a record that failed its checksum (kDataLoss instead).
  virtual Result<std::vector<LogEntry>> Read(size_t max_records, size_t max_bytes) = 0;

  // Blocks the calling (consumer) thread until a record at or after position() is durable, the
  // timeout passes, or the log is closing. Returns true if data is available. No busy polling.
  virtual bool WaitForData(std::chrono::milliseconds timeout) = 0;

  // Persists `next` (the first offset not yet fully handled) atomically as this consumer's
  // resume point. An ephemeral reader answers kFailedPrecondition.
  virtual Status Commit(Offset next) = 0;

  // Moves position() (not the committed point) to an offset, or to the first record received
  // at or after `t`. Seeking before the oldest retained record lands on the oldest.
  virtual Status Seek(Offset offset) = 0;
  virtual Status SeekToTime(TimestampMs t) = 0;
};

class EventLog {
 public:
  virtual ~EventLog() = default;

  // Queues `records` for a durable append; see the contract at the top of this file.
  virtual void Append(std::vector<LogRecord> records, AppendCallback done) = 0;

  // Opens (creating if new) the named consumer's cursor, positioned at its committed offset
  // (new cursors start at the oldest retained record). Names: [A-Za-z0-9_.-]{1,128}.
  virtual Result<std::unique_ptr<LogCursor>> OpenCursor(std::string_view consumer) = 0;

  // An unnamed reader starting at the oldest retained record; nothing is persisted and it does
  // not hold back retention. For dump, recovery scans and tests.
  virtual Result<std::unique_ptr<LogCursor>> OpenReader() = 0;

  // Removes a consumer's cursor so it no longer holds back retention.
  virtual Status DeleteCursor(std::string_view consumer) = 0;

  // OK while appends can succeed; the sticky error once the log refuses every append until it
  // is reopened (after an fsync failure, or once closed). Readiness probes report it.
  virtual Status Health() const = 0;

  // Wake-ups for consumers that wait on more than the log (a destination stream waits for new
  // records and for responses at once): `listener` is called each time new records become
  // durable and when the log closes, on the log's writer thread, with no lock of the log held
  // but the listeners' own. It must be quick and must not call into the log. Remove blocks
  // until no call of that listener is running, so its captures may be freed afterwards.
  virtual uint64_t AddDataListener(std::function<void()> listener) = 0;
  virtual void RemoveDataListener(uint64_t id) = 0;

  // Offsets of the oldest retained record and the next record to be appended.
  virtual Offset StartOffset() const = 0;
  virtual Offset EndOffset() const = 0;

  // Stops accepting appends, completes every queued append (durably or with an error), wakes
  // waiting readers. Idempotent. The destructor calls it.
  virtual Status Close() = 0;
};

// The consumer-lag vocabulary (docs/metrics.md), one for every consumer, keyed by cursor name.
// A log publishes switchyard_consumer_lag_events{cursor} (end − committed) for each of its
// cursors; each consumer sets its series of this family: the age of the oldest event it has read
// but not finished, 0 when caught up.
inline GaugeFamily* ConsumerLagSeconds(MetricsRegistry* metrics) {
  return metrics->Gauges("switchyard_consumer_lag_seconds",
                         "Age of the oldest event the consumer has read but not finished "
                         "(delivered or dead-lettered, loaded, archived); 0 when caught up.",
                         {"cursor"});
}

}  // namespace sy::log
