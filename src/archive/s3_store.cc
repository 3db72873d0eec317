// S3ObjectStore: S3's REST API over libcurl (easy interface, one request at a time per call),
// every request signed with SigV4 (sigv4.h) including the payload's SHA-256. Objects above
// multipart_part_bytes go up as a multipart upload (parts of that size; aborted on failure).
// Each request is tried up to 4 times with exponential backoff and full jitter on network
// errors, 5xx and 429/503 SlowDown; other 4xx (403 SignatureDoesNotMatch, a missing bucket) fail
// at once. Callers (the archiver) retry whole uploads on their own schedule.
#include <curl/curl.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "archive/object_store.h"
#include "archive/sigv4.h"
#include "base/logging.h"

namespace sy::archive {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = ModuleLogger("archive");
  return l;
}

struct HttpResult {
  long status = 0;
  std::string body;
  std::string etag;
  std::string error;  // transport error, when status == 0
};

size_t WriteBody(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

size_t WriteHeader(char* p, size_t size, size_t n, void* ud) {
  std::string_view line(p, size * n);
  auto* r = static_cast<HttpResult*>(ud);
  if (line.size() > 5 &&
      (line.starts_with("ETag:") || line.starts_with("etag:") || line.starts_with("Etag:"))) {
    std::string_view v = line.substr(5);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
      v.remove_suffix(1);
    r->etag = std::string(v);
  }
  return size * n;
}

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
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (o_.endpoint.empty()) o_.endpoint = "https://s3." + o_.region + ".amazonaws.com";
    while (!o_.endpoint.empty() && o_.endpoint.back() == '/')
      o_.endpoint.pop_back();
    size_t scheme = o_.endpoint.find("://");
    scheme_ = scheme == std::string::npos ? "https" : o_.endpoint.substr(0, scheme);
    host_ = scheme == std::string::npos ? o_.endpoint : o_.endpoint.substr(scheme + 3);
    if (!o_.path_style) host_ = o_.bucket + "." + host_;
  }

  Status Put(const std::string& key, std::string_view data) override {
    if (data.size() <= o_.multipart_part_bytes) {
      HttpResult r = Request("PUT", key, {}, data);
      return Check(r, "PUT " + key);
    }
    return PutMultipart(key, data);
  }

  Result<std::string> Get(const std::string& key) override {
    HttpResult r = Request("GET", key, {}, {});
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
      HttpResult r = Request("GET", "", q, {});
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

  static bool Retryable(const HttpResult& r) {
    return r.status == 0 || r.status == 429 || r.status >= 500;
  }

  Status PutMultipart(const std::string& key, std::string_view data) {
    HttpResult r = Request("POST", key, {{"uploads", ""}}, {});
    SY_RETURN_IF_ERROR(Check(r, "CreateMultipartUpload " + key));
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
      if (s.ok() && pr.etag.empty()) s = Unavailable("UploadPart of " + key + ": no ETag");
      if (!s.ok()) {
        Request("DELETE", key, {{"uploadId", upload_id}}, {});
        return s;
      }
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + pr.etag +
                  "</ETag></Part>";
    }
    complete += "</CompleteMultipartUpload>";
    HttpResult cr = Request("POST", key, {{"uploadId", upload_id}}, complete);
    Status s = Check(cr, "CompleteMultipartUpload " + key);
    // S3 may answer 200 with an <Error> body for a failed completion.
    if (s.ok() && cr.body.find("<Error>") != std::string::npos)
      s = Unavailable("CompleteMultipartUpload " + key + ": " + XmlText(cr.body, "Code"));
    if (!s.ok()) Request("DELETE", key, {{"uploadId", upload_id}}, {});
    return s;
  }

  HttpResult Request(const std::string& method, const std::string& key,
                     const std::vector<std::pair<std::string, std::string>>& query,
                     std::string_view body) {
    HttpResult r;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (attempt > 0) {
        int64_t cap = 100LL << attempt;  // 200, 400, 800 ms
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % cap));
      }
      r = Once(method, key, query, body);
      if (!Retryable(r)) break;
      Log()->warn("s3 request failed method={} key={} status={} error={} attempt={}", method, key,
                  r.status, r.error, attempt + 1);
    }
    return r;
  }

  HttpResult Once(const std::string& method, const std::string& key,
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
    std::string url = scheme_ + "://" + host_ + path + qs;
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

    HttpResult r;
    CURL* c = curl_easy_init();
    if (!c) {
      r.error = "curl_easy_init failed";
      return r;
    }
    struct curl_slist* h = nullptr;
    for (const auto& [k, v] : req.headers) {
      if (k == "host") continue;  // curl sends Host from the URL, identical to host_
      h = curl_slist_append(h, (k + ": " + v).c_str());
    }
    h = curl_slist_append(h, ("Authorization: " + auth).c_str());
    h = curl_slist_append(h, "Expect:");
    if (method == "PUT" || method == "POST")
      h = curl_slist_append(h, "Content-Type: application/octet-stream");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (method == "GET") {
      curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
      if (method == "DELETE") {
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
      } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      }
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
    } else {
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
  }

  S3Options o_;
  std::string scheme_;
  std::string host_;
};

std::string Env(const char* name) {
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
  o.access_key_id = c.access_key_id.empty() ? Env("AWS_ACCESS_KEY_ID") : c.access_key_id;
  o.secret_access_key =
      c.secret_access_key.empty() ? Env("AWS_SECRET_ACCESS_KEY") : c.secret_access_key;
  if (c.access_key_id.empty()) o.session_token = Env("AWS_SESSION_TOKEN");
  o.multipart_part_bytes = static_cast<uint64_t>(c.multipart_size);
  if (o.access_key_id.empty() || o.secret_access_key.empty()) {
    return FailedPrecondition(
        "archive: store s3 needs credentials: access_key_id and secret_access_key in archive:, "
        "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
  }
  return NewS3ObjectStore(std::move(o));
}

}  // namespace sy::archive
