#include "archive/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>

namespace sy::archive {

void AppendGzipMember(std::string_view data, int level, std::string* out) {
  z_stream z{};
  // 15 window bits + 16: a gzip header and trailer. memLevel 8 as zlib's default.
  deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  size_t start = out->size();
  size_t bound = deflateBound(&z, static_cast<uLong>(data.size())) + 32;
  out->resize(start + bound);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data() + start);
  z.avail_out = static_cast<uInt>(bound);
  int rc = deflate(&z, Z_FINISH);
  // deflateBound guarantees room for Z_FINISH in one call.
  if (rc != Z_STREAM_END) std::abort();
  out->resize(start + z.total_out);
  deflateEnd(&z);
}

// libdeflate decompresses a whole member into a buffer in one call, 2–3 times faster than zlib's
// streaming inflate (replay spends most of its archive-reading time here). It needs room for the
// whole member up front: the writer's members hold ~1 MiB of NDJSON each, so every member is
// given at least kMinRoom; a larger member (another writer's file, one member for everything)
// makes the call fail with LIBDEFLATE_INSUFFICIENT_SPACE and is decompressed again with twice
// the room — never more than what the reader may still produce (max_bytes), so a bomb fails
// once it has cost max_bytes, not 4 GiB.
namespace {
constexpr size_t kMinRoom = 4u << 20;
}  // namespace

GunzipReader::GunzipReader(std::string_view gz, size_t max_bytes)
    : gz_(gz), max_bytes_(max_bytes), d_(libdeflate_alloc_decompressor()) {}

GunzipReader::~GunzipReader() {
  if (d_ != nullptr) libdeflate_free_decompressor(d_);
}

Status GunzipReader::NextMember(std::string* out, size_t* used) {
  if (d_ == nullptr) return Internal("libdeflate_alloc_decompressor failed");
  const size_t allowed = max_bytes_ - total_;
  size_t room = std::min(kMinRoom, allowed);
  while (true) {
    if (out->size() - *used < room) out->resize(*used + room);
    const size_t avail = std::min(out->size() - *used, allowed);
    size_t in_bytes = 0, out_bytes = 0;
    libdeflate_result rc =
        libdeflate_gzip_decompress_ex(d_, gz_.data() + pos_, gz_.size() - pos_, out->data() + *used,
                                      avail, &in_bytes, &out_bytes);
    if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) {
      if (avail >= allowed) {
        return DataLoss("gzip data decompresses to more than " + std::to_string(max_bytes_) +
                        " bytes (the most an archive file is read to)");
      }
      room = std::min(2 * avail, allowed);
      continue;
    }
    if (rc != LIBDEFLATE_SUCCESS) {
      return DataLoss("corrupt or truncated gzip data in the member at byte " +
                      std::to_string(pos_));
    }
    pos_ += in_bytes;
    *used += out_bytes;
    total_ += out_bytes;
    return Status::Ok();
  }
}

Result<std::string> Gunzip(std::string_view gz, size_t max_bytes) {
  GunzipReader reader(gz, max_bytes);
  std::string out;
  // Archive members compress ~10–25x; start near the whole file's size to avoid regrowing.
  out.resize(std::min(std::max(kMinRoom, gz.size() * 8), max_bytes));
  size_t used = 0;
  while (!reader.done())
    SY_RETURN_IF_ERROR(reader.NextMember(&out, &used));
  out.resize(used);
  return out;
}

}  // namespace sy::archive
