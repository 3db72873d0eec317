// The local backend of EventLog: a segmented, group-committed, append-only file log in one
// directory. On-disk format, durability per fsync policy, recovery and retention rules:
// docs/formats/log.md.
//
// Threads: one writer thread per log owns the active segment. Append() only queues; the writer
// writes every queued append of a round as one frame with one write and completes them with one
// fdatasync (group commit), then hands them to the completion thread, which runs the callbacks.
// With fsync: always the fdatasync runs on a sync thread while the writer writes the next round.
// Readers (cursors) use pread on their own file handles and see only bytes the writer has published
// as durable; they never take a lock the writer holds across I/O. Retention runs on the writer
// thread (periodically and after each roll) or from EnforceRetention().
//
// Append callbacks run on the log's completion thread, in acknowledgement order, so the writer
// can start the next write+fsync while the previous group's callers are being woken. They must
// not block, and must not call Close() or destroy the log (a thread cannot join itself).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/env.h"
#include "base/metrics.h"
#include "base/status.h"
#include "log/event_log.h"

namespace sy::log {

enum class FsyncPolicy {
  // An append is acknowledged after fdatasync of its bytes. Survives power loss.
  kAlways,
  // Appends are acknowledged after the next periodic fdatasync, at most fsync_interval_ms after
  // they were written. Survives power loss once acknowledged; readers also wait for the sync.
  kInterval,
  // UNSAFE: acknowledged once written to the OS page cache. Survives a process crash, not a
  // power loss or kernel crash. Segments are still synced on roll and Close.
  kNever,
};

enum class LogCompression { kNone, kZstd };

struct LocalLogOptions {
  std::string dir;  // created if missing; owned exclusively by one open (writable) log
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  uint32_t fsync_interval_ms = 100;
  // A segment is closed and a new one started before the first write that finds the active
  // segment at or past this size (so a segment exceeds it by at most one frame).
  uint64_t segment_bytes = 128ull << 20;
  uint64_t retention_bytes = 0;  // 0 = no size cap
  int64_t retention_age_ms = 0;  // 0 = no age cap
  LogCompression compression = LogCompression::kNone;
  // Bytes of the active segment kept zero-filled and synced ahead of the writer, so that the
  // fdatasync acknowledging a round does not also have to make a new file size and new blocks
  // durable (see "Preallocation" in docs/formats/log.md). 0 = off. Ignored with fsync: never.
  uint64_t preallocate_bytes = 0;
  // Bytes kept allocated in `<dir>/RESERVE` (fallocate) for the log alone: when a write or a new
  // segment fails for want of space, the file is deleted and the append tried once more, so
  // ingest runs on that space while everything else on the disk fails; it is allocated again
  // at open and at each segment roll once the space is there. 0 = off.
  uint64_t reserve_bytes = 0;
  // Bound on bytes queued but not yet written; an Append beyond it fails fast (inline callback)
  // with kResourceExhausted. At most 256 MiB (one group commit is one frame).
  uint64_t max_pending_bytes = 64ull << 20;
  // How often the writer thread runs retention when idle (it also runs after every roll).
  uint32_t retention_check_interval_ms = 1000;
  Clock* clock = nullptr;              // wall time for age retention; default SystemClock
  MetricsRegistry* metrics = nullptr;  // default: a private one (a tool serving no /metrics)
  Env* env = nullptr;                  // default Env::Default()
  // Opens a snapshot of the log for reading only, next to a live writer (another process or
  // another instance) or none: nothing is created, written, truncated, synced, renamed or
  // deleted; no threads; no cursor files. It sees the whole, checksum-valid frames present at
  // open time and stops silently at the first torn or invalid frame of the last segment. Append
  // fails with kFailedPrecondition, as do OpenCursor, DeleteCursor and EnforceRetention; only
  // OpenReader is useful. Every segment is opened at open time, so the live writer's retention
  // may unlink them meanwhile without affecting the reader. A missing dir is kNotFound. The
  // other options (except env and dir) are ignored. See "Read-only readers" in
  // docs/formats/log.md.
  bool read_only = false;
};

// EventLog plus the controls only the local backend has (admin commands, tests).
class LocalEventLog : public EventLog {
 public:
  // Deletes the segments retention allows now (see docs/formats/log.md). Thread-safe.
  virtual Status EnforceRetention() = 0;
  // Asks the writer to start a new segment before its next write. Thread-safe.
  virtual void RequestRoll() = 0;
  // Number of segment files, including the active one.
  virtual size_t SegmentCount() const = 0;
};

// Opens (creating or recovering) the log in options.dir. Recovery truncates a torn tail of the
// last segment; see docs/formats/log.md. With options.read_only, opens a read-only snapshot
// instead (see LocalLogOptions::read_only).
Result<std::unique_ptr<LocalEventLog>> OpenLocalEventLog(LocalLogOptions options);
Result<std::unique_ptr<EventLog>> OpenLocalLog(LocalLogOptions options);

}  // namespace sy::log
