// DeadLetterStore: the on-disk store of events a destination gave up on (rejected, or retried
// past its retry_window), one append-only, checksummed file per destination under
// <data_dir>/dlq/. Format: docs/formats/dlq.md.
//
// Durability: Append returns after the record is written and fdatasync'ed, so a stream commits
// its cursor past an event only once the event is delivered or durably dead-lettered.
// Concurrency: every operation takes an exclusive flock on <dir>/<destination>.lock, so the
// server (appending) and `switchyard dlq redrive` (rewriting) in another process never interleave.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/types.h"

namespace sy::delivery {

struct DeadLetter {
  std::string destination;
  Offset offset;
  std::string source;
  std::string message_id;
  TimestampMs received_at;
  TimestampMs dead_lettered_at;
  std::string reason;  // "http 400", "retry window 4h exceeded: http 503", …
  int attempts = 0;
  int last_status = 0;        // last HTTP status, 0 if none
  std::string last_response;  // excerpt of the last response body (≤ 512 bytes)
  std::string event;          // the event JSON as sent (after filters)
};

// JSON object for `dlq list` and the file payload (event embedded as JSON when it parses).
std::string DeadLetterToJson(const DeadLetter& d);
Result<DeadLetter> DeadLetterFromJson(std::string_view json);

class DeadLetterStore {
 public:
  explicit DeadLetterStore(std::string dir) : dir_(std::move(dir)) {}

  Status Append(const DeadLetter& letter);
  // Appends several letters of one destination with one write and one fdatasync (all or, on
  // error, an unknown prefix — readers skip a torn tail, and the caller retries them all).
  Status AppendAll(const std::vector<DeadLetter>& letters);

  // Every intact record of `destination`, oldest first. A torn or corrupt tail (crash during an
  // append) is skipped and counted in `skipped_bytes` (may be null).
  Result<std::vector<DeadLetter>> List(std::string_view destination,
                                       uint64_t* skipped_bytes = nullptr) const;
  // Destinations that have a dead-letter file.
  std::vector<std::string> Destinations() const;

  // Under the lock: reads the letters, calls `resend` (which returns the letters to keep) and
  // atomically replaces the file with the kept ones (temp file, fsync, rename).
  Status Rewrite(std::string_view destination,
                 const std::function<std::vector<DeadLetter>(std::vector<DeadLetter>)>& resend);

  static constexpr size_t kMaxResponseExcerpt = 512;

 private:
  std::string FilePath(std::string_view destination) const;
  std::string dir_;
};

}  // namespace sy::delivery
