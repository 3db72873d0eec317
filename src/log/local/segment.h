// Segment: one file of the log, named by the offset of its first record, plus its sparse index.
//
// Thread safety: the writer thread calls AddDurableFrame; any thread may read. A reader only
// sees frames that AddDurableFrame published (durable ones), never bytes still being written.
// The file handle is a RandomAccessFile (pread), shared by all readers; it stays readable after
// retention unlinks the file for as long as a reader holds the Segment.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "base/types.h"
#include "log/local/frame.h"

namespace sy::log {

// "00000000000000001234.seg" for base offset 1234.
std::string SegmentFileName(Offset base);
// Parses a segment file name; nullopt for any other name.
std::optional<Offset> ParseSegmentFileName(const std::string& name);

// One sparse index entry: the frame at `file_pos` starts at `first_offset`; `max_received_at`
// is the newest receive time of that frame and every following frame up to the next entry.
struct SparseIndexEntry {
  uint64_t first_offset = 0;
  uint64_t file_pos = 0;
  int64_t max_received_at = 0;
};

// A new index entry is started once the previous one covers this many bytes.
inline constexpr uint64_t kIndexIntervalBytes = 4096;

class Segment {
 public:
  Segment(Offset base, std::string path, std::unique_ptr<RandomAccessFile> file);

  Offset base() const { return base_; }
  const std::string& path() const { return path_; }

  // Bytes of whole durable frames; readers never read past it.
  uint64_t durable_bytes() const { return durable_bytes_.load(std::memory_order_acquire); }
  // One past the last durable record (base() when empty).
  Offset end() const { return Offset(end_.load(std::memory_order_acquire)); }
  // Newest receive time in the segment; INT64_MIN when empty.
  TimestampMs max_received_at() const;

  // Writer thread (or recovery): the frame at `pos` with `header` is durable. Frames must be
  // added in file order.
  void AddDurableFrame(uint64_t pos, const FrameHeader& header);
  // Recovery of a closed segment whose index walk stopped early: readers may try up to
  // `file_bytes` (and will find the corruption) and the segment claims offsets up to `end`.
  void SetTrustedExtent(uint64_t file_bytes, Offset end);

  // The index entry to start a scan for `offset` (the last entry with first_offset <= offset).
  SparseIndexEntry Locate(Offset offset) const;
  // The first index entry whose block holds a record received at or after `t`.
  std::optional<SparseIndexEntry> LocateTime(TimestampMs t) const;

  // Reads and parses the frame header at `pos`; kDataLoss if it is not a valid header or the
  // frame would extend past the durable bytes.
  Result<FrameHeader> ReadHeader(uint64_t pos) const;
  // Reads the frame at `pos`, verifies its checksum and decodes it.
  Result<std::vector<LogEntry>> ReadEntries(uint64_t pos, const FrameHeader& header) const;

  const RandomAccessFile& file() const { return *file_; }

 private:
  const Offset base_;
  const std::string path_;
  const std::unique_ptr<RandomAccessFile> file_;

  mutable std::mutex mu_;
  std::vector<SparseIndexEntry> index_;  // guarded by mu_
  int64_t max_received_at_;              // guarded by mu_
  std::atomic<uint64_t> durable_bytes_{0};
  std::atomic<uint64_t> end_;
};

}  // namespace sy::log
