// Unit tests of the outbound HTTP client against local socket servers on 127.0.0.1:0: what goes
// on the wire, keep-alive reuse, the private-network guard, transport errors, response caps.
#include "http/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/canned_http_server.h"

namespace sy::http {
namespace {

TEST(PrivateNetworkGuard, RefusesLoopbackPrivateLinkLocalCgnatMetadata) {
  for (const char* ip : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                         "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1",
                         "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1"}) {
    EXPECT_TRUE(IsPrivateAddressText(ip)) << ip;
  }
  for (const char* ip :
       {"8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(IsPrivateAddressText(ip)) << ip;
  }
}

TEST(PrivateNetworkGuard, Ipv6FormsThatCarryAnIpv4AddressAreJudgedByIt) {
  // Issue 18: [::127.0.0.1] (IPv4-compatible) and the other embeddings map to the IPv4 address.
  for (const char* ip : {"::127.0.0.1", "::7f00:1", "::10.0.0.1", "::169.254.169.254",
                         "::ffff:169.254.169.254", "::ffff:0:127.0.0.1", "64:ff9b::127.0.0.1",
                         "64:ff9b:1::a00:1", "2002:7f00:1::", "2002:a9fe:a9fe::1"}) {
    EXPECT_TRUE(IsPrivateAddressText(ip)) << ip;
  }
  for (const char* ip : {"::8.8.8.8", "::ffff:1.1.1.1", "64:ff9b::8.8.8.8", "2002:808:808::1"})
    EXPECT_FALSE(IsPrivateAddressText(ip)) << ip;
  EXPECT_TRUE(IsPrivateAddressText("not an address"));  // what cannot be judged is refused
}

// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1:0 answering a fixed status; records
// each request's raw head and body.
class TinyServer : public sy::testing::CannedHttpServer {
 public:
  explicit TinyServer(int status)
      : CannedHttpServer(status, "Retry-After: 3\r\n", R"({"ok":true})") {}
};

TEST(HttpClient, SendsMethodHeadersBodyAndReusesTheConnection) {
  TinyServer server(503);
  auto client = CreateCurlHttpClient({.threads = 1});
  ASSERT_TRUE(client.ok());
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/hook";
  req.headers = {{"X-Team", "growth"}};
  req.body = R"({"a":1})";
  for (int i = 0; i < 2; ++i) {
    ClientResponse res = (*client)->SendAndWait(req, {.allow_private_network = true});
    EXPECT_EQ(res.status, 503) << res.error;
    EXPECT_EQ(res.body, R"({"ok":true})");
    EXPECT_EQ(res.Header("retry-after"), "3");
    EXPECT_TRUE(IsTransientFailure(res));
    EXPECT_EQ(RetryAfterMs(res), 3000);
  }
  auto got = server.requests();
  ASSERT_EQ(got.size(), 2u);  // one connection served both: keep-alive reuse
  EXPECT_TRUE(got[0].starts_with("POST /hook HTTP/1.1\r\n")) << got[0];
  EXPECT_NE(got[0].find("X-Team: growth\r\n"), std::string::npos);
  EXPECT_TRUE(got[0].ends_with("\r\n\r\n{\"a\":1}"));
}

TEST(HttpClient, GuardRefusesLoopbackUnlessAllowed) {
  TinyServer server(200);
  auto client = CreateCurlHttpClient({.threads = 1});
  ASSERT_TRUE(client.ok());
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  ClientResponse refused = (*client)->SendAndWait(req, {.allow_private_network = false});
  EXPECT_EQ(refused.status, 0);
  EXPECT_TRUE(refused.refused_by_guard);
  EXPECT_FALSE(IsTransientFailure(refused));
  req.url = "http://localhost:" + std::to_string(server.port()) + "/";
  EXPECT_TRUE((*client)->SendAndWait(req, {}).refused_by_guard);  // after resolution
  EXPECT_TRUE(server.requests().empty());
  EXPECT_EQ((*client)->SendAndWait(req, {.allow_private_network = true}).status, 200);
}

TEST(HttpClient, ConnectionRefusedIsATransportErrorToRetry) {
  int port;
  {
    TinyServer s(200);
    port = s.port();
  }
  auto client = CreateCurlHttpClient({.threads = 1});
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  ClientResponse res = (*client)->SendAndWait(req, {.allow_private_network = true});
  EXPECT_EQ(res.status, 0);
  EXPECT_FALSE(res.error.empty());
  EXPECT_TRUE(IsTransientFailure(res));
}

TEST(HttpClient, AGuardedRequestNeverRidesAConnectionAnAllowedRequestOpened) {
  // Issue 18: the guard used to run only when a socket was opened, so a guarded request to the
  // same host:port reused the keep-alive connection of an allowed one and reached loopback.
  TinyServer server(200);
  auto client = CreateCurlHttpClient({.threads = 1});  // one connection cache for all
  ASSERT_TRUE(client.ok());
  const std::string port = std::to_string(server.port());
  ClientRequest allowed;
  allowed.url = "http://127.0.0.1:" + port + "/allowed";
  for (const std::string& url :
       {"http://127.0.0.1:" + port + "/guarded", "http://2130706433:" + port + "/numeric"}) {
    ASSERT_EQ((*client)->SendAndWait(allowed, {.allow_private_network = true}).status, 200);
    ClientRequest guarded;
    guarded.url = url;
    ClientResponse res = (*client)->SendAndWait(guarded, {.allow_private_network = false});
    EXPECT_EQ(res.status, 0) << url;
    EXPECT_TRUE(res.refused_by_guard) << url;
    EXPECT_FALSE(IsTransientFailure(res));
  }
  // Allowed requests still work afterwards.
  ASSERT_EQ((*client)->SendAndWait(allowed, {.allow_private_network = true}).status, 200);
  auto got = server.requests();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& r : got)
    EXPECT_TRUE(r.starts_with("POST /allowed ")) << r;
}

TEST(HttpClient, AResponseBodyIsCappedPerRequestOrByTheClientDefault) {
  TinyServer server(200);  // answers an 11-byte body
  auto client = CreateCurlHttpClient({.threads = 1, .max_response_bytes = 4});
  ASSERT_TRUE(client.ok());
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  EXPECT_EQ((*client)->SendAndWait(req, {.allow_private_network = true}).body, "{\"ok");
  req.max_response_bytes = 1 << 20;
  EXPECT_EQ((*client)->SendAndWait(req, {.allow_private_network = true}).body, "{\"ok\":true}");
}

}  // namespace
}  // namespace sy::http
