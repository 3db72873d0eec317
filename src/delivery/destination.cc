#include "delivery/destination.h"

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

std::optional<int64_t> ParseRetryAfterMs(std::string_view value) {
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r'))
    value.remove_suffix(1);
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) return std::nullopt;
  // A day is already far beyond any sane hint; cap so the arithmetic cannot overflow.
  return std::min<int64_t>(seconds, 86'400) * 1000;
}

Outcome ClassifyByStatus(const HttpResponse& r) {
  if (r.status == 0) {
    if (r.refused_by_guard) return Outcome::Rejected("refused: " + r.error);
    return Outcome::Retry("transport: " + r.error);
  }
  if (r.status >= 200 && r.status < 300) return Outcome::Delivered();
  std::string reason = "http " + std::to_string(r.status);
  if (r.status == 408 || r.status == 429 || r.status >= 500) {
    return Outcome::Retry(reason, ParseRetryAfterMs(r.Header("Retry-After")));
  }
  return Outcome::Rejected(reason);
}

std::vector<Outcome> Destination::Classify(const HttpRequest& request,
                                           const HttpResponse& response) const {
  return std::vector<Outcome>(request.events.size(), ClassifyByStatus(response));
}

}  // namespace sy::delivery
