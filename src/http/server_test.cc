#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/time.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/metrics.h"

namespace sy::http {
namespace {

class EchoHandler final : public Handler {
 public:
  void Handle(Request&& req, const PeerInfo&, Responder respond) override {
    {
      std::lock_guard lock(mu);
      seen.push_back(std::string(req.target()) + " host=" + std::string(req[bhttp::field::host]));
    }
    Response res{bhttp::status::ok, req.version()};
    if (req.target() == "/big") {
      res.body().assign(64 * 1024, 'x');
    } else {
      res.body() = "got " + std::to_string(req.body().size());
    }
    respond(std::move(res));
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mu);
    return seen;
  }
  std::mutex mu;
  std::vector<std::string> seen;
  Response Reject(unsigned status, const std::string& reason, const Request&) override {
    Response res{static_cast<bhttp::status>(status), 11};
    res.body() = reason;
    return res;
  }
};

int Connect(uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

// Writes all of `data` (MSG_NOSIGNAL: a reset connection is an error, not a signal).
bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Sends `request`, half-closes, and returns everything the server answers until it closes.
std::string Exchange(uint16_t port, const std::string& request) {
  int fd = Connect(port);
  EXPECT_TRUE(SendAll(fd, request));
  ::shutdown(fd, SHUT_WR);
  std::string out = ReadAll(fd);
  ::close(fd);
  return out;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
    ++n;
  return n;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.threads = 1;
    o.idle_timeout_ms = 1000;
    o.header_timeout_ms = 1000;
    o.max_body_bytes = 1000;
    o.send_timeout_ms = 500;
    o.lingering_time_ms = 3000;
    o.max_connections = 1000;
    o.metrics = &metrics_;
    server_ = std::move(*Server::Start(o, &handler_));
  }
  uint64_t CounterValue(const std::string& name) {
    return metrics_.GetCounter(name, "", {{"listener", "public"}})->Value();
  }
  MetricsRegistry metrics_;
  EchoHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, AnswersKeepAliveRequests) {
  int fd = Connect(server_->port());
  std::string req = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  std::string two = req + req.substr(0, req.size() - 3) + "xyz";
  ASSERT_EQ(::write(fd, two.data(), two.size()), static_cast<ssize_t>(two.size()));
  ::shutdown(fd, SHUT_WR);
  std::string out = ReadAll(fd);
  ::close(fd);
  size_t first = out.find("got 3");
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_NE(out.find("got 3", first + 1), std::string::npos) << out;
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterTheTimeout) {
  int fd = Connect(server_->port());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadAll(fd), "");  // EOF from the server, not the 10 s receive timeout
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 4.0);
  ::close(fd);
}

TEST_F(ServerTest, SlowHeaderIsCutOff) {
  int fd = Connect(server_->port());
  auto t0 = std::chrono::steady_clock::now();
  std::string part = "POST /x HTTP/1.1\r\nHost: a\r\n";
  ASSERT_GT(::write(fd, part.data(), part.size()), 0);
  ReadAll(fd);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 4.0);
  ::close(fd);
}

TEST_F(ServerTest, DeclaredOversizeBodyIs413) {
  int fd = Connect(server_->port());
  std::string req = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n";
  ASSERT_GT(::write(fd, req.data(), req.size()), 0);
  std::string out = ReadAll(fd);
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
}

// Request smuggling (RFC 9112 §6.3): each ambiguous framing gets 400 (or 501) and a close, and
// the bytes after the header are never parsed as a second request.
const char kSmuggled[] = "0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";

void ExpectRefusedWithoutSmuggling(uint16_t port, EchoHandler* handler, const std::string& header,
                                   const char* status = "400") {
  std::string out = Exchange(port, header + kSmuggled);
  EXPECT_EQ(out.rfind(std::string("HTTP/1.1 ") + status, 0), 0u) << header << "\n" << out;
  EXPECT_EQ(Count(out, "Content-Length:"), 1u) << out;  // one answer
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  for (const auto& s : handler->Seen())
    EXPECT_EQ(s.find("/smuggled"), std::string::npos) << header;
}

TEST_F(ServerTest, TransferEncodingWithoutFinalChunkedIsRefused) {
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n");
  ExpectRefusedWithoutSmuggling(server_->port(), &handler_,
                                "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n");
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501");
  EXPECT_TRUE(handler_.Seen().empty());
}

TEST_F(ServerTest, TransferEncodingInHttp10IsRefused) {
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST_F(ServerTest, ObsFoldedHeaderIsRefused) {
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n");
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\tidentity\r\n\r\n");
  EXPECT_TRUE(handler_.Seen().empty());
}

TEST_F(ServerTest, DuplicateContentLengthIsRefusedEvenWhenEqual) {
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
  ExpectRefusedWithoutSmuggling(server_->port(), &handler_,
                                "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
  EXPECT_TRUE(handler_.Seen().empty());
}

TEST_F(ServerTest, TransferEncodingWithContentLengthIsRefused) {
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\nContent-Length: 5\r\n\r\n");
  ExpectRefusedWithoutSmuggling(
      server_->port(), &handler_,
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_TRUE(handler_.Seen().empty());
}

TEST_F(ServerTest, ChunkedBodyIsAccepted) {
  std::string out = Exchange(
      server_->port(),
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("got 3"), std::string::npos) << out;
}

TEST_F(ServerTest, AbsoluteFormTargetIsServedAsItsPath) {
  std::string out = Exchange(server_->port(),
                             "POST http://events.example.com:8080/v1/track?x=1 HTTP/1.1\r\n"
                             "Host: other\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  ASSERT_EQ(handler_.Seen().size(), 1u);
  EXPECT_EQ(handler_.Seen()[0], "/v1/track?x=1 host=events.example.com:8080");
}

TEST_F(ServerTest, MalformedChunkedBodyIs400) {
  std::string out =
      Exchange(server_->port(),
               "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_TRUE(handler_.Seen().empty());
}

// A client that sends its whole (too large) body before reading gets its 413, not a reset.
TEST_F(ServerTest, RefusedClientReadsItsAnswerAfterSendingItsBody) {
  int fd = Connect(server_->port());
  std::string body(24 << 20, 'x');
  std::string req =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  // 16 MiB: beyond what socket buffers hold, so the server must read (and drop) part of it.
  bool sent = SendAll(fd, req) && SendAll(fd, body.substr(0, 16 << 20));
  EXPECT_TRUE(sent) << "the server reset the connection while the client was sending";
  std::string out = ReadAll(fd);
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out.substr(0, 200);
  EXPECT_GE(CounterValue("switchyard_http_lingering_closes_total"), 1u);
}

// A client that pipelines requests and never reads is cut off after send_timeout.
TEST_F(ServerTest, ClientThatDoesNotReadIsCutOffAfterTheSendTimeout) {
  int fd = Connect(server_->port(), /*rcvbuf=*/4096);
  const int kRequests = 300;  // 300 × 64 KiB answers: far more than socket buffers hold
  std::string req = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string all;
  for (int i = 0; i < kRequests; ++i)
    all += req;
  ASSERT_TRUE(SendAll(fd, all));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // send timeout 0.5 s + sweep
  EXPECT_EQ(server_->connections(), 0);
  ::shutdown(fd, SHUT_WR);
  std::string out = ReadAll(fd);
  ::close(fd);
  EXPECT_LT(Count(out, "HTTP/1.1 200"), static_cast<size_t>(kRequests));
  EXPECT_EQ(CounterValue("switchyard_http_send_timeouts_total"), 1u);
}

TEST(ServerLimits, ConnectionsPastTheCapAreClosedAndCounted) {
  EchoHandler handler;
  MetricsRegistry metrics;
  ServerOptions o;
  o.threads = 1;
  o.max_connections = 2;
  o.metrics = &metrics;
  auto server = std::move(*Server::Start(o, &handler));
  EXPECT_EQ(server->max_connections(), 2);
  int a = Connect(server->port());
  int b = Connect(server->port());
  for (int i = 0; i < 200 && server->connections() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  int c = Connect(server->port());
  EXPECT_EQ(ReadAll(c), "");  // closed at once, without an answer
  ::close(c);
  EXPECT_EQ(server->connections(), 2);
  EXPECT_EQ(
      metrics.GetCounter("switchyard_http_connections_refused_total", "", {{"listener", "public"}})
          ->Value(),
      1u);
  // The two within the cap are served.
  std::string req = "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(SendAll(a, req));
  EXPECT_EQ(ReadAll(a).rfind("HTTP/1.1 200", 0), 0u);
  ::close(a);
  ::close(b);
}

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Out of descriptors (EMFILE), the accept loop pauses instead of spinning.
TEST(ServerLimits, AcceptPausesWhenDescriptorsRunOut) {
#if defined(__SANITIZE_ADDRESS__)
  // Under the sanitizers every process-wide descriptor shortage is also UBSan's: its vptr check
  // probes memory through a pipe and, with no descriptor left, reports a false "invalid vptr" in
  // whatever thread makes a virtual call (Asio's scheduler here). The release build runs this
  // test, and e2e test_out_of_descriptors_pauses_accepting runs the binary under `ulimit -n`.
  GTEST_SKIP() << "descriptor exhaustion confuses UBSan's vptr check";
#endif
  EchoHandler handler;
  MetricsRegistry metrics;
  ServerOptions o;
  o.threads = 1;
  o.max_connections = 100'000;  // the cap is not what stops it here
  o.metrics = &metrics;
  auto server = std::move(*Server::Start(o, &handler));
  // Read before descriptors run out: UBSan's vptr check on a member call needs a descriptor (a
  // pipe to probe memory) and reports a false "invalid vptr" without one.
  const uint16_t port = server->port();
  // Sockets first, then a descriptor limit with no room left: connect() needs no descriptor,
  // the server's accept() does.
  std::vector<int> clients;
  for (int i = 0; i < 8; ++i)
    clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  for (int fd : clients)
    highest = std::max(highest, fd);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(highest + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : clients)
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  double cpu0 = CpuSeconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  double cpu = CpuSeconds() - cpu0;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  uint64_t pauses =
      metrics.GetCounter("switchyard_http_accept_pauses_total", "", {{"listener", "public"}})
          ->Value();
  EXPECT_LT(cpu, 0.3) << "the accept loop spins";
  EXPECT_GE(pauses, 1u);
  EXPECT_LE(pauses, 5u);  // one per 500 ms
  // Descriptors back: the waiting connections are accepted and served.
  std::string req = "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(SendAll(clients[0], req));
  timeval tv{10, 0};
  ::setsockopt(clients[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(ReadAll(clients[0]).rfind("HTTP/1.1 200", 0), 0u);
  for (int fd : clients)
    ::close(fd);
}

// http.idle_timeout, http.header_timeout and http.body_timeout (issue 18): each closes the
// connection that crosses it, measured from the start of its own phase. Before they were options,
// one fixed idle timeout (75 s) covered waiting and the whole header, so a client trickling its
// header kept its connection for the idle timeout; the body had a fixed 30 s.
std::unique_ptr<Server> StartWithTimeouts(Handler* handler, int idle_ms, int header_ms,
                                          int body_ms) {
  ServerOptions o;
  o.threads = 1;
  o.idle_timeout_ms = idle_ms;
  o.header_timeout_ms = header_ms;
  o.body_timeout_ms = body_ms;
  auto server = Server::Start(o, handler);
  EXPECT_TRUE(server.ok());
  return std::move(*server);
}

// Sends `trickle` one byte every 100 ms until the server closes `fd` (or `max_s` passes);
// returns the seconds it took and appends what the server sent to `answer`.
double SecondsUntilClosed(int fd, const std::string& trickle, double max_s,
                          std::string* answer = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  size_t sent = 0;
  while (elapsed() < max_s) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return elapsed();
      if (answer) answer->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (sent < trickle.size()) {
      if (::send(fd, trickle.data() + sent, 1, MSG_NOSIGNAL) != 1) return elapsed();
      ++sent;
    }
  }
  return elapsed();
}

TEST(ServerTimeouts, IdleTimeoutClosesAConnectionThatSendsNothing) {
  EchoHandler handler;
  auto server = StartWithTimeouts(&handler, 1000, 10'000, 10'000);
  int fd = Connect(server->port());
  double s = SecondsUntilClosed(fd, "", 8);
  ::close(fd);
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 3.0);
}

TEST(ServerTimeouts, HeaderTimeoutClosesATrickledHeader) {
  EchoHandler handler;
  auto server = StartWithTimeouts(&handler, 10'000, 1000, 10'000);
  int fd = Connect(server->port());
  // A header that never ends, one byte every 100 ms: under the idle timeout alone (10 s here)
  // it held the connection for 10 s.
  double s = SecondsUntilClosed(fd, "GET /x HTTP/1.1\r\nX-Slow: " + std::string(200, 'a'), 8);
  ::close(fd);
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 3.0);
}

TEST(ServerTimeouts, BodyTimeoutClosesATrickledBody) {
  EchoHandler handler;
  auto server = StartWithTimeouts(&handler, 10'000, 10'000, 1000);
  int fd = Connect(server->port());
  ASSERT_TRUE(SendAll(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n"));
  std::string answer;
  double s = SecondsUntilClosed(fd, std::string(200, 'b'), 8, &answer);
  ::close(fd);
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 3.0);
  EXPECT_EQ(answer, "");  // cut off, never answered
}

// Each phase has its own clock: waiting 1.2 s, then a header over ~1 s, then a body over ~1 s
// stays within 1.5 s timeouts although the request took ~3.5 s.
TEST(ServerTimeouts, EachPhaseIsTimedFromItsOwnStart) {
  EchoHandler handler;
  auto server = StartWithTimeouts(&handler, 1500, 1500, 1500);
  int fd = Connect(server->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  std::string answer;
  const std::string head = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n";
  std::string body = "123456789";
  // Header and body trickled at one byte every ~20 ms.
  for (char c : head) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 / static_cast<int>(head.size())));
  }
  for (char c : body) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(110));
  }
  SecondsUntilClosed(fd, "", 3, &answer);  // the answer, then the idle timeout closes
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("got 9"), std::string::npos) << answer;
}

// At `serve` start the soft descriptor limit is raised to the hard limit (issue 18), so the
// derived connection cap follows what the administrator allowed.
TEST(ServerLimits, RaiseDescriptorLimitLiftsTheSoftLimitToTheHardLimit) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 128 || saved.rlim_max == RLIM_INFINITY)
    GTEST_SKIP() << "hard limit " << saved.rlim_max;
  rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  auto r = RaiseDescriptorLimit();
  rlimit now{};
  ::getrlimit(RLIMIT_NOFILE, &now);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->soft_before, 64u);
  EXPECT_EQ(r->soft, saved.rlim_max);
  EXPECT_EQ(r->hard, saved.rlim_max);
  EXPECT_EQ(now.rlim_cur, saved.rlim_max);
  // Already at the hard limit: nothing to do.
  auto again = RaiseDescriptorLimit();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->soft_before, again->soft);
}

// Streamed responses (Responder::StartStream): GET /stream starts one and keeps it for the test.
class StreamHandler final : public Handler {
 public:
  void Handle(Request&& req, const PeerInfo&, Responder respond) override {
    Response head{bhttp::status::ok, req.version()};
    head.set(bhttp::field::content_type, "text/event-stream");
    head.set(bhttp::field::content_length, "999");  // dropped: a stream has no length
    head.body() = "ignored";
    auto stream = respond.StartStream(std::move(head), kQueueBytes);
    std::lock_guard lock(mu);
    streams.push_back(std::move(stream));
    cv.notify_all();
  }
  Response Reject(unsigned status, const std::string& reason, const Request&) override {
    Response res{static_cast<bhttp::status>(status), 11};
    res.body() = reason;
    return res;
  }
  std::shared_ptr<Stream> WaitForStream(size_t n = 1) {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return streams.size() >= n; }));
    return streams.size() >= n ? streams[n - 1] : nullptr;
  }
  static constexpr size_t kQueueBytes = 64 * 1024;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::shared_ptr<Stream>> streams;
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.threads = 1;
    o.send_timeout_ms = 500;
    o.max_connections = 100;
    o.metrics = &metrics_;
    server_ = std::move(*Server::Start(o, &handler_));
  }
  // Waits up to 5 s for `stream` to end.
  static bool EndsSoon(const std::shared_ptr<Stream>& stream) {
    for (int i = 0; i < 500 && stream->open(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return !stream->open();
  }
  MetricsRegistry metrics_;
  StreamHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(StreamTest, HeadThenChunksInOrderThenEnd) {
  int fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto stream = handler_.WaitForStream();
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->Write("event: a\n\n"), Stream::WriteResult::kQueued);
  EXPECT_EQ(stream->Write("event: b\n\n"), Stream::WriteResult::kQueued);
  stream->End();
  EXPECT_EQ(stream->Write("late"), Stream::WriteResult::kClosed);
  std::string out = ReadAll(fd);  // until the server closes
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Type: text/event-stream\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
  EXPECT_EQ(out.find("ignored"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "event: a\n\nevent: b\n\n");
}

TEST_F(StreamTest, ClientLeavingEndsTheStreamAtOnce) {
  int fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto stream = handler_.WaitForStream();
  ASSERT_TRUE(stream);
  char buf[512];
  ASSERT_GT(::read(fd, buf, sizeof buf), 0);  // the head
  EXPECT_TRUE(stream->open());
  ::close(fd);
  // Nothing is written meanwhile: the server's read notices the client leaving, not a write.
  EXPECT_TRUE(EndsSoon(stream));
  EXPECT_EQ(stream->Write("x"), Stream::WriteResult::kClosed);
  for (int i = 0; i < 100 && server_->connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->connections(), 0);
}

TEST_F(StreamTest, SlowReaderFillsItsQueueWithoutBlockingTheWriterThenTimesOut) {
  int fd = Connect(server_->port(), /*rcvbuf=*/4096);
  ASSERT_TRUE(SendAll(fd, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto stream = handler_.WaitForStream();
  ASSERT_TRUE(stream);
  // The client reads nothing. Once the socket buffers are full, the 64 KiB queue fills and
  // writes are refused at once, never waited for; the write that cannot progress then hits
  // the send timeout (0.5 s, swept once a second) and the stream ends.
  const std::string chunk(8 * 1024, 'x');
  size_t full = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  Stream::WriteResult r = Stream::WriteResult::kQueued;
  while (r != Stream::WriteResult::kClosed && std::chrono::steady_clock::now() < until) {
    auto start = std::chrono::steady_clock::now();
    r = stream->Write(chunk);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
    if (r == Stream::WriteResult::kFull) {
      ++full;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_EQ(r, Stream::WriteResult::kClosed);
  EXPECT_GT(full, 0u);
  EXPECT_LT(slowest, std::chrono::milliseconds(50));
  EXPECT_FALSE(stream->open());
  EXPECT_EQ(
      metrics_.GetCounter("switchyard_http_send_timeouts_total", "", {{"listener", "public"}})
          ->Value(),
      1u);
  ::close(fd);
}

TEST_F(StreamTest, StopEndsOpenStreamsWithoutWaitingForTheGrace) {
  int fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto stream = handler_.WaitForStream();
  ASSERT_TRUE(stream);
  auto start = std::chrono::steady_clock::now();
  server_->Stop(5000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(stream->open());
  EXPECT_EQ(stream->Write("x"), Stream::WriteResult::kClosed);
  ::close(fd);
}

// Only the server's responders stream; an in-process one gets the head as a whole response.
TEST(Responder, InProcessResponderSendsTheHeadAndCannotStream) {
  std::vector<Response> got;
  Responder r([&](Response res) { got.push_back(std::move(res)); });
  Response head{bhttp::status::ok, 11};
  EXPECT_EQ(r.StartStream(std::move(head)), nullptr);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(r.StartStream(Response{bhttp::status::ok, 11}), nullptr);
  EXPECT_EQ(got.size(), 1u);
}

}  // namespace
}  // namespace sy::http
