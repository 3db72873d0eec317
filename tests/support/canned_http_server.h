// CannedHttpServer: a loopback HTTP/1.1 server for client-side tests that answers every request
// with the same status, headers and body, and records each request (head and body) it read.
// Keep-alive: one connection may carry many requests. Bodies are framed by Content-Length only.
//
// Thread safety: the server runs on its own thread; requests() may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sy::testing {

class CannedHttpServer {
 public:
  // `headers` are extra response header lines, each ending in "\r\n".
  CannedHttpServer(int status, std::string headers, std::string body)
      : response_("HTTP/1.1 " + std::to_string(status) + " X\r\n" + headers +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  CannedHttpServer(const CannedHttpServer&) = delete;
  CannedHttpServer& operator=(const CannedHttpServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every request read so far, head and body.
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // The request lines ("PUT /path HTTP/1.1") of requests().
  std::vector<std::string> request_lines() {
    std::vector<std::string> lines;
    for (const auto& r : requests())
      lines.push_back(r.substr(0, r.find("\r\n")));
    return lines;
  }

 private:
  void Serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string buf;
      char tmp[4096];
      while (true) {
        size_t head_end = buf.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          size_t cl = 0;
          auto p = buf.find("Content-Length: ");
          if (p != std::string::npos && p < head_end) cl = std::stoul(buf.substr(p + 16));
          if (buf.size() >= head_end + 4 + cl) {
            {
              std::lock_guard lock(mu_);
              requests_.push_back(buf.substr(0, head_end + 4 + cl));
            }
            buf.erase(0, head_end + 4 + cl);
            ::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
            continue;
          }
        }
        ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
      ::close(c);
    }
  }

  const std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace sy::testing
