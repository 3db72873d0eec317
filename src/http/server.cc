#include "http/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
// Sockets bound to their io_context's own executor type: the default (any_io_executor) is
// type-erased, and copying and destroying it shows up in every asynchronous operation.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {
std::shared_ptr<spdlog::logger> Log() {
  static auto l = ModuleLogger("http");
  return l;
}
}  // namespace

using SteadyClock = std::chrono::steady_clock;

// Per-I/O-thread state. Only touched from its own thread.
struct Worker {
  asio::io_context io{1};
  std::optional<Acceptor> acceptor;
  std::list<std::weak_ptr<Session>> sessions;
  // Read timeouts are enforced by one sweep a second over the sessions, not by a timer per
  // read: arming a timer per operation costs a timerfd syscall per request.
  std::optional<asio::steady_timer> sweep;
  std::thread thread;
  // Answers handed over by other threads (the log's completion thread answers a whole round of
  // requests at once): queued here and written by one posted drain, so a round costs one post,
  // one handler allocation and at most one wake-up of this thread, not one per request.
  std::mutex replies_mu;
  std::vector<std::pair<std::shared_ptr<Session>, Response>> replies;  // guarded by replies_mu
  bool drain_posted = false;                                           // guarded by replies_mu
};

void DrainReplies(Worker* w);

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, Worker* worker, Handler* handler, const ServerOptions& options,
          std::atomic<int>* active, std::atomic<bool>* stopping)
      : socket_(std::move(socket)),
        worker_(worker),
        handler_(handler),
        options_(options),
        active_(active),
        stopping_(stopping) {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) peer_.ip = ep.address().to_string();
    socket_.set_option(tcp::no_delay(true), ec);
    // Beast reads max(512, free capacity) bytes at a time: with its default 512-byte start a
    // typical single-event request (~800 bytes) took two recv calls, every time, because the
    // buffer never needed to grow. 4 KiB reads most requests whole.
    buffer_.reserve(kReadBufferBytes);
  }

  void Start() { ReadHeader(); }

  // Answers request `seq` from any thread: the first answer wins; it is written on the
  // session's I/O thread (directly when called there, otherwise queued for the worker's drain).
  void Respond(uint64_t seq, Response response) {
    uint64_t expected = seq - 1;
    if (!answered_.compare_exchange_strong(expected, seq)) return;
    if (worker_->io.get_executor().running_in_this_thread()) return Send(std::move(response));
    bool post = false;
    {
      std::lock_guard lock(worker_->replies_mu);
      worker_->replies.emplace_back(shared_from_this(), std::move(response));
      post = !std::exchange(worker_->drain_posted, true);
    }
    if (post) asio::post(worker_->io, [w = worker_] { DrainReplies(w); });
  }

  // Called on the session's I/O thread.
  void Send(Response response) {
    bool keep_alive = keep_alive_ && !stopping_->load();
    out_.clear();
    Serialize(response, keep_alive, &out_);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->busy_ = false;
                        self->active_->fetch_sub(1);
                        if (ec || !keep_alive) return self->Close();
                        self->ReadHeader();
                      });
  }

  void CloseIfIdle() {
    if (!busy_) Close();
  }

  // Called by the worker's sweep: closes a connection whose current read is overdue (an idle
  // keep-alive connection, or a client sending a request too slowly).
  void CloseIfOverdue(SteadyClock::time_point now) {
    if (now > read_deadline_) {
      read_deadline_ = SteadyClock::time_point::max();
      Abort();
    }
  }

  bool open() const { return socket_.is_open(); }

 private:
  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(options_.max_header_bytes);
    read_deadline_ = SteadyClock::now() + std::chrono::seconds(options_.idle_timeout_seconds);
    bhttp::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    busy_ = true;
    active_->fetch_add(1);
    auto& req = parser_->get();
    // Declared too large: answer now, without reading the body.
    if (auto len = parser_->content_length(); len && *len > options_.max_body_bytes) {
      keep_alive_ = false;
      return Send(handler_->Reject(
          413, "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes", req));
    }
    // Room past the body's end for parsers that read ahead (simdjson wants 64 bytes), so the
    // handler need not copy the body into a larger buffer.
    if (auto len = parser_->content_length()) {
      req.body().reserve(static_cast<size_t>(*len) + kBodyPadding);
    }
    if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                       req.version());
      bhttp::async_write(socket_, *cont,
                         [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                           if (wec) return self->Abort();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // Small requests usually arrive whole with their header: parse the body from what is already
    // buffered and skip a second asynchronous read.
    if (buffer_.size() > 0 && !parser_->is_done()) {
      beast::error_code ec;
      parser_->eager(true);
      size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) ec = {};
      if (ec) return OnBody(ec);
    }
    if (parser_->is_done()) return OnBody({});
    read_deadline_ = SteadyClock::now() + std::chrono::seconds(kBodyTimeoutSeconds);
    bhttp::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return Send(handler_->Reject(
          413, "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes",
          parser_->get()));
    }
    if (ec) return Abort();
    read_deadline_ = SteadyClock::time_point::max();
    keep_alive_ = parser_->get().keep_alive();
    Request req = parser_->release();
    handler_->Handle(std::move(req), peer_, Responder(shared_from_this(), ++seq_));
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      // The declared Content-Length is over the limit: Beast refuses it with the header.
      busy_ = true;
      active_->fetch_add(1);
      keep_alive_ = false;
      return Send(handler_->Reject(
          413, "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes",
          parser_->get()));
    }
    if (ec == bhttp::error::header_limit) {
      busy_ = true;
      active_->fetch_add(1);
      keep_alive_ = false;
      return Send(handler_->Reject(431, "request header too large", parser_->get()));
    }
    // Malformed HTTP: answer 400 once, then close.
    busy_ = true;
    active_->fetch_add(1);
    keep_alive_ = false;
    Send(handler_->Reject(400, "malformed HTTP request: " + ec.message(), parser_->get()));
  }

  void Abort() {
    if (busy_) {
      busy_ = false;
      active_->fetch_sub(1);
    }
    Close();
  }

  void Close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // Writes the response's bytes into `out` in one piece for a single write: the status line,
  // the handler's fields, Content-Length (not for 1xx, 204 and 304, which have no body) and the
  // Connection field this server decides; a Content-Length, Transfer-Encoding or Connection
  // field set by the handler is replaced.
  static void Serialize(const Response& res, bool keep_alive, std::string* out) {
    const unsigned status = res.result_int();
    const bool http10 = res.version() == 10;
    out->append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    out->append(std::to_string(status));
    out->push_back(' ');
    std::string_view reason = res.reason();
    out->append(reason.data(), reason.size());
    out->append("\r\n");
    for (const auto& f : res) {
      auto name = f.name();
      if (name == bhttp::field::content_length || name == bhttp::field::transfer_encoding ||
          name == bhttp::field::connection) {
        continue;
      }
      out->append(f.name_string().data(), f.name_string().size());
      out->append(": ");
      out->append(f.value().data(), f.value().size());
      out->append("\r\n");
    }
    const bool no_body = status < 200 || status == 204 || status == 304;
    if (!no_body) {
      out->append("Content-Length: ");
      out->append(std::to_string(res.body().size()));
      out->append("\r\n");
    }
    if (!keep_alive && !http10) out->append("Connection: close\r\n");
    if (keep_alive && http10) out->append("Connection: keep-alive\r\n");
    out->append("\r\n");
    if (!no_body) out->append(res.body());
  }

  static constexpr int kBodyTimeoutSeconds = 30;
  static constexpr size_t kBodyPadding = 64;
  static constexpr size_t kReadBufferBytes = 4096;
  Socket socket_;
  std::string out_;                    // the response being written
  uint64_t seq_ = 0;                   // requests handed to the handler; I/O thread only
  std::atomic<uint64_t> answered_{0};  // the last request answered (see Respond)
  SteadyClock::time_point read_deadline_ = SteadyClock::time_point::max();  // while reading
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Worker* worker_;
  Handler* handler_;
  const ServerOptions& options_;
  std::atomic<int>* active_;
  std::atomic<bool>* stopping_;
  PeerInfo peer_;
  bool keep_alive_ = true;
  bool busy_ = false;  // a request is being handled or answered
};

// On the worker's I/O thread: writes every queued answer.
void DrainReplies(Worker* w) {
  std::vector<std::pair<std::shared_ptr<Session>, Response>> batch;
  {
    std::lock_guard lock(w->replies_mu);
    batch.swap(w->replies);
    w->drain_posted = false;
  }
  for (auto& [session, response] : batch)
    session->Send(std::move(response));
}

Responder::Responder(std::shared_ptr<Session> session, uint64_t seq)
    : session_(std::move(session)), seq_(seq) {}

Responder::Responder(std::function<void(Response)> send)
    : send_(std::move(send)), used_(std::make_shared<std::atomic<bool>>(false)) {}

void Responder::operator()(Response response) const {
  if (session_) return session_->Respond(seq_, std::move(response));
  if (used_->exchange(true)) return;
  send_(std::move(response));
}

namespace {

class BeastServer final : public Server {
 public:
  BeastServer(const ServerOptions& options, Handler* handler)
      : options_(options), handler_(handler) {}
  ~BeastServer() override { Stop(0); }

  Status Listen() {
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    beast::error_code ec;
    auto addr = asio::ip::make_address(options_.host, ec);
    if (ec) return InvalidArgument("bad listen address '" + options_.host + "': " + ec.message());
    uint16_t port = options_.port;
    for (int i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->acceptor.emplace(w->io.get_executor());
      tcp::endpoint ep(addr, port);
      w->acceptor->open(ep.protocol(), ec);
      if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) w->acceptor->set_option(ReusePort(true), ec);
      if (!ec) w->acceptor->bind(ep, ec);
      if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        return Unavailable("cannot listen on " + options_.host + ":" + std::to_string(port) + ": " +
                           ec.message());
      }
      port = w->acceptor->local_endpoint().port();
      workers_.push_back(std::move(w));
    }
    port_ = port;
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker* w = workers_[i].get();
      Accept(w);
      w->sweep.emplace(w->io);
      Sweep(w);
      w->thread = std::thread([w, i] {
        SetThreadName("sy-io-" + std::to_string(i));
        w->io.run();
      });
    }
    Log()->info("listening address={}:{} io_threads={}", options_.host, port_, n);
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Stop(int grace_ms) override {
    if (stopped_.exchange(true)) return;
    stopping_ = true;
    for (auto& w : workers_) {
      asio::post(w->io, [wp = w.get()] {
        beast::error_code ec;
        if (wp->acceptor) wp->acceptor->close(ec);
        if (wp->sweep) wp->sweep->cancel();
        for (auto& ws : wp->sessions)
          if (auto s = ws.lock()) s->CloseIfIdle();
      });
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (active_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& w : workers_)
      w->io.stop();
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
  }

 private:
  void Sweep(Worker* w) {
    w->sweep->expires_after(std::chrono::seconds(1));
    w->sweep->async_wait([this, w](beast::error_code ec) {
      if (ec || stopped_.load()) return;
      auto now = SteadyClock::now();
      w->sessions.remove_if([](const std::weak_ptr<Session>& p) { return p.expired(); });
      for (auto& ws : w->sessions)
        if (auto s = ws.lock()) s->CloseIfOverdue(now);
      Sweep(w);
    });
  }

  void Accept(Worker* w) {
    w->acceptor->async_accept([this, w](beast::error_code ec, Socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !w->acceptor->is_open()) return;
        Log()->warn("accept failed error={}", ec.message());
      } else {
        auto s = std::make_shared<Session>(std::move(socket), w, handler_, options_, &active_,
                                           &stopping_);
        w->sessions.push_back(s);  // the sweep forgets sessions that ended
        s->Start();
      }
      Accept(w);
    });
  }

  ServerOptions options_;
  Handler* handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Handler* handler) {
  auto server = std::make_unique<BeastServer>(options, handler);
  SY_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace sy::http
