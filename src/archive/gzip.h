// Gzip for archive files. A file is a sequence of gzip members (RFC 1952 §2.2: "a gzip file
// consists of a series of members"), one per ~1 MiB of NDJSON, each starting and ending on a
// line boundary; `gzip -dc`, `zcat`, Python's gzip module and Athena read it as one stream.
// Members are compressed independently, so the writer can compress them on several threads.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

struct libdeflate_decompressor;  // <libdeflate.h>

namespace sy::archive {

// Appends `data` compressed as one complete gzip member to `*out`. `level` is zlib's (1 = fastest).
void AppendGzipMember(std::string_view data, int level, std::string* out);

// What one archive file may decompress to, at most (docs/security.md): an archive read stops
// with kDataLoss past it, so a gzip bomb in the store (deflate packs ~1,000:1) costs at most this
// much memory and time. Files this project writes stay far below it: archive.roll_size is at
// most 512 MiB of NDJSON per file (config), and one event more may follow.
inline constexpr size_t kMaxDecompressedArchiveBytes = size_t{1} << 30;

// Decompresses every member of a gzip stream. kDataLoss on a corrupt or truncated stream, and on
// one that decompresses to more than `max_bytes`.
Result<std::string> Gunzip(std::string_view gz, size_t max_bytes = kMaxDecompressedArchiveBytes);

// Decompresses a gzip stream one member at a time (libdeflate: a whole member per call), for a
// reader that consumes each member's bytes before the next, in a buffer it reuses: no
// whole-file buffer, so no fresh pages to fault in and no regrowth copies. Thread-compatible;
// `gz` must outlive the reader.
class GunzipReader {
 public:
  // Decompresses at most `max_bytes` over all members (kDataLoss past it).
  explicit GunzipReader(std::string_view gz, size_t max_bytes = kMaxDecompressedArchiveBytes);
  ~GunzipReader();
  GunzipReader(const GunzipReader&) = delete;
  GunzipReader& operator=(const GunzipReader&) = delete;

  bool done() const { return pos_ >= gz_.size(); }
  // Appends the next member's bytes to (*out)[*used, ...) and advances *used. `out->size()` is
  // the buffer's capacity, grown (never shrunk) as needed; bytes past *used are scratch.
  // kDataLoss on a corrupt or truncated member, or when the stream's output so far would pass
  // max_bytes (the buffer never grows to more than max_bytes for one member).
  Status NextMember(std::string* out, size_t* used);

 private:
  std::string_view gz_;
  size_t pos_ = 0;
  const size_t max_bytes_;
  size_t total_ = 0;  // bytes decompressed so far
  ::libdeflate_decompressor* d_;
};

}  // namespace sy::archive
