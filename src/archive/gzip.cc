#include "archive/gzip.h"

#include <zlib.h>

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

Result<std::string> Gunzip(std::string_view gz) {
  std::string out;
  size_t pos = 0;
  while (pos < gz.size()) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return Internal("inflateInit2 failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + pos));
    z.avail_in = static_cast<uInt>(gz.size() - pos);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      size_t have = out.size();
      size_t grow = std::max<size_t>(64 << 10, z.avail_in * 4);
      out.resize(have + grow);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + have);
      z.avail_out = static_cast<uInt>(grow);
      rc = inflate(&z, Z_NO_FLUSH);
      out.resize(have + grow - z.avail_out);
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && !(rc == Z_BUF_ERROR && z.avail_out == 0)) {
        inflateEnd(&z);
        return DataLoss("corrupt or truncated gzip data at byte " +
                        std::to_string(pos + z.total_in));
      }
      if (z.avail_in == 0 && z.avail_out != 0) {
        inflateEnd(&z);
        return DataLoss("truncated gzip data");
      }
    }
    pos += z.total_in;
    inflateEnd(&z);
  }
  return out;
}

}  // namespace sy::archive
