// HTTP/1.1 server on Boost.Beast/Asio: N I/O threads, one io_context and one SO_REUSEPORT
// acceptor each. It knows nothing about events: it parses requests and hands them to a Handler.
//
// Threads: Handler::Handle runs on an I/O thread and must not block. The Responder it receives
// may be called from any thread (for example the log's writer thread, once an append is
// durable); the response is written on the connection's own I/O thread.
#pragma once

#include <boost/beast/http.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

namespace sy {
class MetricsRegistry;
}

namespace sy::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

struct PeerInfo {
  std::string ip;  // the TCP peer's address, without port
};

class Session;

// A streamed response (e.g. Server-Sent Events): the head was written without a Content-Length
// and with `Connection: close`; the body is whatever is written until End() or until the
// connection ends. Thread-safe: Write may be called from any thread; the bytes are written in
// order on the connection's own I/O thread. Never blocks: a reader that falls behind fills the
// stream's bounded queue, and what does not fit is refused (the writer counts it) rather than
// waited for.
//
// The connection ends (and Write answers kClosed from then on) when the client closes it or
// sends anything (the server reads while it streams, so a client that leaves is noticed at
// once), when one write makes no progress for ServerOptions::send_timeout_ms, or when the
// server stops.
class Stream {
 public:
  enum class WriteResult { kQueued, kFull, kClosed };
  virtual ~Stream() = default;
  virtual WriteResult Write(std::string bytes) = 0;
  // Ends the response once what is queued is written, then closes the connection.
  virtual void End() = 0;
  // False once the connection has ended (client gone, timeout, server stop, End done).
  virtual bool open() const = 0;
};

// Sends the response for one request. Copyable; the first call wins, later calls are ignored.
class Responder {
 public:
  // The server's: answers request number `seq` of the session's connection.
  Responder(std::shared_ptr<Session> session, uint64_t seq);
  // For tests and in-process callers: `send` receives the response.
  explicit Responder(std::function<void(Response)> send);
  void operator()(Response response) const;
  // Answers with a streamed response instead: `head`'s status and fields (its body is ignored;
  // Content-Length and Transfer-Encoding are left out, `Connection: close` is added) are
  // written at once; the returned stream writes the body. At most `max_queued_bytes` wait to
  // be written; Write answers kFull past it. Only the server's responders stream: any other
  // (and a responder already used) answers nullptr, and for the in-process one `head` is sent
  // as a whole response.
  std::shared_ptr<Stream> StartStream(Response head, size_t max_queued_bytes = 256 * 1024) const;

 private:
  std::shared_ptr<Session> session_;  // the server's responders: no allocation per request
  uint64_t seq_ = 0;
  std::function<void(Response)> send_;
  std::shared_ptr<std::atomic<bool>> used_;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Called once per request on an I/O thread; must call `respond` exactly once, from any thread.
  virtual void Handle(Request&& request, const PeerInfo& peer, Responder respond) = 0;
  // Builds the answer to a request the server rejected before the handler saw it
  // (413 body too large, 400 malformed). Called on an I/O thread.
  virtual Response Reject(unsigned status, const std::string& reason, const Request& partial) = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                     // 0: any free port (see Server::port())
  int threads = 0;                       // 0: one per core
  uint64_t max_body_bytes = 500 * 1024;  // larger bodies get 413 without being read into memory
  uint32_t max_header_bytes = 16 * 1024;
  // Read timeouts, enforced by a sweep once a second (so up to a second late); each closes the
  // connection without an answer (config http.idle_timeout, header_timeout, body_timeout):
  //  - idle: a connection waits this long for the first byte of its next request;
  //  - header: a request's header must be complete this long after its first byte arrived (a
  //    client trickling header bytes — slowloris — holds its connection no longer);
  //  - body: a request's body must be complete this long after its header.
  int idle_timeout_ms = 75'000;
  int header_timeout_ms = 75'000;
  int body_timeout_ms = 30'000;
  // Open connections at most; past it a new connection is accepted and closed at once (counted
  // in switchyard_http_connections_refused_total): a flood of connections cannot use up the
  // descriptors the log, the warehouse and outbound HTTP need, and the accept loop never spins.
  // 0: MaxConnectionsFor(kDefaultDescriptorReserve).
  int max_connections = 0;
  // A response that makes no progress for this long (the client stopped reading: nginx's
  // send_timeout) closes the connection; without it a client that pipelines requests and never
  // reads holds its connection, its buffers and an I/O slot for ever.
  int send_timeout_ms = 30'000;
  // After an error answer that ends the connection before the request was read whole (413,
  // 400, 431, 501), the server stops sending and reads and discards what the client still sends
  // for up to this long and this many bytes, then closes: closing with unread bytes makes the
  // kernel send a reset, and the client then sees a broken pipe instead of its 413.
  int lingering_time_ms = 5'000;
  uint64_t lingering_max_bytes = 64ULL << 20;
  // TLS (HTTPS) on this listener: PEM files of the certificate chain and of its private key;
  // both empty: plain HTTP. TLS 1.2 and later; the handshake runs under header_timeout_ms, so a
  // client that never finishes it is closed like a slow header; a failed handshake (plain HTTP
  // sent to the port) closes the connection. Server::Start fails naming the file that does not
  // load, or a key that does not match the certificate.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Prefix of the I/O threads' names (`sy-io-0`, …), and the `listener` label of this server's
  // metrics: two servers in one process are told apart by both.
  std::string name = "public";
  std::string thread_name = "sy-io";
  MetricsRegistry* metrics = nullptr;  // optional: connection gauges and counters
};

// Descriptors every process keeps besides the connections when ServerOptions::max_connections
// is not given (the caller that knows its other needs passes its own reserve).
inline constexpr int kDefaultDescriptorReserve = 256;

// The soft descriptor limit (RLIMIT_NOFILE) minus `reserve`, and at least 16: a default for
// ServerOptions::max_connections that leaves `reserve` descriptors to everything else.
int MaxConnectionsFor(int reserve);

// The descriptor limit (RLIMIT_NOFILE) of this process.
struct DescriptorLimit {
  uint64_t soft_before = 0;  // the soft limit found
  uint64_t soft = 0;         // the soft limit now
  uint64_t hard = 0;
};
// Raises the soft descriptor limit to the hard limit (what nginx's worker_rlimit_nofile and
// systemd's services do): the connection cap derived from it (MaxConnectionsFor) then follows
// what the administrator allowed instead of the shell's default soft limit of 1024. Call once at
// start, before the connection cap is derived. Safe: the server waits with epoll and libcurl with
// poll, never select(). An error names the failed call; the limit is then unchanged.
Result<DescriptorLimit> RaiseDescriptorLimit();

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, Handler* handler);
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Open connections right now, and the cap in force (ServerOptions::max_connections resolved).
  virtual int connections() const = 0;
  virtual int max_connections() const = 0;
  // Stops accepting, lets in-flight requests finish (up to `grace_ms`), closes idle
  // connections and joins the I/O threads. Idempotent.
  virtual void Stop(int grace_ms = 5000) = 0;
};

}  // namespace sy::http
