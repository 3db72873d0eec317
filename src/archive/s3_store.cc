// S3ObjectStore: S3's REST API over the process's outbound client (http/client.h: TLS,
// timeouts, connection reuse), every request signed with SigV4 (http/sigv4.h) including the
// payload's SHA-256. Objects above multipart_part_bytes go up as a multipart upload (parts of
// that size; aborted on failure).
//
// Retries: an upload (Put) is one attempt — each request once; the caller owns the retry of the
// whole upload (the archiver, with its RetryPolicy), and learns the service's Retry-After through
// PutReportingRetryAfter. Reads (Get, List: `archive ls`, replay) retry each request under
// S3Options::read_retry (by default 4 attempts, 200–800 ms full-jitter backoff) on what
// http::IsTransientFailure calls transient — network errors, 408, 429/503 SlowDown, 5xx;
// other 4xx (403 SignatureDoesNotMatch, a missing bucket) fail at once. So no request is ever
// under two retry loops.
//
// The endpoint is the operator's (often a private address: MinIO, SeaweedFS), so the
// private-network guard is not applied to it.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <thread>

#include "archive/object_store.h"
#include "base/backoff.h"
#include "base/logging.h"
#include "http/sigv4.h"

namespace sy::archive {
namespace {
// SigV4 lives with the HTTP client (http/sigv4.h), shared with the kinesis destination.
using http::CanonicalQuery;
using http::HexEncode;
using http::Sha256Hex;
using http::SigV4Authorization;
using http::SigV4Request;
using http::SigV4Scope;
using http::SigV4SigningKey;
using http::UriEncode;

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("archive");
  return l;
}

using HttpResult = http::ClientResponse;

// The text of the first <tag>…</tag> in `xml` (no entity decoding beyond &quot; and &amp;).
std::string XmlText(std::string_view xml, std::string_view tag, size_t* from = nullptr) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  size_t a = xml.find(open, from ? *from : 0);
  if (a == std::string_view::npos) return "";
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos) return "";
  if (from) *from = b + close.size();
  std::string out(xml.substr(a, b - a));
  for (auto [ent, ch] : {std::pair<std::string, std::string>{"&quot;", "\""},
                         {"&amp;", "&"},
                         {"&lt;", "<"},
                         {"&gt;", ">"},
                         {"&apos;", "'"}}) {
    for (size_t p = out.find(ent); p != std::string::npos; p = out.find(ent, p + ch.size()))
      out.replace(p, ent.size(), ch);
  }
  return out;
}

std::string AmzDate() {
  time_t now = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  char buf[17];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

class S3ObjectStore final : public ObjectStore {
 public:
  explicit S3ObjectStore(S3Options o) : o_(std::move(o)) {
    if (o_.endpoint.empty()) o_.endpoint = "https://s3." + o_.region + ".amazonaws.com";
    while (!o_.endpoint.empty() && o_.endpoint.back() == '/')
      o_.endpoint.pop_back();
    size_t scheme = o_.endpoint.find("://");
    scheme_ = scheme == std::string::npos ? "https" : o_.endpoint.substr(0, scheme);
    host_ = scheme == std::string::npos ? o_.endpoint : o_.endpoint.substr(scheme + 3);
    if (!o_.path_style) host_ = o_.bucket + "." + host_;
    http_ = o_.http;
    if (!http_) {
      // One thread: the store's callers block on each request anyway.
      auto made = http::CreateCurlHttpClient(
          {.threads = 1, .connect_timeout_ms = 10'000, .timeout_ms = o_.timeout_ms});
      if (made.ok()) {
        owned_http_ = std::move(*made);
        http_ = owned_http_.get();
      } else {
        client_error_ = made.status().message();
      }
    }
  }

  Status Put(const std::string& key, std::string_view data) override {
    return PutReportingRetryAfter(key, data, nullptr);
  }

  Status PutReportingRetryAfter(const std::string& key, std::string_view data,
                                std::optional<int64_t>* retry_after_ms) override {
    if (retry_after_ms) retry_after_ms->reset();
    if (data.size() <= o_.multipart_part_bytes) {
      HttpResult r = Request("PUT", key, {}, data);
      if (retry_after_ms) *retry_after_ms = http::RetryAfterMs(r);
      return Check(r, "PUT " + key);
    }
    return PutMultipart(key, data, retry_after_ms);
  }

  Result<std::string> Get(const std::string& key) override {
    HttpResult r = RequestWithRetries("GET", key, {});
    if (r.status == 404) return NotFound("no object " + key + " in s3://" + o_.bucket);
    SY_RETURN_IF_ERROR(Check(r, "GET " + key));
    return std::move(r.body);
  }

  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    std::string token;
    while (true) {
      std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"}, {"prefix", prefix}};
      if (!token.empty()) q.emplace_back("continuation-token", token);
      HttpResult r = RequestWithRetries("GET", "", q);
      SY_RETURN_IF_ERROR(Check(r, "LIST " + prefix));
      size_t pos = 0;
      while (true) {
        std::string item = XmlText(r.body, "Contents", &pos);
        if (item.empty()) break;
        ObjectInfo info;
        info.key = XmlText(item, "Key");
        info.size = std::strtoull(XmlText(item, "Size").c_str(), nullptr, 10);
        out.push_back(std::move(info));
      }
      if (XmlText(r.body, "IsTruncated") != "true") break;
      token = XmlText(r.body, "NextContinuationToken");
      if (token.empty()) return Unavailable("LIST " + prefix + ": truncated without a token");
    }
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  // DELETE is idempotent (S3 answers 204 for a missing key too), so it is retried like a read.
  Status Delete(const std::string& key) override {
    HttpResult r = RequestWithRetries("DELETE", key, {});
    if (r.status == 404) return Status::Ok();
    return Check(r, "DELETE " + key);
  }

  std::string Describe() const override { return "s3://" + o_.bucket + " at " + o_.endpoint; }

 private:
  Status Check(const HttpResult& r, const std::string& what) {
    if (r.status >= 200 && r.status < 300) return Status::Ok();
    if (r.status == 0) return Unavailable(what + ": " + r.error);
    std::string code = XmlText(r.body, "Code");
    std::string msg =
        what + ": http " + std::to_string(r.status) + (code.empty() ? "" : " " + code);
    if (r.status == 403 || r.status == 401) return {StatusCode::kUnauthenticated, msg};
    if (r.status == 404) return NotFound(msg);
    return Unavailable(msg);
  }

  // One attempt per request (see the top of the file); a failed part aborts the upload.
  Status PutMultipart(const std::string& key, std::string_view data,
                      std::optional<int64_t>* retry_after_ms) {
    auto failed = [&](const HttpResult& r, Status s) {
      if (retry_after_ms) *retry_after_ms = http::RetryAfterMs(r);
      return s;
    };
    HttpResult r = Request("POST", key, {{"uploads", ""}}, {});
    if (Status s = Check(r, "CreateMultipartUpload " + key); !s.ok()) return failed(r, s);
    std::string upload_id = XmlText(r.body, "UploadId");
    if (upload_id.empty()) return Unavailable("CreateMultipartUpload " + key + ": no UploadId");
    std::string complete = "<CompleteMultipartUpload>";
    int part = 0;
    for (size_t off = 0; off < data.size(); off += o_.multipart_part_bytes) {
      ++part;
      std::string_view chunk = data.substr(off, o_.multipart_part_bytes);
      HttpResult pr = Request(
          "PUT", key, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}}, chunk);
      Status s = Check(pr, "UploadPart " + std::to_string(part) + " of " + key);
      std::string etag = pr.Header("ETag");
      if (s.ok() && etag.empty()) s = Unavailable("UploadPart of " + key + ": no ETag");
      if (!s.ok()) {
        Request("DELETE", key, {{"uploadId", upload_id}}, {});
        return failed(pr, s);
      }
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + etag +
                  "</ETag></Part>";
    }
    complete += "</CompleteMultipartUpload>";
    HttpResult cr = Request("POST", key, {{"uploadId", upload_id}}, complete);
    Status s = Check(cr, "CompleteMultipartUpload " + key);
    // S3 may answer 200 with an <Error> body for a failed completion.
    if (s.ok() && cr.body.find("<Error>") != std::string::npos)
      s = Unavailable("CompleteMultipartUpload " + key + ": " + XmlText(cr.body, "Code"));
    if (!s.ok()) {
      Request("DELETE", key, {{"uploadId", upload_id}}, {});
      return failed(cr, s);
    }
    return s;
  }

  // A read: retried per o_.read_retry on transient failures, honouring Retry-After.
  HttpResult RequestWithRetries(const std::string& method, const std::string& key,
                                const std::vector<std::pair<std::string, std::string>>& query) {
    RetrySchedule retry(o_.read_retry, o_.clock);
    while (true) {
      HttpResult r = Request(method, key, query, {});
      if (r.status >= 200 && r.status < 300) return r;
      std::optional<int64_t> delay =
          retry.AfterFailure(http::IsTransientFailure(r), http::RetryAfterMs(r));
      if (!delay) return r;
      Logger()->warn("s3 request failed method={} key={} status={} error={} attempt={}", method,
                     key, r.status, r.error, retry.attempts() - 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(*delay));
    }
  }

  HttpResult Request(const std::string& method, const std::string& key,
                     const std::vector<std::pair<std::string, std::string>>& query,
                     std::string_view body) {
    std::string path = o_.path_style ? "/" + UriEncode(o_.bucket, false) : "";
    path += "/" + UriEncode(key, true);
    if (key.empty() && !o_.path_style) path = "/";
    std::string qs;
    for (const auto& [k, v] : query) {
      qs += (qs.empty() ? "?" : "&") + UriEncode(k, false);
      if (!v.empty() || k != "uploads") qs += "=" + UriEncode(v, false);
    }
    std::string date = AmzDate();
    std::string payload_hash = Sha256Hex(body);
    SigV4Request req;
    req.method = method;
    req.canonical_uri = path;
    req.payload_hash = payload_hash;
    req.query = query;
    req.headers = {{"host", host_}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", date}};
    if (!o_.session_token.empty())
      req.headers.emplace_back("x-amz-security-token", o_.session_token);
    std::string auth =
        SigV4Authorization(req, {o_.access_key_id, o_.secret_access_key, o_.region, "s3", date});

    if (!http_) {
      HttpResult r;
      r.error = "no HTTP client: " + client_error_;
      return r;
    }
    http::ClientRequest wire;
    wire.method = method;
    wire.url = scheme_ + "://" + host_ + path + qs;
    for (const auto& [k, v] : req.headers) {
      if (k == "host") continue;  // the client sends Host from the URL, identical to host_
      wire.headers.emplace_back(k, v);
    }
    wire.headers.emplace_back("Authorization", std::move(auth));
    if (method == "PUT" || method == "POST")
      wire.headers.emplace_back("Content-Type", "application/octet-stream");
    wire.body = std::string(body);
    wire.timeout_ms = o_.timeout_ms;
    // Objects and listings are read whole (an archive file is bounded by roll_size).
    wire.max_response_bytes = std::numeric_limits<size_t>::max();
    return http_->SendAndWait(std::move(wire), {.allow_private_network = true});
  }

  S3Options o_;
  std::string scheme_;
  std::string host_;
  http::HttpClient* http_ = nullptr;
  std::unique_ptr<http::HttpClient> owned_http_;
  std::string client_error_;
};

// The environment variable `name`, or "" when unset. (Not base/env.h's Env, the file-system seam.)
std::string EnvironmentVariable(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::unique_ptr<ObjectStore> NewS3ObjectStore(S3Options options) {
  return std::make_unique<S3ObjectStore>(std::move(options));
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const config::ArchiveConfig& c) {
  if (c.store == config::ArchiveStore::kLocal) return NewLocalObjectStore(c.path);
  S3Options o;
  o.endpoint = c.endpoint;
  o.bucket = c.bucket;
  o.region = c.region;
  o.path_style = c.path_style;
  o.access_key_id =
      c.access_key_id.empty() ? EnvironmentVariable("AWS_ACCESS_KEY_ID") : c.access_key_id;
  o.secret_access_key = c.secret_access_key.empty() ? EnvironmentVariable("AWS_SECRET_ACCESS_KEY")
                                                    : c.secret_access_key;
  if (c.access_key_id.empty()) o.session_token = EnvironmentVariable("AWS_SESSION_TOKEN");
  o.multipart_part_bytes = static_cast<uint64_t>(c.multipart_size);
  if (o.access_key_id.empty() || o.secret_access_key.empty()) {
    return FailedPrecondition(
        "archive: store s3 needs credentials: access_key_id and secret_access_key in archive:, "
        "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
  }
  return NewS3ObjectStore(std::move(o));
}

}  // namespace sy::archive
