#include "http/framing.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include <cstring>
#include <vector>

namespace sy::http {
namespace {

bool IsOws(char c) {
  return c == ' ' || c == '\t';
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back()))
    s.remove_suffix(1);
  return s;
}

// tchar of RFC 9110 §5.6.2.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

FramingError Bad(std::string reason) {
  return FramingError{400, std::move(reason)};
}

// Rewrites an absolute-form target to origin form and takes Host from it (RFC 9112 §3.2.2).
std::optional<FramingError> NormaliseAbsoluteForm(Request& req) {
  std::string_view target = req.target();
  size_t scheme_len = 0;
  if (IStartsWith(target, "http://"))
    scheme_len = 7;
  else if (IStartsWith(target, "https://"))
    scheme_len = 8;
  else
    return std::nullopt;
  std::string_view rest = target.substr(scheme_len);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.empty()) return Bad("absolute-form request target without a host");
  // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
  if (authority.find('@') != std::string_view::npos)
    return Bad("request target with userinfo (user@host)");
  std::string path = end == std::string_view::npos ? std::string() : std::string(rest.substr(end));
  if (path.empty() || path.front() != '/') path.insert(0, "/");
  std::string host(authority);
  req.target(path);
  req.set(bhttp::field::host, host);
  return std::nullopt;
}

}  // namespace

size_t FindHeaderEnd(std::string_view data, size_t* scanned, bool* obs_fold) {
  size_t i = *scanned;
  while (i < data.size()) {
    const void* p = std::memchr(data.data() + i, '\n', data.size() - i);
    if (p == nullptr) {
      *scanned = data.size();
      return 0;
    }
    const size_t nl = static_cast<size_t>(static_cast<const char*>(p) - data.data());
    if (nl + 1 >= data.size()) {  // the byte after the line end decides: wait for it
      *scanned = nl;
      return 0;
    }
    const char next = data[nl + 1];
    if (next == ' ' || next == '\t') {  // a line continued on the next one
      *obs_fold = true;
      *scanned = nl;
      return 0;
    }
    // A bare LF ends the header too: Beast's parser then refuses the bare line ending with 400
    // instead of this server waiting for a CRLF CRLF that never comes.
    if (next == '\n') return nl + 2;
    if (next == '\r') {
      if (nl + 2 >= data.size()) {
        *scanned = nl;
        return 0;
      }
      if (data[nl + 2] == '\n') return nl + 3;
    }
    i = nl + 1;
  }
  *scanned = i;
  return 0;
}

std::optional<FramingError> CheckFraming(Request& req) {
  const size_t content_lengths = req.count(bhttp::field::content_length);
  if (content_lengths > 1) return Bad("more than one Content-Length field");
  if (content_lengths == 1 && req[bhttp::field::content_length].find(',') != std::string::npos)
    return Bad("Content-Length with more than one value");
  auto [te_first, te_end] = req.equal_range(bhttp::field::transfer_encoding);
  if (te_first != te_end) {
    if (req.version() < 11) return Bad("Transfer-Encoding in an HTTP/1.0 request");
    if (content_lengths > 0) return Bad("both Transfer-Encoding and Content-Length");
    std::vector<std::string_view> codings;
    for (auto it = te_first; it != te_end; ++it) {
      std::string_view value = it->value();
      while (true) {
        size_t comma = value.find(',');
        std::string_view element = TrimOws(value.substr(0, comma));
        if (!element.empty()) {
          std::string_view name = TrimOws(element.substr(0, element.find(';')));
          for (char c : name)
            if (!IsTokenChar(c)) return Bad("malformed Transfer-Encoding");
          if (name.empty()) return Bad("malformed Transfer-Encoding");
          codings.push_back(name);
        }
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
      }
    }
    if (codings.empty()) return Bad("empty Transfer-Encoding");
    if (!IEquals(codings.back(), "chunked"))
      return Bad("Transfer-Encoding without chunked as the final coding");
    if (codings.size() > 1) {
      for (size_t i = 0; i + 1 < codings.size(); ++i)
        if (IEquals(codings[i], "chunked")) return Bad("chunked applied more than once");
      return FramingError{501, "transfer codings other than chunked are not implemented"};
    }
  }
  return NormaliseAbsoluteForm(req);
}

FramingError ParseErrorAnswer(const boost::system::error_code& ec, uint64_t max_body_bytes) {
  if (ec == bhttp::error::body_limit)
    return {413, "request body exceeds " + std::to_string(max_body_bytes) + " bytes"};
  if (ec == bhttp::error::header_limit) return {431, "request header too large"};
  return {400, "malformed HTTP request: " + ec.message()};
}

bool PeerGone(const boost::system::error_code& ec) {
  if (ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category())
    return true;  // a socket error (reset, eof, aborted, timeout), not a parse error
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message;
}

RequestFramer::RequestFramer(Limits limits) : limits_(limits) {
  parser_.emplace();
  parser_->body_limit(limits_.max_body_bytes);
  parser_->header_limit(limits_.max_header_bytes);
}

RequestFramer::State RequestFramer::Fail(FramingError e) {
  error_ = std::move(e);
  return State::kError;
}

RequestFramer::State RequestFramer::Feed(boost::beast::flat_buffer& buffer) {
  if (!header_done_) {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (scanned_ == 0 && buffer.size() >= 2) {
      auto* d = static_cast<const char*>(buffer.data().data());
      if (d[0] != '\r' || d[1] != '\n') break;
      buffer.consume(2);
    }
    std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    bool obs_fold = false;
    size_t end = FindHeaderEnd(data, &scanned_, &obs_fold);
    if (obs_fold) return Fail(Bad("obsolete line folding in the request header"));
    if (end == 0) {
      if (data.size() > limits_.max_header_bytes) return Fail({431, "request header too large"});
      return State::kNeedMore;
    }
    boost::system::error_code ec;
    parser_->put(boost::asio::buffer(data.data(), end), ec);
    if (!ec && !parser_->is_header_done()) ec = bhttp::error::bad_line_ending;
    if (ec) return Fail(ParseErrorAnswer(ec, limits_.max_body_bytes));
    buffer.consume(end);
    header_done_ = true;
    if (auto e = CheckFraming(parser_->get())) return Fail(std::move(*e));
    parser_->eager(true);
    return parser_->is_done() ? State::kDone : State::kHeader;
  }
  while (!parser_->is_done()) {
    if (buffer.size() == 0) return State::kNeedMore;
    // Beast's chunk-header parser assumes at least 5 bytes once it has seen the last chunk's
    // size line (a debug assertion, found by http_framing_fuzz with 1-byte reads). Every chunked
    // body still to come holds at least the 5 bytes of "0\r\n\r\n" (Beast consumes no partial
    // chunk header), so waiting for 5 never stalls a valid request.
    if (parser_->chunked() && buffer.size() < 5) return State::kNeedMore;
    boost::system::error_code ec;
    size_t used = parser_->put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more) return State::kNeedMore;
    if (ec) return Fail(ParseErrorAnswer(ec, limits_.max_body_bytes));
    if (used == 0) return State::kNeedMore;
  }
  return State::kDone;
}

}  // namespace sy::http
