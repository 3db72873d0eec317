#include "http/server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "http/framing.h"

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
std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("http");
  return l;
}
}  // namespace

using SteadyClock = std::chrono::steady_clock;

// What a server shares with its sessions. Lives as long as the server.
struct ServerShared {
  ServerShared(const ServerOptions& o, Handler* h) : options(o), handler(h) {}
  const ServerOptions& options;
  Handler* handler;
  std::atomic<int> active{0};       // requests being handled or answered
  std::atomic<int> connections{0};  // open connections (sessions whose socket is open)
  std::atomic<bool> stopping{false};
  // TLS (ServerOptions::tls_cert_file): the context every session's handshake uses; null for
  // plain HTTP. Owned by the server.
  asio::ssl::context* tls = nullptr;
  Counter* tls_handshake_failures = nullptr;  // null without a metrics registry or TLS
  Counter* send_timeouts = nullptr;           // null without a metrics registry
  Counter* lingering_closes = nullptr;        // null without a metrics registry
};

// Per-I/O-thread state. Only touched from its own thread.
struct Worker {
  asio::io_context io{1};
  std::optional<Acceptor> acceptor;
  // Armed while accepting is paused after the process ran out of descriptors.
  std::optional<asio::steady_timer> accept_pause;
  std::list<std::weak_ptr<Session>> sessions;
  // Read, send and lingering timeouts are enforced by one sweep a second over the sessions,
  // not by a timer per operation: arming a timer per operation costs a timerfd syscall per
  // request.
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

// What a streamed response's writers (any thread) share with its session (the I/O thread).
struct StreamState {
  explicit StreamState(size_t max_bytes) : max_queued_bytes(max_bytes) {}
  const size_t max_queued_bytes;
  std::mutex mu;
  std::deque<std::string> queue;  // bytes not yet handed to the socket; guarded by mu
  size_t queued_bytes = 0;        // their size, but for the head; guarded by mu
  bool closed = false;            // the connection ended; guarded by mu
  bool ended = false;             // End() was called; guarded by mu
  bool pump_posted = false;       // a Pump is posted to the I/O thread; guarded by mu
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, Worker* worker, ServerShared* shared)
      : socket_(std::move(socket)),
        worker_(worker),
        shared_(shared),
        options_(shared->options),
        limits_{options_.max_body_bytes, options_.max_header_bytes} {
    shared_->connections.fetch_add(1);
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) peer_.ip = ep.address().to_string();
    socket_.set_option(tcp::no_delay(true), ec);
    if (shared_->tls) tls_.emplace(socket_, *shared_->tls);
    // Beast reads max(512, free capacity) bytes at a time: with its default 512-byte start a
    // typical single-event request (~800 bytes) took two recv calls, every time, because the
    // buffer never needed to grow. 4 KiB reads most requests whole.
    buffer_.reserve(kReadBufferBytes);
  }
  ~Session() { Close(); }

  // With TLS the handshake comes first, under the header timeout: a client that opens the
  // connection and never finishes its handshake is closed by the sweep like a slow header (the
  // handshake is asynchronous: it holds no I/O thread meanwhile). A failed handshake (plain HTTP
  // sent to the TLS port, an old protocol version) closes the connection without an answer.
  void Start() {
    if (!tls_) return ReadHeader();
    phase_ = Phase::kReading;
    header_started_ = true;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.header_timeout_ms);
    tls_->async_handshake(
        asio::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
          if (ec) {
            if (self->shared_->tls_handshake_failures) self->shared_->tls_handshake_failures->Inc();
            SY_LOG_RATE_LIMITED(Logger(), debug, "TLS handshake failed peer={} error={}",
                                self->peer_.ip, ec.message());
            return self->Abort();
          }
          self->ReadHeader();
        });
  }

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

  // Answers request `seq` with a streamed response, from any thread (see Responder::StartStream).
  std::shared_ptr<Stream> StartStream(uint64_t seq, const Response& head, size_t max_queued_bytes);

  // Called on the session's I/O thread.
  void Send(Response response) {
    if (!socket_.is_open()) return Finish();  // cut off (send timeout, stop) meanwhile
    bool keep_alive = keep_alive_ && !shared_->stopping.load();
    out_.clear();
    Serialize(response, keep_alive, &out_);
    phase_ = Phase::kWriting;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.send_timeout_ms);
    OnStream([&](auto& stream) {
      asio::async_write(
          stream, asio::buffer(out_),
          // Called before the first write and after each partial one: progress moves the
          // deadline, so only a response that stops moving times out (a large one on a slow
          // link does not).
          [this](const beast::error_code& ec, size_t written) -> size_t {
            if (ec) return 0;
            if (written > 0 && written < out_.size())
              deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.send_timeout_ms);
            return out_.size() - written;
          },
          [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
            self->Finish();
            if (ec) return self->Close();
            if (!keep_alive) return self->linger_ ? self->LingeringClose() : self->Close();
            self->ReadHeader();
          });
    });
  }

  // Server stop: closes the connection unless a request is being answered. A streamed
  // response has no end of its own, so it ends here.
  void CloseIfIdle() {
    if (phase_ == Phase::kStreaming) return Abort();
    if (!busy_) Close();
  }

  // Schedules Pump on the I/O thread (any thread; the caller holds the stream's mutex).
  void PostPump() {
    asio::post(worker_->io, [self = shared_from_this()] { self->Pump(); });
  }

  // After the server's I/O threads ended (Stop): writers see the stream closed from now on, so
  // none of them reaches for this session (or its worker) again.
  void MarkStreamClosed() {
    if (!stream_) return;
    std::lock_guard lock(stream_->mu);
    stream_->closed = true;
    stream_->queue.clear();
  }

  // Called by the worker's sweep: closes a connection whose read, write or lingering close is
  // overdue (an idle keep-alive connection, a client sending a request too slowly, a client
  // that does not read its responses).
  void CloseIfOverdue(SteadyClock::time_point now) {
    if (now <= deadline_) return;
    deadline_ = SteadyClock::time_point::max();
    if (phase_ == Phase::kWriting || phase_ == Phase::kStreaming) {
      if (shared_->send_timeouts) shared_->send_timeouts->Inc();
      SY_LOG_RATE_LIMITED(Logger(), info, "send timeout: closing peer={} timeout_ms={}", peer_.ip,
                          options_.send_timeout_ms);
    }
    Abort();
  }

  bool open() const { return socket_.is_open(); }

 private:
  enum class Phase { kReading, kHandling, kWriting, kLingering, kStreaming };

  // Runs `op` on the connection's byte stream: the TLS stream over the socket, or the socket.
  template <class Op>
  void OnStream(Op&& op) {
    if (tls_) {
      op(*tls_);
    } else {
      op(socket_);
    }
  }

  // On the I/O thread: the head of a streamed response is queued; from now on the session
  // writes what its writers queue and reads only to notice the client leaving.
  void BeginStream(std::shared_ptr<StreamState> state) {
    stream_ = std::move(state);
    if (!socket_.is_open() || shared_->stopping.load()) return Abort();
    phase_ = Phase::kStreaming;
    keep_alive_ = false;
    deadline_ = SteadyClock::time_point::max();
    buffer_.consume(buffer_.size());
    WatchForLeaving();
    Pump();
  }

  // Reads while streaming: the client sends nothing more, so EOF or an error means it left.
  // Whatever it does send is discarded.
  void WatchForLeaving() {
    OnStream([&](auto& stream) {
      stream.async_read_some(buffer_.prepare(kReadBufferBytes),
                             [self = shared_from_this()](beast::error_code ec, size_t n) {
                               self->buffer_.commit(n);
                               self->buffer_.consume(self->buffer_.size());
                               if (ec) return self->Abort();
                               self->WatchForLeaving();
                             });
    });
  }

  // On the I/O thread: writes everything queued in one write, then looks again; when nothing
  // is queued and the writer ended the stream, closes the connection.
  void Pump() {
    bool end = false;
    {
      std::lock_guard lock(stream_->mu);
      stream_->pump_posted = false;
      if (writing_ || stream_->closed) return;
      if (stream_->queue.empty()) {
        end = stream_->ended;
      } else {
        out_.clear();
        for (std::string& chunk : stream_->queue)
          out_.append(chunk);
        stream_->queue.clear();
        stream_->queued_bytes = 0;
      }
    }
    if (end) return Abort();
    if (out_.empty()) {
      deadline_ = SteadyClock::time_point::max();
      return;
    }
    writing_ = true;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.send_timeout_ms);
    OnStream([&](auto& stream) {
      asio::async_write(
          stream, asio::buffer(out_),
          [this](const beast::error_code& ec, size_t written) -> size_t {
            if (ec) return 0;
            if (written > 0 && written < out_.size())
              deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.send_timeout_ms);
            return out_.size() - written;
          },
          [self = shared_from_this()](beast::error_code ec, size_t) {
            self->writing_ = false;
            self->out_.clear();
            if (ec) return self->Abort();
            self->Pump();
          });
    });
  }

  void ReadHeader() {
    framer_.emplace(limits_);
    phase_ = Phase::kReading;
    header_done_ = false;
    // A pipelined request may already be buffered whole: its header has started.
    header_started_ = buffer_.size() > 0;
    deadline_ =
        SteadyClock::now() + std::chrono::milliseconds(header_started_ ? options_.header_timeout_ms
                                                                       : options_.idle_timeout_ms);
    if (header_started_) return Parse();
    ReadMore();
  }

  void ReadMore() {
    OnStream([&](auto& stream) {
      stream.async_read_some(buffer_.prepare(beast::read_size(buffer_, kMaxReadBytes)),
                             [self = shared_from_this()](beast::error_code ec, size_t n) {
                               self->buffer_.commit(n);
                               if (ec) return self->OnReadError(ec);
                               self->OnBytes(n);
                               self->Parse();
                             });
    });
  }

  // The first bytes of a request end the idle wait and start the header timeout.
  void OnBytes(size_t n) {
    if (n == 0 || header_started_ || header_done_ || phase_ != Phase::kReading) return;
    header_started_ = true;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.header_timeout_ms);
  }

  // Runs the framer over what is buffered and acts on its verdict.
  void Parse() {
    for (;;) {
      switch (framer_->Feed(buffer_)) {
        case RequestFramer::State::kNeedMore:
          return ReadMore();
        case RequestFramer::State::kError:
          return Reject(framer_->error());
        case RequestFramer::State::kHeader:
          if (!OnHeader()) return;
          continue;
        case RequestFramer::State::kDone:
          Begin();
          return OnRequest();
      }
    }
  }

  // The header is parsed and its framing checked; the body follows. False when the session
  // continues asynchronously (writing 100 Continue).
  bool OnHeader() {
    Begin();
    // Room past the body's end for parsers that read ahead (simdjson wants 64 bytes), so the
    // handler need not copy the body into a larger buffer.
    if (auto len = framer_->content_length())
      framer_->request().body().reserve(static_cast<size_t>(*len) + kBodyPadding);
    header_done_ = true;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.body_timeout_ms);
    if (buffer_.size() == 0 &&
        beast::iequals(framer_->request()[bhttp::field::expect], "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
          bhttp::status::continue_, framer_->request().version());
      OnStream([&](auto& stream) {
        bhttp::async_write(stream, *cont,
                           [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                             if (wec) return self->Abort();
                             self->Parse();
                           });
      });
      return false;
    }
    return true;
  }

  // A request is in progress from its parsed header (or its refusal) to the end of its answer.
  void Begin() {
    if (busy_) return;
    busy_ = true;
    shared_->active.fetch_add(1);
  }

  void Finish() {
    if (!busy_) return;
    busy_ = false;
    shared_->active.fetch_sub(1);
  }

  void OnRequest() {
    phase_ = Phase::kHandling;
    deadline_ = SteadyClock::time_point::max();
    Request req = framer_->Release();
    keep_alive_ = req.keep_alive();
    shared_->handler->Handle(std::move(req), peer_, Responder(shared_from_this(), ++seq_));
  }

  void OnReadError(beast::error_code ec) {
    // The peer went away (or the sweep cut it off): nothing to answer. A body cut short is the
    // same: the request was never whole.
    if (PeerGone(ec)) return Abort();
    Reject(ParseErrorAnswer(ec, options_.max_body_bytes));
  }

  // Answers a refused request (bad framing, over a limit) and ends the connection with a
  // lingering close: what the client still sends is read and dropped for a bounded time, so
  // that it reads its answer instead of a reset.
  void Reject(const FramingError& error) {
    Begin();
    keep_alive_ = false;
    linger_ = true;
    SY_LOG_RATE_LIMITED(Logger(), debug, "refused request peer={} status={} reason={}", peer_.ip,
                        error.status, error.reason);
    Send(shared_->handler->Reject(error.status, error.reason, framer_->request()));
  }

  void LingeringClose() {
    if (options_.lingering_time_ms <= 0) return Close();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);  // the client reads our answer, then EOF
    if (ec) return Close();
    if (shared_->lingering_closes) shared_->lingering_closes->Inc();
    phase_ = Phase::kLingering;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(options_.lingering_time_ms);
    buffer_.consume(buffer_.size());
    Discard();
  }

  void Discard() {
    OnStream([&](auto& stream) {
      stream.async_read_some(buffer_.prepare(kReadBufferBytes),
                             [self = shared_from_this()](beast::error_code ec, size_t n) {
                               self->lingered_bytes_ += n;
                               if (ec || self->lingered_bytes_ > self->options_.lingering_max_bytes)
                                 return self->Close();
                               self->Discard();
                             });
    });
  }

  void Abort() {
    Finish();
    Close();
  }

  void Close() {
    MarkStreamClosed();
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    shared_->connections.fetch_sub(1);
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

  // The head of a streamed response: the handler's fields but the framing ones, no length (the
  // body ends when the connection does) and `Connection: close`.
  static std::string SerializeStreamHead(const Response& res) {
    std::string out;
    out.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    out.append(std::to_string(res.result_int()));
    out.push_back(' ');
    std::string_view reason = res.reason();
    out.append(reason.data(), reason.size());
    out.append("\r\n");
    for (const auto& f : res) {
      auto name = f.name();
      if (name == bhttp::field::content_length || name == bhttp::field::transfer_encoding ||
          name == bhttp::field::connection) {
        continue;
      }
      out.append(f.name_string().data(), f.name_string().size());
      out.append(": ");
      out.append(f.value().data(), f.value().size());
      out.append("\r\n");
    }
    out.append("Connection: close\r\n\r\n");
    return out;
  }

  static constexpr size_t kBodyPadding = 64;
  static constexpr size_t kReadBufferBytes = 4096;
  static constexpr size_t kMaxReadBytes = 64 * 1024;
  Socket socket_;
  // TLS over socket_ when the server has a TLS context (destroyed before the socket). Closing
  // closes the socket without a TLS close_notify: every response carries its length (or, for a
  // stream, `Connection: close`), so a truncation is visible to the client anyway.
  std::optional<asio::ssl::stream<Socket&>> tls_;
  std::string out_;                    // the response being written
  uint64_t seq_ = 0;                   // requests handed to the handler; I/O thread only
  std::atomic<uint64_t> answered_{0};  // the last request answered (see Respond)
  // When the current phase times out (see CloseIfOverdue); I/O thread only.
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  Phase phase_ = Phase::kReading;
  beast::flat_buffer buffer_;
  std::optional<RequestFramer> framer_;
  Worker* worker_;
  ServerShared* shared_;
  const ServerOptions& options_;
  const RequestFramer::Limits limits_;
  PeerInfo peer_;
  bool keep_alive_ = true;
  bool linger_ = false;  // close with a lingering close after the answer
  bool busy_ = false;    // a request is being handled or answered (counted in shared_->active)
  bool closed_ = false;
  bool header_started_ = false;  // a byte of the current request arrived (header timeout runs)
  bool header_done_ = false;     // its header is parsed (body timeout runs)
  uint64_t lingered_bytes_ = 0;
  std::shared_ptr<StreamState> stream_;  // a streamed response's queue; I/O thread sets it
  bool writing_ = false;                 // a stream write is in flight; I/O thread only
};

namespace {

class SessionStream final : public Stream {
 public:
  SessionStream(std::weak_ptr<Session> session, std::shared_ptr<StreamState> state)
      : session_(std::move(session)), state_(std::move(state)) {}
  ~SessionStream() override { End(); }

  WriteResult Write(std::string bytes) override {
    std::lock_guard lock(state_->mu);
    if (state_->closed || state_->ended) return WriteResult::kClosed;
    if (state_->queued_bytes + bytes.size() > state_->max_queued_bytes) return WriteResult::kFull;
    state_->queued_bytes += bytes.size();
    state_->queue.push_back(std::move(bytes));
    if (!state_->pump_posted) {
      // Posted under the mutex: once Stop marked the stream closed, nobody posts again.
      auto session = session_.lock();
      if (!session) return WriteResult::kClosed;
      state_->pump_posted = true;
      session->PostPump();
    }
    return WriteResult::kQueued;
  }

  void End() override {
    std::lock_guard lock(state_->mu);
    if (state_->closed || state_->ended) return;
    state_->ended = true;
    if (!state_->pump_posted) {
      if (auto session = session_.lock()) {
        state_->pump_posted = true;
        session->PostPump();
      }
    }
  }

  bool open() const override {
    std::lock_guard lock(state_->mu);
    return !state_->closed && !state_->ended;
  }

 private:
  std::weak_ptr<Session> session_;
  std::shared_ptr<StreamState> state_;
};

}  // namespace

std::shared_ptr<Stream> Session::StartStream(uint64_t seq, const Response& head,
                                             size_t max_queued_bytes) {
  uint64_t expected = seq - 1;
  if (!answered_.compare_exchange_strong(expected, seq)) return nullptr;
  auto state = std::make_shared<StreamState>(max_queued_bytes);
  state->queue.push_back(SerializeStreamHead(head));
  state->pump_posted = true;  // BeginStream pumps
  asio::post(worker_->io, [self = shared_from_this(), state] { self->BeginStream(state); });
  return std::make_shared<SessionStream>(weak_from_this(), std::move(state));
}

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

std::shared_ptr<Stream> Responder::StartStream(Response head, size_t max_queued_bytes) const {
  if (session_) return session_->StartStream(seq_, head, max_queued_bytes);
  if (!used_->exchange(true)) send_(std::move(head));
  return nullptr;
}

int MaxConnectionsFor(int reserve) {
  rlimit limit{};
  int64_t n = 1 << 20;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    n = static_cast<int64_t>(limit.rlim_cur);
  return static_cast<int>(std::clamp<int64_t>(n - reserve, 16, 1 << 20));
}

Result<DescriptorLimit> RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return IoError(std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  DescriptorLimit out{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
  if (limit.rlim_cur == limit.rlim_max) return out;
  rlimit raised = limit;
  raised.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    return IoError("setrlimit(RLIMIT_NOFILE, " + std::to_string(limit.rlim_max) +
                   "): " + std::strerror(errno));
  }
  out.soft = limit.rlim_max;
  return out;
}

namespace {

// Accept errors that say the process (EMFILE) or the system (ENFILE, ENOBUFS, ENOMEM) is out
// of a resource: retrying at once fails the same way, so accepting pauses (as nginx does).
bool OutOfResources(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory ||
         (ec.category() == boost::system::system_category() && ec.value() == ENFILE);
}

class BeastServer final : public Server {
 public:
  BeastServer(const ServerOptions& options, Handler* handler)
      : options_(options), shared_(options_, handler) {
    max_connections_ = options_.max_connections > 0 ? options_.max_connections
                                                    : MaxConnectionsFor(kDefaultDescriptorReserve);
    if (MetricsRegistry* m = options_.metrics) {
      const Labels listener = {{"listener", options_.name}};
      m->AddCallbackGauge("switchyard_http_connections", "Open HTTP connections.", listener,
                          [s = &shared_] { return static_cast<double>(s->connections.load()); });
      m->GetGauge("switchyard_http_max_connections",
                  "The cap on open HTTP connections (http.max_connections).", listener)
          ->Set(max_connections_);
      refused_ = m->GetCounter(
          "switchyard_http_connections_refused_total",
          "Connections closed as soon as accepted because http.max_connections were open.",
          listener);
      accept_pauses_ = m->GetCounter(
          "switchyard_http_accept_pauses_total",
          "Times accepting paused for 500 ms because the process or system ran out of "
          "descriptors or buffers.",
          listener);
      shared_.send_timeouts = m->GetCounter(
          "switchyard_http_send_timeouts_total",
          "Connections closed because a response made no progress for http.send_timeout.",
          listener);
      shared_.lingering_closes =
          m->GetCounter("switchyard_http_lingering_closes_total",
                        "Refused requests (400, 413, 431, 501) whose connection ended with a "
                        "lingering close.",
                        listener);
    }
  }
  ~BeastServer() override { Stop(0); }

  // TLS 1.2 and later with OpenSSL's default ciphers; the certificate chain and key from PEM
  // files. An error names the file and what OpenSSL said.
  Status LoadTls() {
    if (options_.tls_cert_file.empty() && options_.tls_key_file.empty()) return Status::Ok();
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty())
      return InvalidArgument("TLS needs both a certificate file and a key file");
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    beast::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                     ec);
    if (ec) return Internal("TLS: " + ec.message());
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
      return Internal("TLS: cannot require TLS 1.2");
    ctx->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) {
      return InvalidArgument("TLS certificate file " + options_.tls_cert_file +
                             ": cannot load it as a PEM certificate chain (" + ec.message() + ")");
    }
    ctx->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return InvalidArgument("TLS key file " + options_.tls_key_file +
                             ": cannot load it as a PEM private key (" + ec.message() + ")");
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return InvalidArgument("TLS key file " + options_.tls_key_file +
                             ": does not match the certificate in " + options_.tls_cert_file);
    }
    tls_ = std::move(ctx);
    shared_.tls = tls_.get();
    if (MetricsRegistry* m = options_.metrics) {
      shared_.tls_handshake_failures = m->GetCounter(
          "switchyard_http_tls_handshake_failures_total",
          "TLS handshakes that failed (plain HTTP to a TLS port, an old protocol, a bad client).",
          {{"listener", options_.name}});
    }
    return Status::Ok();
  }

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
      w->accept_pause.emplace(w->io);
      w->sweep.emplace(w->io);
      Sweep(w);
      w->thread = std::thread([w, i, name = options_.thread_name] {
        SetThreadName(name + "-" + std::to_string(i));
        w->io.run();
      });
    }
    Logger()->info("listening listener={} address={}:{} io_threads={} max_connections={}",
                   options_.name, options_.host, port_, n, max_connections_);
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }
  int connections() const override { return shared_.connections.load(); }
  int max_connections() const override { return max_connections_; }

  void Stop(int grace_ms) override {
    if (stopped_.exchange(true)) return;
    shared_.stopping = true;
    for (auto& w : workers_) {
      asio::post(w->io, [wp = w.get()] {
        beast::error_code ec;
        if (wp->acceptor) wp->acceptor->close(ec);
        if (wp->accept_pause) wp->accept_pause->cancel();
        if (wp->sweep) wp->sweep->cancel();
        for (auto& ws : wp->sessions)
          if (auto s = ws.lock()) s->CloseIfIdle();
      });
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (shared_.active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& w : workers_)
      w->io.stop();
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
    // The I/O threads are gone: streams still held by their writers are closed now, so no
    // writer posts to an io_context that is about to go.
    for (auto& w : workers_)
      for (auto& ws : w->sessions)
        if (auto s = ws.lock()) s->MarkStreamClosed();
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
        if (OutOfResources(ec)) {
          // Accepting again at once fails the same way and spins the thread (and, logged
          // each time, fills the disk): pause, and let the pending connections wait in the
          // listen backlog until descriptors are freed.
          if (accept_pauses_) accept_pauses_->Inc();
          SY_LOG_RATE_LIMITED(
              Logger(), warn, "accept failed, pausing {} ms listener={} error={} connections={}",
              kAcceptPauseMs, options_.name, ec.message(), shared_.connections.load());
          w->accept_pause->expires_after(std::chrono::milliseconds(kAcceptPauseMs));
          w->accept_pause->async_wait([this, w](beast::error_code wec) {
            if (!wec && !stopped_.load()) Accept(w);
          });
          return;
        }
        SY_LOG_RATE_LIMITED(Logger(), warn, "accept failed listener={} error={}", options_.name,
                            ec.message());
      } else if (shared_.connections.load() >= max_connections_) {
        // At the cap: close the new connection at once (the client sees the connection end
        // and retries later) rather than leave it waiting unserved in the backlog.
        if (refused_) refused_->Inc();
        SY_LOG_RATE_LIMITED(Logger(), warn,
                            "connection refused: max_connections={} reached listener={}",
                            max_connections_, options_.name);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        auto s = std::make_shared<Session>(std::move(socket), w, &shared_);
        w->sessions.push_back(s);  // the sweep forgets sessions that ended
        s->Start();
      }
      Accept(w);
    });
  }

  // nginx pauses accepting for 500 ms when it runs out of descriptors: long enough that a
  // pause costs nothing, short enough that service resumes soon after descriptors free up.
  static constexpr int kAcceptPauseMs = 500;
  ServerOptions options_;
  ServerShared shared_;  // before workers_: sessions (destroyed with their worker) point to it
  int max_connections_ = 0;
  Counter* refused_ = nullptr;
  std::unique_ptr<asio::ssl::context> tls_;  // when the listener serves TLS
  Counter* accept_pauses_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Handler* handler) {
  auto server = std::make_unique<BeastServer>(options, handler);
  SY_RETURN_IF_ERROR(server->LoadTls());
  SY_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace sy::http
