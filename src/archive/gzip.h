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

namespace sy::archive {

// Appends `data` compressed as one complete gzip member to `*out`. `level` is zlib's (1 = fastest).
void AppendGzipMember(std::string_view data, int level, std::string* out);

// Decompresses every member of a gzip stream. kDataLoss on a corrupt or truncated stream.
Result<std::string> Gunzip(std::string_view gz);

}  // namespace sy::archive
