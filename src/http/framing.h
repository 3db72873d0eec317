// The server's request framing rules, free of I/O: where a request header ends, which headers
// decide where its body ends (RFC 9112 §6), and what the server answers when they are wrong.
// The server's sessions and the HTTP framing fuzz target (tests/fuzz/http_framing_fuzz.cc) run
// these same functions, in the same order (see RequestFramer).
//
// Why so strict: a front proxy and this server must agree on where each request ends. When they
// do not (`Transfer-Encoding: chunked, identity`, two Content-Length fields, a folded
// Transfer-Encoding), bytes one of them took for a body are a second request to the other:
// request smuggling. Every ambiguous framing is refused with 400 (or 501 for a transfer coding
// the server does not implement) and the connection is closed.
//
// Thread safety: plain functions and values; a RequestFramer belongs to one connection.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sy::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;

// A request the server refuses: the status of the answer (400, 413, 431 or 501) and a reason
// for its body. The connection is closed after the answer.
struct FramingError {
  unsigned status = 400;
  std::string reason;
};

// Finds the end of a request header in `data` (the bytes received so far, starting at the
// request line): the offset just past its empty line, or 0 while the header is incomplete.
// `*scanned` carries the work done between calls over the same growing data (start it at 0),
// so a header arriving in many pieces is scanned once. Sets `*obs_fold` when a header line is
// continued on the next line (obs-fold, RFC 9112 §5.2: refused here, never unfolded).
size_t FindHeaderEnd(std::string_view data, size_t* scanned, bool* obs_fold);

// Checks the framing of a parsed request header and normalises its target, before any of the
// body is read (RFC 9112 §6.1–6.3, §3.2.2):
// - Transfer-Encoding: only in HTTP/1.1, never with Content-Length, `chunked` last (else 400);
//   codings other than a single `chunked` are not implemented (501).
// - Content-Length: exactly one field with one value; two fields are refused even when equal.
// - absolute-form target (`POST http://host/v1/track HTTP/1.1`): rewritten to its origin form
//   (`/v1/track`), and Host is set from it (the received Host is ignored, as §3.2.2 says).
std::optional<FramingError> CheckFraming(Request& request);

// The answer to a parser error: 413 over the body limit, 431 over the header limit, else 400.
FramingError ParseErrorAnswer(const boost::system::error_code& ec, uint64_t max_body_bytes);

// True for a read error that means the peer went away or was cut off (end of stream, reset,
// timeout, aborted): the connection is closed without an answer. Any other error is the
// client's malformed message, answered with ParseErrorAnswer.
bool PeerGone(const boost::system::error_code& ec);

// The whole sans-I/O sequence of one request, for callers that hold the bytes already (the
// fuzz target): header end and obs-fold, Beast's header parser with the limits, CheckFraming,
// then the body (Content-Length or chunked) with the body limit. The server's Session runs the
// same steps around its asynchronous reads.
class RequestFramer {
 public:
  struct Limits {
    uint64_t max_body_bytes = 500 * 1024;
    uint32_t max_header_bytes = 16 * 1024;
  };
  // kNeedMore: feed more bytes. kHeader: the header is parsed and passed CheckFraming (the
  // caller may answer `Expect: 100-continue` or reserve the body); feed again for the body.
  // kDone: request() is complete. kError: error() says the answer; the connection closes.
  enum class State { kNeedMore, kHeader, kDone, kError };

  explicit RequestFramer(Limits limits);
  // Consumes bytes from `buffer`: as many as the current request needs, the rest stays for the
  // next request (pipelining). Call with an empty buffer to continue after kHeader.
  State Feed(boost::beast::flat_buffer& buffer);
  bool header_done() const { return header_done_; }
  Request& request() { return parser_->get(); }
  Request Release() { return parser_->release(); }
  std::optional<uint64_t> content_length() const {
    auto len = parser_->content_length();
    return len ? std::optional<uint64_t>(*len) : std::nullopt;
  }
  const FramingError& error() const { return error_; }

 private:
  State Fail(FramingError e);
  Limits limits_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  size_t scanned_ = 0;
  bool header_done_ = false;
  FramingError error_;
};

}  // namespace sy::http
