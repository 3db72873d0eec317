// AWS Signature Version 4 (header-based signing), for the archive's S3 store and the kinesis
// destination. Checked against AWS's published test vectors (src/archive/archive_test.cc).
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sy::http {

struct SigV4Request {
  std::string method;         // "GET", "PUT", …
  std::string canonical_uri;  // the path, already URI-encoded as sent ("/bucket/a%20b")
  std::vector<std::pair<std::string, std::string>> query;    // raw (unencoded) names and values
  std::vector<std::pair<std::string, std::string>> headers;  // every header to sign, host included
  std::string payload_hash;  // lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct SigV4Scope {
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;
  std::string service;   // "s3", "kinesis"
  std::string amz_date;  // "20150830T123600Z"; the date part is the first 8 characters
};

// The value of the Authorization header.
std::string SigV4Authorization(const SigV4Request& request, const SigV4Scope& scope);

// Building blocks, exposed for tests and for the S3 client.
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string HexEncode(std::string_view bytes);
// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else %XX
// (uppercase); '/' kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// Sorted by name (then value), each part UriEncode'd, joined with '&'.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> query);
// The derived signing key (raw bytes).
std::string SigV4SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service);

}  // namespace sy::http
