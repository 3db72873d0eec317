// delivery_sink: a fast HTTP/1.1 receiver for bench/delivery_bench.sh, standing in for a webhook
// endpoint. One thread, epoll, keep-alive. Every POST is answered with a fixed status (200 by
// default, or --status 503) and, when it is 2xx, its events are counted: one per
// `"receivedAt":"` in the body, whose timestamp (the server's receive time, ms precision) is
// compared with this process's wall clock on arrival, giving the ingest → delivery latency on
// the same machine. A 2xx is counted as acknowledged by the sink.
//
//   GET /stats  → {"requests":N,"events":N,"p50_ms":…,"p99_ms":…,"max_ms":…,"latency_events":N}
//   GET /reset  → clears the latency samples (counts stay; the script takes differences)
//
// --vendors 1: answers as the vendors of the dest3 destinations do, so they can be benchmarked
// against it (bench/delivery_bench.sh MODE=new-destinations): BigQuery's token endpoint
// (`POST /token` → an access token) and insertAll (rows counted by "insertId"), Kinesis
// PutRecords (records counted by "PartitionKey", one success entry each), Intercom (a contact
// search finds nothing; /contacts, /events, /companies count one each). Latency is not measured
// there (the bodies carry no receivedAt as sent).
//
// Usage: delivery_sink [--port P] [--status S] [--vendors 1]; prints "port P" once listening.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "2026-11-26T14:00:00.123Z" → unix ms; -1 if it does not look like that.
int64_t ParseIsoMs(std::string_view s) {
  if (s.size() < 20) return -1;
  auto num = [&](size_t pos, size_t len) {
    int64_t v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return int64_t{-1};
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  int64_t y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2),
          se = num(17, 2);
  if (y < 0 || mo < 1 || d < 1 || h < 0 || mi < 0 || se < 0) return -1;
  int64_t ms = 0;
  if (s[19] == '.') {
    int64_t frac = num(20, 3);
    if (frac >= 0) ms = frac;
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi) * 60000 + se * 1000 + ms;
}

struct Conn {
  std::string in;
};

struct Stats {
  uint64_t requests = 0;
  uint64_t events = 0;
  std::vector<int64_t> latency_ms;  // one per event since the last /reset
};

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

std::string StatsJson(Stats& s) {
  double p50 = Percentile(s.latency_ms, 0.50);
  double p99 = Percentile(s.latency_ms, 0.99);
  double mx =
      s.latency_ms.empty()
          ? 0
          : static_cast<double>(*std::max_element(s.latency_ms.begin(), s.latency_ms.end()));
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"requests\":%llu,\"events\":%llu,\"p50_ms\":%.0f,\"p99_ms\":%.0f,"
                "\"max_ms\":%.0f,\"latency_events\":%zu}\n",
                static_cast<unsigned long long>(s.requests),
                static_cast<unsigned long long>(s.events), p50, p99, mx, s.latency_ms.size());
  return buf;
}

void CountEvents(std::string_view body, Stats& s, int64_t now) {
  static constexpr std::string_view kKey = "\"receivedAt\":\"";
  size_t pos = 0;
  while ((pos = body.find(kKey, pos)) != std::string_view::npos) {
    pos += kKey.size();
    s.events++;
    int64_t t = ParseIsoMs(body.substr(pos, 24));
    if (t > 0) s.latency_ms.push_back(std::max<int64_t>(0, now - t));
  }
}

size_t Occurrences(std::string_view body, std::string_view key) {
  size_t n = 0;
  for (size_t pos = 0; (pos = body.find(key, pos)) != std::string_view::npos; pos += key.size())
    ++n;
  return n;
}

std::string Ok(std::string_view status_line, std::string_view body) {
  return "HTTP/1.1 " + std::string(status_line) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

// --vendors: the answer a vendor of the dest3 destinations gives; counts the events it takes.
std::string VendorAnswer(std::string_view head, std::string_view body, Stats& s) {
  if (head.starts_with("POST /token ")) {
    return Ok("200 OK", R"({"access_token":"ya29.bench","expires_in":3599,"token_type":"Bearer"})");
  }
  if (head.find("/insertAll ") != std::string_view::npos) {
    s.events += Occurrences(body, "\"insertId\":\"");
    return Ok("200 OK", R"({"kind":"bigquery#tableDataInsertAllResponse"})");
  }
  if (head.find("Kinesis_20131202.PutRecords") != std::string_view::npos) {
    const size_t n = Occurrences(body, "\"PartitionKey\":\"");
    s.events += n;
    std::string out = R"({"FailedRecordCount":0,"Records":[)";
    for (size_t i = 0; i < n; ++i)
      out +=
          std::string(i ? "," : "") + R"({"SequenceNumber":"1","ShardId":"shardId-000000000000"})";
    return Ok("200 OK", out + "]}");
  }
  if (head.starts_with("POST /contacts/search ")) {
    return Ok("200 OK", R"({"type":"list","data":[],"total_count":0})");
  }
  s.events++;  // Intercom: /contacts, /events, /companies — one object each
  if (head.starts_with("POST /events "))
    return "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
  return Ok("200 OK", R"({"type":"contact","id":"65a1b2"})");
}

// Case-insensitive search for a header's value in the head of a request.
std::string_view HeaderValue(std::string_view head, std::string_view name) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    if (head.size() - pos < name.size() + 1) break;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(head[pos + i])) == name[i];
    if (same && head[pos + name.size()] == ':') {
      size_t v = pos + name.size() + 1;
      while (v < head.size() && head[v] == ' ')
        ++v;
      size_t end = head.find("\r\n", v);
      return head.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v);
    }
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  int status = 200;
  bool vendors = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    if (a == "--status") status = std::atoi(argv[i + 1]);
    if (a == "--vendors") vendors = std::atoi(argv[i + 1]) != 0;
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("port %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  Stats stats;
  const std::string reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "X";
  const std::string body = status / 100 == 2 ? "{\"ok\":true}" : "{\"error\":\"unavailable\"}";
  const std::string canned =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  std::array<epoll_event, 256> events;
  std::vector<char> buf(1 << 20);
  while (true) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == lfd) {
        while (true) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c];
        }
        continue;
      }
      Conn& conn = conns[fd];
      bool closed = false;
      while (true) {
        ssize_t r = ::read(fd, buf.data(), buf.size());
        if (r > 0) {
          conn.in.append(buf.data(), static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
        break;
      }
      // Answer every complete request in the buffer (pipelining-safe).
      std::string out;
      while (true) {
        size_t head_end = conn.in.find("\r\n\r\n");
        if (head_end == std::string::npos) break;
        std::string_view head(conn.in.data(), head_end);
        size_t body_len = 0;
        if (auto cl = HeaderValue(head, "content-length"); !cl.empty())
          body_len = static_cast<size_t>(std::strtoull(std::string(cl).c_str(), nullptr, 10));
        if (conn.in.size() < head_end + 4 + body_len) break;
        std::string_view req_body(conn.in.data() + head_end + 4, body_len);
        if (head.starts_with("GET /stats")) {
          std::string js = StatsJson(stats);
          out += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(js.size()) + "\r\n\r\n" + js;
        } else if (head.starts_with("GET /reset")) {
          stats.latency_ms.clear();
          out += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        } else if (vendors) {
          stats.requests++;
          out += VendorAnswer(head, req_body, stats);
        } else {
          stats.requests++;
          if (status / 100 == 2) CountEvents(req_body, stats, NowUnixMs());
          out += canned;
        }
        conn.in.erase(0, head_end + 4 + body_len);
      }
      if (!out.empty()) {
        // Responses are tiny: a blocking-ish loop is fine for a bench sink.
        size_t off = 0;
        while (off < out.size()) {
          ssize_t w = ::write(fd, out.data() + off, out.size() - off);
          if (w > 0) {
            off += static_cast<size_t>(w);
          } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
          } else {
            closed = true;
            break;
          }
        }
      }
      if (closed) {
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
}
