// Gzip for archive files. A file is a sequence of gzip members (RFC 1952 §2.2: "a gzip file
// consists of a series of members"), one per ~1 MiB of NDJSON, each starting and ending on a
// line boundary; `gzip -dc`, `zcat`, Python's gzip module and Athena read it as one stream.
// Members are compressed independently, so the writer can compress them on several threads.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

struct libdeflate_decompressor;  // <libdeflate.h>

namespace sy::archive {

// Appends `data` compressed as one complete gzip member to `*out`. `level` is zlib's (1 = fastest).
void AppendGzipMember(std::string_view data, int level, std::string* out);

// Decompresses every member of a gzip stream. kDataLoss on a corrupt or truncated stream.
Result<std::string> Gunzip(std::string_view gz);

// Decompresses a gzip stream one member at a time (libdeflate: a whole member per call), for a
// reader that consumes each member's bytes before the next, in a buffer it reuses: no
// whole-file buffer, so no fresh pages to fault in and no regrowth copies. Thread-compatible;
// `gz` must outlive the reader.
class GunzipReader {
 public:
  explicit GunzipReader(std::string_view gz);
  ~GunzipReader();
  GunzipReader(const GunzipReader&) = delete;
  GunzipReader& operator=(const GunzipReader&) = delete;

  bool done() const { return pos_ >= gz_.size(); }
  // Appends the next member's bytes to (*out)[*used, ...) and advances *used. `out->size()` is
  // the buffer's capacity, grown (never shrunk) as needed; bytes past *used are scratch.
  // kDataLoss on a corrupt or truncated member.
  Status NextMember(std::string* out, size_t* used);

 private:
  std::string_view gz_;
  size_t pos_ = 0;
  ::libdeflate_decompressor* d_;
};

}  // namespace sy::archive
