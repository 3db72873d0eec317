#include "log/local/frame.h"

#include <zstd.h>

#include <cstring>
#include <memory>

#include "base/coding.h"
#include "base/crc32c.h"

namespace sy::log {

size_t EncodedRecordSize(const LogRecord& record) {
  size_t headers = 0;
  for (const auto& h : record.headers)
    headers += 6 + h.key.size() + h.value.size();
  return kRecordHeaderSize + record.source.size() + record.message_id.size() +
         record.payload.size() + (record.headers.empty() ? 0 : 4 + headers);
}

// Record layout: i64 received_at, u16 source_len, u16 message_id_len, u32 payload_len, then the
// three byte strings. Source and message id are truncated to 65535 bytes (ingest limits them far
// below that).
void EncodeRecord(const LogRecord& record, std::string* body, bool with_headers) {
  std::string_view source(record.source.data(), std::min<size_t>(record.source.size(), 0xffff));
  std::string_view id(record.message_id.data(), std::min<size_t>(record.message_id.size(), 0xffff));
  PutFixed64(body, static_cast<uint64_t>(record.received_at.value()));
  PutFixed16(body, static_cast<uint16_t>(source.size()));
  PutFixed16(body, static_cast<uint16_t>(id.size()));
  PutFixed32(body, static_cast<uint32_t>(record.payload.size()));
  body->append(source);
  body->append(id);
  body->append(record.payload);
  if (!with_headers) return;
  // u32 headers_len, then per header: u16 key_len, u32 value_len, key, value. Keys are cut to
  // 255 bytes and values to 64 KiB, and a record's headers stop before kMaxRecordHeaderBytes.
  const size_t len_at = body->size();
  PutFixed32(body, 0);
  size_t len = 0;
  for (const auto& h : record.headers) {
    std::string_view key(h.key.data(), std::min<size_t>(h.key.size(), 255));
    std::string_view value(h.value.data(), std::min<size_t>(h.value.size(), 64 << 10));
    if (len + 6 + key.size() + value.size() > kMaxRecordHeaderBytes) break;
    PutFixed16(body, static_cast<uint16_t>(key.size()));
    PutFixed32(body, static_cast<uint32_t>(value.size()));
    body->append(key);
    body->append(value);
    len += 6 + key.size() + value.size();
  }
  EncodeFixed32(body->data() + len_at, static_cast<uint32_t>(len));
}

void SealFrame(std::string* frame, uint64_t first_offset, uint32_t record_count,
               int64_t max_received_at, bool zstd, void* zstd_ctx, bool with_headers) {
  const size_t raw_len = frame->size() - kFrameHeaderSize;
  uint8_t flags = with_headers ? kFrameFlagHeaders : 0;
  if (zstd && raw_len > 0) {
    std::string_view raw(frame->data() + kFrameHeaderSize, raw_len);
    std::string packed(kFrameHeaderSize + ZSTD_compressBound(raw_len), '\0');
    char* dst = packed.data() + kFrameHeaderSize;
    size_t cap = packed.size() - kFrameHeaderSize;
    size_t n = zstd_ctx != nullptr ? ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(zstd_ctx), dst, cap,
                                                       raw.data(), raw.size(), 1)
                                   : ZSTD_compress(dst, cap, raw.data(), raw.size(), 1);
    if (!ZSTD_isError(n) && n < raw_len) {
      packed.resize(kFrameHeaderSize + n);
      frame->swap(packed);
      flags |= kFrameFlagZstd;
    }
  }
  char* h = frame->data();
  std::memset(h, 0, kFrameHeaderSize);  // reserved bytes stay zero
  EncodeFixed32(h + 4, static_cast<uint32_t>(frame->size() - kFrameHeaderSize));
  h[8] = static_cast<char>(kFrameVersion);
  h[9] = static_cast<char>(flags);
  EncodeFixed32(h + 12, record_count);
  EncodeFixed64(h + 16, first_offset);
  EncodeFixed64(h + 24, static_cast<uint64_t>(max_received_at));
  EncodeFixed32(h + 32, static_cast<uint32_t>(raw_len));
  EncodeFixed32(h, crc32c::Value(h + 4, frame->size() - 4));
}

Result<FrameHeader> ParseFrameHeader(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderSize) return DataLoss("short frame header");
  const char* h = bytes.data();
  FrameHeader f;
  f.crc = DecodeFixed32(h);
  f.body_len = DecodeFixed32(h + 4);
  f.version = static_cast<uint8_t>(h[8]);
  f.flags = static_cast<uint8_t>(h[9]);
  f.record_count = DecodeFixed32(h + 12);
  f.first_offset = DecodeFixed64(h + 16);
  f.max_received_at = static_cast<int64_t>(DecodeFixed64(h + 24));
  f.raw_len = DecodeFixed32(h + 32);
  if (f.version != kFrameVersion) return DataLoss("unknown frame version");
  if ((f.flags & ~(kFrameFlagZstd | kFrameFlagHeaders)) != 0)
    return DataLoss("unknown frame flags");
  if (h[10] != 0 || h[11] != 0 || DecodeFixed32(h + 36) != 0) return DataLoss("reserved bytes set");
  if (f.body_len > kMaxFrameBody || f.raw_len > kMaxFrameBody) return DataLoss("frame too large");
  if (f.record_count == 0) return DataLoss("empty frame");
  if ((f.flags & kFrameFlagZstd) == 0 && f.raw_len != f.body_len) {
    return DataLoss("frame length mismatch");
  }
  if (static_cast<uint64_t>(f.record_count) * kRecordHeaderSize > f.raw_len) {
    return DataLoss("frame record count exceeds body");
  }
  return f;
}

bool FrameChecksumMatches(const FrameHeader& header, std::string_view frame) {
  if (frame.size() != header.frame_size()) return false;
  return crc32c::Value(frame.data() + 4, frame.size() - 4) == header.crc;
}

Result<std::vector<LogEntry>> DecodeFrame(const FrameHeader& header, std::string_view frame) {
  if (!FrameChecksumMatches(header, frame)) {
    return DataLoss("frame checksum mismatch at offset " + std::to_string(header.first_offset));
  }
  std::string_view body = frame.substr(kFrameHeaderSize);
  if ((header.flags & kFrameFlagZstd) != 0) {
    // Per reading thread: a decompression context and an output buffer, reused from frame to
    // frame (a fresh context and a zero-filled buffer per frame cost as much as decompressing).
    struct Scratch {
      ZSTD_DCtx* ctx = ZSTD_createDCtx();
      std::unique_ptr<char[]> buf;
      size_t cap = 0;
      ~Scratch() { ZSTD_freeDCtx(ctx); }
    };
    thread_local Scratch scratch;
    if (scratch.ctx == nullptr) return Internal("ZSTD_createDCtx failed");
    if (scratch.cap < header.raw_len) {
      scratch.buf.reset(new char[header.raw_len]);
      scratch.cap = header.raw_len;
    }
    size_t n = ZSTD_decompressDCtx(scratch.ctx, scratch.buf.get(), header.raw_len, body.data(),
                                   body.size());
    if (ZSTD_isError(n) || n != header.raw_len) return DataLoss("zstd frame does not decompress");
    body = std::string_view(scratch.buf.get(), header.raw_len);
  }
  std::vector<LogEntry> entries;
  entries.reserve(header.record_count);
  size_t pos = 0;
  for (uint32_t i = 0; i < header.record_count; ++i) {
    if (body.size() - pos < kRecordHeaderSize) return DataLoss("truncated record header");
    const char* r = body.data() + pos;
    int64_t received_at = static_cast<int64_t>(DecodeFixed64(r));
    size_t source_len = DecodeFixed16(r + 8);
    size_t id_len = DecodeFixed16(r + 10);
    size_t payload_len = DecodeFixed32(r + 12);
    pos += kRecordHeaderSize;
    if (body.size() - pos < source_len + id_len + payload_len) return DataLoss("truncated record");
    LogEntry e;
    e.offset = Offset(header.first_offset + i);
    e.received_at = TimestampMs(received_at);
    e.source.assign(body.data() + pos, source_len);
    pos += source_len;
    e.message_id.assign(body.data() + pos, id_len);
    pos += id_len;
    e.payload.assign(body.data() + pos, payload_len);
    pos += payload_len;
    if ((header.flags & kFrameFlagHeaders) != 0) {
      if (body.size() - pos < 4) return DataLoss("truncated record headers");
      const size_t headers_len = DecodeFixed32(body.data() + pos);
      pos += 4;
      if (headers_len > kMaxRecordHeaderBytes || body.size() - pos < headers_len)
        return DataLoss("truncated record headers");
      std::string_view hs(body.data() + pos, headers_len);
      pos += headers_len;
      while (!hs.empty()) {
        if (hs.size() < 6) return DataLoss("truncated record header");
        const size_t key_len = DecodeFixed16(hs.data());
        const size_t value_len = DecodeFixed32(hs.data() + 2);
        if (hs.size() - 6 < key_len + value_len) return DataLoss("truncated record header");
        e.headers.push_back(RecordHeader{std::string(hs.substr(6, key_len)),
                                         std::string(hs.substr(6 + key_len, value_len))});
        hs.remove_prefix(6 + key_len + value_len);
      }
    }
    entries.push_back(std::move(e));
  }
  if (pos != body.size()) return DataLoss("trailing bytes in frame");
  return entries;
}

}  // namespace sy::log
