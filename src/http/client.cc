#include "http/client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_name.h"

namespace sy::http {
namespace {

bool PrivateV4(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  return in(0x00000000, 8) ||   // "this" network
         in(0x0A000000, 8) ||   // 10/8
         in(0x64400000, 10) ||  // 100.64/10 CGNAT
         in(0x7F000000, 8) ||   // loopback
         in(0xA9FE0000, 16) ||  // link-local, incl. 169.254.169.254 metadata
         in(0xAC100000, 12) ||  // 172.16/12
         in(0xC0000000, 24) ||  // 192.0.0/24 IETF protocol assignments
         in(0xC0A80000, 16) ||  // 192.168/16
         in(0xC6120000, 15) ||  // 198.18/15 benchmarking
         in(0xE0000000, 4) ||   // multicast
         in(0xF0000000, 4);     // reserved, broadcast
}

uint32_t V4At(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

bool PrivateV6(const unsigned char* b) {
  // Forms that carry an IPv4 address are judged by it (issue 18: [::127.0.0.1] reached
  // loopback): IPv4-compatible ::a.b.c.d (deprecated, but some stacks still route it; this also
  // covers :: and ::1 — 0.0.0.0/8 is private), IPv4-mapped ::ffff:a.b.c.d, IPv4-translated
  // ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96 and its local-use 64:ff9b:1::/48, and 6to4 2002::/16
  // (the IPv4 address in bytes 2..5).
  static const unsigned char kCompatible[12] = {};
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char kTranslated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
  static const unsigned char kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static const unsigned char kNat64Local[6] = {0, 0x64, 0xff, 0x9b, 0, 0x01};
  if (std::memcmp(b, kCompatible, 12) == 0) {
    if (b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] == 1) return true;  // ::1 loopback
    return PrivateV4(V4At(b + 12));
  }
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kTranslated, 12) == 0 ||
      std::memcmp(b, kNat64, 12) == 0 || std::memcmp(b, kNat64Local, 6) == 0) {
    return PrivateV4(V4At(b + 12));
  }
  if (b[0] == 0x20 && b[1] == 0x02) return PrivateV4(V4At(b + 2));  // 6to4
  if ((b[0] & 0xfe) == 0xfc) return true;                           // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;           // fe80::/10 link-local
  if (b[0] == 0xff) return true;                                    // multicast
  return false;
}

struct Job {
  ClientRequest request;
  SendOptions options;
  HttpClient::Done done;
  ClientResponse response;
  curl_slist* headers = nullptr;
  CURL* easy = nullptr;
  size_t max_body = 0;
  std::chrono::steady_clock::time_point started;
};

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* job = static_cast<Job*>(p);
  size_t len = size * n;
  size_t room =
      job->max_body > job->response.body.size() ? job->max_body - job->response.body.size() : 0;
  job->response.body.append(data, std::min(room, len));
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* p) {
  auto* job = static_cast<Job*>(p);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    job->response.headers.clear();  // a new response (after 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
      v.remove_suffix(1);
    job->response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
  }
  return size * n;
}

// The guard's first check: before a socket is opened to a resolved address.
curl_socket_t OnOpenSocket(void* p, curlsocktype, curl_sockaddr* addr) {
  auto* job = static_cast<Job*>(p);
  if (!job->options.allow_private_network && IsPrivateAddress(&addr->addr, addr->addrlen)) {
    job->response.refused_by_guard = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

// The guard's second check, on every request just before it is sent, against the peer of the
// connection it will use — new or reused. A keep-alive connection is cached by host:port, not by
// who opened it, so without this a guarded request rode a connection that a request allowing
// private networks had opened (issue 18). Nothing of the request has been sent when it aborts.
int OnPreRequest(void* p, char* peer_ip, char* /*local_ip*/, int /*peer_port*/,
                 int /*local_port*/) {
  auto* job = static_cast<Job*>(p);
  if (!job->options.allow_private_network && IsPrivateAddressText(peer_ip ? peer_ip : "")) {
    job->response.refused_by_guard = true;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

// One thread, one multi handle, one queue.
class Worker {
 public:
  Worker(const HttpClientOptions& o, int index) : options_(o), multi_(curl_multi_init()) {
    thread_ = std::thread([this, index] {
      SetThreadName("sy-http-out-" + std::to_string(index));
      Run();
    });
  }
  ~Worker() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
  }
  void Enqueue(std::unique_ptr<Job> job) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(job));
        job = nullptr;
      }
    }
    if (job) {
      job->response.error = "client shutting down";
      job->done(std::move(job->response));
      return;
    }
    curl_multi_wakeup(multi_);
  }

 private:
  void Start(std::unique_ptr<Job> job) {
    CURL* e = curl_easy_init();
    job->easy = e;
    job->max_body = job->request.max_response_bytes > 0 ? job->request.max_response_bytes
                                                        : options_.max_response_bytes;
    job->started = std::chrono::steady_clock::now();
    curl_easy_setopt(e, CURLOPT_URL, job->request.url.c_str());
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, job->request.method.c_str());
    if (job->request.method != "GET") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->request.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(job->request.body.size()));
    }
    for (const auto& [k, v] : job->request.headers)
      job->headers = curl_slist_append(job->headers, (k + ": " + v).c_str());
    job->headers = curl_slist_append(job->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
    const int64_t timeout_ms =
        job->request.timeout_ms > 0 ? job->request.timeout_ms : options_.timeout_ms;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "switchyard");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, job.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, job.get());
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, job.get());
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, OnPreRequest);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, job.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, job.get());
    curl_multi_add_handle(multi_, e);
    running_.push_back(std::move(job));
  }

  void Finish(CURL* e, CURLcode code) {
    Job* raw = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &raw);
    std::unique_ptr<Job> job;
    for (auto it = running_.begin(); it != running_.end(); ++it) {
      if (it->get() == raw) {
        job = std::move(*it);
        running_.erase(it);
        break;
      }
    }
    curl_multi_remove_handle(multi_, e);
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      job->response.status = static_cast<int>(status);
    } else {
      job->response.status = 0;
      job->response.error = job->response.refused_by_guard
                                ? "private network address (set allow_private_network: true)"
                                : curl_easy_strerror(code);
    }
    job->response.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - job->started).count();
    job->response.received_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
    curl_easy_cleanup(e);
    curl_slist_free_all(job->headers);
    job->done(std::move(job->response));
  }

  void Run() {
    while (true) {
      std::deque<std::unique_ptr<Job>> fresh;
      bool stopping;
      {
        std::lock_guard lock(mu_);
        fresh.swap(queue_);
        stopping = stopping_;
      }
      if (stopping) {
        for (auto& job : fresh) {
          job->response.error = "client shutting down";
          job->done(std::move(job->response));
        }
        while (!running_.empty())
          Finish(running_.front()->easy, CURLE_ABORTED_BY_CALLBACK);
        return;
      }
      for (auto& job : fresh)
        Start(std::move(job));
      int still = 0;
      curl_multi_perform(multi_, &still);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg == CURLMSG_DONE) Finish(m->easy_handle, m->data.result);
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  HttpClientOptions options_;
  CURLM* multi_;
  std::mutex mu_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Job>> running_;  // owned by the worker thread
  std::thread thread_;
};

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(HttpClientOptions o) {
    for (int i = 0; i < std::max(1, o.threads); ++i)
      workers_.push_back(std::make_unique<Worker>(o, i));
  }
  void Send(ClientRequest request, SendOptions options, Done done) override {
    auto job = std::make_unique<Job>();
    job->request = std::move(request);
    job->options = options;
    job->done = std::move(done);
    size_t i = next_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
    workers_[i]->Enqueue(std::move(job));
  }

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<size_t> next_{0};
};

}  // namespace

std::string ClientResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(k[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return v;
  }
  return "";
}

namespace {

constexpr int64_t kMaxRetryAfterMs = 86'400'000;  // a day is far beyond any sane hint

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

// An HTTP date → unix seconds, or nullopt. curl_getdate reads the three forms of RFC 9110
// (and a few more lenient ones); it only needs a NUL-terminated copy.
std::optional<int64_t> HttpDateSeconds(std::string_view v) {
  if (v.empty() || v.size() > 64) return std::nullopt;
  // A date starts with a day name; this keeps curl's lenient parser away from numbers.
  if (!std::isalpha(static_cast<unsigned char>(v.front()))) return std::nullopt;
  std::string s(v);
  time_t t = curl_getdate(s.c_str(), nullptr);
  if (t < 0) return std::nullopt;
  return static_cast<int64_t>(t);
}

}  // namespace

std::optional<int64_t> ParseRetryAfterMs(std::string_view value,
                                         std::optional<int64_t> now_unix_ms) {
  value = Trim(value);
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    // Capped so the arithmetic cannot overflow.
    return std::min<int64_t>(seconds, kMaxRetryAfterMs / 1000) * 1000;
  }
  if (!now_unix_ms) return std::nullopt;
  std::optional<int64_t> at = HttpDateSeconds(value);
  if (!at) return std::nullopt;
  return std::clamp<int64_t>(*at * 1000 - *now_unix_ms, 0, kMaxRetryAfterMs);
}

std::optional<int64_t> RetryAfterMs(const ClientResponse& r) {
  std::string value = r.Header("Retry-After");
  if (value.empty()) return std::nullopt;
  std::optional<int64_t> now;
  if (auto date = HttpDateSeconds(Trim(r.Header("Date")))) {
    now = *date * 1000;
  } else if (r.received_unix_ms > 0) {
    now = r.received_unix_ms;
  }
  return ParseRetryAfterMs(value, now);
}

bool IsTransientFailure(const ClientResponse& r) {
  if (r.status == 0) return !r.refused_by_guard;
  return r.status == 408 || r.status == 429 || r.status >= 500;
}

bool IsPrivateAddress(const void* sa, size_t len) {
  const auto* base = static_cast<const sockaddr*>(sa);
  if (base->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    return PrivateV4(ntohl(static_cast<const sockaddr_in*>(sa)->sin_addr.s_addr));
  }
  if (base->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    return PrivateV6(static_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr);
  }
  return true;  // unknown families are refused
}

bool IsPrivateAddressText(std::string_view ip) {
  std::string s(ip);
  sockaddr_in v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return IsPrivateAddress(&v4, sizeof v4);
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return IsPrivateAddress(&v6, sizeof v6);
  }
  return true;  // what cannot be judged is refused
}

ClientResponse HttpClient::SendAndWait(ClientRequest request, SendOptions options) {
  std::promise<ClientResponse> p;
  auto f = p.get_future();
  Send(std::move(request), options, [&p](ClientResponse r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::unique_ptr<HttpClient>> CreateCurlHttpClient(HttpClientOptions options) {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK) return Internal("curl_global_init failed");
  return std::unique_ptr<HttpClient>(new CurlHttpClient(options));
}

}  // namespace sy::http
