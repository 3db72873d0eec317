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

namespace sy::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

struct PeerInfo {
  std::string ip;  // the TCP peer's address, without port
};

class Session;

// Sends the response for one request. Copyable; the first call wins, later calls are ignored.
class Responder {
 public:
  // The server's: answers request number `seq` of the session's connection.
  Responder(std::shared_ptr<Session> session, uint64_t seq);
  // For tests and in-process callers: `send` receives the response.
  explicit Responder(std::function<void(Response)> send);
  void operator()(Response response) const;

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
  int idle_timeout_seconds = 75;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, Handler* handler);
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, lets in-flight requests finish (up to `grace_ms`), closes idle
  // connections and joins the I/O threads. Idempotent.
  virtual void Stop(int grace_ms = 5000) = 0;
};

}  // namespace sy::http
