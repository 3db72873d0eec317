// TLS on a listener (ServerOptions::tls_cert_file): a self-signed certificate made by the
// openssl CLI in a temp dir; clients through OpenSSL directly, blocking, on 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "base/metrics.h"
#include "http/server.h"

namespace sy::http {
namespace {

namespace fs = std::filesystem;

class HelloHandler final : public Handler {
 public:
  void Handle(Request&& req, const PeerInfo&, Responder respond) override {
    Response res{bhttp::status::ok, req.version()};
    res.body() = "hello over " + std::string(req.target());
    respond(std::move(res));
  }
  Response Reject(unsigned status, const std::string& reason, const Request&) override {
    Response res{static_cast<bhttp::status>(status), 11};
    res.body() = reason;
    return res;
  }
};

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
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

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sy_tls_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    key_ = (dir_ / "key.pem").string();
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key_ +
        " -out " + cert_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void TearDown() override {
    if (server_) server_->Stop(0);
    fs::remove_all(dir_);
  }
  void StartServer(int header_timeout_ms = 75'000) {
    ServerOptions o;
    o.threads = 1;  // one I/O thread: a stalled handshake must not hold it
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    o.header_timeout_ms = header_timeout_ms;
    o.metrics = &metrics_;
    o.name = "admin";
    auto s = Server::Start(o, &handler_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  // One HTTPS request with a client limited to `max_version` (0: any); the whole answer, or
  // "handshake failed".
  std::string Https(const std::string& target, int max_version = 0) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (max_version) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx, max_version);
      SSL_CTX_set_security_level(ctx, 0);  // let the client offer TLS 1.0/1.1 at all
    }
    SSL* ssl = SSL_new(ctx);
    int fd = Connect(server_->port());
    SSL_set_fd(ssl, fd);
    std::string out;
    if (SSL_connect(ssl) != 1) {
      out = "handshake failed";
    } else {
      const std::string req =
          "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<size_t>(n));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    return out;
  }
  fs::path dir_;
  std::string cert_, key_;
  MetricsRegistry metrics_;
  HelloHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(TlsTest, AnswersOverHttps) {
  StartServer();
  std::string answer = Https("/x");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("hello over /x"), std::string::npos) << answer;
}

TEST_F(TlsTest, PlainHttpToTheTlsPortIsClosedWithoutAnAnswer) {
  StartServer();
  int fd = Connect(server_->port());
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got = ReadAll(fd);  // EOF (or a TLS alert), never an HTTP answer
  ::close(fd);
  EXPECT_EQ(got.find("HTTP/"), std::string::npos) << got;
  EXPECT_EQ(got.find("hello"), std::string::npos) << got;
  // The server serves on.
  EXPECT_NE(Https("/after").find("hello over /after"), std::string::npos);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                "switchyard_http_tls_handshake_failures_total{listener=\"admin\"} 1"),
            std::string::npos)
      << metrics_.RenderPrometheus();
}

TEST_F(TlsTest, OldProtocolVersionsAreRefused) {
  StartServer();
  EXPECT_EQ(Https("/old", TLS1_1_VERSION), "handshake failed");
  EXPECT_NE(Https("/new", TLS1_2_VERSION).find("hello over /new"), std::string::npos);
}

TEST_F(TlsTest, AStalledHandshakeHoldsNoThreadAndIsClosedAtTheHeaderTimeout) {
  StartServer(/*header_timeout_ms=*/1000);
  int stalled = Connect(server_->port());
  const char partial[] = {0x16, 0x03, 0x01, 0x02};  // the start of a ClientHello record, no more
  ASSERT_EQ(::send(stalled, partial, sizeof partial, MSG_NOSIGNAL), 4);
  // Meanwhile the single I/O thread answers others.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(Https("/other").find("hello over /other"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  // And the stalled one is closed by the sweep after the header timeout (up to a second late).
  std::string got = ReadAll(stalled);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ::close(stalled);
  EXPECT_EQ(got.find("HTTP/"), std::string::npos);
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(TlsTest, ABadCertificateOrKeyIsAnErrorNamingTheFile) {
  ServerOptions o;
  o.threads = 1;
  o.tls_cert_file = (dir_ / "missing.pem").string();
  o.tls_key_file = key_;
  auto s = Server::Start(o, &handler_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("missing.pem"), std::string::npos) << s.status().ToString();
  // A key file that holds no key.
  o.tls_cert_file = cert_;
  o.tls_key_file = cert_;
  s = Server::Start(o, &handler_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("TLS key file " + cert_), std::string::npos)
      << s.status().ToString();
  // A key of another certificate.
  const std::string other = (dir_ / "other.pem").string();
  ASSERT_EQ(std::system(("openssl genrsa -out " + other + " 2048 >/dev/null 2>&1").c_str()), 0);
  o.tls_key_file = other;
  s = Server::Start(o, &handler_);
  ASSERT_FALSE(s.ok());
  // OpenSSL refuses it when loading the key ("key values mismatch"), or the check after it.
  EXPECT_NE(s.status().message().find("TLS key file " + other), std::string::npos)
      << s.status().ToString();
  // One of the two alone.
  o.tls_key_file = "";
  EXPECT_FALSE(Server::Start(o, &handler_).ok());
}

}  // namespace
}  // namespace sy::http
