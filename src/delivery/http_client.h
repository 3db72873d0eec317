// HttpClient: outbound HTTP for every destination, on libcurl's multi interface over a small
// pool of threads (each thread one multi handle and its connection cache, so keep-alive
// connections are reused across requests to the same host). TLS verification is on, redirects
// are never followed, only http/https are spoken, HTTP/2 is used where the server offers it.
//
// Private-network guard (SSRF): unless a request allows it, the address curl is about to
// connect to — after DNS resolution, so a public name resolving to 127.0.0.1 is caught and
// rebinding cannot dodge it — is refused if it is loopback, private (RFC 1918, ULA), link-local
// (incl. the 169.254.169.254 cloud metadata address), CGNAT (100.64/10), unspecified, multicast
// or reserved; the response then has status 0 and refused_by_guard set.
//
// Threads: Send is thread-safe and never blocks; `done` runs exactly once on a client thread
// (or inline when the client is shutting down) and must not block. The destructor completes
// queued and in-flight requests with an error ("client shutting down") and joins its threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "base/status.h"
#include "delivery/destination.h"

namespace sy::delivery {

struct HttpClientOptions {
  int threads = 2;
  int64_t connect_timeout_ms = 5'000;
  int64_t timeout_ms = 30'000;  // whole request, unless the request sets its own; a timeout is a
                                // transport error (retried)
  size_t max_response_bytes = 64 * 1024;  // the rest is discarded (excerpts only are kept)
};

struct SendOptions {
  bool allow_private_network = false;
};

class HttpClient {
 public:
  using Done = std::function<void(HttpResponse)>;
  virtual ~HttpClient() = default;
  virtual void Send(HttpRequest request, SendOptions options, Done done) = 0;
  // Blocking convenience for the CLI (dlq redrive) and tests; not for stream threads' hot path.
  HttpResponse SendAndWait(HttpRequest request, SendOptions options);
};

Result<std::unique_ptr<HttpClient>> CreateCurlHttpClient(HttpClientOptions options);

// True for addresses the guard refuses (see above). `addr` is a sockaddr_in or sockaddr_in6.
bool IsPrivateAddress(const void* sockaddr, size_t len);
// Same for a textual IPv4/IPv6 address (tests); false for anything unparseable.
bool IsPrivateAddressText(std::string_view ip);

}  // namespace sy::delivery
