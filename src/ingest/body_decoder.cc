#include "ingest/body_decoder.h"

#include <zlib.h>

#include <cctype>

namespace sy::ingest {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  while (!out.empty() && out.front() == ' ')
    out.erase(out.begin());
  return out;
}

Result<std::string> Inflate(std::string_view in, size_t max_bytes, int window_bits) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return Internal("inflateInit2 failed");
  std::string out;
  out.resize(std::min<size_t>(max_bytes + 1, std::max<size_t>(in.size() * 4, 4096)));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  size_t produced = 0;
  int rc = Z_OK;
  while (true) {
    if (produced == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(out.size() - produced);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members (allowed by RFC 1952): continue with the next one.
      if (zs.avail_in > 0 && window_bits > 15) {
        inflateReset(&zs);
        continue;
      }
      break;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // truncated input
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (produced > max_bytes) break;
  }
  inflateEnd(&zs);
  if (produced > max_bytes) {
    return ResourceExhausted("decompressed body exceeds " + std::to_string(max_bytes) + " bytes");
  }
  if (rc != Z_STREAM_END) return InvalidArgument("corrupt or truncated compressed body");
  out.resize(produced);
  return out;
}

}  // namespace

Result<std::string> DecodeBody(std::string_view content_encoding, std::string&& body,
                               size_t max_bytes) {
  std::string enc = Lower(content_encoding);
  if (enc.empty() || enc == "identity") {
    if (body.size() > max_bytes) {
      return ResourceExhausted("body exceeds " + std::to_string(max_bytes) + " bytes");
    }
    return std::move(body);
  }
  if (enc == "gzip" || enc == "x-gzip") return Inflate(body, max_bytes, 15 + 16);
  if (enc == "deflate") return Inflate(body, max_bytes, 15);  // zlib-wrapped, per RFC 9110
  return FailedPrecondition("unsupported Content-Encoding '" + std::string(content_encoding) +
                            "' (use gzip, deflate or none)");
}

}  // namespace sy::ingest
