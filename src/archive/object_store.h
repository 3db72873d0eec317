// ObjectStore: where archive files go. Two implementations: LocalObjectStore (a directory tree,
// for one machine) and S3ObjectStore (any S3-compatible service, SigV4-signed).
//
// Contract shared by both:
// - Put(key, bytes) is atomic and idempotent: once it returns OK the object is complete and
//   durable (local: fsync'ed and renamed; S3: the PUT or CompleteMultipartUpload succeeded), and
//   putting the same key again replaces the object whole. A failed Put leaves either no object or
//   the previous one, never a partial one.
// - List(prefix) returns every object whose key starts with `prefix`, in key order.
// - Delete(key) removes the object; deleting a missing key is OK (idempotent). Once it returns OK
//   the removal is durable (local: the directory fsync'ed). Used by privacy deletion only
//   (archive_eraser.h): the archiver never removes an object.
// Keys are '/'-separated relative names; the archive only uses [A-Za-z0-9_.-/].
//
// Thread safety: an instance may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"
#include "config/config.h"
#include "http/client.h"

namespace sy::archive {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual Status Put(const std::string& key, std::string_view data) = 0;
  // Put, also telling the caller's retry policy how long the service asked it to wait
  // (Retry-After, ms) when the attempt failed with one; nullopt otherwise. Stores without such
  // a hint (the local directory) keep this default.
  virtual Status PutReportingRetryAfter(const std::string& key, std::string_view data,
                                        std::optional<int64_t>* retry_after_ms) {
    if (retry_after_ms) retry_after_ms->reset();
    return Put(key, data);
  }
  virtual Result<std::string> Get(const std::string& key) = 0;
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  // Stores that cannot delete (test doubles) keep this default.
  virtual Status Delete(const std::string& key) {
    return FailedPrecondition("delete " + key + ": not supported by " + Describe());
  }
  // For logs: "local:/path" or "s3://bucket".
  virtual std::string Describe() const = 0;
};

// A directory tree on this machine; all file I/O through `env` (durable Put: base/env.h).
std::unique_ptr<ObjectStore> NewLocalObjectStore(std::string root, Env* env = Env::Default());

struct S3Options {
  std::string endpoint;  // scheme://host[:port]; default https://s3.<region>.amazonaws.com
  std::string bucket;
  std::string region = "us-east-1";
  bool path_style = false;  // http://host/bucket/key instead of http://bucket.host/key
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;                    // optional (AWS_SESSION_TOKEN)
  uint64_t multipart_part_bytes = 16ull << 20;  // objects larger than this go up in parts
  int64_t timeout_ms = 60'000;                  // per request (a 16 MiB part on a slow link)
  // The outbound client; null: the store makes its own (one thread). Outlives the store.
  http::HttpClient* http = nullptr;
  // Reads only (Get, List); uploads are one attempt, retried by the caller (s3_store.cc).
  RetryPolicy read_retry{.max_attempts = 4, .backoff = {200, 800}};
  Clock* clock = nullptr;  // for read_retry's deadline, if any; null: the system clock
};
std::unique_ptr<ObjectStore> NewS3ObjectStore(S3Options options);

// The store an `archive:` section describes (credentials from the section, else AWS_* env).
Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const config::ArchiveConfig& config);

}  // namespace sy::archive
