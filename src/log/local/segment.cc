#include "log/local/segment.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <memory>

namespace sy::log {

std::string SegmentFileName(Offset base) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020" PRIu64 ".seg", base.value());
  return buf;
}

std::optional<Offset> ParseSegmentFileName(const std::string& name) {
  if (name.size() != 24 || name.substr(20) != ".seg") return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return Offset(v);
}

Segment::Segment(Offset base, std::string path, std::unique_ptr<RandomAccessFile> file)
    : base_(base),
      path_(std::move(path)),
      file_(std::move(file)),
      max_received_at_(std::numeric_limits<int64_t>::min()),
      end_(base.value()) {}

TimestampMs Segment::max_received_at() const {
  std::lock_guard lock(mu_);
  return TimestampMs(max_received_at_);
}

void Segment::AddDurableFrame(uint64_t pos, const FrameHeader& header) {
  {
    std::lock_guard lock(mu_);
    if (index_.empty() || pos - index_.back().file_pos >= kIndexIntervalBytes) {
      index_.push_back({header.first_offset, pos, header.max_received_at});
    } else {
      index_.back().max_received_at =
          std::max(index_.back().max_received_at, header.max_received_at);
    }
    max_received_at_ = std::max(max_received_at_, header.max_received_at);
  }
  durable_bytes_.store(pos + header.frame_size(), std::memory_order_release);
  end_.store(header.end_offset(), std::memory_order_release);
}

void Segment::SetTrustedExtent(uint64_t file_bytes, Offset end) {
  durable_bytes_.store(file_bytes, std::memory_order_release);
  end_.store(end.value(), std::memory_order_release);
}

SparseIndexEntry Segment::Locate(Offset offset) const {
  std::lock_guard lock(mu_);
  auto it =
      std::upper_bound(index_.begin(), index_.end(), offset.value(),
                       [](uint64_t o, const SparseIndexEntry& e) { return o < e.first_offset; });
  if (it == index_.begin()) return {base_.value(), 0, 0};
  return *std::prev(it);
}

std::optional<SparseIndexEntry> Segment::LocateTime(TimestampMs t) const {
  std::lock_guard lock(mu_);
  for (const auto& e : index_) {
    if (e.max_received_at >= t.value()) return e;
  }
  return std::nullopt;
}

Result<FrameHeader> Segment::ReadHeader(uint64_t pos) const {
  uint64_t limit = durable_bytes();
  if (pos + kFrameHeaderSize > limit) {
    return DataLoss("truncated frame header in " + path_ + " at byte " + std::to_string(pos));
  }
  char buf[kFrameHeaderSize];
  SY_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(pos, sizeof(buf), buf));
  if (n != sizeof(buf)) return DataLoss("short read of frame header in " + path_);
  auto header = ParseFrameHeader(std::string_view(buf, sizeof(buf)));
  if (!header.ok()) {
    return DataLoss(header.status().message() + " in " + path_ + " at byte " + std::to_string(pos));
  }
  if (pos + header->frame_size() > limit) {
    return DataLoss("frame extends past segment end in " + path_ + " at byte " +
                    std::to_string(pos));
  }
  return header;
}

Result<std::vector<LogEntry>> Segment::ReadEntries(uint64_t pos, const FrameHeader& header) const {
  // One buffer per reading thread, reused: frames are read whole, and a zero-filled buffer
  // per frame costs as much as the read.
  struct Buffer {
    std::unique_ptr<char[]> data;
    size_t cap = 0;
  };
  thread_local Buffer buffer;
  const size_t size = header.frame_size();
  if (buffer.cap < size) {
    buffer.data.reset(new char[size]);
    buffer.cap = size;
  }
  SY_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(pos, size, buffer.data.get()));
  if (n != size) return DataLoss("short read of frame in " + path_);
  auto entries = DecodeFrame(header, std::string_view(buffer.data.get(), size));
  if (!entries.ok()) {
    return DataLoss(entries.status().message() + " in " + path_ + " at byte " +
                    std::to_string(pos));
  }
  return entries;
}

}  // namespace sy::log
