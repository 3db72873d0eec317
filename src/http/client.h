// HttpClient: the one outbound HTTP client of the process — every destination, the S3 archive
// store, `dlq redrive` and `warehouse sync`'s loopback call go through it, so TLS, timeouts, the
// private-network guard, response caps and Retry-After parsing live here once. It knows nothing
// about events or destinations.
//
// Implementation: libcurl's multi interface over a small pool of threads (each thread one multi
// handle and its connection cache, so keep-alive connections are reused across requests to the
// same host). TLS verification is on, redirects are never followed, only http/https are spoken,
// HTTP/2 is used where the server offers it.
//
// Private-network guard (SSRF): unless a request allows it, a request whose peer is loopback,
// private (RFC 1918, ULA), link-local (incl. the 169.254.169.254 cloud metadata address), CGNAT
// (100.64/10), unspecified, multicast or reserved is refused; IPv6 forms that embed an IPv4
// address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4
// 2002::/16) are judged by the IPv4 address they carry. The check runs twice: before a socket
// is opened (after DNS resolution, so a public name resolving to 127.0.0.1 is caught and
// rebinding cannot dodge it) and again on every request against the connected peer, because a
// request may reuse a keep-alive connection that a request allowing private networks opened to
// the same host:port. A refused request gets status 0 and refused_by_guard set, and nothing of
// it is sent.
//
// Threads: Send is thread-safe and never blocks; `done` runs exactly once on a client thread
// (or inline when the client is shutting down) and must not block. The destructor completes
// queued and in-flight requests with an error ("client shutting down") and joins its threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sy::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string method = "POST";
  std::string url;
  HeaderList headers;
  std::string body;  // sent for every method but GET
  // Whole-request timeout; 0: the client's default. A timeout is a transport error.
  int64_t timeout_ms = 0;
  // Bytes of the response body kept; 0: the client's max_response_bytes. The rest is read and
  // discarded. Callers that need whole bodies (S3 GET, listings) raise it.
  size_t max_response_bytes = 0;
};

// What came back. status 0 means no HTTP response: `error` names the transport failure
// (connect refused, timeout, TLS, refused by the private-network guard).
struct ClientResponse {
  int status = 0;
  std::string error;
  bool refused_by_guard = false;  // the SSRF guard refused the address: not worth retrying
  HeaderList headers;
  std::string body;  // capped (ClientRequest::max_response_bytes)
  double seconds = 0;
  int64_t received_unix_ms = 0;  // wall clock at arrival: the reference for an HTTP-date
                                 // Retry-After when the response has no Date header
  std::string Header(std::string_view name) const;  // case-insensitive; "" when absent
};

// The field's convention for a failure worth trying again: a transport error (but not a guard
// refusal), 408, 429 or 5xx.
bool IsTransientFailure(const ClientResponse& response);

// Parses a Retry-After value: delta-seconds, or an HTTP date (IMF-fixdate, RFC 850 or asctime
// form, RFC 9110 §10.2.3) turned into a delay from `now_unix_ms` (a date in the past → 0;
// without `now_unix_ms` a date gives nullopt). Garbage gives nullopt, so the caller falls back
// to its own backoff. Capped at a day.
std::optional<int64_t> ParseRetryAfterMs(std::string_view value,
                                         std::optional<int64_t> now_unix_ms = std::nullopt);
// The Retry-After of a response in ms: a date is measured against the response's own Date
// header when it has one (the server's clock, immune to skew), else against received_unix_ms.
std::optional<int64_t> RetryAfterMs(const ClientResponse& response);

struct HttpClientOptions {
  int threads = 2;
  int64_t connect_timeout_ms = 5'000;
  int64_t timeout_ms = 30'000;  // whole request, unless the request sets its own; a timeout is a
                                // transport error
  size_t max_response_bytes = 64 * 1024;  // the rest is discarded (excerpts only are kept)
};

struct SendOptions {
  // Operator-configured endpoints (the S3 store, the server's own loopback admin door) and
  // destinations with `allow_private_network: true` set this; everything else is guarded.
  bool allow_private_network = false;
};

class HttpClient {
 public:
  using Done = std::function<void(ClientResponse)>;
  virtual ~HttpClient() = default;
  virtual void Send(ClientRequest request, SendOptions options, Done done) = 0;
  // Blocking convenience for CLI commands, the S3 store and tests; not for stream threads.
  ClientResponse SendAndWait(ClientRequest request, SendOptions options);
};

Result<std::unique_ptr<HttpClient>> CreateCurlHttpClient(HttpClientOptions options);

// True for addresses the guard refuses (see above). `addr` is a sockaddr_in or sockaddr_in6.
bool IsPrivateAddress(const void* sockaddr, size_t len);
// Same for a textual IPv4/IPv6 address (as libcurl reports a peer); unparseable text is refused.
bool IsPrivateAddressText(std::string_view ip);

}  // namespace sy::http
