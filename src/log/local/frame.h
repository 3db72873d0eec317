// Frame: the unit written to a segment file. One frame holds the records of one group commit
// (one or more Append calls). Layout, CRC coverage and limits: docs/formats/log.md.
//
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/types.h"
#include "log/event_log.h"

namespace sy::log {

inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderSize = 40;
inline constexpr size_t kRecordHeaderSize = 16;
// Upper bound on a frame body, so a corrupt length cannot make a reader allocate gigabytes.
inline constexpr uint32_t kMaxFrameBody = 512u << 20;
inline constexpr uint8_t kFrameFlagZstd = 0x01;
// Every record of the frame is followed by its headers (docs/formats/log.md). Set only on frames
// that hold a record with headers, so logs without them keep format 1 byte for byte.
inline constexpr uint8_t kFrameFlagHeaders = 0x02;
// Upper bound on one record's encoded headers.
inline constexpr uint32_t kMaxRecordHeaderBytes = 1u << 20;

// The fixed header of a frame (all integers little-endian on disk).
struct FrameHeader {
  uint32_t crc = 0;       // CRC-32C of header bytes [4, 40) and the stored body
  uint32_t body_len = 0;  // stored (possibly compressed) body bytes that follow the header
  uint8_t version = kFrameVersion;
  uint8_t flags = 0;  // kFrameFlagZstd
  uint32_t record_count = 0;
  uint64_t first_offset = 0;
  int64_t max_received_at = 0;
  uint32_t raw_len = 0;  // body bytes after decompression (== body_len when uncompressed)

  uint64_t end_offset() const { return first_offset + record_count; }
  uint64_t frame_size() const { return kFrameHeaderSize + body_len; }
};

// Appends one record's encoding to `body` (the uncompressed frame body); `with_headers` for a
// frame with kFrameFlagHeaders (then every record carries its headers, perhaps none).
void EncodeRecord(const LogRecord& record, std::string* body, bool with_headers = false);
// Bytes EncodeRecord will add (4 more for a record without headers in a frame with them).
size_t EncodedRecordSize(const LogRecord& record);

// Turns `frame` into a complete frame. On entry it holds kFrameHeaderSize placeholder bytes
// followed by the uncompressed body (records appended with EncodeRecord), so the body is built
// in place without a copy. With `zstd` the body is compressed (kept raw if compression does not
// shrink it); `zstd_ctx` is an optional reusable ZSTD_CCtx*.
void SealFrame(std::string* frame, uint64_t first_offset, uint32_t record_count,
               int64_t max_received_at, bool zstd, void* zstd_ctx, bool with_headers = false);

// Parses and sanity-checks a header (version, flags, lengths). Does not verify the CRC, which
// needs the body. kDataLoss when the bytes cannot be a header.
Result<FrameHeader> ParseFrameHeader(std::string_view bytes);

// Verifies the CRC of header+body, decompresses and decodes the records. kDataLoss on any
// mismatch. `frame` is the whole frame (header and stored body).
Result<std::vector<LogEntry>> DecodeFrame(const FrameHeader& header, std::string_view frame);

// Verifies only the CRC (recovery scan). `frame` as above.
bool FrameChecksumMatches(const FrameHeader& header, std::string_view frame);

}  // namespace sy::log
