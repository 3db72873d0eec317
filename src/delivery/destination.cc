#include "delivery/destination.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace sy::delivery {

std::string HttpResponse::Header(std::string_view name) const {
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

std::optional<int64_t> RetryAfterMs(const HttpResponse& r) {
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

Outcome ClassifyByStatus(const HttpResponse& r) {
  if (r.status == 0) {
    if (r.refused_by_guard) return Outcome::Rejected("refused: " + r.error);
    return Outcome::Retry("transport: " + r.error);
  }
  if (r.status >= 200 && r.status < 300) return Outcome::Delivered();
  std::string reason = "http " + std::to_string(r.status);
  if (r.status == 408 || r.status == 429 || r.status >= 500) {
    return Outcome::Retry(reason, RetryAfterMs(r));
  }
  return Outcome::Rejected(reason);
}

std::vector<Outcome> Destination::Classify(const HttpRequest& request,
                                           const HttpResponse& response) const {
  return std::vector<Outcome>(request.events.size(), ClassifyByStatus(response));
}

}  // namespace sy::delivery
