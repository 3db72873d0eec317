// Preallocator: keeps the active segment zero-filled and synced ahead of the writer, so the
// fdatasync that acknowledges each round only has data pages to write.
//
// Why: an fdatasync after a write that extends a file must also make the new size and the newly
// allocated blocks durable — an inode write (ext4 without a journal writes it synchronously
// after the data) or a journal commit. Overwriting blocks that are already allocated, written
// and synced needs neither. PostgreSQL zero-fills its WAL segments for the same reason. On this
// project's VMs a 20 KB write + fdatasync took 2–4 × longer when it extended the file
// (docs/formats/log.md, "Preallocation").
//
// Only while frames are small: the inode write an extending fdatasync adds is one block, which
// matters next to a 10 KB frame of single events but not next to a 200 KB frame of batches,
// while zero-filling costs a copy and a write of every byte. So the thread fills only while the
// writer's recent frames average under kSmallFrameBytes (an exponential moving average).
//
// How: a thread fills [prepared, prepared + chunk) with zeros through its own file descriptor
// and fdatasyncs it, until `ahead` bytes past the writer's end are prepared (never past the
// segment's size limit). The writer's writes below `prepared` never overlap a fill; a write that
// reaches past it waits only while a fill is copying zeros over the same bytes into the page cache
// (the writer outran the thread; it never waits for the fill's fdatasync), otherwise it extends
// the file as without preallocation.
//
// Its own file descriptor matters: Linux reports a writeback error to one fsync per open file
// description, so a failed fdatasync here must not consume the error the log's own fdatasync
// has to see. A failed fill (a full disk, an I/O error) is logged and filling stops until the
// next segment; the log's own fdatasync reports what matters for the data.
//
// Thread safety: Reset, Detach, BeforeWrite and Written are called by the log's writer thread.
// prepared() is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/env.h"

namespace spdlog {
class logger;
}

namespace sy::log {

class Preallocator {
 public:
  // `ahead`: bytes to keep prepared past the writer's end; filled in pieces of min(ahead, 256 KiB).
  Preallocator(Env* env, uint64_t ahead, std::shared_ptr<spdlog::logger> logger);
  ~Preallocator();  // stops the thread
  Preallocator(const Preallocator&) = delete;
  Preallocator& operator=(const Preallocator&) = delete;

  // The active segment is now `path`, holding `written` bytes; zeros go at most up to `limit`.
  // Returns an error only if the file cannot be opened (preallocation then stays off for it).
  Status Reset(const std::string& path, uint64_t written, uint64_t limit);
  // Stops touching the current file (waits for a running fill): before the writer truncates it,
  // rolls to another segment or closes.
  void Detach();
  // About to write [pos, pos + len) of the current file: returns once no fill overlaps it.
  void BeforeWrite(uint64_t pos, uint64_t len);
  // The writer wrote a frame of `frame_bytes`, and its frames now end at `written`: wakes the
  // thread if it should fill further.
  void Written(uint64_t written, uint64_t frame_bytes);

  static constexpr uint64_t kSmallFrameBytes = 64 * 1024;

  // Bytes [0, prepared) of the current file are frames or synced zeros.
  uint64_t prepared() const { return prepared_.load(std::memory_order_acquire); }
  // Fills that found the writer waiting for them (the writer outran the thread).
  uint64_t waits() const { return waits_.load(); }

 private:
  void Run();
  bool ShouldFill() const;  // under mu_

  Env* const env_;
  const uint64_t ahead_;
  const uint64_t chunk_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::string zeros_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<WritableFile> file_;    // guarded by mu_; null while detached
  uint64_t generation_ = 0;               // guarded by mu_: bumped by Reset and Detach
  uint64_t limit_ = 0;                    // guarded by mu_
  uint64_t writer_end_ = 0;               // guarded by mu_: the writer's highest written byte
  uint64_t written_ = 0;                  // guarded by mu_
  std::atomic<uint64_t> avg_frame_{0};    // writer thread writes; moving average of frame sizes
  uint64_t fill_from_ = 0, fill_to_ = 0;  // guarded by mu_: the running fill (empty if none)
  bool filling_ = false;  // guarded by mu_: the zeros of [fill_from_, fill_to_) are being written
  bool busy_ = false;     // guarded by mu_: the thread uses file_ (writing or syncing)
  bool paused_ = false;   // guarded by mu_: after a failed fill, until Reset
  bool stop_ = false;     // guarded by mu_
  std::atomic<uint64_t> prepared_{0};
  std::atomic<uint64_t> waits_{0};
  std::thread thread_;
};

}  // namespace sy::log
