// Object keys of the archive (docs/formats/archive.md):
//
//   <prefix><hh>/<source>/<yyyy-mm-dd>/<HH>/<first offset>-<last offset>.ndjson.gz
//
// <hh> is two lowercase hex digits of XXH3(source, first offset): it spreads writes over 256 key
// prefixes (S3 partitions by prefix), and is a pure function of the file's content, so a file
// rebuilt after a crash gets the same key and overwrites the same object. Offsets are written
// with 20 digits so that, within a source, key order is offset order. The date and hour are the
// UTC receive time of the file's first event.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/types.h"

namespace sy::archive {

struct ArchiveKey {
  std::string source;
  Offset first;
  Offset last;
  TimestampMs hour;  // start of the UTC hour of the first event (ms, multiple of 3'600'000)
};

// The two hex digits that spread a file's key.
std::string SpreadHash(std::string_view source, Offset first);

// The full object key (with `prefix` prepended verbatim).
std::string FormatKey(std::string_view prefix, std::string_view source, Offset first, Offset last,
                      TimestampMs first_received_at);

// Parses a key produced by FormatKey (after `prefix`); nullopt for anything else, including a
// key whose spread hash does not match its source and first offset.
std::optional<ArchiveKey> ParseKey(std::string_view prefix, std::string_view key);

}  // namespace sy::archive
