// Archiver: the log consumer that keeps every stored event as gzip NDJSON files in an
// ObjectStore (docs/archive.md, format in docs/formats/archive.md).
//
// It reads the log through its own cursor ("archive") on its own thread and keeps one open file
// per source: the events' payloads exactly as stored, one per line, compressed as ~1 MiB gzip
// members. A file is closed ("rolled") when its uncompressed size reaches roll_bytes or it has
// been open for roll_age, and is then uploaded under a deterministic key (archive_key.h).
//
// Durability and exactly-once files: the state file (<data_dir>/archive/state) records per
// source the first offset not yet archived and, while an upload is in flight, the last offset of
// the file being uploaded (the "intent"). Order per file: write the intent (fsync) → upload →
// advance the source's offset and clear the intent (fsync) → commit the cursor to the first
// offset of the oldest file still open. After a crash the archiver re-reads from the cursor,
// skips events of a source below its recorded offset (already archived), and closes a source's
// file exactly at the intent's last offset, so the file is rebuilt byte for byte and overwrites
// the same key: nothing is lost and nothing is archived twice.
//
// Failures: the upload of a file is the one retry loop of the archive path (the S3 store makes
// one attempt per upload): every failure — network, 5xx, or a refusal such as 403 after a wrong
// secret, which the operator fixes while the archiver keeps trying — is retried under
// ArchiverOptions::upload_retry (exponential backoff with full jitter, 0.5 s … 30 s, never before
// the store's Retry-After) until it succeeds or the archiver stops; meanwhile reading stops, the
// log keeps the events (the cursor holds back retention) and the lag grows. Each failure is
// logged (warn) and counted in switchyard_archive_upload_failures_total.
//
// Compression runs beside reading: each ~1 MiB member is compressed on a worker thread (at most
// three in flight per open file), and the members are concatenated in order when the file rolls.
//
// Threads: Start() spawns the archiver thread; Stop() (from the owner's thread) closes and
// uploads the open files once (no retries), commits and joins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "archive/object_store.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/env.h"
#include "base/metrics.h"
#include "config/config.h"
#include "log/event_log.h"

namespace sy::archive {

struct ArchiverOptions {
  config::ArchiveConfig config;
  log::EventLog* log = nullptr;        // outlives the archiver
  std::unique_ptr<ObjectStore> store;  // owned
  std::string state_dir;               // <data_dir>/archive: the state file lives here
  std::string cursor_name = "archive";
  Clock* clock = nullptr;              // default SystemClock
  Env* env = nullptr;                  // the state file's file system; default Env::Default()
  MetricsRegistry* metrics = nullptr;  // required
  int gzip_level = 1;
  // Retries of one file's upload. It must never give up (max_attempts 0, no deadline, permanent
  // failures retried): the archiver cannot drop a file, so Start refuses any other policy.
  RetryPolicy upload_retry{.max_attempts = 0,
                           .deadline_ms = 0,
                           .backoff = {500, 30'000},
                           .retry_permanent_failures = true};
};

// Per-source progress as persisted in the state file.
struct SourceProgress {
  Offset next;              // first offset of this source not yet archived
  bool has_intent = false;  // an upload was started for a file ending at `intent_last`
  Offset intent_last;
};
// The state file: read (empty when missing) and written atomically and durably
// (WriteFileAtomically: a failed write, fdatasync, rename or directory fsync is an error naming the
// path, and the archiver then keeps the file's events behind its cursor).
Result<std::map<std::string, SourceProgress>> ReadArchiveState(const std::string& path,
                                                               Env* env = Env::Default());
Status WriteArchiveState(const std::string& path, const std::map<std::string, SourceProgress>& s,
                         Env* env = Env::Default());

class Archiver {
 public:
  static Result<std::unique_ptr<Archiver>> Start(ArchiverOptions options);
  ~Archiver();  // calls Stop()
  void Stop();

  uint64_t files_written() const { return files_.load(); }
  uint64_t events_archived() const { return events_.load(); }
  uint64_t upload_failures() const { return failures_.load(); }
  // The log offset the archiver has read up to (events before it are archived or in an open
  // file). For benchmarks and tests.
  Offset read_position() const { return Offset(read_position_.load()); }

 private:
  struct OpenFile {
    Offset first, last;
    TimestampMs first_received;
    int64_t opened_mono_ns = 0;
    std::string raw;  // lines not yet compressed (< one member)
    std::string gz;   // complete gzip members, in order
    // Members being compressed on worker threads, in order (at most kMembersInFlight).
    std::deque<std::future<std::string>> compressing;
    uint64_t raw_bytes = 0;
    uint64_t events = 0;
  };

  explicit Archiver(ArchiverOptions options);
  void Run();
  void Add(const log::LogEntry& e);
  // Hands f.raw to a worker thread as the next gzip member; keeps at most kMembersInFlight.
  void CompressMember(OpenFile& f);
  static void FinishMembers(OpenFile& f);
  void RollDue(bool stopping);
  // Closes the source's file and uploads it; false if it could not (stopping).
  bool Roll(const std::string& source, bool stopping);
  void CommitProgress();
  bool SleepUnlessStopping(int64_t ms);

  ArchiverOptions o_;
  std::string state_path_;
  std::unique_ptr<log::LogCursor> cursor_;
  std::map<std::string, SourceProgress> progress_;
  std::map<std::string, OpenFile> open_;
  Offset last_commit_;
  Offset processed_;  // every event before it was added to a file (or skipped as archived)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};
  std::thread thread_;

  std::atomic<uint64_t> files_{0}, events_{0}, failures_{0}, read_position_{0};
  // Read by /metrics callbacks, which may outlive this object: shared.
  struct Lag {
    std::atomic<int64_t> oldest_open_ms{0};  // receive time of the oldest unarchived event; 0 none
  };
  std::shared_ptr<Lag> lag_ = std::make_shared<Lag>();

  Counter* m_files_ = nullptr;
  Counter* m_bytes_ = nullptr;
  Counter* m_raw_bytes_ = nullptr;
  Counter* m_events_ = nullptr;
  Counter* m_failures_ = nullptr;
  Histogram* m_upload_ = nullptr;
};

}  // namespace sy::archive
