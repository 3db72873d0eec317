#include "log/local/local_log.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/crc32c.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "log/local/frame.h"
#include "log/local/preallocator.h"
#include "log/local/segment.h"

namespace sy::log {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kCursorMagic[8] = {'S', 'Y', 'C', 'U', 'R', 'S', 'R', '1'};
constexpr size_t kCursorFileSize = 20;
constexpr const char* kCursorSuffix = ".cursor";

// Whether bytes [from, to) of `file` are all zero.
Result<bool> AllZero(const RandomAccessFile& file, uint64_t from, uint64_t to) {
  std::string buf(std::min<uint64_t>(to - from, 1 << 20), '\0');
  while (from < to) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(to - from, buf.size()));
    SY_ASSIGN_OR_RETURN(size_t n, file.ReadAt(from, want, buf.data()));
    if (n == 0) return true;  // shorter than it was: nothing left to look at
    if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n),
                    [](char c) { return c != 0; })) {
      return false;
    }
    from += n;
  }
  return true;
}

bool ValidConsumerName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::string EncodeCursorFile(Offset committed) {
  std::string out(kCursorMagic, sizeof(kCursorMagic));
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((committed.value() >> (8 * i)) & 0xff));
  uint32_t crc = crc32c::Value(out);
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

Result<Offset> DecodeCursorFile(std::string_view data) {
  if (data.size() != kCursorFileSize || data.substr(0, 8) != std::string_view(kCursorMagic, 8)) {
    return DataLoss("bad cursor file");
  }
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(data[8 + i]);
  uint32_t crc = 0;
  for (int i = 3; i >= 0; --i)
    crc = (crc << 8) | static_cast<uint8_t>(data[16 + i]);
  if (crc != crc32c::Value(data.data(), 16)) return DataLoss("cursor file checksum mismatch");
  return Offset(v);
}

// Shared with metric callbacks, which may outlive the log.
struct ConsumerState {
  explicit ConsumerState(std::string n) : name(std::move(n)) {}
  const std::string name;
  std::mutex file_mu;  // serializes writes of this consumer's cursor file
  std::atomic<uint64_t> committed{0};
  std::atomic<bool> deleted{false};
  Counter* skipped = nullptr;
};

struct PendingAppend {
  std::vector<LogRecord> records;
  AppendCallback done;
  size_t encoded_bytes = 0;
  SteadyClock::time_point enqueued;
  Offset first;
};

// A frame written to the active segment but not yet published to readers.
struct UnpublishedFrame {
  uint64_t pos;
  FrameHeader header;
};

constexpr std::string_view kCursorSkippedName = "switchyard_log_cursor_skipped_events_total";
constexpr std::string_view kCursorSkippedHelp =
    "Events a consumer never read because a retention cap deleted them.";
// The log's half of the consumer-lag vocabulary (log::ConsumerLagSeconds is the other).
constexpr std::string_view kConsumerLagName = "switchyard_consumer_lag_events";
constexpr std::string_view kConsumerLagHelp =
    "Events in the log past the cursor's committed position (log end - committed).";

struct LogMetrics {
  Gauge* reserve = nullptr;
  Histogram* append_latency = nullptr;
  Counter* appended_events = nullptr;
  Counter* appended_bytes = nullptr;
  Counter* fsyncs = nullptr;
  Gauge* segments = nullptr;
  Gauge* bytes = nullptr;
};

class LocalLogImpl;

class LocalCursor final : public LogCursor {
 public:
  LocalCursor(LocalLogImpl* log, std::string name, std::shared_ptr<ConsumerState> state,
              Offset position)
      : log_(log), name_(std::move(name)), state_(std::move(state)), position_(position) {}

  const std::string& name() const override { return name_; }
  Offset position() const override { return position_; }
  Offset committed() const override;
  Result<std::vector<LogEntry>> Read(size_t max_records, size_t max_bytes) override;
  bool WaitForData(std::chrono::milliseconds timeout) override;
  Status Commit(Offset next) override;
  Status Seek(Offset offset) override;
  Status SeekToTime(TimestampMs t) override;

 private:
  void DropRest() {
    rest_.clear();
    rest_at_ = 0;
  }

  LocalLogImpl* const log_;
  const std::string name_;
  const std::shared_ptr<ConsumerState> state_;  // null for ephemeral readers
  Offset position_;
  // Where the frame holding position_ starts, when known (saves an index lookup per Read).
  std::shared_ptr<Segment> hint_segment_;
  uint64_t hint_pos_ = 0;
  Offset hint_offset_;
  // The entries of the last decoded frame that Read did not return (it stopped at max_records
  // or max_bytes inside the frame): rest_[rest_at_] is at position_. The next Read starts with
  // them instead of reading, checking and decompressing the whole frame again.
  std::vector<LogEntry> rest_;
  size_t rest_at_ = 0;
};

class LocalLogImpl final : public LocalEventLog {
 public:
  explicit LocalLogImpl(LocalLogOptions options)
      : own_metrics_(options.metrics ? nullptr : std::make_unique<MetricsRegistry>()),
        opt_(WithRegistry(std::move(options), own_metrics_.get())),
        logger_(ModuleLogger("log")) {}
  ~LocalLogImpl() override {
    Close().IgnoreError();
    if (zstd_ctx_ != nullptr) ZSTD_freeCCtx(zstd_ctx_);
  }

  Status Open();

  void Append(std::vector<LogRecord> records, AppendCallback done) override;
  Result<std::unique_ptr<LogCursor>> OpenCursor(std::string_view consumer) override;
  Result<std::unique_ptr<LogCursor>> OpenReader() override;
  Status DeleteCursor(std::string_view consumer) override;
  uint64_t AddDataListener(std::function<void()> listener) override {
    std::lock_guard lock(listeners_mu_);
    const uint64_t id = next_listener_++;
    listeners_.emplace(id, std::move(listener));
    return id;
  }
  void RemoveDataListener(uint64_t id) override {
    std::lock_guard lock(listeners_mu_);
    listeners_.erase(id);
  }
  // Calls every data listener (writer thread, or Close).
  void NotifyListeners() {
    std::lock_guard lock(listeners_mu_);
    for (auto& [id, fn] : listeners_)
      fn();
  }
  Offset StartOffset() const override { return Offset(start_offset_.load()); }
  Offset EndOffset() const override { return Offset(published_end_->load()); }
  Status Health() const override {
    std::lock_guard lock(mu_);
    if (closing_) return Unavailable("event log is closed");
    return failed_;
  }
  Status Close() override;

  Status EnforceRetention() override;
  void RequestRoll() override { roll_requested_.store(true); }
  size_t SegmentCount() const override {
    std::lock_guard lock(segments_mu_);
    return segments_.size();
  }

  // For cursors.
  std::shared_ptr<Segment> SegmentFor(Offset offset) const;
  std::shared_ptr<Segment> NextSegment(const Segment& seg) const;
  std::vector<std::shared_ptr<Segment>> SegmentsSnapshot() const {
    std::lock_guard lock(segments_mu_);
    return segments_;
  }
  bool WaitForOffset(Offset position, std::chrono::milliseconds timeout);
  Status CommitConsumer(ConsumerState& state, Offset next);

 private:
  Status Recover();
  Status OpenReadOnly();
  Result<std::vector<Offset>> ListSegmentBases();
  Result<uint64_t> ScanClosedSegment(Segment& seg, Offset declared_end);
  struct LastSegmentScan {
    uint64_t file_bytes = 0;   // size of the file when scanned
    uint64_t valid_bytes = 0;  // bytes of whole, valid frames from the start
    Offset end;                // one past the last valid record
  };
  Result<LastSegmentScan> VerifyLastSegment(Segment& seg);
  void PublishRecovered(Offset end);
  Status LoadCursors();
  Result<std::shared_ptr<Segment>> OpenSegmentForRead(Offset base);
  void WriterLoop();
  void WriteGroup(std::vector<PendingAppend>& group);
  Status RollSegment();
  Status SyncAndPublish();
  Status SyncAndPublish(std::vector<UnpublishedFrame>& frames, std::vector<PendingAppend>& appends,
                        Offset end);
  void Publish(std::vector<UnpublishedFrame>& frames, Offset end);
  void AckWritten(std::vector<PendingAppend>& appends);
  void HandToSyncer();
  // Under mu_: whether the writer has a round to write now. With fsync: always, a round waits
  // while the previous one is being synced (it will be synced next anyway) unless it already
  // holds kWriteAheadBytes: then writing it during the fdatasync overlaps CPU and disk work.
  bool WriterShouldRun() const {
    if (queue_.empty()) return false;
    return opt_.fsync != FsyncPolicy::kAlways || sync_inflight_.load() == 0 ||
           queue_bytes_ >= kWriteAheadBytes;
  }
  static constexpr uint64_t kWriteAheadBytes = 64 * 1024;
  void DrainSyncer();
  void SyncerLoop();
  void FailAll(std::vector<PendingAppend>& appends, const Status& status);
  void HandToCompleter(std::vector<PendingAppend>& appends, Status status);
  void CompleterLoop();
  void EnterFailedState(const Status& cause);
  void UpdateSizeGauges();
  // Writer thread: points the preallocator at the active segment (after open, roll, truncation).
  void ResetPreallocator();
  // The reserve (LocalLogOptions::reserve_bytes), writer thread or open. HoldReserve allocates
  // `<dir>/RESERVE` if it is not held (a failure — no room yet — leaves it released, tried
  // again at the next roll); ReleaseReserve deletes it, true if it was held. posix_fallocate on
  // a descriptor of its own: the Env seam has no allocation call, and the file holds no data.
  void HoldReserve();
  bool ReleaseReserve();
  bool reserve_held_ = false;

  // Writer thread: cuts the active segment's preallocated zeros (before it is closed).
  Status CutPreallocated();
  Status PersistConsumer(ConsumerState& state, Offset committed);
  std::shared_ptr<ConsumerState> NewConsumerState(const std::string& name, Offset committed);

  static LocalLogOptions WithRegistry(LocalLogOptions o, MetricsRegistry* own) {
    if (!o.metrics) o.metrics = own;
    return o;
  }

  // The registry when the opener passed none (tools that serve no /metrics): opt_.metrics is
  // never null.
  const std::unique_ptr<MetricsRegistry> own_metrics_;
  const LocalLogOptions opt_;
  std::shared_ptr<spdlog::logger> logger_;
  LogMetrics metrics_;
  std::string cursor_dir_;

  // Queue shared by Append() and the writer thread.
  mutable std::mutex mu_;
  std::condition_variable writer_cv_;
  std::vector<PendingAppend> queue_;  // guarded by mu_
  uint64_t pending_bytes_ = 0;        // guarded by mu_
  uint64_t queue_bytes_ = 0;          // guarded by mu_: encoded size of queue_
  bool closing_ = false;              // guarded by mu_
  Status failed_;                     // guarded by mu_; sticky after an fsync failure

  // Completion thread: runs append callbacks, so the writer can start the next write+fsync while
  // the callers of the previous group are being woken.
  struct Completion {
    std::vector<PendingAppend> appends;
    Status status;
  };
  std::mutex completion_mu_;
  std::condition_variable completion_cv_;
  std::vector<Completion> completions_;  // guarded by completion_mu_
  bool completion_stop_ = false;         // guarded by completion_mu_
  std::thread completer_;

  std::mutex close_mu_;
  bool closed_ = false;  // guarded by close_mu_
  Status close_status_;  // guarded by close_mu_
  std::thread writer_;

  // Writer-thread state.
  std::unique_ptr<WritableFile> active_file_;
  std::unique_ptr<Preallocator> prealloc_;  // null when preallocation is off
  std::shared_ptr<Segment> active_;
  uint64_t written_bytes_ = 0;  // bytes written to the active segment (durable or not)
  uint64_t next_offset_ = 0;    // offset for the next written record
  // fsync: always — the sync thread: the writer hands it each written round and goes on to
  // encode and write the next one while this round's fdatasync runs (an fdatasync covers what
  // was written before it started), so CPU work and disk work overlap.
  struct SyncBatch {
    std::vector<UnpublishedFrame> frames;
    std::vector<PendingAppend> appends;
    Offset end;  // one past the last record of the batch
  };
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<SyncBatch> sync_queue_;  // guarded by sync_mu_
  bool sync_busy_ = false;             // guarded by sync_mu_: a batch is being synced
  // Rounds handed to the sync thread and not yet synced. While one is in flight the writer
  // lets small appends gather instead of writing each as it comes (see WriterShouldRun).
  std::atomic<int> sync_inflight_{0};
  bool sync_stop_ = false;  // guarded by sync_mu_
  std::thread syncer_;

  std::vector<UnpublishedFrame> unpublished_;
  std::vector<PendingAppend> unacked_;  // written, awaiting sync (kInterval) / publish
  SteadyClock::time_point last_sync_;
  ZSTD_CCtx* zstd_ctx_ = nullptr;
  std::atomic<bool> roll_requested_{false};

  // Published state.
  mutable std::mutex segments_mu_;
  std::vector<std::shared_ptr<Segment>> segments_;  // guarded by segments_mu_, base order
  std::atomic<uint64_t> start_offset_{0};
  // Shared with metric callbacks, which may outlive the log.
  std::shared_ptr<std::atomic<uint64_t>> published_end_ =
      std::make_shared<std::atomic<uint64_t>>(0);
  std::atomic<uint64_t> total_bytes_{0};
  std::mutex data_mu_;
  std::condition_variable data_cv_;
  std::atomic<bool> readers_released_{false};
  std::mutex listeners_mu_;  // held while listeners run: Remove waits for a running call
  std::map<uint64_t, std::function<void()>> listeners_;
  uint64_t next_listener_ = 1;

  std::mutex retention_mu_;  // one retention pass at a time
  std::mutex consumers_mu_;
  std::map<std::string, std::shared_ptr<ConsumerState>, std::less<>> consumers_;
};

// ---------------------------------------------------------------------------------------------
// Open and recovery

Status LocalLogImpl::Open() {
  if (opt_.dir.empty()) return InvalidArgument("log dir is empty");
  auto* m = opt_.metrics;
  metrics_.append_latency =
      m->GetHistogram("switchyard_log_append_latency_seconds",
                      "Time from Append to durable acknowledgement.", LatencyBuckets());
  metrics_.appended_events =
      m->GetCounter("switchyard_log_appended_events_total", "Events appended durably.");
  metrics_.appended_bytes =
      m->GetCounter("switchyard_log_appended_bytes_total", "Frame bytes written durably.");
  metrics_.fsyncs = m->GetCounter("switchyard_log_fsyncs_total", "fdatasync calls.");
  metrics_.segments = m->GetGauge("switchyard_log_segments", "Segment files.");
  metrics_.reserve = m->GetGauge("switchyard_log_reserve_bytes",
                                 "Bytes the log holds in reserve for a full disk (log.reserve; "
                                 "0 while released).");
  metrics_.bytes = m->GetGauge("switchyard_log_bytes", "Bytes in segment files.");
  // Listed before the first cursor opens.
  m->Counters(kCursorSkippedName, kCursorSkippedHelp, {"cursor"});
  m->Gauges(kConsumerLagName, kConsumerLagHelp, {"cursor"});
  if (opt_.read_only) return OpenReadOnly();
  if (opt_.segment_bytes == 0) return InvalidArgument("segment_bytes must be > 0");
  // One group commit becomes one frame, and a frame body is limited to kMaxFrameBody.
  if (opt_.max_pending_bytes == 0 || opt_.max_pending_bytes > kMaxFrameBody / 2) {
    return InvalidArgument("max_pending_bytes must be in (0, 256 MiB]");
  }
  if (opt_.compression == LogCompression::kZstd) zstd_ctx_ = ZSTD_createCCtx();
  cursor_dir_ = opt_.dir + "/cursors";
  // Durable directories: a segment or cursor synced into a directory whose own entry a power cut
  // takes away is lost with it.
  SY_RETURN_IF_ERROR(CreateDirDurably(opt_.env, opt_.dir));
  SY_RETURN_IF_ERROR(CreateDirDurably(opt_.env, cursor_dir_));
  SY_RETURN_IF_ERROR(Recover());
  SY_RETURN_IF_ERROR(LoadCursors());
  UpdateSizeGauges();
  // Retention also runs once at open, before anyone reads, so caps apply after downtime.
  Status retention = EnforceRetention();
  if (!retention.ok()) logger_->warn("retention at open failed: {}", retention.ToString());
  last_sync_ = SteadyClock::now();
  if (opt_.preallocate_bytes > 0 && opt_.fsync != FsyncPolicy::kNever) {
    prealloc_ = std::make_unique<Preallocator>(opt_.env, opt_.preallocate_bytes, logger_);
    ResetPreallocator();
  }
  HoldReserve();
  completer_ = std::thread([this] {
    SetThreadName("sy-log-done");
    CompleterLoop();
  });
  if (opt_.fsync == FsyncPolicy::kAlways)
    syncer_ = std::thread([this] {
      SetThreadName("sy-log-sync");
      SyncerLoop();
    });
  writer_ = std::thread([this] {
    SetThreadName("sy-log-write");
    WriterLoop();
  });
  return Status::Ok();
}

Result<std::shared_ptr<Segment>> LocalLogImpl::OpenSegmentForRead(Offset base) {
  std::string path = opt_.dir + "/" + SegmentFileName(base);
  SY_ASSIGN_OR_RETURN(auto file, opt_.env->OpenReadable(path));
  return std::make_shared<Segment>(base, path, std::move(file));
}

Result<std::vector<Offset>> LocalLogImpl::ListSegmentBases() {
  SY_ASSIGN_OR_RETURN(auto names, opt_.env->ListDir(opt_.dir));
  std::vector<Offset> bases;
  for (const auto& n : names) {
    if (auto base = ParseSegmentFileName(n)) bases.push_back(*base);
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

// Closed segments are trusted: their frame headers are walked (one small pread per frame, no
// body checksums) to rebuild the sparse index. Returns the bytes read.
Result<uint64_t> LocalLogImpl::ScanClosedSegment(Segment& seg, Offset declared_end) {
  uint64_t bytes_scanned = 0;
  SY_ASSIGN_OR_RETURN(uint64_t file_bytes, seg.file().Size());
  uint64_t pos = 0;
  uint64_t expected = seg.base().value();
  seg.SetTrustedExtent(file_bytes, seg.base());
  while (pos < file_bytes) {
    auto header = seg.ReadHeader(pos);
    if (!header.ok() || header->first_offset != expected) {
      logger_->error(
          "corrupt frame header in closed segment path={} byte={}; reads there will "
          "fail with data loss",
          seg.path(), pos);
      break;
    }
    seg.AddDurableFrame(pos, *header);
    seg.SetTrustedExtent(file_bytes, Offset(header->end_offset()));
    expected = header->end_offset();
    pos += header->frame_size();
    bytes_scanned += kFrameHeaderSize;
  }
  if (expected != declared_end.value()) {
    logger_->error(
        "closed segment path={} ends at offset {} but the next segment starts at {}; "
        "reads of the gap will fail with data loss",
        seg.path(), expected, declared_end.value());
  }
  seg.SetTrustedExtent(file_bytes, declared_end);
  return bytes_scanned;
}

// The last segment is the only one that can hold a torn write: every frame's header, sequence
// and checksum are verified from the start, up to the first frame that fails. Only reads; the
// segment is left exposing exactly the valid frames.
Result<LocalLogImpl::LastSegmentScan> LocalLogImpl::VerifyLastSegment(Segment& seg) {
  LastSegmentScan scan;
  SY_ASSIGN_OR_RETURN(scan.file_bytes, seg.file().Size());
  seg.SetTrustedExtent(scan.file_bytes, seg.base());
  uint64_t pos = 0;
  uint64_t expected = seg.base().value();
  std::string frame;
  while (pos < scan.file_bytes) {
    auto header = seg.ReadHeader(pos);
    if (!header.ok() || header->first_offset != expected) break;
    frame.resize(header->frame_size());
    SY_ASSIGN_OR_RETURN(size_t n, seg.file().ReadAt(pos, frame.size(), frame.data()));
    if (n != frame.size() || !FrameChecksumMatches(*header, frame)) break;
    seg.AddDurableFrame(pos, *header);
    seg.SetTrustedExtent(scan.file_bytes, Offset(header->end_offset()));
    expected = header->end_offset();
    pos += header->frame_size();
  }
  seg.SetTrustedExtent(pos, Offset(expected));
  scan.valid_bytes = pos;
  scan.end = Offset(expected);
  return scan;
}

// Recovery's last step: segments_ is complete and `end` is the durable end.
void LocalLogImpl::PublishRecovered(Offset end) {
  start_offset_.store(segments_.empty() ? end.value() : segments_.front()->base().value());
  published_end_->store(end.value());
  uint64_t total = 0;
  for (const auto& s : segments_)
    total += s->durable_bytes();
  total_bytes_.store(total);
}

Status LocalLogImpl::Recover() {
  auto started = SteadyClock::now();
  SY_ASSIGN_OR_RETURN(auto bases, ListSegmentBases());
  uint64_t bytes_scanned = 0;
  uint64_t bytes_truncated = 0;

  if (bases.empty()) {
    std::string path = opt_.dir + "/" + SegmentFileName(Offset(0));
    SY_ASSIGN_OR_RETURN(active_file_, opt_.env->OpenWritable(path, /*truncate=*/true));
    SY_RETURN_IF_ERROR(opt_.env->SyncDir(opt_.dir));
    SY_ASSIGN_OR_RETURN(active_, OpenSegmentForRead(Offset(0)));
    segments_.push_back(active_);
    return Status::Ok();
  }

  for (size_t i = 0; i + 1 < bases.size(); ++i) {
    SY_ASSIGN_OR_RETURN(auto seg, OpenSegmentForRead(bases[i]));
    SY_ASSIGN_OR_RETURN(uint64_t scanned, ScanClosedSegment(*seg, bases[i + 1]));
    bytes_scanned += scanned;
    segments_.push_back(std::move(seg));
  }

  // The last segment: verify every frame; cut the log at the first frame that is torn or
  // corrupt (it can only be a write that was never acknowledged).
  SY_ASSIGN_OR_RETURN(auto last, OpenSegmentForRead(bases.back()));
  SY_ASSIGN_OR_RETURN(LastSegmentScan scan, VerifyLastSegment(*last));
  bytes_scanned += scan.valid_bytes;
  SY_ASSIGN_OR_RETURN(active_file_, opt_.env->OpenWritable(last->path(), /*truncate=*/false));
  if (scan.valid_bytes < scan.file_bytes) {
    bytes_truncated = scan.file_bytes - scan.valid_bytes;
    SY_ASSIGN_OR_RETURN(bool zeros, AllZero(last->file(), scan.valid_bytes, scan.file_bytes));
    if (zeros) {
      // What a crash leaves after the last frame when preallocation was on: not a lost write.
      logger_->info("cutting preallocated zeros path={} valid_bytes={} zero_bytes={}", last->path(),
                    scan.valid_bytes, bytes_truncated);
    } else {
      logger_->warn("truncating torn tail path={} valid_bytes={} truncated_bytes={}", last->path(),
                    scan.valid_bytes, bytes_truncated);
    }
    SY_RETURN_IF_ERROR(active_file_->Truncate(scan.valid_bytes));
  }
  // What recovery accepted may still be only in the page cache (the previous process wrote it
  // but died or failed before its fsync); make it durable before anyone reads or builds on it.
  SY_RETURN_IF_ERROR(active_file_->Sync());
  active_ = last;
  segments_.push_back(last);
  written_bytes_ = scan.valid_bytes;
  next_offset_ = scan.end.value();
  PublishRecovered(scan.end);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  logger_->info(
      "recovered dir={} segments={} start={} end={} bytes_scanned={} "
      "bytes_truncated={} duration_ms={}",
      opt_.dir, segments_.size(), start_offset_.load(), scan.end.value(), bytes_scanned,
      bytes_truncated, ms.count());
  return Status::Ok();
}

// A read-only snapshot, possibly next to a live writer (docs/formats/log.md, "Read-only
// readers"). Recovery's scan without any of its writes: a torn or still-being-written tail of
// the last segment is hidden, not cut. Every segment file is opened here, so the writer's
// retention may unlink them later without affecting this snapshot.
Status LocalLogImpl::OpenReadOnly() {
  if (!opt_.env->FileExists(opt_.dir)) return NotFound("no event log in " + opt_.dir);
  constexpr int kAttempts = 5;
  std::vector<std::shared_ptr<Segment>> segs;
  std::vector<Offset> bases;
  bool complete = false;
  for (int attempt = 0; attempt < kAttempts && !complete; ++attempt) {
    SY_ASSIGN_OR_RETURN(bases, ListSegmentBases());
    segs.clear();
    complete = true;
    for (size_t i = 0; i < bases.size(); ++i) {
      auto seg = OpenSegmentForRead(bases[i]);
      if (seg.ok()) {
        segs.push_back(std::move(*seg));
        continue;
      }
      if (opt_.env->FileExists(opt_.dir + "/" + SegmentFileName(bases[i]))) return seg.status();
      // Deleted by the live writer's retention since the listing. Retention deletes oldest
      // first, so the older segments opened so far are deleted too: start after it.
      segs.clear();
      if (i + 1 == bases.size()) complete = false;  // even the newest is gone: list again
    }
  }
  if (!complete) {
    return Unavailable("segments of " + opt_.dir + " were deleted faster than they were opened");
  }
  Offset end;
  uint64_t hidden_bytes = 0;
  if (!segs.empty()) {
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      SY_RETURN_IF_ERROR(ScanClosedSegment(*segs[i], segs[i + 1]->base()).status());
    }
    SY_ASSIGN_OR_RETURN(LastSegmentScan scan, VerifyLastSegment(*segs.back()));
    end = scan.end;
    hidden_bytes = scan.file_bytes - scan.valid_bytes;
  }
  segments_ = std::move(segs);
  PublishRecovered(end);
  logger_->debug("opened read-only dir={} segments={} start={} end={} hidden_tail_bytes={}",
                 opt_.dir, segments_.size(), start_offset_.load(), end.value(), hidden_bytes);
  return Status::Ok();
}

Status LocalLogImpl::LoadCursors() {
  SY_ASSIGN_OR_RETURN(auto names, opt_.env->ListDir(cursor_dir_));
  const std::string suffix = kCursorSuffix;
  for (const auto& n : names) {
    std::string path = cursor_dir_ + "/" + n;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
      opt_.env->RemoveFile(path).IgnoreError();  // an interrupted atomic write
      continue;
    }
    if (n.size() <= suffix.size() || n.substr(n.size() - suffix.size()) != suffix) continue;
    std::string name = n.substr(0, n.size() - suffix.size());
    if (!ValidConsumerName(name)) continue;
    SY_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(opt_.env, path));
    auto committed = DecodeCursorFile(data);
    if (!committed.ok()) return DataLoss(committed.status().message() + ": " + path);
    Offset c = *committed;
    if (c > EndOffset()) {
      logger_->warn("cursor consumer={} committed={} is past the log end={}; clamping", name,
                    c.value(), EndOffset().value());
      c = EndOffset();
    }
    if (c < StartOffset()) c = StartOffset();
    consumers_[name] = NewConsumerState(name, c);
  }
  return Status::Ok();
}

std::shared_ptr<ConsumerState> LocalLogImpl::NewConsumerState(const std::string& name,
                                                              Offset committed) {
  auto state = std::make_shared<ConsumerState>(name);
  state->committed.store(committed.value());
  Labels labels = {{"cursor", name}};
  state->skipped = opt_.metrics->GetCounter(kCursorSkippedName, kCursorSkippedHelp, labels);
  // The callback must not reference the log, which the registry may outlive.
  std::weak_ptr<ConsumerState> weak = state;
  opt_.metrics->AddCallbackGauge(kConsumerLagName, kConsumerLagHelp, labels,
                                 [weak, end = published_end_]() -> double {
                                   auto s = weak.lock();
                                   if (!s || s->deleted.load()) return 0;
                                   uint64_t e = end->load();
                                   uint64_t c = s->committed.load();
                                   return e > c ? static_cast<double>(e - c) : 0.0;
                                 });
  return state;
}

// ---------------------------------------------------------------------------------------------
// Append and the writer thread

void LocalLogImpl::Append(std::vector<LogRecord> records, AppendCallback done) {
  if (opt_.read_only) {
    done(AppendResult{FailedPrecondition("event log is opened read-only"), Offset()});
    return;
  }
  if (records.empty()) {
    done(AppendResult{Status::Ok(), EndOffset()});
    return;
  }
  size_t bytes = 0;
  for (const auto& r : records)
    bytes += EncodedRecordSize(r);
  Status refused;
  {
    std::lock_guard lock(mu_);
    if (closing_) {
      refused = Unavailable("event log is closed");
    } else if (!failed_.ok()) {
      refused = Unavailable("event log refuses appends until reopened: " + failed_.message());
    } else if (pending_bytes_ + bytes > opt_.max_pending_bytes) {
      refused = ResourceExhausted("event log write queue is full (" +
                                  std::to_string(pending_bytes_) + " bytes pending)");
    } else {
      pending_bytes_ += bytes;
      const bool was_ready = WriterShouldRun();
      queue_bytes_ += bytes;
      queue_.push_back(
          PendingAppend{std::move(records), std::move(done), bytes, SteadyClock::now(), Offset()});
      // Wake the writer only when this append is what lets it run: waking it per append would
      // cost a futex wake and a context switch per event and write rounds of one event each.
      if (!was_ready && WriterShouldRun()) writer_cv_.notify_one();
      return;
    }
  }
  done(AppendResult{std::move(refused), Offset()});
}

void LocalLogImpl::WriterLoop() {
  auto next_retention =
      SteadyClock::now() + std::chrono::milliseconds(opt_.retention_check_interval_ms);
  std::unique_lock lock(mu_);
  for (;;) {
    auto deadline = next_retention;
    if (!unacked_.empty() && opt_.fsync == FsyncPolicy::kInterval) {
      deadline = std::min(deadline, last_sync_ + std::chrono::milliseconds(opt_.fsync_interval_ms));
    }
    writer_cv_.wait_until(lock, deadline, [&] { return WriterShouldRun() || closing_; });
    std::vector<PendingAppend> group;
    group.swap(queue_);
    queue_bytes_ = 0;
    bool stopping = closing_ && group.empty();
    lock.unlock();

    uint64_t group_bytes = 0;
    for (const auto& a : group)
      group_bytes += a.encoded_bytes;
    if (!group.empty()) WriteGroup(group);
    auto now = SteadyClock::now();
    if (opt_.fsync == FsyncPolicy::kAlways) {
      if (group_bytes < kWriteAheadBytes && sync_inflight_.load() == 0 && !stopping) {
        // A small round and nothing being synced: nothing could be written meanwhile that would
        // not wait for this sync anyway, so sync here; the sync thread would only add a thread
        // wake-up to every acknowledgement.
        SyncAndPublish(unpublished_, unacked_, Offset(next_offset_)).IgnoreError();
      } else {
        HandToSyncer();
      }
      if (stopping) DrainSyncer();
    } else if (!unacked_.empty() &&
               (stopping || opt_.fsync != FsyncPolicy::kInterval ||
                now >= last_sync_ + std::chrono::milliseconds(opt_.fsync_interval_ms))) {
      SyncAndPublish().IgnoreError();  // failures are reported to the appends
    }
    if (now >= next_retention && !stopping) {
      Status st = EnforceRetention();
      if (!st.ok()) logger_->warn("retention failed: {}", st.ToString());
      next_retention = now + std::chrono::milliseconds(opt_.retention_check_interval_ms);
    }
    if (stopping) break;
    lock.lock();
  }
}

void LocalLogImpl::FailAll(std::vector<PendingAppend>& appends, const Status& status) {
  HandToCompleter(appends, status);
}

void LocalLogImpl::HandToCompleter(std::vector<PendingAppend>& appends, Status status) {
  if (appends.empty()) return;
  {
    std::lock_guard lock(completion_mu_);
    completions_.push_back(Completion{std::move(appends), std::move(status)});
  }
  appends.clear();
  completion_cv_.notify_one();
}

void LocalLogImpl::CompleterLoop() {
  std::unique_lock lock(completion_mu_);
  for (;;) {
    completion_cv_.wait(lock, [&] { return !completions_.empty() || completion_stop_; });
    if (completions_.empty()) return;  // stopping and drained
    std::vector<Completion> batch;
    batch.swap(completions_);
    lock.unlock();
    auto now = SteadyClock::now();
    for (auto& c : batch) {
      for (auto& a : c.appends) {
        if (c.status.ok()) {
          metrics_.append_latency->Observe(std::chrono::duration<double>(now - a.enqueued).count());
        }
        a.done(AppendResult{c.status, c.status.ok() ? a.first : Offset()});
      }
    }
    lock.lock();
  }
}

void LocalLogImpl::EnterFailedState(const Status& cause) {
  logger_->error("event log stops accepting appends until reopened dir={} cause={}", opt_.dir,
                 cause.ToString());
  std::lock_guard lock(mu_);
  if (failed_.ok()) failed_ = cause;
}

// Writer thread. Writes the whole group as one frame with one write; on kAlways the caller's
// SyncAndPublish completes it with one fdatasync.
void LocalLogImpl::WriteGroup(std::vector<PendingAppend>& group) {
  uint64_t group_bytes = 0;
  for (const auto& a : group)
    group_bytes += a.encoded_bytes;
  auto release_pending = [&] {
    std::lock_guard lock(mu_);
    pending_bytes_ -= group_bytes;
  };
  Status failed;
  {
    std::lock_guard lock(mu_);
    failed = failed_;
  }
  if (!failed.ok()) {
    release_pending();
    FailAll(group, Unavailable("event log refuses appends until reopened: " + failed.message()));
    return;
  }
  if (written_bytes_ >= opt_.segment_bytes ||
      (roll_requested_.exchange(false) && written_bytes_ > 0)) {
    Status st = RollSegment();
    if (!st.ok() && st.code() == StatusCode::kResourceExhausted && ReleaseReserve()) {
      st = RollSegment();
    }
    if (!st.ok()) {
      release_pending();
      FailAll(group, st);
      return;
    }
  }

  std::string frame(kFrameHeaderSize, '\0');
  frame.reserve(kFrameHeaderSize + group_bytes);
  uint32_t count = 0;
  int64_t max_time = std::numeric_limits<int64_t>::min();
  bool with_headers = false;  // format 1 byte for byte unless a record has headers
  for (const auto& a : group)
    for (const auto& r : a.records)
      with_headers = with_headers || !r.headers.empty();
  for (auto& a : group) {
    a.first = Offset(next_offset_ + count);
    for (const auto& r : a.records) {
      EncodeRecord(r, &frame, with_headers);
      max_time = std::max(max_time, r.received_at.value());
      ++count;
    }
  }
  SealFrame(&frame, next_offset_, count, max_time, opt_.compression == LogCompression::kZstd,
            zstd_ctx_, with_headers);
  if (prealloc_) prealloc_->BeforeWrite(written_bytes_, frame.size());
  Status st = active_file_->WriteAt(written_bytes_, frame);
  if (!st.ok() && st.code() == StatusCode::kResourceExhausted && ReleaseReserve()) {
    st = active_file_->WriteAt(written_bytes_, frame);  // over the part that was written
  }
  release_pending();
  if (!st.ok()) {
    // Nothing of this frame is acknowledged; cut the partial write so the next frame follows the
    // last whole one. If even that fails, the file's tail is unknown: stop.
    if (prealloc_) prealloc_->Detach();
    Status cut = active_file_->Truncate(written_bytes_);
    if (!cut.ok()) EnterFailedState(cut);
    if (cut.ok()) ResetPreallocator();
    logger_->error("append write failed path={} records={} error={}", active_->path(), count,
                   st.ToString());
    FailAll(group, st);
    return;
  }
  auto header = ParseFrameHeader(frame);
  SY_CHECK(header.ok());
  unpublished_.push_back({written_bytes_, *header});
  written_bytes_ += frame.size();
  next_offset_ += count;
  if (prealloc_) prealloc_->Written(written_bytes_, frame.size());
  for (auto& a : group)
    unacked_.push_back(std::move(a));
  group.clear();
}

// Writer thread. Makes every written frame durable (per policy), publishes it to readers and
// acknowledges its appends. An fsync failure is fatal for the log until reopened: after a
// failed fsync the kernel may have dropped the dirty pages, so no later fsync can vouch for them
// (PostgreSQL's "fsyncgate").
Status LocalLogImpl::SyncAndPublish() {
  DrainSyncer();  // kAlways: everything handed to the sync thread is durable or failed first
  {
    // A failed fsync on the sync thread leaves the active segment's tail unknown: report it, so
    // a roll never closes a segment that is not wholly durable.
    std::lock_guard lock(mu_);
    if (!failed_.ok()) return failed_;
  }
  return SyncAndPublish(unpublished_, unacked_, Offset(next_offset_));
}

Status LocalLogImpl::SyncAndPublish(std::vector<UnpublishedFrame>& frames,
                                    std::vector<PendingAppend>& appends, Offset end) {
  if (appends.empty() && frames.empty()) return Status::Ok();
  Status failed;
  {
    std::lock_guard lock(mu_);
    failed = failed_;
  }
  if (!failed.ok()) {
    // Written after an fsync failure: nothing can vouch for these bytes.
    frames.clear();
    FailAll(appends, Unavailable("event log refuses appends until reopened: " + failed.message()));
    return failed;
  }
  if (opt_.fsync != FsyncPolicy::kNever) {
    Status st = active_file_->Sync();
    last_sync_ = SteadyClock::now();
    metrics_.fsyncs->Inc();
    if (!st.ok()) {
      EnterFailedState(st);
      frames.clear();
      FailAll(appends, st.code() == StatusCode::kResourceExhausted ? st : IoError(st.message()));
      return st;
    }
  }
  Publish(frames, end);
  AckWritten(appends);
  return Status::Ok();
}

void LocalLogImpl::Publish(std::vector<UnpublishedFrame>& frames, Offset end) {
  uint64_t added = 0;
  for (const auto& f : frames) {
    active_->AddDurableFrame(f.pos, f.header);
    added += f.header.frame_size();
  }
  frames.clear();
  total_bytes_.fetch_add(added);
  published_end_->store(end.value(), std::memory_order_release);
  { std::lock_guard lock(data_mu_); }
  data_cv_.notify_all();
  NotifyListeners();
  metrics_.bytes->Set(static_cast<double>(total_bytes_.load()));
  metrics_.appended_bytes->Inc(added);
}

void LocalLogImpl::AckWritten(std::vector<PendingAppend>& appends) {
  for (const auto& a : appends)
    metrics_.appended_events->Inc(a.records.size());
  HandToCompleter(appends, Status::Ok());
}

// Writer thread: hands the rounds written since the last call to the sync thread.
void LocalLogImpl::HandToSyncer() {
  if (unacked_.empty() && unpublished_.empty()) return;
  sync_inflight_.fetch_add(1);
  {
    std::lock_guard lock(sync_mu_);
    sync_queue_.push_back(
        SyncBatch{std::move(unpublished_), std::move(unacked_), Offset(next_offset_)});
  }
  unpublished_.clear();
  unacked_.clear();
  sync_cv_.notify_all();
}

// Writer thread: waits until the sync thread has made durable (or failed) all it was handed.
// The writer calls it before touching what the sync thread uses (rolling the active segment).
void LocalLogImpl::DrainSyncer() {
  if (!syncer_.joinable()) return;
  HandToSyncer();
  std::unique_lock lock(sync_mu_);
  sync_cv_.wait(lock, [&] { return sync_queue_.empty() && !sync_busy_; });
}

// Sync thread: one fdatasync per pass covers every batch handed over before it started.
void LocalLogImpl::SyncerLoop() {
  std::unique_lock lock(sync_mu_);
  for (;;) {
    sync_cv_.wait(lock, [&] { return !sync_queue_.empty() || sync_stop_; });
    if (sync_queue_.empty()) break;  // stopping, and nothing left
    std::vector<SyncBatch> batches;
    batches.swap(sync_queue_);
    sync_busy_ = true;
    lock.unlock();
    SyncBatch all;
    all.end = batches.back().end;
    for (auto& b : batches) {
      for (auto& f : b.frames)
        all.frames.push_back(f);
      for (auto& a : b.appends)
        all.appends.push_back(std::move(a));
    }
    SyncAndPublish(all.frames, all.appends, all.end).IgnoreError();  // reported to the appends
    if (sync_inflight_.fetch_sub(static_cast<int>(batches.size())) ==
        static_cast<int>(batches.size())) {
      // Nothing left in flight: what gathered during this fdatasync is the writer's next round.
      std::lock_guard writer_lock(mu_);
      if (!queue_.empty()) writer_cv_.notify_one();
    }
    lock.lock();
    sync_busy_ = false;
    sync_cv_.notify_all();
  }
}

// Writer thread. The old segment is made durable first, so only the last segment can ever hold
// a torn tail; the new file's directory entry is synced before any record goes into it.
Status LocalLogImpl::RollSegment() {
  SY_RETURN_IF_ERROR(SyncAndPublish());
  if (opt_.fsync == FsyncPolicy::kNever) {
    Status st = active_file_->Sync();
    if (!st.ok()) {
      EnterFailedState(st);
      return st;
    }
  }
  SY_RETURN_IF_ERROR(CutPreallocated());
  Offset base(next_offset_);
  std::string path = opt_.dir + "/" + SegmentFileName(base);
  SY_ASSIGN_OR_RETURN(auto file, opt_.env->OpenWritable(path, /*truncate=*/true));
  SY_RETURN_IF_ERROR(opt_.env->SyncDir(opt_.dir));
  SY_ASSIGN_OR_RETURN(auto seg, OpenSegmentForRead(base));
  active_file_ = std::move(file);
  active_ = seg;
  written_bytes_ = 0;
  ResetPreallocator();
  {
    std::lock_guard lock(segments_mu_);
    segments_.push_back(std::move(seg));
  }
  UpdateSizeGauges();
  logger_->debug("rolled to segment base={}", base.value());
  if (!reserve_held_) HoldReserve();
  Status st = EnforceRetention();
  if (!st.ok()) logger_->warn("retention failed: {}", st.ToString());
  return Status::Ok();
}

void LocalLogImpl::HoldReserve() {
  if (opt_.reserve_bytes == 0 || opt_.read_only || reserve_held_) return;
  const std::string path = opt_.dir + "/RESERVE";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : ::posix_fallocate(fd, 0, static_cast<off_t>(opt_.reserve_bytes));
  if (fd >= 0 && err == 0 && ::fdatasync(fd) != 0) err = errno;
  if (fd >= 0) ::close(fd);
  if (err != 0) {
    ::unlink(path.c_str());  // a part of it would only take space that others need
    logger_->warn(
        "cannot hold the log's reserve path={} bytes={} error={}; tried again at the "
        "next segment",
        path, opt_.reserve_bytes, std::strerror(err));
    return;
  }
  reserve_held_ = true;
  metrics_.reserve->Set(static_cast<double>(opt_.reserve_bytes));
  logger_->debug("holding the log's reserve path={} bytes={}", path, opt_.reserve_bytes);
}

bool LocalLogImpl::ReleaseReserve() {
  if (!reserve_held_) return false;
  const std::string path = opt_.dir + "/RESERVE";
  reserve_held_ = false;
  metrics_.reserve->Set(0);
  if (::unlink(path.c_str()) != 0) return false;
  logger_->warn(
      "disk full: released the log's reserve so that ingest goes on path={} bytes={}; "
      "free space, then the reserve is taken again at the next segment",
      path, opt_.reserve_bytes);
  return true;
}

void LocalLogImpl::ResetPreallocator() {
  if (!prealloc_) return;
  Status st = prealloc_->Reset(active_->path(), written_bytes_, opt_.segment_bytes);
  if (!st.ok()) logger_->warn("preallocation off for {}: {}", active_->path(), st.ToString());
}

// A closed segment (or a cleanly closed log's last one) ends exactly at its last frame: its
// preallocated zeros are cut, and the new size is synced before anything depends on it.
Status LocalLogImpl::CutPreallocated() {
  if (!prealloc_) return Status::Ok();
  prealloc_->Detach();
  Status st = active_file_->Truncate(written_bytes_);
  if (st.ok()) st = active_file_->Sync();
  if (!st.ok()) EnterFailedState(st);
  return st;
}

void LocalLogImpl::UpdateSizeGauges() {
  metrics_.segments->Set(static_cast<double>(SegmentCount()));
  metrics_.bytes->Set(static_cast<double>(total_bytes_.load()));
}

Status LocalLogImpl::Close() {
  std::lock_guard close_lock(close_mu_);
  if (closed_) return close_status_;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // its last round drained the sync thread
  {
    std::lock_guard lock(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  // Queued appends were written by the writer's last rounds; anything left (none expected) fails.
  std::vector<PendingAppend> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
    queue_bytes_ = 0;
    close_status_ = failed_;
  }
  FailAll(left, Unavailable("event log is closed"));
  {
    std::lock_guard lock(completion_mu_);
    completion_stop_ = true;
  }
  completion_cv_.notify_one();
  if (completer_.joinable()) completer_.join();  // every callback has run
  if (active_file_ != nullptr && close_status_.ok()) {
    close_status_ = prealloc_ ? CutPreallocated() : active_file_->Sync();
  }
  prealloc_.reset();
  readers_released_.store(true);
  { std::lock_guard lock(data_mu_); }
  data_cv_.notify_all();
  NotifyListeners();
  closed_ = true;
  logger_->log(opt_.read_only ? spdlog::level::debug : spdlog::level::info, "closed dir={} end={}",
               opt_.dir, EndOffset().value());
  return close_status_;
}

// ---------------------------------------------------------------------------------------------
// Retention

// Deletes closed segments from the oldest on, while one of these holds for the oldest:
//  - there is at least one named cursor and every committed cursor is at or past its end;
//  - retention_bytes is set and the log is larger than it;
//  - retention_age_ms is set and its newest record is older than that.
// The active segment is never deleted. A cap that deletes records a cursor has not committed
// pushes that cursor to the segment's end and counts the skipped events.
Status LocalLogImpl::EnforceRetention() {
  if (opt_.read_only) return FailedPrecondition("event log is opened read-only");
  std::lock_guard retention_lock(retention_mu_);
  auto segments = SegmentsSnapshot();
  if (segments.size() <= 1) return Status::Ok();
  std::vector<std::shared_ptr<ConsumerState>> consumers;
  {
    std::lock_guard lock(consumers_mu_);
    for (const auto& [name, state] : consumers_)
      consumers.push_back(state);
  }
  const int64_t now_ms = opt_.clock->Now().value();
  uint64_t total = total_bytes_.load();
  size_t deleted = 0;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    const auto& seg = segments[i];
    const Offset seg_end = segments[i + 1]->base();
    bool passed_by_cursors = !consumers.empty();
    for (const auto& c : consumers) {
      if (c->committed.load() < seg_end.value()) passed_by_cursors = false;
    }
    bool over_size = opt_.retention_bytes > 0 && total > opt_.retention_bytes;
    bool too_old = opt_.retention_age_ms > 0 &&
                   seg->max_received_at().value() < now_ms - opt_.retention_age_ms;
    if (!passed_by_cursors && !over_size && !too_old) break;
    if (!passed_by_cursors) {
      for (const auto& c : consumers) {
        std::lock_guard file_lock(c->file_mu);
        uint64_t committed = c->committed.load();
        if (committed >= seg_end.value()) continue;
        uint64_t skipped = seg_end.value() - std::max(committed, seg->base().value());
        logger_->error(
            "retention deleted events consumer={} had not committed: skipped={} "
            "segment_base={} reason={}; the consumer resumes at {}",
            c->name, skipped, seg->base().value(), over_size ? "size_cap" : "age_cap",
            seg_end.value());
        c->skipped->Inc(skipped);
        Status st = PersistConsumer(*c, seg_end);
        if (!st.ok()) return st;  // keep the segment: the cursor still points into it
      }
    }
    {
      std::lock_guard lock(segments_mu_);
      segments_.erase(segments_.begin());
      start_offset_.store(seg_end.value());
    }
    uint64_t seg_bytes = seg->durable_bytes();
    total -= std::min(total, seg_bytes);
    total_bytes_.fetch_sub(std::min(total_bytes_.load(), seg_bytes));
    Status st = opt_.env->RemoveFile(seg->path());
    if (!st.ok()) logger_->warn("could not delete segment path={}: {}", seg->path(), st.ToString());
    ++deleted;
  }
  if (deleted > 0) {
    SY_RETURN_IF_ERROR(opt_.env->SyncDir(opt_.dir));
    logger_->info("retention deleted segments={} start={}", deleted, StartOffset().value());
    UpdateSizeGauges();
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Cursors

// Caller holds state.file_mu.
Status LocalLogImpl::PersistConsumer(ConsumerState& state, Offset committed) {
  SY_RETURN_IF_ERROR(WriteFileAtomically(opt_.env, cursor_dir_ + "/" + state.name + kCursorSuffix,
                                         EncodeCursorFile(committed)));
  state.committed.store(committed.value());
  return Status::Ok();
}

Status LocalLogImpl::CommitConsumer(ConsumerState& state, Offset next) {
  if (next > EndOffset()) {
    return InvalidArgument("commit offset " + std::to_string(next.value()) +
                           " is past the log end " + std::to_string(EndOffset().value()));
  }
  std::lock_guard file_lock(state.file_mu);
  if (state.deleted.load()) return FailedPrecondition("cursor was deleted");
  return PersistConsumer(state, std::max(next, StartOffset()));
}

Result<std::unique_ptr<LogCursor>> LocalLogImpl::OpenCursor(std::string_view consumer) {
  if (opt_.read_only) {
    return FailedPrecondition("event log is opened read-only: named cursors are unavailable");
  }
  if (!ValidConsumerName(consumer)) {
    return InvalidArgument("invalid consumer name (want [A-Za-z0-9_.-]{1,128})");
  }
  std::lock_guard lock(consumers_mu_);
  auto it = consumers_.find(consumer);
  if (it == consumers_.end()) {
    auto state = NewConsumerState(std::string(consumer), StartOffset());
    {
      std::lock_guard file_lock(state->file_mu);
      SY_RETURN_IF_ERROR(PersistConsumer(*state, StartOffset()));
    }
    it = consumers_.emplace(std::string(consumer), std::move(state)).first;
  }
  Offset position(it->second->committed.load());
  return std::unique_ptr<LogCursor>(
      new LocalCursor(this, std::string(consumer), it->second, position));
}

Result<std::unique_ptr<LogCursor>> LocalLogImpl::OpenReader() {
  return std::unique_ptr<LogCursor>(new LocalCursor(this, "", nullptr, StartOffset()));
}

Status LocalLogImpl::DeleteCursor(std::string_view consumer) {
  if (opt_.read_only) return FailedPrecondition("event log is opened read-only");
  std::shared_ptr<ConsumerState> state;
  {
    std::lock_guard lock(consumers_mu_);
    auto it = consumers_.find(consumer);
    if (it == consumers_.end()) return NotFound("no cursor named " + std::string(consumer));
    state = it->second;
    consumers_.erase(it);
  }
  std::lock_guard file_lock(state->file_mu);
  state->deleted.store(true);
  SY_RETURN_IF_ERROR(opt_.env->RemoveFile(cursor_dir_ + "/" + state->name + kCursorSuffix));
  return opt_.env->SyncDir(cursor_dir_);
}

std::shared_ptr<Segment> LocalLogImpl::SegmentFor(Offset offset) const {
  std::lock_guard lock(segments_mu_);
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), offset,
                       [](Offset o, const std::shared_ptr<Segment>& s) { return o < s->base(); });
  if (it == segments_.begin()) return nullptr;
  return *std::prev(it);
}

std::shared_ptr<Segment> LocalLogImpl::NextSegment(const Segment& seg) const {
  std::lock_guard lock(segments_mu_);
  for (const auto& s : segments_) {
    if (s->base() > seg.base()) return s;
  }
  return nullptr;
}

bool LocalLogImpl::WaitForOffset(Offset position, std::chrono::milliseconds timeout) {
  // A read-only snapshot never grows.
  if (opt_.read_only) return published_end_->load() > position.value();
  std::unique_lock lock(data_mu_);
  data_cv_.wait_for(lock, timeout, [&] {
    return published_end_->load() > position.value() || readers_released_.load();
  });
  return published_end_->load() > position.value();
}

Offset LocalCursor::committed() const {
  return state_ ? Offset(state_->committed.load()) : Offset();
}

Result<std::vector<LogEntry>> LocalCursor::Read(size_t max_records, size_t max_bytes) {
  std::vector<LogEntry> out;
  if (position_ < log_->StartOffset()) position_ = log_->StartOffset();
  const Offset end = log_->EndOffset();
  size_t bytes = 0;
  max_records = std::max<size_t>(max_records, 1);
  if (rest_at_ < rest_.size() && rest_[rest_at_].offset != position_) DropRest();
  while (rest_at_ < rest_.size() && out.size() < max_records &&
         (out.empty() || bytes < max_bytes)) {
    LogEntry& e = rest_[rest_at_++];
    bytes += e.payload.size() + e.source.size() + e.message_id.size();
    position_ = e.offset.Next();
    out.push_back(std::move(e));
  }
  if (rest_at_ >= rest_.size()) DropRest();  // the hint points past that frame
  while (out.size() < max_records && position_ < end && (out.empty() || bytes < max_bytes)) {
    std::shared_ptr<Segment> seg;
    uint64_t pos = 0;
    if (hint_segment_ != nullptr && hint_offset_ == position_) {
      seg = hint_segment_;
      pos = hint_pos_;
    } else {
      seg = log_->SegmentFor(position_);
      if (seg == nullptr && position_ < log_->StartOffset()) {
        position_ = log_->StartOffset();  // deleted by retention meanwhile
        continue;
      }
      if (seg == nullptr) {
        return DataLoss("no segment holds offset " + std::to_string(position_.value()));
      }
      pos = seg->Locate(position_).file_pos;
    }
    // Loaded before the walk: a frame counted in seg_end is already within durable_bytes().
    const Offset seg_end = seg->end();
    // Walk frames until one holds position_.
    bool advanced = false;
    while (pos < seg->durable_bytes()) {
      SY_ASSIGN_OR_RETURN(FrameHeader header, seg->ReadHeader(pos));
      if (header.first_offset > position_.value()) {
        return DataLoss("offsets " + std::to_string(position_.value()) + ".." +
                        std::to_string(header.first_offset) + " are missing in " + seg->path());
      }
      if (header.end_offset() <= position_.value()) {
        pos += header.frame_size();
        continue;
      }
      SY_ASSIGN_OR_RETURN(auto entries, seg->ReadEntries(pos, header));
      size_t i = 0;
      for (; i < entries.size(); ++i) {
        LogEntry& e = entries[i];
        if (e.offset < position_) continue;
        if (out.size() >= max_records || (!out.empty() && bytes >= max_bytes)) break;
        bytes += e.payload.size() + e.source.size() + e.message_id.size();
        position_ = e.offset.Next();
        out.push_back(std::move(e));
      }
      if (i < entries.size()) {
        rest_ = std::move(entries);
        rest_at_ = i;
      }
      advanced = true;
      // The next frame, once position_ has passed this one (now or through rest_).
      hint_segment_ = seg;
      hint_pos_ = pos + header.frame_size();
      hint_offset_ = Offset(header.end_offset());
      break;
    }
    if (advanced) continue;
    // The segment has no durable frame holding position_.
    if (position_ < seg_end) {
      return DataLoss("offset " + std::to_string(position_.value()) + " is missing in " +
                      seg->path());
    }
    auto next = log_->NextSegment(*seg);
    if (next == nullptr) break;  // caught up with the durable end of the active segment
    hint_segment_ = next;
    hint_pos_ = 0;
    hint_offset_ = next->base();
    if (position_ < log_->StartOffset()) {
      // Retention deleted what lay ahead while we read; like Read's entry check, resume at the
      // oldest retained record.
      position_ = log_->StartOffset();
      continue;
    }
    if (next->base() != position_) {
      return DataLoss("offsets " + std::to_string(position_.value()) + ".." +
                      std::to_string(next->base().value()) + " are missing");
    }
  }
  return out;
}

bool LocalCursor::WaitForData(std::chrono::milliseconds timeout) {
  return log_->WaitForOffset(position_, timeout);
}

Status LocalCursor::Commit(Offset next) {
  if (state_ == nullptr) return FailedPrecondition("an ephemeral reader has no committed offset");
  return log_->CommitConsumer(*state_, next);
}

Status LocalCursor::Seek(Offset offset) {
  position_ = std::clamp(offset, log_->StartOffset(), log_->EndOffset());
  hint_segment_ = nullptr;
  DropRest();
  return Status::Ok();
}

// Lands on the first record, in offset order, whose received_at >= t (EndOffset() if none).
// Exact even though receive times are not monotonic: segments and index blocks whose newest
// record is older than t cannot hold such a record and are skipped; the rest are scanned frame by
// frame.
Status LocalCursor::SeekToTime(TimestampMs t) {
  hint_segment_ = nullptr;
  DropRest();
  for (const auto& seg : log_->SegmentsSnapshot()) {
    if (seg->max_received_at() < t) continue;
    auto entry = seg->LocateTime(t);
    if (!entry) continue;
    uint64_t pos = entry->file_pos;
    while (pos < seg->durable_bytes()) {
      SY_ASSIGN_OR_RETURN(FrameHeader header, seg->ReadHeader(pos));
      if (header.max_received_at >= t.value()) {
        SY_ASSIGN_OR_RETURN(auto entries, seg->ReadEntries(pos, header));
        for (const auto& e : entries) {
          if (e.received_at >= t) {
            position_ = std::max(e.offset, log_->StartOffset());
            return Status::Ok();
          }
        }
      }
      pos += header.frame_size();
    }
  }
  position_ = log_->EndOffset();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<LocalEventLog>> OpenLocalEventLog(LocalLogOptions options) {
  if (options.clock == nullptr) options.clock = SystemClock::Get();
  if (options.env == nullptr) options.env = Env::Default();
  auto log = std::make_unique<LocalLogImpl>(std::move(options));
  SY_RETURN_IF_ERROR(log->Open());
  return std::unique_ptr<LocalEventLog>(std::move(log));
}

Result<std::unique_ptr<EventLog>> OpenLocalLog(LocalLogOptions options) {
  SY_ASSIGN_OR_RETURN(auto log, OpenLocalEventLog(std::move(options)));
  return std::unique_ptr<EventLog>(std::move(log));
}

}  // namespace sy::log
