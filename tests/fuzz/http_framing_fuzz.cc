// libFuzzer target for the HTTP server's request framing (src/http/framing.h): the request
// header (header end, obs-fold, Beast's parser with limits), the framing rules of RFC 9112 §6
// (Transfer-Encoding, Content-Length, absolute-form targets), and the body (Content-Length or
// chunked) against the body limit, over a stream of pipelined requests fed in pieces as a
// socket would deliver them. The server's sessions run the same RequestFramer.
//
// Checks, besides memory safety: a request is never longer than the bytes fed; a refusal is one
// of 400, 413, 431, 501; a completed body respects the body limit; a request with ambiguous
// framing (Transfer-Encoding and Content-Length both) never completes.
#include <boost/beast/core/flat_buffer.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "http/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sy::http::RequestFramer;
  if (size < 1) return 0;
  // The first byte picks the piece size the bytes arrive in (1..256), like short reads.
  const size_t piece = static_cast<size_t>(data[0]) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestFramer::Limits limits;
  limits.max_body_bytes = 4096;
  limits.max_header_bytes = 2048;
  boost::beast::flat_buffer buffer;
  size_t fed = 0;
  int requests = 0;
  std::optional<RequestFramer> framer(std::in_place, limits);
  while (requests < 64) {
    RequestFramer::State state = framer->Feed(buffer);
    if (state == RequestFramer::State::kNeedMore || state == RequestFramer::State::kHeader) {
      if (state == RequestFramer::State::kHeader) continue;
      if (fed >= input.size()) break;
      size_t n = std::min(piece, input.size() - fed);
      auto dst = buffer.prepare(n);
      std::memcpy(dst.data(), input.data() + fed, n);
      buffer.commit(n);
      fed += n;
      continue;
    }
    if (state == RequestFramer::State::kError) {
      unsigned s = framer->error().status;
      if (s != 400 && s != 413 && s != 431 && s != 501) std::abort();
      break;  // the server closes the connection
    }
    // kDone
    sy::http::Request req = framer->Release();
    if (req.body().size() > limits.max_body_bytes) std::abort();
    if (req.body().size() > fed) std::abort();
    if (req.count(boost::beast::http::field::transfer_encoding) > 0 &&
        req.count(boost::beast::http::field::content_length) > 0)
      std::abort();
    if (!req.target().empty() && req.target().substr(0, 7) == "http://") std::abort();
    ++requests;
    framer.emplace(limits);
  }
  return 0;
}
