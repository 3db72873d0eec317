#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace sy::http {
namespace {

class EchoHandler final : public Handler {
 public:
  void Handle(Request&& req, const PeerInfo&, Responder respond) override {
    Response res{bhttp::status::ok, req.version()};
    res.body() = "got " + std::to_string(req.body().size());
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

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.threads = 1;
    o.idle_timeout_seconds = 1;
    o.max_body_bytes = 1000;
    server_ = std::move(*Server::Start(o, &handler_));
  }
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

}  // namespace
}  // namespace sy::http
