// DeadLetterStore: the on-disk store of events a destination gave up on (rejected, or retried
// past its retry_window), one append-only, checksummed file per destination under
// <data_dir>/dlq/. Format: docs/formats/dlq.md.
//
// Durability: Append returns after the record is written and fdatasync'ed (and, for a new file,
// the directory fsync'ed; for a new directory, its parent), so a stream commits its cursor past an
// event only once the event is delivered or durably dead-lettered. A failed write or fsync is an
// error naming the path, and the failed append is cut off again (best effort) so the next one does
// not follow torn bytes. All file I/O goes through an Env (base/env.h), so tests inject faults.
// Concurrency: every operation takes an exclusive flock on <dir>/<destination>.lock, so the
// server (appending) and `switchyard dlq redrive` (rewriting) in another process never interleave.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "base/types.h"
#include "privacy/user_set.h"

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
  std::string event;          // the event JSON as the stream had it (after filters), verbatim
  // True when `event` is the stored event before the destination's functions, because a
  // function failed on it (an error, or RetryError past the retry window): a redrive runs the
  // destination's current functions on it first. False: `event` is what was to be sent (the
  // functions' output, or an event of a destination without functions), sent as it is.
  bool before_functions = false;
};

// JSON object for `dlq list` and the file payload. The event goes in last, byte for byte as
// stored (numbers as the client sent them) when it is a JSON object, otherwise as a JSON
// string; DeadLetterFromJson gives back those bytes.
std::string DeadLetterToJson(const DeadLetter& d);
Result<DeadLetter> DeadLetterFromJson(std::string_view json);

// What a reader found in one destination's file.
struct DeadLetterScan {
  std::vector<DeadLetter> letters;  // every readable record, oldest first
  // Records whose framing and checksum are intact but whose payload is not a dead letter (e.g.
  // not JSON): skipped by readers, reported, and kept byte for byte by Rewrite.
  std::vector<std::string> unreadable;
  // Bytes that are not part of any checksummed record (a torn tail after a crash, or damage in
  // the middle): skipped; the reader resumes at the next intact record.
  uint64_t corrupt_bytes = 0;
};

// What EraseUsers did (issue 17, docs/privacy-copies.md), summed over the files it went through.
struct DeadLetterEraseProgress {
  uint64_t files_scanned = 0;    // destinations' files read
  uint64_t files_rewritten = 0;  // files replaced because they held the users' letters
  uint64_t letters_removed = 0;  // the users' dead letters removed
  // Bytes that were not an intact record (a torn tail, damage) in the rewritten files: dropped
  // with the rewrite, as redrive does — no reader could read them, and they may hold the users'
  // data.
  uint64_t corrupt_bytes_dropped = 0;
  uint64_t stale_temp_files_removed = 0;  // <destination>.dlq.tmp left by an interrupted rewrite
  // One line for a request's record ("letters_removed=2 files_rewritten=1 …").
  std::string Summary() const;
};

class DeadLetterStore {
 public:
  explicit DeadLetterStore(std::string dir, Env* env = Env::Default())
      : dir_(std::move(dir)), env_(env) {}

  Status Append(const DeadLetter& letter);
  // Appends several letters of one destination with one write and one fdatasync (all or, on
  // error, an unknown prefix — readers skip a torn tail, and the caller retries them all).
  Status AppendAll(const std::vector<DeadLetter>& letters);

  // Every record of `destination`: a damaged region or an unreadable record is skipped and
  // reported, never the end of the scan.
  Result<DeadLetterScan> Scan(std::string_view destination) const;
  // The readable letters of Scan; `skipped_bytes` (may be null) counts the corrupt bytes and the
  // bytes of unreadable records.
  Result<std::vector<DeadLetter>> List(std::string_view destination,
                                       uint64_t* skipped_bytes = nullptr) const;
  // Destinations that have a dead-letter file.
  std::vector<std::string> Destinations() const;

  // Under the lock: reads the letters, calls `resend` with the readable ones (it returns the
  // letters to keep) and atomically replaces the file (base/env.h WriteFileAtomically) with the
  // unreadable records, byte for byte, followed by the kept letters. Corrupt bytes (not a
  // checksummed record) are dropped. On error the old file stays.
  Status Rewrite(std::string_view destination,
                 const std::function<std::vector<DeadLetter>(std::vector<DeadLetter>)>& resend);

  // Privacy deletion: removes, under the destination's lock, every dead letter whose event
  // belongs to `users` (its top-level userId or anonymousId, event/user_ids.h), and atomically
  // replaces the file (WriteFileAtomically) with every other intact record, byte for byte and in
  // order (unreadable records included: they are not JSON objects, so they hold no ids). A file
  // without such letters is left untouched. A `<destination>.dlq.tmp` found under the lock is a
  // rewrite that never reached its rename (a crash): it is removed, since it may hold any letter.
  //
  // Idempotent (a second run finds nothing) and safe to interrupt at any point: a crash leaves
  // the old file or the new one, never a mix, so running it again converges. Appends wait for
  // the lock, so no letter of another user is lost. `progress` (may be null) accumulates.
  Status EraseUsers(std::string_view destination, const privacy::UserSet& users,
                    DeadLetterEraseProgress* progress);
  // The same for every destination that has a file (Destinations()); stops at the first error.
  Status EraseUsersEverywhere(const privacy::UserSet& users, DeadLetterEraseProgress* progress);

  static constexpr size_t kMaxResponseExcerpt = 512;

 private:
  std::string FilePath(std::string_view destination) const;
  // Creates the directory on first use and makes its entry durable (base/env.h
  // CreateDirDurably): a letter synced into a directory a power cut takes away is lost.
  Status EnsureDir();
  Status AppendLocked(const std::string& path, const std::string& bytes);
  std::string dir_;
  Env* const env_;
  std::atomic<bool> dir_durable_{false};
};

}  // namespace sy::delivery
